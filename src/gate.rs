//! The gate's shared state: configuration, the allowlist snapshot behind one `ArcSwap`,
//! metrics and pages, plus the one evaluation path that both the proxy and `explain` use.

use crate::allowlist::{self, DocumentError, Snapshot};
use crate::client_ip::{self, PeerAddr, Resolved, Unresolvable};
use crate::config::Config;
use crate::decision::{self, Decision, Input, RouteAction};
use crate::metrics::Metrics;
use crate::page::{PageError, Pages};
use arc_swap::ArcSwapOption;
use pingora_prometheus::prometheus::Registry;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How many load events `/status` keeps.
const HISTORY: usize = 20;

/// Why an allowlist could not be loaded. The last good one stays in force.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("allowlist {path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("allowlist {path}: rejected: {source}")]
    Document { path: String, source: DocumentError },
}

impl LoadError {
    fn result_label(&self) -> &'static str {
        match self {
            LoadError::Read { .. } => "read_error",
            LoadError::Document { .. } => "invalid",
        }
    }
}

/// A source of the current time; tests and `explain --at` use a fixed one.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// One load attempt, as `/status` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadEvent {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub result: &'static str,
    pub version: Option<String>,
    pub ranges: Option<usize>,
    pub sites: Option<usize>,
    pub quarantined: Option<usize>,
    pub error: Option<String>,
}

#[derive(Default)]
struct AllowlistStatus {
    loaded_at: Option<OffsetDateTime>,
    loaded_instant: Option<Instant>,
    load_duration: Option<Duration>,
    last_result: Option<LoadEvent>,
    history: VecDeque<LoadEvent>,
}

/// The result of evaluating one request.
pub struct Evaluation {
    pub client: Result<Resolved, Unresolvable>,
    pub decision: Decision,
    /// The snapshot the decision was made on; the request finishes on it.
    pub snapshot: Option<Arc<Snapshot>>,
}

impl Evaluation {
    /// Ids of the sites that contain the client address (for `explain` and logs).
    pub fn site_ids(&self) -> Vec<&str> {
        match (&self.client, &self.snapshot) {
            (Ok(r), Some(s)) => s
                .sites_for(r.ip.addr())
                .iter()
                .filter_map(|i| s.sites().get(*i as usize))
                .map(|site| site.id.as_str())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The id of the site that made the check pass.
    pub fn site_id(&self) -> Option<&str> {
        let s = self.snapshot.as_ref()?;
        let idx = self.decision.site?;
        s.sites().get(idx as usize).map(|site| site.id.as_str())
    }
}

pub struct Gate {
    pub config: Arc<Config>,
    allowlist: ArcSwapOption<Snapshot>,
    pub metrics: Metrics,
    pub pages: Pages,
    status: Mutex<AllowlistStatus>,
    clock: Clock,
}

impl Gate {
    pub fn new(config: Config, registry: Registry, clock: Clock) -> Result<Gate, PageError> {
        let pages = Pages::new(&config.block_page)?;
        Ok(Gate {
            config: Arc::new(config),
            allowlist: ArcSwapOption::empty(),
            metrics: Metrics::new(registry),
            pages,
            status: Mutex::new(AllowlistStatus::default()),
            clock,
        })
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The snapshot in force, if any was ever loaded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.allowlist.load_full()
    }

    /// Ready once a valid allowlist is in force.
    pub fn is_ready(&self) -> bool {
        self.allowlist.load().is_some()
    }

    pub fn source(&self) -> &PathBuf {
        &self.config.allowlist.source
    }

    /// Read, compile and install the allowlist from the configured file. On any error the
    /// snapshot in force stays, and the error is recorded for `/status` and metrics.
    pub fn load_allowlist(&self) -> Result<Arc<Snapshot>, LoadError> {
        let started = Instant::now();
        let path = self.config.allowlist.source.display().to_string();
        let result = std::fs::read(&self.config.allowlist.source)
            .map_err(|source| LoadError::Read {
                path: path.clone(),
                source,
            })
            .and_then(|bytes| {
                allowlist::compile(&bytes, &self.config.allowlist.compile).map_err(|source| {
                    LoadError::Document {
                        path: path.clone(),
                        source,
                    }
                })
            });
        match result {
            Ok(snapshot) => Ok(self.install(snapshot, started.elapsed())),
            Err(e) => {
                self.metrics
                    .allowlist_loads
                    .with_label_values(&[e.result_label()])
                    .inc();
                tracing::error!(error = %e, "allowlist not loaded; the last good one stays in force");
                self.record(LoadEvent {
                    at: self.now(),
                    result: e.result_label(),
                    version: None,
                    ranges: None,
                    sites: None,
                    quarantined: None,
                    error: Some(e.to_string()),
                });
                Err(e)
            }
        }
    }

    /// Put a compiled snapshot in force with one atomic swap.
    pub fn install(&self, snapshot: Snapshot, took: Duration) -> Arc<Snapshot> {
        let snapshot = Arc::new(snapshot);
        for q in snapshot.quarantined() {
            tracing::warn!(entry = %q, "allowlist entry quarantined");
        }
        let m = &self.metrics;
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
        m.allowlist_loads.with_label_values(&["ok"]).inc();
        m.allowlist_load_seconds.set(took.as_secs_f64());
        m.allowlist_loaded_timestamp
            .set(OffsetDateTime::now_utc().unix_timestamp() as f64);
        m.allowlist_info.reset();
        m.allowlist_info
            .with_label_values(&[
                snapshot.version().unwrap_or(""),
                &self.config.allowlist.source.display().to_string(),
            ])
            .set(1);
        m.allowlist_loaded.set(1);
        self.allowlist.store(Some(snapshot.clone()));
        tracing::info!(
            version = snapshot.version().unwrap_or(""),
            ranges = snapshot.range_count(),
            sites = snapshot.site_count(),
            quarantined = snapshot.quarantined().len(),
            took_ms = took.as_secs_f64() * 1000.0,
            "allowlist in force"
        );
        let now = self.now();
        {
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.loaded_at = Some(now);
            st.loaded_instant = Some(Instant::now());
            st.load_duration = Some(took);
        }
        self.record(LoadEvent {
            at: now,
            result: "ok",
            version: snapshot.version().map(str::to_string),
            ranges: Some(snapshot.range_count()),
            sites: Some(snapshot.site_count()),
            quarantined: Some(snapshot.quarantined().len()),
            error: None,
        });
        snapshot
    }

    fn record(&self, event: LoadEvent) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.last_result = Some(event.clone());
        st.history.push_front(event);
        st.history.truncate(HISTORY);
    }

    /// Evaluate a request: resolve the client IP, then decide. The one code path of the
    /// proxy and of `explain`.
    pub fn evaluate<'a, I>(
        &self,
        peer: PeerAddr,
        field_lines: I,
        route: RouteAction,
        at: OffsetDateTime,
    ) -> Evaluation
    where
        I: DoubleEndedIterator<Item = &'a [u8]>,
    {
        let cfg = &self.config.client_ip;
        let client = client_ip::resolve(peer, field_lines, cfg.header, &cfg.trusted);
        let snapshot = self.allowlist.load_full();
        let decision = decision::decide(Input {
            client: client.as_ref(),
            route,
            snapshot: snapshot.as_deref(),
            trusted: &cfg.trusted,
            at,
            mode: self.config.policy.mode,
        });
        Evaluation {
            client,
            decision,
            snapshot,
        }
    }

    /// The `/status` document.
    pub fn status_json(&self) -> serde_json::Value {
        let snapshot = self.snapshot();
        let st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        let quarantined: Vec<serde_json::Value> = snapshot
            .as_ref()
            .map(|s| {
                s.quarantined()
                    .iter()
                    .map(|q| {
                        serde_json::json!({
                            "site": q.site, "field": q.field, "value": q.value,
                            "problem": q.problem,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({
            "ready": snapshot.is_some(),
            "mode": self.config.policy.mode.as_str(),
            "allowlist": {
                "source": self.config.allowlist.source.display().to_string(),
                "version": snapshot.as_ref().and_then(|s| s.version().map(str::to_string)),
                "loaded_at": st.loaded_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
                "age_seconds": st.loaded_instant.map(|i| i.elapsed().as_secs()),
                "load_duration_ms": st.load_duration.map(|d| d.as_secs_f64() * 1000.0),
                "ranges": snapshot.as_ref().map(|s| s.range_count()),
                "sites": snapshot.as_ref().map(|s| s.site_count()),
                "exceptions": snapshot.as_ref().map(|s| s.exception_count()),
                "quarantined": quarantined,
                "unknown_fields": snapshot.as_ref().map(|s| s.unknown_fields().iter().map(|(k, n)| serde_json::json!({"field": k, "count": n})).collect::<Vec<_>>()),
                "last_result": st.last_result,
                "history": st.history,
            },
        })
    }
}
