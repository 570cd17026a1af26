//! The last step of the allowlist path: put a compiled snapshot in force with one swap, and
//! keep metrics and `/status` in step with it.

use crate::allowlist::Snapshot;
use crate::gate::Gate;
use crate::status::{Attempt, Origin, ATTEMPTS};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Put a compiled snapshot in force with one atomic swap, and update metrics and status.
pub fn install(
    gate: &Gate,
    snapshot: Arc<Snapshot>,
    origin: Origin,
    etag: Option<String>,
    took: Duration,
) {
    for q in snapshot.quarantined() {
        tracing::warn!(entry = %q, "allowlist entry quarantined");
    }
    let m = &gate.metrics;
    m.allowlist_ranges.set(snapshot.range_count() as i64);
    m.allowlist_sites.set(snapshot.site_count() as i64);
    m.allowlist_exceptions
        .set(snapshot.exception_count() as i64);
    m.allowlist_quarantined
        .set(snapshot.quarantined().len() as i64);
    m.allowlist_unknown_fields.set(
        snapshot
            .unknown_fields()
            .iter()
            .map(|(_, n)| *n as i64)
            .sum(),
    );
    m.allowlist_load_seconds.set(took.as_secs_f64());
    let now = gate.now();
    m.allowlist_loaded_timestamp
        .set(now.unix_timestamp() as f64);
    m.allowlist_from_last_good
        .set(i64::from(origin == Origin::LastGood));
    m.allowlist_info.reset();
    m.allowlist_info
        .with_label_values(&[
            snapshot.version().unwrap_or(""),
            &gate.runtime().config.allowlist.source.describe(),
        ])
        .set(1);
    m.allowlist_loaded.set(1);
    gate.swap(|g| g.snapshot = Some(snapshot.clone()));
    tracing::info!(
        version = snapshot.version().unwrap_or(""),
        origin = ?origin,
        ranges = snapshot.range_count(),
        sites = snapshot.site_count(),
        quarantined = snapshot.quarantined().len(),
        took_ms = took.as_secs_f64() * 1000.0,
        "allowlist in force"
    );
    let mut st = gate.status();
    st.origin = Some(origin);
    st.etag = etag;
    st.loaded_at = Some(now);
    st.loaded_instant = Some(Instant::now());
    st.load_duration = Some(took);
    if origin == Origin::Source {
        st.last_success = Some(now);
        m.allowlist_last_success_timestamp
            .set(now.unix_timestamp() as f64);
    }
}

/// Record a sync attempt for `/status` and metrics.
pub fn record_attempt(gate: &Gate, attempt: Attempt) {
    gate.metrics
        .allowlist_syncs
        .with_label_values(&[attempt.result])
        .inc();
    gate.metrics
        .allowlist_sync_duration
        .observe(attempt.duration_ms / 1000.0);
    let mut st = gate.status();
    if attempt.error.is_some() {
        st.last_error = Some(attempt.clone());
    }
    st.attempts.push_front(attempt);
    st.attempts.truncate(ATTEMPTS);
}
