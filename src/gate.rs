//! The decision path and the state it reads. Everything a request is decided on — the
//! configuration and pages, the allowlist snapshot, the site-claim keys, the overrides — is
//! one [`Generation`] behind one `ArcSwap`: a request loads it once and decides, routes,
//! proxies and logs on that one value, so a reload in the middle of a request cannot mix
//! two loads. Writers (the sync loop, a config reload, the local-file watcher) build the new
//! part off the hot path and swap in a new generation that shares the unchanged parts.

use crate::allowlist::overrides::Overrides;
use crate::allowlist::Snapshot;
use crate::client_ip::{self, PeerAddr, Resolved, Unresolvable};
use crate::config::Config;
use crate::decision::{self, Binding, Decision, Input, RouteAction, SiteClaim};
use crate::metrics::Metrics;
use crate::page::{PageError, Pages};
use crate::report::WouldBlockReport;
use crate::site_binding::{self, Claim, Missing, Verifier};
use crate::status::{KeysStatus, OverridesStatus, SyncStatus, TlsStatus};
use crate::tls::CertResolver;
use crate::upstream::pool::UpstreamPool;
use arc_swap::ArcSwap;
use pingora_prometheus::prometheus::Registry;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

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

/// One consistent view of everything a request is decided on. Cloning shares the parts.
#[derive(Clone)]
pub struct Generation {
    pub runtime: Arc<Runtime>,
    /// `None` until a valid allowlist was loaded.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The site-claim keys in force (`None` without `[site_binding]`).
    pub keys: Option<Arc<Verifier>>,
    /// The emergency overrides in force (`None` without `[allowlist] overrides`).
    pub overrides: Option<Arc<Overrides>>,
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

/// Where [`Generation::route_for`] sends a request.
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
pub struct Evaluation<'g> {
    pub client: Result<Resolved, Unresolvable>,
    pub decision: Decision,
    /// The site claim as verified; `None` when site binding is not configured.
    pub claim: Option<Claim>,
    /// The generation the decision was made on.
    pub generation: &'g Generation,
}

impl Evaluation<'_> {
    /// The snapshot the decision was made on.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.generation.snapshot.as_deref()
    }

    /// The overrides the decision was made with.
    pub fn overrides(&self) -> Option<&Overrides> {
        self.generation.overrides.as_deref()
    }

    /// Ids of the sites that contain the client address (for `explain` and logs).
    pub fn site_ids(&self) -> Vec<&str> {
        match (&self.client, self.snapshot()) {
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
        let s = self.snapshot()?;
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

impl Generation {
    /// The client address of a request, from its peer and the configured header.
    pub fn resolve_client(
        &self,
        peer: PeerAddr,
        headers: &http::HeaderMap,
    ) -> Result<Resolved, Unresolvable> {
        let cfg = &self.runtime.config.client_ip;
        let lines = headers
            .get_all(cfg.header.header_name())
            .iter()
            .map(|v| v.as_bytes());
        client_ip::resolve(peer, lines, cfg.header, &cfg.trusted)
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
        let config = &self.runtime.config;
        if config.self_check.as_deref() == Some(&*path) {
            return Ok(Routed::SelfCheck);
        }
        let routes = &config.routes;
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

    /// Decide a request whose client address is resolved and whose route is matched: verify
    /// the site claim, then decide. The one code path of the proxy, of `explain` and of the
    /// admin listener's explanation.
    pub fn evaluate(
        &self,
        client: Result<Resolved, Unresolvable>,
        headers: &http::HeaderMap,
        route: &RouteMatch,
        at: OffsetDateTime,
    ) -> Evaluation<'_> {
        let config = &self.runtime.config;
        let (claim, any_site) = match &config.site_binding {
            None => (None, false),
            Some(b) => {
                let claim = match site_binding::extract(headers, &b.0.source) {
                    None => Claim::Missing,
                    Some(token) => match self.keys.as_deref() {
                        Some(keys) => keys.verify(token, at),
                        // Not reachable: the keys are read before the gate is built.
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
            snapshot: self.snapshot.as_deref(),
            overrides: self.overrides.as_deref(),
            trusted: &config.client_ip.trusted,
            at,
            mode: config.policy.mode,
            enforce_from: config.policy.enforce_from,
        });
        Evaluation {
            client,
            decision,
            claim,
            generation: self,
        }
    }
}

pub struct Gate {
    current: ArcSwap<Generation>,
    keys_status: Mutex<KeysStatus>,
    overrides_status: Mutex<OverridesStatus>,
    tls_status: Mutex<TlsStatus>,
    /// The upstream addresses in rotation, asked per request by the proxy.
    pub upstreams: Arc<UpstreamPool>,
    /// The TLS certificates in force, asked per handshake by every TLS listener.
    pub certificates: Arc<CertResolver>,
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
    /// A gate on `runtime`, with no allowlist, keys or overrides in force yet: see
    /// `lifecycle::build_gate`, which reads them before anything is served.
    pub fn new(runtime: Runtime, registry: Registry, clock: Clock) -> Gate {
        let (tx, rx) = mpsc::unbounded_channel();
        let metrics = Metrics::new(registry);
        metrics.set_mode(
            runtime.config.policy.mode,
            runtime.config.policy.enforce_from,
        );
        let upstreams = Arc::new(UpstreamPool::new(&runtime.config.upstream));
        Gate {
            upstreams,
            current: ArcSwap::from_pointee(Generation {
                runtime: Arc::new(runtime),
                snapshot: None,
                keys: None,
                overrides: None,
            }),
            keys_status: Mutex::new(KeysStatus::default()),
            overrides_status: Mutex::new(OverridesStatus::default()),
            tls_status: Mutex::new(TlsStatus::default()),
            certificates: Arc::new(CertResolver::default()),
            local_reload: Mutex::new(()),
            would_block: WouldBlockReport::default(),
            metrics,
            status: Mutex::new(SyncStatus::default()),
            clock,
            commands: tx,
            command_rx: Mutex::new(Some(rx)),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// Everything in force, as one generation: load it once per request.
    pub fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    /// The configuration and pages in force.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.current.load().runtime.clone()
    }

    /// The snapshot in force, if any was ever loaded.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load().snapshot.clone()
    }

    /// The overrides in force.
    pub fn overrides(&self) -> Option<Arc<Overrides>> {
        self.current.load().overrides.clone()
    }

    /// Ready once a valid allowlist is in force.
    pub fn is_ready(&self) -> bool {
        self.current.load().snapshot.is_some()
    }

    /// Put a new generation in force, made from the one in force by `change`: one swap.
    /// Concurrent writers never lose each other's change (`change` may run again).
    pub fn swap(&self, change: impl Fn(&mut Generation)) {
        self.current.rcu(|cur| {
            let mut next = Generation::clone(cur);
            change(&mut next);
            next
        });
    }

    pub fn status(&self) -> MutexGuard<'_, SyncStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn keys_status(&self) -> MutexGuard<'_, KeysStatus> {
        self.keys_status.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn overrides_status(&self) -> MutexGuard<'_, OverridesStatus> {
        self.overrides_status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn tls_status(&self) -> MutexGuard<'_, TlsStatus> {
        self.tls_status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Held while the local files are read and put in force, so reads do not overtake.
    pub fn local_reload_lock(&self) -> MutexGuard<'_, ()> {
        self.local_reload.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Seconds since the snapshot in force was loaded.
    pub fn snapshot_age(&self) -> Option<Duration> {
        self.status().loaded_instant.map(|i| i.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{Reason, Verdict};
    use std::net::IpAddr;
    use std::path::Path;

    const CONFIG: &str = r#"
[upstream]
addrs = ["127.0.0.1:8081"]
[allowlist]
source = "allowlist.json"
"#;

    const DOCUMENT: &str =
        r#"{"version": "v1", "sites": [{"id": "12AB00", "ranges": ["192.0.2.0/28"]}]}"#;

    fn runtime(extra: &str) -> Runtime {
        let text = format!("{CONFIG}{extra}");
        Runtime::new(Config::from_toml(Path::new("gate.toml"), &text).expect("config"))
            .expect("pages")
    }

    fn clock() -> Clock {
        Arc::new(|| time::macros::datetime!(2026-12-01 09:00 UTC))
    }

    /// Route and decide the way the proxy does, all on one generation.
    fn decide(g: &Generation, path: &str) -> (RouteAction, Decision) {
        let peer = PeerAddr(Some("192.0.2.1".parse::<IpAddr>().unwrap()));
        let headers = http::HeaderMap::new();
        let client = g.resolve_client(peer, &headers);
        let Ok(Routed::Route(route)) = g.route_for(None, path) else {
            panic!("{path} is routed");
        };
        let at = time::macros::datetime!(2026-12-01 09:00 UTC);
        (
            route.action,
            g.evaluate(client, &headers, &route, at).decision,
        )
    }

    #[test]
    fn a_request_keeps_its_generation_across_a_config_reload_and_an_allowlist_swap() {
        let bypass = "[[route]]\nname = \"open\"\npath_prefix = \"/open\"\naction = \"bypass\"\n";
        let gate = Gate::new(runtime(bypass), Registry::new(), clock());
        // A request starts: its generation has the bypass route and no allowlist yet.
        let started = gate.current();
        // Mid-request, the config is reloaded (the route is gone) and an allowlist arrives.
        let reloaded = Arc::new(runtime(""));
        gate.swap(|g| g.runtime = reloaded.clone());
        let snapshot = crate::allowlist::compile(
            DOCUMENT.as_bytes(),
            &started.runtime.config.allowlist.compile,
        )
        .expect("document");
        gate.swap(|g| g.snapshot = Some(Arc::new(snapshot.clone())));

        // The request finishes on what it started with: old routes, old (no) allowlist.
        let (action, d) = decide(&started, "/open/x");
        assert_eq!(action, RouteAction::Bypass);
        assert_eq!(d.verdict, Verdict::Bypass);
        assert!(started.snapshot.is_none());
        let (action, d) = decide(&started, "/exam");
        assert_eq!(action, RouteAction::Enforce);
        assert_eq!(d.reason, Reason::NoAllowlist);
        assert!(started
            .runtime
            .config
            .routes
            .iter()
            .any(|r| r.name == "open"));

        // A request starting now sees the new config and the new allowlist together.
        let next = gate.current();
        let (action, d) = decide(&next, "/open/x");
        assert_eq!(action, RouteAction::Enforce);
        assert_eq!((d.verdict, d.reason), (Verdict::Allow, Reason::Registered));
        assert!(next.runtime.config.routes.is_empty());
    }

    #[test]
    fn concurrent_swaps_of_different_parts_are_all_kept() {
        let gate = Arc::new(Gate::new(runtime(""), Registry::new(), clock()));
        let snapshot = Arc::new(
            crate::allowlist::compile(
                DOCUMENT.as_bytes(),
                &gate.runtime().config.allowlist.compile,
            )
            .expect("document"),
        );
        let overrides = Arc::new(Overrides::empty());
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..200 {
                    gate.swap(|g| g.snapshot = Some(snapshot.clone()));
                }
            });
            s.spawn(|| {
                for _ in 0..200 {
                    gate.swap(|g| g.overrides = Some(overrides.clone()));
                }
            });
        });
        let g = gate.current();
        assert!(g.snapshot.is_some() && g.overrides.is_some());
    }
}
