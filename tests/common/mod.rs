//! Shared support for the integration tests: the real gate in-process ([`gate`]), a real
//! upstream ([`upstream`]), the fake admin store ([`admin_store`]), run-time ports
//! ([`ports`]), a real WebSocket upstream and client ([`websocket`]), and polling with a
//! deadline.
#![allow(dead_code, unused_imports)]

pub mod admin_store;
pub mod gate;
pub mod ports;
pub mod server;
pub mod upstream;
pub mod websocket;

pub use gate::{start_gate, GateSpec, TestGate, ALLOWLIST, TOKEN};
pub use ports::RefusedAddr;
pub use upstream::Upstream;

use poortwachter::gate::Clock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
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

/// Poll `f` until it returns `Some`, or panic with `what` after `timeout`; for tests
/// without an async runtime.
pub fn eventually_blocking<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A clock a test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn at(t: time::OffsetDateTime) -> TestClock {
        TestClock(Arc::new(AtomicI64::new(t.unix_timestamp())))
    }
    pub fn set(&self, t: time::OffsetDateTime) {
        self.0.store(t.unix_timestamp(), Ordering::SeqCst);
    }
    pub fn clock(&self) -> Clock {
        let secs = self.0.clone();
        Arc::new(move || {
            time::OffsetDateTime::from_unix_timestamp(secs.load(Ordering::SeqCst))
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        })
    }
}

/// One request as a fake server (upstream or admin store) received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn of<B>(req: &hyper::Request<B>) -> Seen {
        Seen {
            method: req.method().to_string(),
            path: req.uri().path().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value of header `name`, if it was sent; panics when it was sent more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(values.len() <= 1, "header {name} sent more than once");
        values.first().copied()
    }
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

/// A TLS client config trusting `cert`, offering `alpn`.
pub fn tls_client(
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
    alpn: &[u8],
) -> tokio_rustls::TlsConnector {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
}

/// A self-signed certificate for `localhost` and its PEM chain and key files in `dir`.
pub fn self_signed(
    dir: &std::path::Path,
) -> (
    rcgen::CertifiedKey<rcgen::KeyPair>,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    (cert, cert_file, key_file)
}

/// A reqwest client for the gate's TLS listener at `addr` as `localhost`, trusting `cert`.
pub fn https_client(
    cert: &rcgen::CertifiedKey<rcgen::KeyPair>,
    addr: std::net::SocketAddr,
) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
}

/// `poortwachter check --config path` with the real binary: its exit code and its output
/// (stdout, then stderr).
pub fn check_config(path: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(["check", "--config"])
        .arg(path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}
