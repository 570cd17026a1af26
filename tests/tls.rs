//! The TLS listeners end to end: certificates chosen by SNI, renewed certificates put in
//! force without a restart (file change, `POST /reload`), a bad pair refused while the one in
//! force keeps serving, rotation under load without a failed request, the expiry metric and
//! `poortwachter check`. Real gate in-process, real upstream, real rustls clients.

mod common;

use common::{eventually, metric, start_gate, GateSpec, TestGate, Upstream};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

/// A test certificate authority: the clients trust it, so a rotated leaf is trusted too.
struct Ca {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A leaf certificate as PEM text, with its DER to compare with what a handshake shows.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new() -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "poortwachter test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            cert,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, valid until `not_after` (Unix seconds).
    fn leaf(&self, names: &[&str], not_after: i64) -> Leaf {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client trusting this authority only, offering HTTP/1.1. Without session resumption:
    /// a resumed session shows the certificate of its first handshake, not the one in force.
    fn connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.resumption = rustls::client::Resumption::disabled();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

/// Write `leaf` as `cert` and `key`, each replaced whole (a new file renamed over the old), as
/// certificate tools do.
fn install(leaf: &Leaf, cert: &Path, key: &Path) {
    for (path, text) in [(key, &leaf.key_pem), (cert, &leaf.cert_pem)] {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
}

const EXPIRES: i64 = 1_900_000_000;

/// One TLS handshake with `name` as SNI: the leaf certificate the gate showed.
async fn served(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<CertificateDer<'static>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    Ok(conn.peer_certificates().unwrap()[0].clone())
}

/// One request on a new TLS connection: the status code, or what went wrong.
async fn request(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
    xff: &str,
) -> Result<u16, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let server_name = ServerName::try_from(name.to_string()).unwrap();
    let mut tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let req = format!(
        "GET /toets HTTP/1.1\r\nHost: {name}\r\nX-Forwarded-For: {xff}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    // The gate closes after answering (`Connection: close`); a TLS stream may end without
    // close_notify, which is fine once the whole answer is there.
    let _ = tls.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.get(9..12)
        .filter(|_| text.starts_with("HTTP/1.1 "))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no answer: {text:?}"))
}

/// A gate with a TLS listener on `default` (its files in the test's own directory), and
/// `[[proxy.certificate]]` tables for `more`.
async fn gate_with(
    dir: &Path,
    up: SocketAddr,
    default: &Leaf,
    more: &[(&str, &Leaf)],
) -> (TestGate, PathBuf, PathBuf) {
    let (cert, key) = (dir.join("default.pem"), dir.join("default.key"));
    install(default, &cert, &key);
    let mut extra = String::new();
    for (stem, leaf) in more {
        let (c, k) = (
            dir.join(format!("{stem}.pem")),
            dir.join(format!("{stem}.key")),
        );
        install(leaf, &c, &k);
        extra.push_str(&format!(
            "[[proxy.certificate]]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            c.display(),
            k.display()
        ));
    }
    let gate = start_gate(GateSpec {
        upstreams: vec![up],
        tls: Some((cert.clone(), key.clone())),
        admin_token: true,
        extra,
        ..Default::default()
    })
    .await;
    (gate, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_a_client_asks_for_chooses_the_certificate() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let toets = ca.leaf(&["toets.example.nl"], EXPIRES);
    let portal = ca.leaf(&["portal.example.nl"], EXPIRES + 86_400);
    let (gate, _, _) = gate_with(dir.path(), up.addr, &toets, &[("portal", &portal)]).await;
    let tls = gate.tls.unwrap();
    let c = ca.connector();

    assert_eq!(
        served(&c, tls, "portal.example.nl").await.unwrap(),
        portal.der
    );
    assert_eq!(
        served(&c, tls, "toets.example.nl").await.unwrap(),
        toets.der
    );
    // A name no certificate has gets the default, which the client then refuses.
    let err = served(&c, tls, "elders.example.com").await.unwrap_err();
    assert!(err.contains("not valid for name"), "{err}");

    // Decisions are the same on either name.
    assert_eq!(
        request(&c, tls, "portal.example.nl", "192.0.2.1").await,
        Ok(200)
    );
    assert_eq!(
        request(&c, tls, "toets.example.nl", "203.0.113.50").await,
        Ok(403)
    );
    assert_eq!(up.requests().len(), 1);

    let text = gate.metrics().await;
    let series = |name: &str, file: &str| {
        format!(
            "poortwachter_tls_certificate_expiry_timestamp_seconds{{file=\"{}\",name=\"{name}\"}}",
            dir.path().join(file).display()
        )
    };
    assert_eq!(
        metric(&text, &series("toets.example.nl", "default.pem")),
        Some(EXPIRES as f64)
    );
    assert_eq!(
        metric(&text, &series("portal.example.nl", "portal.pem")),
        Some((EXPIRES + 86_400) as f64)
    );
    let status: serde_json::Value = gate.admin_json(reqwest::Method::GET, "/status").await;
    let certs = &status["tls"]["certificates"];
    assert_eq!(certs[0]["name"], "toets.example.nl");
    assert_eq!(certs[1]["names"][0], "portal.example.nl");
    assert_eq!(certs[1]["not_after"], "2030-03-18T17:46:40Z");
}

/// The number of handshakes that showed `want`, polled until one does.
async fn until_served(c: &tokio_rustls::TlsConnector, addr: SocketAddr, want: &Leaf, what: &str) {
    eventually(Duration::from_secs(10), what, || async {
        (served(c, addr, "toets.example.nl").await.ok()? == want.der).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_file_is_served_and_a_bad_pair_keeps_the_one_in_force() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let first = ca.leaf(&["toets.example.nl"], EXPIRES);
    let (gate, cert, key) = gate_with(dir.path(), up.addr, &first, &[]).await;
    let tls = gate.tls.unwrap();
    let c = ca.connector();
    assert_eq!(
        served(&c, tls, "toets.example.nl").await.unwrap(),
        first.der
    );

    // The renewal lands at the same paths: served without a restart or a signal.
    let second = ca.leaf(&["toets.example.nl"], EXPIRES + 1000);
    install(&second, &cert, &key);
    until_served(&c, tls, &second, "the renewed certificate").await;
    let expiry = format!(
        "poortwachter_tls_certificate_expiry_timestamp_seconds{{file=\"{}\",name=\"toets.example.nl\"}}",
        cert.display()
    );
    assert_eq!(
        metric(&gate.metrics().await, &expiry),
        Some((EXPIRES + 1000) as f64)
    );

    // A certificate with the key of another: refused, the one in force keeps serving.
    let other = ca.leaf(&["toets.example.nl"], EXPIRES + 2000);
    std::fs::write(&cert, &other.cert_pem).unwrap();
    let errors = "poortwachter_tls_certificate_reloads_total{result=\"error\"}";
    let refused = "poortwachter_tls_certificates_refused";
    eventually(Duration::from_secs(10), "the bad pair refused", || async {
        (metric(&gate.metrics().await, errors)? >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        served(&c, tls, "toets.example.nl").await.unwrap(),
        second.der
    );
    assert_eq!(
        request(&c, tls, "toets.example.nl", "192.0.2.1").await,
        Ok(200)
    );
    assert_eq!(
        metric(&gate.metrics().await, &expiry),
        Some((EXPIRES + 1000) as f64)
    );
    assert_eq!(metric(&gate.metrics().await, refused), Some(1.0));
    let status: serde_json::Value = gate.admin_json(reqwest::Method::GET, "/status").await;
    let error = status["tls"]["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("`proxy.tls_key_file` = ") && error.contains("not the key of"),
        "{error}"
    );

    // Garbage where the key was: refused as well, never a panic.
    std::fs::write(&key, "not a key\n").unwrap();
    eventually(
        Duration::from_secs(10),
        "the garbage key refused",
        || async { (metric(&gate.metrics().await, errors)? >= 2.0).then_some(()) },
    )
    .await;
    assert_eq!(
        served(&c, tls, "toets.example.nl").await.unwrap(),
        second.der
    );

    // The matching key arrives: the new pair goes in force.
    std::fs::write(&key, &other.key_pem).unwrap();
    until_served(&c, tls, &other, "the repaired pair").await;
    assert_eq!(metric(&gate.metrics().await, refused), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_reload_puts_new_certificate_files_in_force() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let first = ca.leaf(&["toets.example.nl"], EXPIRES);
    let (gate, cert, key) = gate_with(dir.path(), up.addr, &first, &[]).await;
    let tls = gate.tls.unwrap();
    let c = ca.connector();

    // The config is changed to name other files (a new certificate beside the old one).
    let second = ca.leaf(&["toets.example.nl"], EXPIRES + 5);
    let (cert2, key2) = (dir.path().join("next.pem"), dir.path().join("next.key"));
    install(&second, &cert2, &key2);
    let config = gate.gate.runtime().config.path.clone();
    let text = std::fs::read_to_string(&config).unwrap();
    let edited = text
        .replace(&cert.display().to_string(), &cert2.display().to_string())
        .replace(&key.display().to_string(), &key2.display().to_string());
    assert_ne!(text, edited);
    std::fs::write(&config, edited).unwrap();
    let reload: serde_json::Value = gate.admin_json(reqwest::Method::POST, "/reload").await;
    assert_eq!(reload["config"]["result"], "ok", "{reload}");
    assert_eq!(
        reload["config"]["restart_required"],
        serde_json::json!([]),
        "{reload}"
    );
    assert_eq!(
        served(&c, tls, "toets.example.nl").await.unwrap(),
        second.der
    );

    // A config naming a key of another certificate is refused whole; the pair stays.
    let third = ca.leaf(&["toets.example.nl"], EXPIRES + 6);
    let key3 = dir.path().join("third.key");
    std::fs::write(&key3, &third.key_pem).unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(&key2.display().to_string(), &key3.display().to_string()),
    )
    .unwrap();
    let reload: serde_json::Value = gate.admin_json(reqwest::Method::POST, "/reload").await;
    assert_eq!(reload["config"]["result"], "error", "{reload}");
    let error = reload["config"]["error"].as_str().unwrap();
    assert!(
        error.contains("proxy.tls_key_file") && error.contains("third.key"),
        "{error}"
    );
    assert_eq!(
        served(&c, tls, "toets.example.nl").await.unwrap(),
        second.der
    );
}

/// Rotation under load: clients open new TLS connections and send requests without pause
/// while the certificate is renewed several times; not one request may fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_load_fails_no_request() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let first = ca.leaf(&["toets.example.nl"], EXPIRES);
    let (gate, cert, key) = gate_with(dir.path(), up.addr, &first, &[]).await;
    let tls = gate.tls.unwrap();
    let c = ca.connector();

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (c, stop, ok, failures) = (c.clone(), stop.clone(), ok.clone(), failures.clone());
        // Half of them allowed, half blocked: both answers come from the gate over TLS.
        let (xff, want) = if i % 2 == 0 {
            ("192.0.2.1", 200)
        } else {
            ("203.0.113.50", 403)
        };
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match request(&c, tls, "toets.example.nl", xff).await {
                    Ok(code) if code == want => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures.lock().unwrap().push(format!("{other:?}")),
                }
            }
        }));
    }
    // A keep-alive client too: its connection outlives every rotation.
    let keep_alive = {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        let ca_pem = ca.cert.pem();
        tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .no_proxy()
                .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
                .resolve("toets.example.nl", tls)
                .build()
                .unwrap();
            let url = format!("https://toets.example.nl:{}/toets", tls.port());
            while !stop.load(Ordering::Relaxed) {
                match http
                    .get(&url)
                    .header("x-forwarded-for", "192.0.2.1")
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures
                        .lock()
                        .unwrap()
                        .push(format!("keep-alive: {other:?}")),
                }
            }
        })
    };

    let rotations = 5;
    for n in 1..=rotations {
        let next = ca.leaf(&["toets.example.nl"], EXPIRES + n);
        let before = ok.load(Ordering::Relaxed);
        install(&next, &cert, &key);
        until_served(&c, tls, &next, "the rotated certificate").await;
        // Some traffic on each certificate before the next rotation.
        eventually(
            Duration::from_secs(10),
            "requests after the rotation",
            || async { (ok.load(Ordering::Relaxed) > before + 20).then_some(()) },
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.await.unwrap();
    }
    keep_alive.await.unwrap();
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    let ok = ok.load(Ordering::Relaxed);
    println!(
        "rotation under load: {rotations} rotations, {ok} requests answered, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {ok} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        ok > 100 * rotations as u64 / 5,
        "too little load to show anything: {ok}"
    );
    let reloads = metric(
        &gate.metrics().await,
        "poortwachter_tls_certificate_reloads_total{result=\"ok\"}",
    )
    .unwrap();
    assert!(reloads >= rotations as f64, "{reloads}");
}

#[test]
fn check_names_the_key_and_file_of_a_mismatched_pair_and_shows_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let a = ca.leaf(&["toets.example.nl"], EXPIRES);
    let b = ca.leaf(&["portal.example.nl"], EXPIRES);
    let (cert, key) = (dir.path().join("a.pem"), dir.path().join("a.key"));
    install(&a, &cert, &key);
    let (cert_b, key_b) = (dir.path().join("b.pem"), dir.path().join("b.key"));
    install(&b, &cert_b, &key_b);
    let allowlist = dir.path().join("allowlist.json");
    std::fs::write(&allowlist, common::ALLOWLIST).unwrap();
    let config = |key_b: &Path| {
        let path = dir.path().join("gate.toml");
        std::fs::write(
            &path,
            format!(
                "[proxy]\ntls_listen = [\"127.0.0.1:8443\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n\
                 [[proxy.certificate]]\ncert_file = \"{}\"\nkey_file = \"{}\"\n\
                 [upstream]\naddrs = [\"127.0.0.1:8081\"]\n[allowlist]\nsource = \"{}\"\n",
                cert.display(),
                key.display(),
                cert_b.display(),
                key_b.display(),
                allowlist.display()
            ),
        )
        .unwrap();
        common::check_config(&path)
    };
    let (code, text) = config(&key_b);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("tls certificate portal.example.nl (")
            && text.contains("names [\"portal.example.nl\"], valid until 2030-03-17T17:46:40Z"),
        "{text}"
    );
    let (code, text) = config(&key);
    assert_ne!(code, Some(0), "{text}");
    assert!(
        text.contains("`proxy.certificate[0].key_file` = ")
            && text.contains("a.key")
            && text.contains("not the key of")
            && text.contains("b.pem"),
        "{text}"
    );
}

async fn handshake_failures(g: &TestGate, reason: &str) -> f64 {
    let series = format!("poortwachter_tls_handshake_failures_total{{reason=\"{reason}\"}}");
    metric(&g.metrics().await, &series).expect("every reason is exported from the start")
}

/// The gate does the TLS handshake itself: it must be done within `header_timeout` (a
/// connection that never sends its ClientHello is closed then, not after Pingora's 60 s),
/// and each failure is counted by reason; the listener keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_slow_handshakes_are_bounded_and_counted() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let leaf = ca.leaf(&["toets.example.nl"], EXPIRES);
    let (cert, key) = (dir.path().join("t.pem"), dir.path().join("t.key"));
    install(&leaf, &cert, &key);
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        tls: Some((cert, key)),
        proxy_extra: "header_timeout = \"1s\"",
        ..Default::default()
    })
    .await;
    let tls = gate.tls.unwrap();

    // Plain HTTP on the TLS port: not TLS at all.
    let before = handshake_failures(&gate, "failed").await;
    let mut s = tokio::net::TcpStream::connect(tls).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: toets.example.nl\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("closed within 5 s");
    assert!(!String::from_utf8_lossy(&out).contains("HTTP/1.1 200"));
    eventually(Duration::from_secs(5), "counted as failed", || async {
        (handshake_failures(&gate, "failed").await == before + 1.0).then_some(())
    })
    .await;

    // Connected, then nothing: closed at the header deadline.
    let before = handshake_failures(&gate, "timeout").await;
    let mut s = tokio::net::TcpStream::connect(tls).await.unwrap();
    let start = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut [0u8; 64]))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    let took = start.elapsed();
    assert_eq!(n, 0);
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(handshake_failures(&gate, "timeout").await, before + 1.0);

    // Gone before a ClientHello: counted as closed.
    let before = handshake_failures(&gate, "closed").await;
    drop(tokio::net::TcpStream::connect(tls).await.unwrap());
    eventually(Duration::from_secs(5), "counted as closed", || async {
        (handshake_failures(&gate, "closed").await == before + 1.0).then_some(())
    })
    .await;

    // And a real client is served on the same listener.
    assert_eq!(
        request(&ca.connector(), tls, "toets.example.nl", "192.0.2.1").await,
        Ok(200)
    );
}
