//! The allowlist lifecycle: source → parse → validate → guard → persist → one swap.
//!
//! [`Syncer::attempt`] is one pass over that path; `service.rs` runs it on a timer, on file
//! changes, on SIGHUP and on `POST /reload`. Whatever goes wrong, the snapshot in force
//! stays: a document is swapped in only when it compiled, passed the shrink guard and
//! differs from the one in force.

mod install;
mod local;
mod reload;
mod service;
mod upstreams;
mod watch;

pub use install::{install, record_attempt};
pub use local::{
    build_gate, put_in_force, reload_keys, reload_overrides, LocalFileError, LocalFilesService,
};
pub use reload::reload_config;
pub use service::SyncService;
pub use upstreams::UpstreamService;

use crate::allowlist::{self, CompileOptions, Snapshot};
use crate::allowlist_config::{SourceConfig, TokenConfig};
use crate::gate::Gate;
use crate::status::{Attempt, Origin};
use crate::sync::diff::{diff, ChangeTotals, SnapshotChange, MAX_SITES};
use crate::sync::guard::check_shrink;
use crate::sync::http::{Fetched, HttpSource, HttpSourceConfig};
use crate::sync::persist::{read_last_good, write_atomic};
use crate::sync::token::TokenSource;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// ok, not_modified, http_error, timeout, invalid, shrink_refused, read_error
    pub result: &'static str,
    pub error: Option<String>,
}

impl Outcome {
    fn ok(result: &'static str) -> Outcome {
        Outcome {
            result,
            error: None,
        }
    }
    fn err(result: &'static str, error: impl ToString) -> Outcome {
        Outcome {
            result,
            error: Some(error.to_string()),
        }
    }
    /// A failure to reach the source, retried with backoff (a bad document is not: polling
    /// faster would not fix it).
    pub fn is_transient(&self) -> bool {
        matches!(self.result, "http_error" | "timeout" | "read_error")
    }
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "result": self.result, "error": self.error })
    }
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

enum Source {
    File(PathBuf),
    Http(Box<HttpSource>),
}

/// Builds the source client from config; the error names the key and the value.
fn build_source(cfg: &SourceConfig) -> Result<Source, String> {
    match cfg {
        SourceConfig::File(p) => Ok(Source::File(p.clone())),
        SourceConfig::Http {
            url,
            token,
            ca_file,
            connect_timeout,
            timeout,
            max_body_bytes,
        } => {
            let bearer_token = match token {
                None => None,
                Some(TokenConfig::File(p)) => Some(
                    TokenSource::File(p.clone())
                        .read()
                        .map_err(|e| e.to_string())?,
                ),
                Some(TokenConfig::Env(v)) => Some(
                    TokenSource::Env(v.clone())
                        .read()
                        .map_err(|e| e.to_string())?,
                ),
            };
            let http = HttpSource::new(HttpSourceConfig {
                url: url.clone(),
                bearer_token,
                ca_file: ca_file.clone(),
                connect_timeout: *connect_timeout,
                timeout: *timeout,
                max_body_bytes: *max_body_bytes,
            })
            .map_err(|e| e.to_string())?;
            Ok(Source::Http(Box::new(http)))
        }
    }
}

/// A document that was compiled and judged; the result of [`judge`].
enum Judged {
    Unchanged,
    /// The snapshot and the hash of its document (hashing 100k ranges once is enough).
    Accept(Arc<Snapshot>, u64),
}

/// Compile and judge a document against the snapshot in force. Pure apart from reading
/// the gate's current state.
fn judge(
    gate: &Gate,
    bytes: &[u8],
    opts: &CompileOptions,
    max_shrink: f64,
    force_shrink: bool,
    recompile: bool,
) -> Result<Judged, Outcome> {
    let hash = hash_bytes(bytes);
    // Unchanged only when the same document came from the source before: the same bytes
    // confirming a last-known-good start are put in force again, now as from the source.
    let unchanged = {
        let st = gate.status();
        st.accepted_hash == Some(hash) && st.origin == Some(Origin::Source)
    };
    if !recompile && unchanged && gate.is_ready() {
        return Ok(Judged::Unchanged);
    }
    let snapshot = allowlist::compile(bytes, opts)
        .map_err(|e| Outcome::err("invalid", format!("document rejected: {e}")))?;
    if let Some(current) = gate.snapshot() {
        if !force_shrink {
            if let Err(refused) =
                check_shrink(current.range_count(), snapshot.range_count(), max_shrink)
            {
                gate.status().shrink_refused = Some(refused.to_string());
                return Err(Outcome::err("shrink_refused", refused));
            }
        }
    }
    Ok(Judged::Accept(Arc::new(snapshot), hash))
}

/// Put an accepted snapshot in force, then persist it and record the change. The swap
/// comes first so a new registration decides requests as soon as it compiled; persisting
/// (fsync) and computing the change history only follow.
fn accept(
    gate: &Gate,
    (bytes, hash): (&[u8], u64),
    snapshot: Arc<Snapshot>,
    origin: Origin,
    etag: Option<String>,
    started: Instant,
) {
    let previous = gate.snapshot();
    gate.status().accepted_hash = Some(hash);
    install(
        gate,
        snapshot.clone(),
        origin,
        etag.clone(),
        started.elapsed(),
    );
    let rt = gate.runtime();
    let cfg = &rt.config.allowlist;
    if origin == Origin::Source {
        if let Some(path) = &cfg.last_good {
            if let Err(e) = write_atomic(path, bytes) {
                gate.metrics.last_good_write_errors.inc();
                tracing::error!(path = %path.display(), error = %e, "cannot persist the allowlist as last-known-good");
            }
        }
    }
    let change = match previous.as_deref() {
        Some(previous) => diff(Some(previous), &snapshot),
        None => first_load_change(&snapshot),
    };
    let now = gate.now();
    let mut st = gate.status();
    st.shrink_refused = None;
    if !change.is_empty() {
        st.history.push(crate::sync::history::HistoryEntry {
            at: now,
            version: snapshot.version().map(str::to_string),
            etag,
            source: match origin {
                Origin::Source => cfg.source.describe(),
                Origin::LastGood => cfg
                    .last_good
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string()),
            },
            change,
        });
    }
}

/// What `diff(None, new)` answers (everything in `new` is added), without its hash sets of
/// every range: at start with 100k ranges those cost as much as the rest of the compile.
/// Ranges are counted as a set, as `diff` does, per site (a snapshot lists each site's
/// ranges together); in the unexpected other case the general diff answers.
fn first_load_change(new: &Snapshot) -> SnapshotChange {
    let mut ids: Vec<&str> = new.sites().iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut added_ranges = 0;
    let mut group: Vec<ipnet::IpNet> = Vec::new();
    let mut count_group = |group: &mut Vec<ipnet::IpNet>| {
        group.sort_unstable();
        group.dedup();
        added_ranges += group.len();
        group.clear();
    };
    let mut current = None;
    let mut seen_sites = std::collections::HashSet::new();
    for (net, site) in new.ranges() {
        if current != Some(site) {
            count_group(&mut group);
            if !seen_sites.insert(site) {
                return diff(None, new);
            }
            current = Some(site);
        }
        group.push(net);
    }
    count_group(&mut group);
    let mut exceptions: Vec<_> = new
        .exceptions()
        .iter()
        .map(|e| {
            (
                e.site,
                e.range,
                e.not_before.unix_timestamp_nanos(),
                e.not_after.unix_timestamp_nanos(),
            )
        })
        .collect();
    exceptions.sort_unstable();
    exceptions.dedup();
    let truncated = ids.len() > MAX_SITES;
    SnapshotChange {
        totals: ChangeTotals {
            added_sites: ids.len(),
            added_ranges,
            added_exceptions: exceptions.len(),
            ..ChangeTotals::default()
        },
        added_sites: ids
            .iter()
            .take(MAX_SITES)
            .map(|id| id.to_string())
            .collect(),
        truncated,
        ..SnapshotChange::default()
    }
}

/// Load the last-known-good file, when configured and present. Used at start when the
/// source could not give a valid document.
pub fn load_last_good(gate: &Gate) -> Outcome {
    let started = Instant::now();
    let rt = gate.runtime();
    let cfg = &rt.config.allowlist;
    let Some(path) = &cfg.last_good else {
        return Outcome::err("read_error", "no [allowlist] last_good configured");
    };
    let bytes = match read_last_good(path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Outcome::err(
                "read_error",
                format!("last-known-good {} does not exist yet", path.display()),
            )
        }
        Err(e) => {
            return Outcome::err(
                "read_error",
                format!("last-known-good {}: {e}", path.display()),
            )
        }
    };
    match allowlist::compile(&bytes, &cfg.compile) {
        Ok(s) => {
            tracing::warn!(path = %path.display(), "serving the last-known-good allowlist until the source answers");
            let hash = hash_bytes(&bytes);
            accept(
                gate,
                (&bytes, hash),
                Arc::new(s),
                Origin::LastGood,
                None,
                started,
            );
            Outcome::ok("ok")
        }
        Err(e) => Outcome::err(
            "invalid",
            format!("last-known-good {}: {e}", path.display()),
        ),
    }
}

/// The first load, before the listeners open. A file source is read now; for the admin
/// store only the last-known-good is loaded here (no network before start), and the sync
/// service fetches at once.
pub fn startup(gate: &Gate) {
    let rt = gate.runtime();
    let outcome = match &rt.config.allowlist.source {
        SourceConfig::File(path) => {
            let started = Instant::now();
            let outcome = match std::fs::read(path) {
                Err(e) => Outcome::err(
                    "read_error",
                    format!("allowlist {}: cannot read: {e}", path.display()),
                ),
                Ok(bytes) => {
                    let cfg = &rt.config.allowlist;
                    match judge(gate, &bytes, &cfg.compile, cfg.max_shrink, false, false) {
                        Ok(Judged::Accept(s, hash)) => {
                            accept(gate, (&bytes, hash), s, Origin::Source, None, started);
                            Outcome::ok("ok")
                        }
                        Ok(Judged::Unchanged) => Outcome::ok("not_modified"),
                        Err(o) => o,
                    }
                }
            };
            record_attempt(
                gate,
                Attempt {
                    at: gate.now(),
                    result: outcome.result,
                    trigger: "start",
                    duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                    error: outcome.error.clone(),
                },
            );
            outcome
        }
        SourceConfig::Http { .. } => Outcome::err(
            "read_error",
            "the admin store is fetched once the gate runs",
        ),
    };
    if outcome.error.is_some() && !gate.is_ready() {
        if let Some(e) = &outcome.error {
            tracing::warn!(error = %e, "allowlist source not usable at start");
        }
        let lg = load_last_good(gate);
        if let Some(e) = lg.error {
            tracing::warn!(error = %e, "no last-known-good allowlist either: not ready, answering 503 pages");
        }
    }
}

/// Fetch the document once, without judging or keeping it (`check --fetch`).
pub async fn fetch_once(cfg: &SourceConfig) -> Result<Vec<u8>, String> {
    match build_source(cfg)? {
        Source::File(p) => {
            std::fs::read(&p).map_err(|e| format!("allowlist {}: cannot read: {e}", p.display()))
        }
        Source::Http(mut http) => match http.fetch().await.map_err(|e| e.to_string())? {
            Fetched::Document { body, .. } => Ok(body.to_vec()),
            Fetched::NotModified => Err(format!(
                "{}: answered 304 to an unconditional request",
                cfg.describe()
            )),
        },
    }
}

/// One sync pass over the configured source.
pub struct Syncer {
    gate: Arc<Gate>,
    source: Source,
    source_cfg: SourceConfig,
    compile: CompileOptions,
}

impl Syncer {
    pub fn new(gate: Arc<Gate>) -> Result<Syncer, String> {
        let rt = gate.runtime();
        let cfg = &rt.config.allowlist;
        Ok(Syncer {
            source: build_source(&cfg.source)?,
            source_cfg: cfg.source.clone(),
            compile: cfg.compile,
            gate,
        })
    }

    pub fn is_file(&self) -> Option<&PathBuf> {
        match &self.source {
            Source::File(p) => Some(p),
            Source::Http(_) => None,
        }
    }

    /// After a config reload: rebuild the source when its settings changed. Returns true
    /// when the next attempt must recompile even an unchanged document.
    pub fn reconfigure(&mut self) -> Result<bool, String> {
        let rt = self.gate.runtime();
        let cfg = &rt.config.allowlist;
        let mut recompile = false;
        if cfg.source != self.source_cfg {
            self.source = build_source(&cfg.source)?;
            self.source_cfg = cfg.source.clone();
            recompile = true;
        }
        if cfg.compile != self.compile {
            self.compile = cfg.compile;
            recompile = true;
        }
        Ok(recompile)
    }

    /// Fetch, judge and (when accepted) swap. Always recorded for `/status` and metrics.
    pub async fn attempt(
        &mut self,
        trigger: &'static str,
        force_shrink: bool,
        recompile: bool,
    ) -> Outcome {
        let started = Instant::now();
        let outcome = self.attempt_inner(force_shrink, recompile, started).await;
        match &outcome.error {
            Some(e) => {
                tracing::warn!(trigger, result = outcome.result, error = %e, "allowlist sync: the allowlist in force stays")
            }
            None => tracing::debug!(trigger, result = outcome.result, "allowlist sync"),
        }
        if outcome.result == "not_modified" && self.gate.status().origin == Some(Origin::Source) {
            let now = self.gate.now();
            self.gate.status().last_success = Some(now);
            self.gate
                .metrics
                .allowlist_last_success_timestamp
                .set(now.unix_timestamp() as f64);
        }
        record_attempt(
            &self.gate,
            Attempt {
                at: self.gate.now(),
                result: outcome.result,
                trigger,
                duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                error: outcome.error.clone(),
            },
        );
        outcome
    }

    async fn attempt_inner(
        &mut self,
        force_shrink: bool,
        recompile: bool,
        started: Instant,
    ) -> Outcome {
        let rt = self.gate.runtime();
        let cfg = &rt.config.allowlist;
        let (bytes, etag, last_modified) = match &mut self.source {
            Source::File(path) => match tokio::fs::read(&path).await {
                Ok(b) => (bytes::Bytes::from(b), None, None),
                Err(e) => {
                    return Outcome::err(
                        "read_error",
                        format!("allowlist {}: cannot read: {e}", path.display()),
                    )
                }
            },
            Source::Http(http) => match http.fetch().await {
                Ok(Fetched::NotModified) => {
                    if recompile {
                        // The settings changed but the store says nothing changed: judge
                        // the document in force again from the last-known-good copy.
                        return self.recompile_last_good(started);
                    }
                    return Outcome::ok("not_modified");
                }
                Ok(Fetched::Document {
                    body,
                    etag,
                    last_modified,
                }) => (body, etag, last_modified),
                Err(e) => return Outcome::err(e.result_label(), e),
            },
        };
        let gate = self.gate.clone();
        let opts = self.compile;
        let max_shrink = cfg.max_shrink;
        let judged = {
            let bytes = bytes.clone();
            let g = gate.clone();
            // Compiling 100k ranges takes tens of milliseconds: keep it off the async threads.
            tokio::task::spawn_blocking(move || {
                judge(&g, &bytes, &opts, max_shrink, force_shrink, recompile)
            })
            .await
            .unwrap_or_else(|e| Err(Outcome::err("invalid", format!("compile task failed: {e}"))))
        };
        let accepted = match judged {
            Ok(Judged::Unchanged) => Outcome::ok("not_modified"),
            Ok(Judged::Accept(snapshot, hash)) => {
                accept(
                    &gate,
                    (&bytes, hash),
                    snapshot,
                    Origin::Source,
                    etag.clone(),
                    started,
                );
                Outcome::ok("ok")
            }
            Err(o) => return o,
        };
        // Only now: a refused document's validators are never kept, so it is judged again.
        if let Source::Http(http) = &mut self.source {
            http.accept_validators(etag, last_modified);
        }
        accepted
    }

    fn recompile_last_good(&self, started: Instant) -> Outcome {
        let rt = self.gate.runtime();
        let cfg = &rt.config.allowlist;
        let Some(Ok(Some(bytes))) = cfg.last_good.as_ref().map(|p| read_last_good(p)) else {
            return Outcome::ok("not_modified");
        };
        match judge(
            &self.gate,
            &bytes,
            &self.compile,
            cfg.max_shrink,
            false,
            true,
        ) {
            Ok(Judged::Accept(s, hash)) => {
                let etag = self.gate.status().etag.clone();
                accept(&self.gate, (&bytes, hash), s, Origin::Source, etag, started);
                Outcome::ok("ok")
            }
            Ok(Judged::Unchanged) => Outcome::ok("not_modified"),
            Err(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(doc: &str) -> Snapshot {
        allowlist::compile(doc.as_bytes(), &CompileOptions::default()).expect("valid document")
    }

    #[test]
    fn first_load_change_is_what_diff_says() {
        let docs = [
            allowlist::synth::synthetic_document(2_000, 3),
            r#"{"sites": []}"#.to_string(),
            // Repeated ranges and exceptions count once, as in a set.
            r#"{"sites": [
              {"id": "B", "ranges": ["192.0.2.0/28", "192.0.2.0/28", "2001:db8::/48"]},
              {"id": "A", "ranges": ["198.51.100.7"],
               "exceptions": [
                 {"range": "203.0.113.9", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"},
                 {"range": "203.0.113.9", "not_before": "2026-12-01T07:00:00Z", "not_after": "2026-12-05T16:00:00Z"}]},
              {"id": "C"}
            ]}"#
            .to_string(),
        ];
        for doc in &docs {
            let s = snapshot(doc);
            assert_eq!(first_load_change(&s), diff(None, &s));
        }
    }
}
