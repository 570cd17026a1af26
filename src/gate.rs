//! The gate's shared state: the runtime configuration and pages behind one `ArcSwap`, the
//! allowlist snapshot behind another, metrics and status, plus the one evaluation path that
//! both the proxy and `explain` use.
//!
//! Readers `load()` per request and never hold a guard across `.await`; writers (the sync
//! loop, a config reload) build the new value off the hot path and swap it in once.

use crate::allowlist::overrides::{compile_overrides, OverrideOptions, Overrides};
use crate::allowlist::Snapshot;
use crate::client_ip::{self, PeerAddr, Resolved, Unresolvable};
use crate::config::Config;
use crate::decision::{self, Binding, Decision, Input, RouteAction, SiteClaim};
use crate::metrics::Metrics;
use crate::page::{PageError, Pages};
use crate::report::WouldBlockReport;
use crate::site_binding::{self, Claim, KeyError, Missing, Verifier};
use arc_swap::{ArcSwap, ArcSwapOption};
use pingora_prometheus::prometheus::Registry;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

/// How many sync attempts `/status` keeps.
const ATTEMPTS: usize = 20;

/// A source of the current time; tests and `explain --at` use a fixed one.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// Configuration and what is derived from it; replaced whole on a config reload.
pub struct Runtime {
    pub config: Config,
    pub pages: Pages,
}

impl Runtime {
    pub fn new(config: Config) -> Result<Runtime, PageError> {
        let pages = Pages::new(&config.block_page)?;
        Ok(Runtime { config, pages })
    }
}

/// Where the snapshot in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    Source,
    LastGood,
}

/// One sync attempt, as `/status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// ok, not_modified, http_error, timeout, invalid, shrink_refused, read_error
    pub result: &'static str,
    pub trigger: &'static str,
    pub duration_ms: f64,
    pub error: Option<String>,
}

/// What `/status` says about the allowlist beyond the snapshot itself.
#[derive(Default)]
pub struct SyncStatus {
    pub origin: Option<Origin>,
    /// Hash of the document in force, so an unchanged document is not swapped again.
    pub accepted_hash: Option<u64>,
    pub etag: Option<String>,
    pub loaded_at: Option<OffsetDateTime>,
    pub loaded_instant: Option<Instant>,
    pub load_duration: Option<Duration>,
    pub last_success: Option<OffsetDateTime>,
    pub last_error: Option<Attempt>,
    /// An update held back by the shrink guard, waiting for an operator.
    pub shrink_refused: Option<String>,
    pub attempts: VecDeque<Attempt>,
    pub history: crate::sync::history::History,
    /// Config changes that only take effect after a restart.
    pub restart_required: Vec<String>,
    pub last_config_reload: Option<serde_json::Value>,
}

/// A request to the sync loop, from the admin listener or a signal.
#[derive(Debug)]
pub enum Command {
    /// Re-read the config file and the allowlist source now.
    Reload {
        force_shrink: bool,
        trigger: &'static str,
        reply: Option<oneshot::Sender<serde_json::Value>>,
    },
}

/// Why the gate cannot be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Page(#[from] PageError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{0}")]
    Overrides(String),
}

/// Where [`Gate::route_for`] sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    /// The self-check page, answered by the gate itself.
    SelfCheck,
    Route(RouteMatch),
}

/// The route a request falls under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub action: RouteAction,
    /// The matched `[[route]]`'s name; `None` for the default (enforce) route.
    pub name: Option<String>,
    /// The route's own `missing`, when it sets one.
    pub missing: Option<Missing>,
}

impl RouteMatch {
    /// The route of a request no `[[route]]` matches.
    pub fn default_route() -> RouteMatch {
        RouteMatch {
            action: RouteAction::Enforce,
            name: None,
            missing: None,
        }
    }
}

/// The result of evaluating one request.
pub struct Evaluation {
    pub client: Result<Resolved, Unresolvable>,
    pub decision: Decision,
    /// The site claim as verified; `None` when site binding is not configured.
    pub claim: Option<Claim>,
    /// The snapshot the decision was made on; the request finishes on it.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The overrides the decision was made with.
    pub overrides: Option<Arc<Overrides>>,
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

    /// The verified site of the claim, if the request carries a valid one.
    pub fn claimed_site(&self) -> Option<&str> {
        self.claim.as_ref()?.site()
    }

    /// The school a request belongs to, for the "would be blocked" report: the claimed site,
    /// else the site whose location passed, else the first site containing the address.
    pub fn school(&self) -> Option<&str> {
        self.claimed_site()
            .or_else(|| self.site_id())
            .or_else(|| self.site_ids().first().copied())
    }
}

/// A moment for `/status`, in RFC 3339.
fn rfc3339(t: Option<OffsetDateTime>) -> Option<String> {
    t?.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The largest overrides file read: it is a short emergency list, not a second allowlist.
const MAX_OVERRIDES_BYTES: u64 = 1024 * 1024;

/// How `/status` and the audit log name keys: the `kid`, else `key[i]` and the algorithm.
fn key_names(cfg: &crate::site_binding::SiteBindingConfig) -> Vec<String> {
    cfg.keys
        .iter()
        .enumerate()
        .map(|(i, k)| match &k.kid {
            Some(kid) => format!("{kid} ({})", k.alg.as_str()),
            None => format!("key[{i}] ({})", k.alg.as_str()),
        })
        .collect()
}

/// Read a whole file, refusing one larger than `max` bytes.
fn read_bounded(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "larger than {max} bytes; an overrides file is a short emergency list"
        )));
    }
    Ok(bytes)
}

/// What `/status` says about the site-claim keys in force.
#[derive(Default)]
pub struct KeysStatus {
    /// The `kid`s (or key positions) of the keys in force.
    pub in_force: Vec<String>,
    pub loaded_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
}

/// What `/status` says about the local overrides file.
#[derive(Default)]
pub struct OverridesStatus {
    pub loaded_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
}

pub struct Gate {
    runtime: ArcSwap<Runtime>,
    allowlist: ArcSwapOption<Snapshot>,
    /// The site-claim keys in force (`None` without `[site_binding]`).
    keys: ArcSwapOption<Verifier>,
    /// The emergency overrides in force (`None` without `[allowlist] overrides`).
    overrides: ArcSwapOption<Overrides>,
    overrides_status: Mutex<OverridesStatus>,
    keys_status: Mutex<KeysStatus>,
    /// Serialises re-reading the local files (the file watcher and a config reload may both
    /// ask), so an older read is never stored after a newer one.
    local_reload: Mutex<()>,
    /// Requests let through in report-only that enforcement would block, by school.
    pub would_block: WouldBlockReport,
    pub metrics: Metrics,
    status: Mutex<SyncStatus>,
    clock: Clock,
    commands: mpsc::UnboundedSender<Command>,
    command_rx: Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
}

impl Gate {
    /// Build the gate: pages, the site-claim keys and the overrides file are read now, and
    /// any of them being unusable is an error (the gate never starts without what its
    /// configuration asks for).
    pub fn new(config: Config, registry: Registry, clock: Clock) -> Result<Gate, GateError> {
        let runtime = Runtime::new(config)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = Metrics::new(registry);
        metrics.set_mode(
            runtime.config.policy.mode,
            runtime.config.policy.enforce_from,
        );
        let gate = Gate {
            runtime: ArcSwap::from_pointee(runtime),
            allowlist: ArcSwapOption::empty(),
            keys: ArcSwapOption::empty(),
            overrides: ArcSwapOption::empty(),
            overrides_status: Mutex::new(OverridesStatus::default()),
            keys_status: Mutex::new(KeysStatus::default()),
            local_reload: Mutex::new(()),
            would_block: WouldBlockReport::default(),
            metrics,
            status: Mutex::new(SyncStatus::default()),
            clock,
            commands: tx,
            command_rx: Mutex::new(Some(rx)),
        };
        gate.reload_keys()?;
        gate.reload_overrides().map_err(GateError::Overrides)?;
        Ok(gate)
    }

    /// Read the overrides file named by the configuration and put it in force. On any error
    /// the overrides in force stay (the last good file), and the error is returned, logged
    /// and shown in `/status`.
    pub fn reload_overrides(&self) -> Result<(), String> {
        let _one_at_a_time = self.local_reload.lock().unwrap_or_else(|p| p.into_inner());
        let rt = self.runtime();
        let cfg = &rt.config.allowlist;
        let Some(path) = cfg.overrides.as_ref() else {
            self.overrides.store(None);
            self.metrics.overrides_active.set(0);
            return Ok(());
        };
        let now = self.now();
        let result = read_bounded(path, MAX_OVERRIDES_BYTES)
            .map_err(|e| {
                format!(
                    "allowlist.overrides {:?}: cannot read: {e}",
                    path.display().to_string()
                )
            })
            .and_then(|bytes| {
                let opts = OverrideOptions {
                    max_days: cfg.max_override_days,
                    compile: cfg.compile,
                };
                compile_overrides(&bytes, &opts, now).map_err(|e| {
                    format!("allowlist.overrides {:?}: {e}", path.display().to_string())
                })
            });
        let mut st = self
            .overrides_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(o) => {
                for q in o.quarantined() {
                    tracing::warn!(file = %path.display(), entry = %q, "override entry skipped");
                }
                tracing::warn!(
                    target: "poortwachter::audit",
                    file = %path.display(),
                    entries = o.entries().len(),
                    active = o.active_count(now),
                    skipped = o.quarantined().len(),
                    "overrides in force"
                );
                self.metrics
                    .overrides_active
                    .set(o.active_count(now) as i64);
                self.metrics
                    .overrides_loads
                    .with_label_values(&["ok"])
                    .inc();
                self.overrides.store(Some(Arc::new(o)));
                st.loaded_at = Some(now);
                st.last_error = None;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "overrides file refused; the previous overrides stay in force");
                self.metrics
                    .overrides_loads
                    .with_label_values(&["error"])
                    .inc();
                st.last_error = Some(e.clone());
                st.last_error_at = Some(now);
                Err(e)
            }
        }
    }

    /// Read the site-claim keys named by the configuration and put them in force; on error
    /// the keys in force stay.
    pub fn reload_keys(&self) -> Result<(), KeyError> {
        let _one_at_a_time = self.local_reload.lock().unwrap_or_else(|p| p.into_inner());
        let rt = self.runtime();
        let mut st = self.keys_status.lock().unwrap_or_else(|p| p.into_inner());
        let Some(b) = &rt.config.site_binding else {
            self.keys.store(None);
            *st = KeysStatus::default();
            return Ok(());
        };
        let now = self.now();
        match Verifier::load(&b.0) {
            Ok(v) => {
                self.keys.store(Some(Arc::new(v)));
                self.metrics.key_reloads.with_label_values(&["ok"]).inc();
                st.in_force = key_names(&b.0);
                st.loaded_at = Some(now);
                st.last_error = None;
                tracing::warn!(
                    target: "poortwachter::audit",
                    keys = ?st.in_force,
                    "site-claim keys in force"
                );
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "site-claim keys refused; the previous keys stay in force");
                self.metrics.key_reloads.with_label_values(&["error"]).inc();
                st.last_error = Some(e.to_string());
                st.last_error_at = Some(now);
                Err(e)
            }
        }
    }

    /// The overrides in force.
    pub fn overrides(&self) -> Option<Arc<Overrides>> {
        self.overrides.load_full()
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The configuration and pages in force. Do not hold across `.await`.
    pub fn runtime(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.runtime.load()
    }

    /// The configuration in force, as an owned handle.
    pub fn config(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// Put a new configuration in force (one swap).
    pub fn set_runtime(&self, runtime: Runtime) {
        let policy = runtime.config.policy;
        self.metrics.set_mode(policy.mode, policy.enforce_from);
        self.runtime.store(Arc::new(runtime));
    }

    /// The snapshot in force, if any was ever loaded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.allowlist.load_full()
    }

    /// Ready once a valid allowlist is in force.
    pub fn is_ready(&self) -> bool {
        self.allowlist.load().is_some()
    }

    pub fn status(&self) -> MutexGuard<'_, SyncStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask the sync loop to do something; false when no sync loop runs (e.g. `explain`).
    pub fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// The receiving end of [`Gate::send`], taken once by the sync loop.
    pub fn take_commands(&self) -> Option<mpsc::UnboundedReceiver<Command>> {
        self.command_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Put a compiled snapshot in force with one atomic swap, and update metrics and status.
    pub fn install(
        &self,
        snapshot: Arc<Snapshot>,
        origin: Origin,
        etag: Option<String>,
        took: Duration,
    ) {
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
        m.allowlist_load_seconds.set(took.as_secs_f64());
        let now = self.now();
        m.allowlist_loaded_timestamp
            .set(now.unix_timestamp() as f64);
        m.allowlist_from_last_good
            .set(i64::from(origin == Origin::LastGood));
        m.allowlist_info.reset();
        m.allowlist_info
            .with_label_values(&[
                snapshot.version().unwrap_or(""),
                &self.runtime().config.allowlist.source.describe(),
            ])
            .set(1);
        m.allowlist_loaded.set(1);
        self.allowlist.store(Some(snapshot.clone()));
        tracing::info!(
            version = snapshot.version().unwrap_or(""),
            origin = ?origin,
            ranges = snapshot.range_count(),
            sites = snapshot.site_count(),
            quarantined = snapshot.quarantined().len(),
            took_ms = took.as_secs_f64() * 1000.0,
            "allowlist in force"
        );
        let mut st = self.status();
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
    pub fn record_attempt(&self, attempt: Attempt) {
        self.metrics
            .allowlist_syncs
            .with_label_values(&[attempt.result])
            .inc();
        self.metrics
            .allowlist_sync_duration
            .observe(attempt.duration_ms / 1000.0);
        let mut st = self.status();
        if attempt.error.is_some() {
            st.last_error = Some(attempt.clone());
        }
        st.attempts.push_front(attempt);
        st.attempts.truncate(ATTEMPTS);
    }

    /// Where a request goes: the self-check page (matched before any route), or a route's
    /// action and, when a `[[route]]` matched, its name. `Err` when the path must be refused
    /// (400) instead of matched. The path is normalised once, here: the one routing path of
    /// the proxy and of `explain`.
    pub fn route_for(
        &self,
        raw_host: Option<&str>,
        raw_path: &str,
    ) -> Result<Routed, crate::route::PathError> {
        let path = crate::route::normalise(raw_path)?;
        let rt = self.runtime.load();
        if rt.config.self_check.as_deref() == Some(&*path) {
            return Ok(Routed::SelfCheck);
        }
        let routes = &rt.config.routes;
        let host = if routes.iter().any(|r| r.host.is_some()) {
            raw_host.map(crate::route::normalise_host)
        } else {
            None
        };
        Ok(Routed::Route(
            match crate::route::find(routes, host.as_deref(), &path) {
                Some(r) => RouteMatch {
                    action: r.action,
                    name: Some(r.name.clone()),
                    missing: r.missing,
                },
                None => RouteMatch::default_route(),
            },
        ))
    }

    /// Evaluate a request: resolve the client IP, verify the site claim, then decide. The
    /// one code path of the proxy, of `explain` and of the admin listener's explanation.
    pub fn evaluate(
        &self,
        peer: PeerAddr,
        headers: &http::HeaderMap,
        route: &RouteMatch,
        at: OffsetDateTime,
    ) -> Evaluation {
        let rt = self.runtime.load();
        let cfg = &rt.config.client_ip;
        let lines = headers
            .get_all(cfg.header.header_name())
            .iter()
            .map(|v| v.as_bytes());
        let client = client_ip::resolve(peer, lines, cfg.header, &cfg.trusted);
        let snapshot = self.allowlist.load_full();
        let overrides = self.overrides.load_full();
        let (claim, any_site) = match &rt.config.site_binding {
            None => (None, false),
            Some(b) => {
                let claim = match site_binding::extract(headers, &b.0.source) {
                    None => Claim::Missing,
                    Some(token) => match self.keys.load().as_deref() {
                        Some(keys) => keys.verify(token, at),
                        // Not reachable: the keys are read when the gate is built.
                        None => Claim::Invalid(site_binding::InvalidClaim::UnknownKid),
                    },
                };
                let missing = route.missing.unwrap_or(b.0.missing);
                (Some(claim), missing == Missing::AnySite)
            }
        };
        let site_claim = match &claim {
            None => SiteClaim::Unbound,
            Some(Claim::Missing) => SiteClaim::Missing,
            Some(Claim::Valid { site }) => SiteClaim::Valid(site),
            Some(Claim::Expired) => SiteClaim::Expired,
            Some(Claim::Invalid(_)) => SiteClaim::Invalid,
        };
        let decision = decision::decide(Input {
            client: client.as_ref(),
            route: route.action,
            binding: Binding::of(site_claim, any_site),
            snapshot: snapshot.as_deref(),
            overrides: overrides.as_deref(),
            trusted: &cfg.trusted,
            at,
            mode: rt.config.policy.mode,
            enforce_from: rt.config.policy.enforce_from,
        });
        Evaluation {
            client,
            decision,
            claim,
            snapshot,
            overrides,
        }
    }

    /// Seconds since the snapshot in force was loaded.
    pub fn snapshot_age(&self) -> Option<Duration> {
        self.status().loaded_instant.map(|i| i.elapsed())
    }

    /// The overrides part of `/status`: the file, every entry and whether it counts now.
    fn overrides_json(&self) -> serde_json::Value {
        let rt = self.runtime();
        let Some(path) = &rt.config.allowlist.overrides else {
            return serde_json::Value::Null;
        };
        let st = self
            .overrides_status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = self.now();
        let mut doc = self
            .overrides()
            .map(|o| o.status_json(now))
            .unwrap_or(serde_json::Value::Null);
        if !doc.is_object() {
            doc = serde_json::json!({});
        }
        doc["file"] = path.display().to_string().into();
        doc["loaded_at"] = rfc3339(st.loaded_at).into();
        doc["last_error"] = st.last_error.clone().into();
        doc["last_error_at"] = rfc3339(st.last_error_at).into();
        doc
    }

    /// The `/status` document.
    pub fn status_json(&self) -> serde_json::Value {
        let snapshot = self.snapshot();
        let rt = self.runtime();
        let st = self.status();
        let cfg = &rt.config.allowlist;
        serde_json::json!({
            "ready": snapshot.is_some(),
            "mode": rt.config.policy.mode.as_str(),
            "allowlist": {
                "source": cfg.source.describe(),
                "serving_from": st.origin,
                "last_good": cfg.last_good.as_ref().map(|p| p.display().to_string()),
                "version": snapshot.as_ref().and_then(|s| s.version().map(str::to_string)),
                "etag": st.etag,
                "loaded_at": rfc3339(st.loaded_at),
                "age_seconds": st.loaded_instant.map(|i| i.elapsed().as_secs()),
                "load_duration_ms": st.load_duration.map(|d| d.as_secs_f64() * 1000.0),
                "last_success": rfc3339(st.last_success),
                "ranges": snapshot.as_ref().map(|s| s.range_count()),
                "sites": snapshot.as_ref().map(|s| s.site_count()),
                "exceptions": snapshot.as_ref().map(|s| s.exception_count()),
                "quarantined": snapshot.as_ref().map(|s| s.quarantined().to_vec()).unwrap_or_default(),
                "unknown_fields": snapshot.as_ref().map(|s| s.unknown_fields().iter()
                    .map(|(k, n)| serde_json::json!({"field": k, "count": n})).collect::<Vec<_>>()),
                "last_result": st.attempts.front(),
                "last_error": st.last_error,
                "shrink_refused": st.shrink_refused,
                "recent_attempts": st.attempts,
                "recent_changes": st.history,
            },
            "overrides": self.overrides_json(),
            "site_binding": rt.config.site_binding.as_ref().map(|b| {
                let keys = self.keys_status.lock().unwrap_or_else(|p| p.into_inner());
                serde_json::json!({
                    "claim": b.0.claim,
                    "missing": b.0.missing.as_str(),
                    "configured_keys": b.0.keys.iter().map(|k| serde_json::json!({
                        "kid": k.kid, "alg": k.alg.as_str(), "file": k.file.path().display().to_string(),
                    })).collect::<Vec<_>>(),
                    "keys_in_force": keys.in_force,
                    "keys_loaded_at": rfc3339(keys.loaded_at),
                    "last_error": keys.last_error,
                    "last_error_at": rfc3339(keys.last_error_at),
                })
            }),
            "config": {
                "file": rt.config.path.display().to_string(),
                "restart_required": st.restart_required,
                "last_reload": st.last_config_reload,
            },
        })
    }
}
