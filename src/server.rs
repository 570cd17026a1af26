//! Assembling and running the Pingora server: the proxy listeners, the admin listener and,
//! when configured, the demo origin; plus how it is told to stop.
//!
//! Shutdown: SIGTERM drains (listeners close, in-flight requests finish) for
//! `[proxy] grace_period`, then gives the runtimes `shutdown_timeout`; SIGINT exits at once;
//! SIGQUIT and SIGUSR2 hand the listening sockets to a new process first (`crate::upgrade`).
//! Tests stop an in-process gate through a [`StopHandle`] instead of signals.

use crate::admin::AdminApp;
use crate::admission::ProxyProtocolApp;
use crate::connection::{ConnectionApp, ConnectionCap, Limits};
use crate::demo_origin::DemoOrigin;
use crate::gate::Gate;
use crate::lifecycle::{LocalFilesService, SyncService, UpstreamService};
use crate::proxy::GateProxy;
use crate::upgrade;
use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr} ({key}): {error}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
}

impl ServerError {
    /// Whether the address was taken by someone else (tests retry with another port).
    pub fn is_addr_in_use(&self) -> bool {
        match self {
            ServerError::Bind { error, .. } => error.kind() == std::io::ErrorKind::AddrInUse,
        }
    }
}

/// SIGTERM → graceful, SIGINT → fast, SIGQUIT → hand the listening sockets to the new
/// process waiting on `upgrade_socket` (`run --upgrade`), then drain like SIGTERM; SIGUSR2 →
/// start that new process from the binary on disk first (`crate::upgrade`).
pub struct UnixSignals {
    /// Where the new process of an upgrade listens.
    pub upgrade_socket: std::path::PathBuf,
    /// The config file, for the new process SIGUSR2 starts.
    pub config: std::path::PathBuf,
}

#[async_trait]
impl ShutdownSignalWatch for UnixSignals {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut quit), Ok(mut usr2)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::quit()),
            signal(SignalKind::user_defined2()),
        ) else {
            tracing::error!("cannot install signal handlers; shutting down");
            return ShutdownSignal::FastShutdown;
        };
        let graceful = loop {
            tokio::select! {
                _ = term.recv() => break true,
                _ = int.recv() => break false,
                _ = usr2.recv() => {
                    match upgrade::start_new(&self.config, &self.upgrade_socket).await {
                        Ok(pid) => {
                            tracing::info!(
                                new_pid = pid,
                                "SIGUSR2: the new process is ready; handing the listening \
                                 sockets over, then draining"
                            );
                            return ShutdownSignal::GracefulUpgrade;
                        }
                        Err(e) => tracing::error!(
                            error = %e,
                            "SIGUSR2: upgrade abandoned; this process keeps serving"
                        ),
                    }
                }
                _ = quit.recv() => match upgrade::waiting(&self.upgrade_socket) {
                    Ok(()) => {
                        tracing::info!(
                            upgrade_socket = %self.upgrade_socket.display(),
                            "SIGQUIT: handing the listening sockets to the new process, then draining"
                        );
                        return ShutdownSignal::GracefulUpgrade;
                    }
                    Err(why) => tracing::error!(
                        upgrade_socket = %self.upgrade_socket.display(),
                        error = %why,
                        "SIGQUIT ignored: no new process waits for the sockets \
                         (start it with `run --upgrade` first); still serving"
                    ),
                },
            }
        };
        if !graceful {
            tracing::info!("SIGINT: exiting now");
            return ShutdownSignal::FastShutdown;
        }
        tracing::info!("SIGTERM: draining, then exiting");
        // Pingora now sleeps through the grace period; a second SIGTERM or a SIGINT during
        // it means "now", as an operator expects.
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal during the grace period: exiting now");
            std::process::exit(130);
        });
        ShutdownSignal::GracefulTerminate
    }
}

/// Stops an in-process gate.
#[derive(Clone)]
pub struct StopHandle(Arc<watch::Sender<Option<bool>>>);

impl StopHandle {
    /// Stop at once (`graceful = false`) or after the grace period.
    pub fn stop(&self, graceful: bool) {
        self.0.send_replace(Some(graceful));
    }
}

struct ChannelSignal(watch::Receiver<Option<bool>>);

#[async_trait]
impl ShutdownSignalWatch for ChannelSignal {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.0.clone();
        let graceful = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.unwrap_or(false),
            // The handle is gone: nobody can stop us any more, so stop now.
            Err(_) => false,
        };
        if graceful {
            ShutdownSignal::GracefulTerminate
        } else {
            ShutdownSignal::FastShutdown
        }
    }
}

/// A stop handle and the signal watch it drives.
pub fn stop_channel() -> (StopHandle, Box<dyn ShutdownSignalWatch>) {
    let (tx, rx) = watch::channel(None);
    (StopHandle(Arc::new(tx)), Box::new(ChannelSignal(rx)))
}

/// Check that every listen address can be bound, so a taken port is a clear error at start
/// instead of a listener that silently never comes up.
fn check_bindable(gate: &Gate) -> Result<(), ServerError> {
    let rt = gate.runtime();
    let cfg = &rt.config;
    let addrs = cfg
        .proxy
        .addrs()
        .chain(std::iter::once(("admin.listen", cfg.admin.listen)))
        .chain(cfg.demo_origin.map(|a| ("demo_origin.listen", a)));
    for (key, addr) in addrs {
        std::net::TcpListener::bind(addr).map_err(|error| ServerError::Bind {
            key,
            addr,
            error,
        })?;
    }
    Ok(())
}

/// The per-connection write buffer of the proxy listeners. Pingora's default (1460 bytes)
/// is smaller than a block page, so the header went out in one `send` and the page in a
/// second; with room for both, a block costs one `send` (benches/README.md, "Listener write
/// buffer"). Bodies of unknown length are still flushed per chunk by Pingora.
const WRITE_BUFFER: usize = 8 * 1024;

/// The L4 buffers of a listener. Plain HTTP listeners read without Pingora's 64 KiB read
/// buffer: the HTTP/1 and HTTP/2 readers keep buffers of their own, so it only added a copy
/// per read and 64 KiB per open connection (benches/README.md, "Memory per connection").
/// TLS and PROXY protocol listeners keep it, for the TLS records and the header read.
fn l4_buffer(plain: bool) -> L4BufferSettings {
    let buffer = L4BufferSettings::default().write(WRITE_BUFFER);
    if plain {
        buffer.read(0)
    } else {
        buffer
    }
}

/// The TLS settings of the TLS listeners (and of PROXY protocol listeners with `tls = true`):
/// TLS 1.2 and 1.3 with rustls' default cipher suites (AEAD only, forward secret), HTTP/2 and
/// HTTP/1.1 by ALPN, and the certificate chosen per handshake from the set in force
/// (`crate::tls`), so a renewed certificate needs no restart.
fn tls_settings(gate: &Gate) -> TlsSettings {
    // Without files: the resolver is the only source of certificates, so Pingora never reads
    // (or panics on) a PEM file itself.
    let mut settings = TlsSettings::intermediate("", "").expect("no files to read");
    settings.set_cert_resolver(gate.certificates.clone());
    settings.enable_h2();
    settings
}

/// HTTP/2 (TLS listeners by ALPN, plain ones with `h2c`): Pingora's bounded defaults (header list size), the configured
/// streams per connection, and the rapid-reset guard (CVE-2023-44487) stated rather than
/// left to a library default: a connection whose client resets more than
/// [`H2_MAX_PENDING_RESETS`] streams before they are served, or that makes the gate reset
/// more than [`H2_MAX_ERROR_RESETS`] for its errors, is sent GOAWAY and closed.
fn h2_options(max_streams: u32) -> pingora::protocols::http::v2::server::H2Options {
    let mut o = pingora::protocols::http::v2::server::default_h2_options();
    o.max_concurrent_streams(max_streams);
    o.max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS);
    o.max_local_error_reset_streams(Some(H2_MAX_ERROR_RESETS));
    o
}

/// Streams a client may reset before the gate has taken them up (h2's own default).
const H2_MAX_PENDING_RESETS: usize = 20;
/// Streams the gate may reset for a client's errors on one connection.
const H2_MAX_ERROR_RESETS: usize = 256;

/// How long idle keep-alive connections may send one more request after a stop: half the
/// grace period, at most 2 s (the rest of the grace period is for requests in flight).
fn drain_idle(grace_period: std::time::Duration) -> std::time::Duration {
    (grace_period / 2).min(std::time::Duration::from_secs(2))
}

/// How long a new process (`run --upgrade`) waits for the running one's sockets after it
/// is ready: the operator (or the systemd unit) sends SIGQUIT to the old one in that time.
const UPGRADE_WAIT_SECS: usize = 60;

/// Build the Pingora server for `gate`: proxy, admin listener, allowlist sync loop (which
/// listens for SIGHUP when `sighup`), and the demo origin when configured.
pub fn build(gate: Arc<Gate>, sighup: bool) -> Result<Server, ServerError> {
    build_server(gate, sighup, false)
}

/// [`build`]; with `upgrade`, the listening sockets are taken over from the running process
/// (they are bound there, so they are not checked here).
fn build_server(gate: Arc<Gate>, sighup: bool, upgrade: bool) -> Result<Server, ServerError> {
    if !upgrade {
        check_bindable(&gate)?;
    }
    let rt = gate.runtime();
    let cfg = &rt.config;
    let conf = ServerConf {
        threads: cfg.proxy.threads,
        grace_period_seconds: Some(cfg.proxy.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(cfg.proxy.shutdown_timeout.as_secs()),
        upstream_keepalive_pool_size: cfg.upstream.keepalive_pool_size,
        // The upstream connector's trust store: the system's for HTTPS upstreams without
        // `ca_file` (a `ca_file` is given per peer). For plain HTTP upstreams it is never
        // consulted; without this Pingora reads the whole system CA bundle (and every file of
        // `SSL_CERT_DIR`) at start, a visible part of the start-up (benches/README.md,
        // "Start-up"). An empty store fails closed: `upstream.tls` is restart-only.
        ca_file: match &cfg.upstream.tls {
            Some(t) if t.ca.is_none() => None,
            _ => Some("/dev/null".to_string()),
        },
        upgrade_sock: cfg.proxy.upgrade_socket.display().to_string(),
        // Pingora retries once a second: the new process waits this long for SIGQUIT to
        // reach the old one; the old one tries this long to reach the new one.
        upgrade_sock_connect_accept_max_retries: Some(UPGRADE_WAIT_SECS),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);

    // Every HTTP/1 connection gets the whole-header deadline (`src/connection.rs`).
    let conf = server.configuration.clone();
    let caps = |addrs: &mut dyn Iterator<Item = SocketAddr>| -> Arc<[Arc<ConnectionCap>]> {
        addrs
            .map(|addr| {
                let max = cfg
                    .proxy
                    .max_connections
                    .iter()
                    .find(|(a, _)| *a == addr)
                    .map_or(usize::MAX, |(_, m)| *m);
                Arc::new(ConnectionCap::new(addr, max, &gate.metrics))
            })
            .collect()
    };
    let app = |gate: &Arc<Gate>,
               caps: Arc<[Arc<ConnectionCap>]>,
               tls: Option<Arc<crate::connection::TlsAccept>>| {
        let mut proxy = pingora::proxy::http_proxy(&conf, GateProxy::new(gate.clone()));
        proxy.h2_options = Some(h2_options(cfg.proxy.h2_max_concurrent_streams));
        let mut options = HttpServerOptions::default();
        // Pingora counts the reuses after the first request.
        options.keepalive_request_limit = Some(cfg.proxy.max_requests_per_connection - 1);
        // An HTTP/2 connection with no stream open is closed after the keep-alive timeout,
        // as an idle HTTP/1.1 one is: otherwise it holds a connection slot for ever.
        options.h2_idle_timeout = Some(cfg.proxy.keepalive_timeout);
        // `ConnectionApp` hands Pingora's loop a plain stream only once it has read the h2c
        // preface (on a listener with `h2c` on): with this, the loop takes it as HTTP/2.
        options.h2c = true;
        proxy.server_options = Some(options);
        ConnectionApp::new(
            proxy,
            Limits {
                header_timeout: cfg.proxy.header_timeout,
                max_raw_header_bytes: 2 * cfg.proxy.max_header_bytes,
                timeouts: gate.metrics.header_timeouts.clone(),
                too_large: gate
                    .metrics
                    .headers_too_large
                    .with_label_values(&["closed"]),
                caps,
                drain_idle: drain_idle(cfg.proxy.grace_period),
                h2c: cfg.proxy.h2c.clone().into(),
                tls,
            },
        )
    };
    let main_caps = caps(
        &mut cfg
            .proxy
            .listen
            .iter()
            .chain(cfg.proxy.tls.iter().flat_map(|t| t.listen.iter()))
            .copied(),
    );
    // The TLS listeners are plain TCP to Pingora: the gate does their handshake itself
    // (`connection::TlsAccept`), bounded and counted.
    let tls_accept = cfg.proxy.tls.as_ref().map(|tls| {
        Arc::new(crate::connection::TlsAccept {
            acceptor: tls_settings(&gate).build(),
            listen: tls.listen.clone().into(),
            failures: gate.metrics.tls_handshake_failures.clone(),
        })
    });
    let mut proxy = Service::new(
        "poortwachter proxy".to_string(),
        app(&gate, main_caps, tls_accept),
    );
    for addr in &cfg.proxy.listen {
        proxy.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(l4_buffer(true)));
    }
    for addr in cfg.proxy.tls.iter().flat_map(|t| t.listen.iter()) {
        proxy.add_listener(ListenerConfig::tcp(addr.to_string()).l4_buffer(l4_buffer(false)));
    }
    server.add_service(proxy);
    // Each PROXY protocol listener is a service of its own: the header is read before the
    // proxy sees the connection, with that listener's balancers and timeout.
    for l in &cfg.proxy.proxy_protocol {
        let acceptor = l.tls.then(|| tls_settings(&gate).build());
        let app = ProxyProtocolApp::new(
            app(&gate, caps(&mut std::iter::once(l.addr)), None),
            l.clone(),
            gate.clone(),
            acceptor,
        );
        let mut service = Service::new(
            format!("poortwachter proxy {} (PROXY protocol)", l.addr),
            app,
        );
        service.add_listener(ListenerConfig::tcp(l.addr.to_string()).l4_buffer(l4_buffer(false)));
        server.add_service(service);
    }

    let mut admin = Service::new(
        "poortwachter admin".to_string(),
        AdminApp::new(gate.clone()),
    );
    admin.threads = Some(1);
    admin.add_tcp(&cfg.admin.listen.to_string());
    server.add_service(admin);

    server.add_service(background_service(
        "allowlist sync",
        SyncService::new(gate.clone(), sighup),
    ));
    server.add_service(background_service(
        "local files",
        LocalFilesService::new(gate.clone()),
    ));
    server.add_service(background_service(
        "upstream pool",
        UpstreamService::new(gate.clone()),
    ));

    if let Some(addr) = cfg.demo_origin {
        let mut demo = Service::new(
            "demo origin".to_string(),
            DemoOrigin {
                client_ip_header: cfg.upstream.client_ip_header.clone(),
            },
        );
        demo.threads = Some(1);
        demo.add_tcp(&addr.to_string());
        server.add_service(demo);
    }
    Ok(server)
}

/// An upgrade's new process takes the would-block report over from the running one (its
/// `/would-block`, with the admin token), so a rollout's list of schools to call survives the
/// upgrade. What the old process records after this, until it stops, is not in it.
fn carry_over_report(gate: &Gate) {
    let rt = gate.runtime();
    let admin = &rt.config.admin;
    let Some(token) = admin.token.clone() else {
        tracing::info!("upgrade: no [admin] token_file; the would-block report starts empty");
        return;
    };
    let mut addr = admin.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/would-block");
    let fetched = crate::report::fetch(&url, &token, std::time::Duration::from_secs(5));
    match fetched.and_then(|doc| gate.would_block.merge_json(&doc).map(|()| doc)) {
        Ok(doc) => tracing::info!(
            entries = %doc["entries"],
            "upgrade: took the would-block report over from the running gate"
        ),
        Err(e) => tracing::warn!(
            url,
            error = %e,
            "upgrade: cannot take the would-block report over; it starts empty"
        ),
    }
}

/// Load the allowlist, then serve until `signal` says stop. Blocks the calling thread.
///
/// With `upgrade`, the listening sockets come from the running gate: this process gets ready
/// first (config, allowlist), then waits on `[proxy] upgrade_socket` until the old one is
/// sent SIGQUIT and hands them over; the old one then drains and exits. Nothing is refused
/// in between: the sockets never close, and both processes accept until the old one stops.
pub fn run(
    gate: Arc<Gate>,
    signal: Box<dyn ShutdownSignalWatch>,
    upgrade: bool,
) -> Result<(), ServerError> {
    // A failed first load is not fatal: the gate answers 503 pages and stays not-ready, so an
    // orchestrator never routes pupils to it, and operations see why in /status.
    crate::lifecycle::startup(&gate);
    let mut server = build_server(gate.clone(), true, upgrade)?;
    if upgrade {
        carry_over_report(&gate);
        tracing::info!(
            upgrade_socket = %gate.runtime().config.proxy.upgrade_socket.display(),
            ready = gate.is_ready(),
            "upgrade: waiting for the running gate's sockets (send it SIGQUIT)"
        );
    }
    // Takes the sockets over with `upgrade` (exits the process when none come in time);
    // nothing to do otherwise.
    server.bootstrap();
    // Under systemd (`Type=notify`): ready, and after an upgrade the unit's main process.
    upgrade::notify_systemd(upgrade);
    let rt = gate.runtime();
    let cfg = &rt.config;
    if cfg.upstream.tls.as_ref().is_some_and(|t| !t.verify) {
        tracing::warn!("upstream.verify = false: the upstream's certificate is not checked; never in production");
    }
    tracing::info!(
        listen = ?cfg.proxy.listen,
        proxy_protocol = ?cfg.proxy.proxy_protocol.iter().map(|l| l.addr).collect::<Vec<_>>(),
        admin = %cfg.admin.listen,
        upstream = ?cfg.upstream.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        mode = cfg.policy.mode.as_str(),
        ready = gate.is_ready(),
        "poortwachter started"
    );
    server.run(RunArgs {
        shutdown_signal: signal,
    });
    tracing::info!("poortwachter stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::drain_idle;
    use std::time::Duration;

    #[test]
    fn idle_connections_drain_for_half_the_grace_period_at_most_2s() {
        assert_eq!(drain_idle(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            drain_idle(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(drain_idle(Duration::from_secs(30)), Duration::from_secs(2));
    }
}
