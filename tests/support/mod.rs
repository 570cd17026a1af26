//! Shared helpers for integration tests: a real HTTP upstream that counts connections, the
//! real gate started in-process on run-time ports, and polling with a deadline.
#![allow(dead_code)]

pub mod admin_store;
pub mod store;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use pingora::server::RunArgs;
use pingora_prometheus::prometheus::Registry;
use poortwachter::config::Config;
use poortwachter::gate::{self, Gate};
use poortwachter::server::{self, StopHandle};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A clock a test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<std::sync::atomic::AtomicI64>);

impl TestClock {
    pub fn at(t: time::OffsetDateTime) -> TestClock {
        TestClock(Arc::new(std::sync::atomic::AtomicI64::new(
            t.unix_timestamp(),
        )))
    }
    pub fn set(&self, t: time::OffsetDateTime) {
        self.0.store(t.unix_timestamp(), Ordering::SeqCst);
    }
    pub fn clock(&self) -> gate::Clock {
        let secs = self.0.clone();
        Arc::new(move || {
            time::OffsetDateTime::from_unix_timestamp(secs.load(Ordering::SeqCst))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        })
    }
}

/// A port that was free a moment ago. Callers retry when it is taken by the time they bind.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// An address that refuses connections: bound, never listening. Keep the socket alive for
/// as long as the address must stay refused (no other test can bind it meanwhile).
pub fn refusing_port() -> (SocketAddr, tokio::net::TcpSocket) {
    let sock = tokio::net::TcpSocket::new_v4().expect("socket");
    sock.bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    (sock.local_addr().expect("addr"), sock)
}

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A real HTTP/1.1 server on loopback that answers 200 and records what it saw.
pub struct Upstream {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (c, s) = (connections.clone(), seen.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            s.lock().unwrap().push(Seen {
                                method: req.method().to_string(),
                                path: req.uri().path().to_string(),
                                headers: req
                                    .headers()
                                    .iter()
                                    .map(|(n, v)| {
                                        (
                                            n.to_string(),
                                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                        )
                                    })
                                    .collect(),
                            });
                            Ok::<_, hyper::Error>(
                                hyper::Response::builder()
                                    .header("x-upstream", name)
                                    .body(Full::new(Bytes::from(format!("hello from {name}"))))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            connections,
            seen,
            task,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How to configure a test gate. `{proxy}`, `{admin}` and `{allowlist}` in `extra` are
/// replaced with the chosen addresses and the allowlist path.
pub struct GateSpec {
    pub upstreams: Vec<SocketAddr>,
    pub trusted: Vec<&'static str>,
    pub header: &'static str,
    pub mode: &'static str,
    /// Allowlist document; `None` = the file does not exist.
    pub allowlist: Option<String>,
    pub also_listen_v6: bool,
    pub admin_host: &'static str,
    pub extra: String,
    /// Replaces the file source, e.g. an admin-store URL.
    pub source: Option<String>,
    /// More `[allowlist]` keys (`{dir}` is the test's temp dir).
    pub allowlist_extra: String,
    /// Write an admin token file and configure it (see [`TOKEN`]).
    pub admin_token: bool,
    /// A TLS listener with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The gate's clock (default: the system clock).
    pub clock: Option<gate::Clock>,
}

/// The admin token of gates started with `admin_token: true`.
pub const TOKEN: &str = "test-admin-token-0123456789";

impl Default for GateSpec {
    fn default() -> Self {
        GateSpec {
            upstreams: Vec::new(),
            trusted: vec!["127.0.0.1/32"],
            header: "x-forwarded-for",
            mode: "enforce",
            allowlist: Some(ALLOWLIST.to_string()),
            also_listen_v6: false,
            admin_host: "127.0.0.1",
            extra: String::new(),
            source: None,
            allowlist_extra: String::new(),
            admin_token: false,
            tls: None,
            clock: None,
        }
    }
}

/// The allowlist most tests use: documentation ranges only.
pub const ALLOWLIST: &str = r#"{
  "version": "test-1",
  "sites": [
    { "id": "12AB00", "name": "OBS De Regenboog",
      "ranges": ["192.0.2.0/28", "2001:db8:12::/48", "198.51.100.7"] },
    { "id": "34CD01", "ranges": ["198.51.100.64/27", "192.0.2.5/24"], "contact": "unknown field" }
  ]
}"#;

/// The real gate, in-process, on run-time ports. Stopped on drop.
pub struct TestGate {
    pub proxy: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub proxy_v6: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub gate: Arc<Gate>,
    pub dir: tempfile::TempDir,
    stop: StopHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestGate {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for TestGate {
    fn drop(&mut self) {
        self.stop.stop(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn config_text(
    spec: &GateSpec,
    proxy: u16,
    proxy_v6: Option<u16>,
    tls: Option<u16>,
    admin: u16,
    allowlist: &std::path::Path,
) -> String {
    let mut listen = vec![format!("\"127.0.0.1:{proxy}\"")];
    if let Some(p) = proxy_v6 {
        listen.push(format!("\"[::1]:{p}\""));
    }
    let quote = |v: &[String]| v.join(", ");
    let upstreams: Vec<String> = spec.upstreams.iter().map(|a| format!("\"{a}\"")).collect();
    let trusted: Vec<String> = spec.trusted.iter().map(|t| format!("\"{t}\"")).collect();
    let dir = allowlist.parent().unwrap_or(std::path::Path::new("."));
    let source = spec
        .source
        .clone()
        .unwrap_or_else(|| allowlist.display().to_string());
    let allowlist_extra = spec
        .allowlist_extra
        .replace("{dir}", &dir.display().to_string());
    let mut extra = spec.extra.clone();
    if spec.admin_token {
        let token_file = dir.join("admin-token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token");
        extra = format!("token_file = \"{}\"\n{extra}", token_file.display());
    }
    let extra = extra
        .replace("{proxy}", &proxy.to_string())
        .replace("{admin}", &admin.to_string())
        .replace("{allowlist}", &allowlist.display().to_string());
    format!(
        r#"
[proxy]
listen = [{listen}]
{tls}
threads = 1
grace_period = "0s"
shutdown_timeout = "1s"

[upstream]
addrs = [{upstreams}]
connect_timeout = "1s"
read_timeout = "5s"

[client_ip]
trusted_proxies = [{trusted}]
header = "{header}"

[allowlist]
source = "{source}"
{allowlist_extra}

[policy]
mode = "{mode}"

[admin]
listen = "{admin_host}:{admin}"
{extra}
"#,
        listen = quote(&listen),
        tls = match (tls, &spec.tls) {
            (Some(port), Some((cert, key))) => format!(
                "tls_listen = [\"127.0.0.1:{port}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                cert.display(),
                key.display()
            ),
            _ => String::new(),
        },
        upstreams = quote(&upstreams),
        trusted = quote(&trusted),
        header = spec.header,
        mode = spec.mode,
        admin_host = spec.admin_host,
    )
}

/// Start the gate; retries with new ports when one was taken in the meantime.
pub async fn start_gate(spec: GateSpec) -> TestGate {
    let dir = tempfile::tempdir().expect("tempdir");
    let allowlist: PathBuf = dir.path().join("allowlist.json");
    if let Some(doc) = &spec.allowlist {
        std::fs::write(&allowlist, doc).expect("write allowlist");
    }
    for _attempt in 0..5 {
        let proxy = free_port();
        let proxy_v6 = spec.also_listen_v6.then(free_port);
        let tls = spec.tls.is_some().then(free_port);
        let admin = free_port();
        let text = config_text(&spec, proxy, proxy_v6, tls, admin, &allowlist);
        let config_path = dir.path().join("poortwachter.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let cfg = Config::from_toml(&config_path, &text).expect("test config is valid");
        let clock = spec.clock.clone().unwrap_or_else(gate::system_clock);
        let gate = Arc::new(
            poortwachter::lifecycle::build_gate(cfg, Registry::new(), clock).expect("gate"),
        );
        poortwachter::lifecycle::startup(&gate);
        let (tx, rx) = std::sync::mpsc::channel();
        let g = gate.clone();
        // The signal watch is not `Send`, so the server thread makes the channel and hands
        // back only the stop handle.
        let thread = std::thread::spawn(move || match server::build(g, false) {
            Ok(server) => {
                let (stop, signal) = server::stop_channel();
                let _ = tx.send(Ok(stop));
                server.run(RunArgs {
                    shutdown_signal: signal,
                });
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        });
        let stop = match rx.recv().expect("server thread answered") {
            Err(e) if e.is_addr_in_use() => {
                let _ = thread.join();
                continue;
            }
            Err(e) => panic!("gate did not start: {e}"),
            Ok(stop) => stop,
        };
        let tg = TestGate {
            proxy: SocketAddr::from(([127, 0, 0, 1], proxy)),
            tls: tls.map(|p| SocketAddr::from(([127, 0, 0, 1], p))),
            proxy_v6: proxy_v6.map(|p| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p))),
            admin: SocketAddr::from(([127, 0, 0, 1], admin)),
            gate,
            dir,
            stop,
            thread: Some(thread),
        };
        wait_listening(tg.proxy).await;
        wait_listening(tg.admin).await;
        for extra in tg.proxy_v6.into_iter().chain(tg.tls) {
            wait_listening(extra).await;
        }
        return tg;
    }
    panic!("could not find free ports for the gate after 5 attempts");
}

async fn wait_listening(addr: SocketAddr) {
    eventually(
        Duration::from_secs(10),
        &format!("listener on {addr}"),
        || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
    )
    .await
}

/// A client that never reuses proxies from the environment.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The value of one sample in Prometheus text, e.g. `metric(&text, "poortwachter_requests_total{decision=\"allow\",reason=\"registered\"}")`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}
