//! The upstream pool: the addresses of `[upstream]` as pingora-load-balancing backends,
//! chosen round robin. Host names are resolved again every `resolve_interval` (a name that
//! does not resolve keeps its last addresses); the active HTTP health check takes failing
//! addresses out and brings them back; an address that failed a request is disabled for
//! `fail_timeout` (passive ejection). The proxy asks for a backend per request and a
//! background service keeps the pool current.

use super::{tls_identity, HealthCheckConfig, UpstreamAddr, UpstreamConfig, UpstreamTls};
use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::discovery::ServiceDiscovery;
use pingora::lb::health_check::{HealthObserve, HttpHealthCheck};
use pingora::lb::selection::RoundRobin;
use pingora::lb::{Backend, Backends, LoadBalancer};
use pingora::prelude::HttpPeer;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The host name an address was resolved from, kept on its backend (for SNI).
#[derive(Debug, Clone)]
struct HostName(Arc<str>);

/// What one resolution round found: the backends, and the names that did not resolve.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resolution {
    pub addrs: BTreeSet<(SocketAddr, Option<String>)>,
    /// Names that did not resolve now, with the error; their last addresses are kept.
    pub failed: Vec<(String, String)>,
}

/// The backends for `targets` given this round's lookups (`host` → addresses, or the error)
/// and the addresses each name had last time (updated for the names that resolved).
pub fn resolve_round(
    targets: &[UpstreamAddr],
    lookups: &HashMap<String, Result<Vec<SocketAddr>, String>>,
    last: &mut HashMap<String, Vec<SocketAddr>>,
) -> Resolution {
    let mut out = Resolution::default();
    for t in targets {
        match t {
            UpstreamAddr::Ip(a) => {
                out.addrs.insert((*a, None));
            }
            UpstreamAddr::Name { host, port } => {
                let addrs = match lookups.get(host) {
                    Some(Ok(found)) if !found.is_empty() => {
                        last.insert(host.clone(), found.clone());
                        found.clone()
                    }
                    other => {
                        let why = match other {
                            Some(Err(e)) => e.clone(),
                            _ => "no addresses".to_string(),
                        };
                        out.failed.push((format!("{host}:{port}"), why));
                        last.get(host).cloned().unwrap_or_default()
                    }
                };
                for a in addrs {
                    out.addrs
                        .insert((SocketAddr::new(a.ip(), *port), Some(host.clone())));
                }
            }
        }
    }
    out
}

/// How long one name's lookup may take (a stalled resolver must not stall the pool).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The discovery behind the load balancer: the configured addresses, names resolved.
struct Discovery {
    targets: Arc<ArcSwap<Vec<UpstreamAddr>>>,
    last: Mutex<HashMap<String, Vec<SocketAddr>>>,
}

#[async_trait]
impl ServiceDiscovery for Discovery {
    async fn discover(&self) -> pingora::Result<(BTreeSet<Backend>, HashMap<u64, bool>)> {
        let targets = self.targets.load_full();
        let mut lookups = HashMap::new();
        for t in targets.iter() {
            if let UpstreamAddr::Name { host, port } = t {
                if lookups.contains_key(host) {
                    continue;
                }
                let lookup = tokio::net::lookup_host((host.as_str(), *port));
                let found = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
                    Ok(Ok(a)) => Ok(a.collect::<Vec<_>>()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {LOOKUP_TIMEOUT:?}")),
                };
                lookups.insert(host.clone(), found);
            }
        }
        let round = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            resolve_round(&targets, &lookups, &mut last)
        };
        for (name, error) in &round.failed {
            tracing::warn!(upstream = %name, error = %error, "upstream name does not resolve; its last addresses stay in use");
        }
        let backends = round
            .addrs
            .into_iter()
            .map(|(addr, host)| backend(addr, host.map(|h| HostName(h.into()))))
            .collect();
        Ok((backends, HashMap::new()))
    }
}

fn backend(addr: SocketAddr, host: Option<HostName>) -> Backend {
    let mut b = Backend {
        addr: pingora::protocols::l4::socket::SocketAddr::Inet(addr),
        weight: 1,
        ext: Default::default(),
    };
    if let Some(h) = host {
        b.ext.insert(h);
    }
    b
}

/// The IP address and port of a backend (every backend here has one).
pub fn inet(b: &Backend) -> Option<SocketAddr> {
    b.addr.as_inet().copied()
}

/// Logs the health check's verdicts as they change.
struct HealthLog;

#[async_trait]
impl HealthObserve for HealthLog {
    async fn observe(&self, target: &Backend, healthy: bool) {
        if healthy {
            tracing::warn!(upstream = %target.addr, "upstream passes its health check again: back in rotation");
        } else {
            tracing::error!(upstream = %target.addr, "upstream fails its health check: out of rotation");
        }
    }
}

/// The upstream pool.
pub struct UpstreamPool {
    lb: LoadBalancer<RoundRobin>,
    targets: Arc<ArcSwap<Vec<UpstreamAddr>>>,
    /// Addresses disabled after a failed request, until then.
    ejected: Mutex<HashMap<SocketAddr, Instant>>,
    /// Whether any resolution round has run.
    resolved: AtomicBool,
    /// The configured addresses changed (a reload): resolve at once.
    changed: AtomicBool,
    /// The health check settings the pool was built with (fixed until a restart).
    pub health_check: Option<HealthCheckConfig>,
    /// HTTPS to the upstream as the pool was built (fixed until a restart, as the health
    /// check and the connector's trust store are).
    tls: Option<UpstreamTls>,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool")
            .field("targets", &self.targets.load())
            .finish()
    }
}

impl UpstreamPool {
    /// The pool for `up`; addresses given as IPs are in it at once, names after the first
    /// resolution ([`Self::refresh`]).
    pub fn new(up: &UpstreamConfig) -> UpstreamPool {
        let targets = Arc::new(ArcSwap::from_pointee(up.addrs.clone()));
        let discovery = Discovery {
            targets: targets.clone(),
            last: Mutex::new(HashMap::new()),
        };
        let mut lb = LoadBalancer::from_backends(Backends::new(Box::new(discovery)));
        if let Some(hc) = &up.health_check {
            lb.set_health_check(health_check(hc, up));
        }
        let pool = UpstreamPool {
            lb,
            targets,
            ejected: Mutex::new(HashMap::new()),
            resolved: AtomicBool::new(false),
            changed: AtomicBool::new(false),
            health_check: up.health_check.clone(),
            tls: up.tls.clone(),
        };
        pool.refresh_now();
        pool
    }

    /// Take the addresses of a new configuration: IPs at once, names at the service's next
    /// look (a quarter of a second). Refused while the configuration's HTTPS settings differ
    /// from the pool's (they need a restart): the new addresses might be reached the wrong
    /// way, in plain text among them.
    pub fn set_targets(&self, addrs: &[UpstreamAddr], tls: Option<&UpstreamTls>) {
        if tls_identity(tls) != tls_identity(self.tls.as_ref()) {
            if **self.targets.load() != addrs {
                tracing::warn!(
                    "upstream.addrs not changed: upstream.tls changed as well and needs a restart"
                );
            }
            return;
        }
        if **self.targets.load() != addrs {
            self.targets.store(Arc::new(addrs.to_vec()));
            self.changed.store(true, Ordering::Release);
            self.refresh_now();
        }
    }

    /// HTTPS to the upstream as in force (from the start).
    pub fn tls(&self) -> Option<&UpstreamTls> {
        self.tls.as_ref()
    }

    /// Whether the addresses changed since the last call (names to resolve now).
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::AcqRel)
    }

    /// A resolution round without waiting: complete when there are no names to look up.
    fn refresh_now(&self) {
        let names = self
            .targets
            .load()
            .iter()
            .any(|t| matches!(t, UpstreamAddr::Name { .. }));
        if !names {
            // Discovery of IP addresses never waits, so one poll completes it.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let update = std::pin::pin!(self.lb.update());
            if let std::task::Poll::Ready(Ok(())) = update.poll(&mut cx) {
                self.resolved.store(true, Ordering::Release);
            }
        }
    }

    /// Resolve the names again and rebuild the rotation when the addresses changed.
    pub async fn refresh(&self) {
        if let Err(e) = self.lb.update().await {
            tracing::warn!(error = %e, "upstream addresses not updated");
        } else {
            self.resolved.store(true, Ordering::Release);
        }
    }

    /// Whether a resolution round has run (names resolved at least once).
    pub fn resolved(&self) -> bool {
        self.resolved.load(Ordering::Acquire)
    }

    /// One health check of every address.
    pub async fn check_health(&self) {
        self.lb.backends().run_health_check(true).await;
    }

    /// The next address round robin that is ready (healthy, not ejected) and not in
    /// `tried`; when none is ready, the next one not tried at all: a health check that is
    /// wrong must not take the whole test environment away.
    pub fn select(&self, tried: &[SocketAddr]) -> Option<Backend> {
        let untried = |b: &Backend| inet(b).is_some_and(|a| !tried.contains(&a));
        self.lb
            .select_with(b"", 256, |b, ready| ready && untried(b))
            .or_else(|| self.lb.select_with(b"", 256, |b, _| untried(b)))
    }

    /// Whether an address not in `tried` is left.
    pub fn has_untried(&self, tried: &[SocketAddr]) -> bool {
        self.lb
            .backends()
            .get_backend()
            .iter()
            .any(|b| inet(b).is_some_and(|a| !tried.contains(&a)))
    }

    /// Take `b` out of rotation for `fail_timeout` after a failed request.
    pub fn eject(&self, b: &Backend, fail_timeout: Duration) -> bool {
        let Some(addr) = inet(b) else { return false };
        if fail_timeout.is_zero() {
            return false;
        }
        self.lb.backends().set_enable(b, false);
        let mut ejected = self.ejected.lock().unwrap_or_else(|p| p.into_inner());
        ejected
            .insert(addr, Instant::now() + fail_timeout)
            .is_none()
    }

    /// Bring back the addresses whose `fail_timeout` has passed.
    pub fn restore_due(&self, now: Instant) {
        let mut ejected = self.ejected.lock().unwrap_or_else(|p| p.into_inner());
        ejected.retain(|addr, until| {
            if *until > now {
                return true;
            }
            self.lb.backends().set_enable(&backend(*addr, None), true);
            tracing::info!(upstream = %addr, "upstream back in rotation after its fail_timeout");
            false
        });
    }

    /// Every address with whether it is ready now, and whether it is ejected.
    pub fn states(&self) -> Vec<(SocketAddr, bool, bool)> {
        let ejected = self.ejected.lock().unwrap_or_else(|p| p.into_inner());
        self.lb
            .backends()
            .get_backend()
            .iter()
            .filter_map(|b| {
                let a = inet(b)?;
                Some((a, self.lb.backends().ready(b), ejected.contains_key(&a)))
            })
            .collect()
    }

    /// The peer for one request to `b`, with the timeouts of `up` (the configuration in
    /// force) and the pool's TLS settings.
    pub fn peer(&self, b: &Backend, up: &UpstreamConfig) -> Option<HttpPeer> {
        let addr = inet(b)?;
        let host = b.ext.get::<HostName>().map(|h| h.0.to_string());
        let mut peer = match &self.tls {
            None => HttpPeer::new(addr, false, String::new()),
            Some(t) => {
                // Never an empty name: Pingora would then skip verifying the certificate.
                let sni = t.sni.clone().or(host).filter(|s| !s.is_empty())?;
                HttpPeer::new(addr, true, sni)
            }
        };
        apply(&mut peer, up.connect_timeout, self.tls.as_ref());
        peer.options.read_timeout = Some(up.read_timeout);
        peer.options.write_timeout = Some(up.write_timeout);
        peer.options.idle_timeout = Some(up.idle_timeout);
        Some(peer)
    }
}

/// The connect timeout and the TLS settings on `peer`.
fn apply(peer: &mut HttpPeer, connect_timeout: Duration, tls: Option<&UpstreamTls>) {
    peer.options.connection_timeout = Some(connect_timeout);
    if let Some(t) = tls {
        peer.options.verify_cert = t.verify;
        peer.options.verify_hostname = t.verify;
        peer.options.ca = t.ca.clone();
        peer.client_cert_key = t.client_cert.as_ref().map(|c| c.cert_key.clone());
    }
}

/// The health check for `hc`: `GET path` with the check's `Host`, passed by any 2xx or 3xx
/// answer within the timeout.
fn health_check(hc: &HealthCheckConfig, up: &UpstreamConfig) -> Box<HttpHealthCheck> {
    let first_name = up.addrs.iter().find_map(|a| match a {
        UpstreamAddr::Name { host, .. } => Some(host.clone()),
        UpstreamAddr::Ip(_) => None,
    });
    let sni = up.tls.as_ref().and_then(|t| t.sni.clone()).or(first_name);
    let host = hc
        .host
        .clone()
        .or_else(|| sni.clone())
        .unwrap_or_else(|| "localhost".to_string());
    let mut check = HttpHealthCheck::new(&host, up.tls.is_some());
    if let Some(sni) = sni.filter(|_| up.tls.is_some()) {
        check.peer_template.sni = sni;
    }
    match health_request(&hc.path, &host) {
        Ok(req) => check.req = req,
        // Checked when the configuration was loaded; a GET of / is what Pingora would send.
        Err(e) => tracing::error!(error = %e, "health check request not built; checking /"),
    }
    check.consecutive_success = hc.healthy_threshold;
    check.consecutive_failure = hc.unhealthy_threshold;
    apply(
        &mut check.peer_template,
        up.connect_timeout,
        up.tls.as_ref(),
    );
    check.peer_template.options.connection_timeout = Some(hc.timeout.min(up.connect_timeout));
    check.peer_template.options.read_timeout = Some(hc.timeout);
    check.peer_template.options.write_timeout = Some(hc.timeout);
    check.validator = Some(Box::new(|resp: &ResponseHeader| {
        if (200..400).contains(&resp.status.as_u16()) {
            Ok(())
        } else {
            pingora::Error::e_explain(
                pingora::ErrorType::HTTPStatus(resp.status.as_u16()),
                "health check answered outside 2xx/3xx",
            )
        }
    }));
    check.health_changed_callback = Some(Box::new(HealthLog));
    Box::new(check)
}

/// The health check's request: `GET path` with `Host: host`.
pub fn health_request(path: &str, host: &str) -> pingora::Result<RequestHeader> {
    let mut req = RequestHeader::build("GET", path.as_bytes(), None)?;
    req.insert_header("host", host)?;
    req.insert_header("user-agent", "poortwachter-health-check")?;
    Ok(req)
}

#[cfg(test)]
mod tests;
