//! The upstream pool end to end: a killed upstream taken out by the health check and by
//! passive ejection, retries only where they are safe, HTTPS to the upstream with its own
//! CA and SNI, host names, and the gate's page for each kind of failure. Real gate
//! in-process, real upstreams on loopback (HTTP, HTTPS, and raw sockets that misbehave).

mod common;

use common::server::{read_request_head, Loopback};
use common::{client, eventually, metric, start_gate, GateSpec, RefusedAddr, TestGate, Upstream};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const XFF: &str = "x-forwarded-for";

fn series(name: &str, addr: SocketAddr) -> String {
    format!("{name}{{upstream=\"{addr}\"}}")
}

async fn get(gate: &TestGate, path: &str) -> Result<reqwest::Response, reqwest::Error> {
    client()
        .get(gate.url(path))
        .header(XFF, "192.0.2.1")
        .send()
        .await
}

/// Load from `clients` tasks until `stop`: answered 200, and every other outcome.
struct Load {
    ok: Arc<AtomicU64>,
    failed: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, clients: usize) -> Load {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..clients)
            .map(|_| {
                let (url, ok, failed, stop) =
                    (url.clone(), ok.clone(), failed.clone(), stop.clone());
                tokio::spawn(async move {
                    let c = client();
                    while !stop.load(Ordering::Relaxed) {
                        match c.get(&url).header(XFF, "192.0.2.1").send().await {
                            Ok(r) if r.status() == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => failed
                                .lock()
                                .unwrap()
                                .push(format!("status {}", r.status())),
                            Err(e) => failed.lock().unwrap().push(e.to_string()),
                        }
                    }
                })
            })
            .collect();
        Load {
            ok,
            failed,
            stop,
            tasks,
        }
    }

    async fn until_more(&self, n: u64, what: &str) {
        let before = self.ok.load(Ordering::Relaxed);
        eventually(Duration::from_secs(10), what, || async {
            (self.ok.load(Ordering::Relaxed) >= before + n).then_some(())
        })
        .await;
    }

    async fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let failed = std::mem::take(&mut *self.failed.lock().unwrap());
        (self.ok.load(Ordering::Relaxed), failed)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upstream_leaves_rotation_by_its_health_check() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let a_addr = a.addr;
    // Passive ejection off: only the active check takes the address out.
    let gate = start_gate(GateSpec {
        upstreams: vec![a.addr, b.addr],
        upstream_extra: "connect_timeout = \"1s\"\nread_timeout = \"5s\"\nfail_timeout = \"0s\"\n\
                         [upstream.health_check]\npath = \"/healthz\"\ninterval = \"200ms\"\n\
                         timeout = \"100ms\"\nunhealthy_threshold = 2\nhealthy_threshold = 1\n"
            .to_string(),
        ..Default::default()
    })
    .await;
    let ready = series("poortwachter_upstream_ready", a_addr);
    eventually(
        Duration::from_secs(10),
        "both upstreams checked",
        || async {
            let text = gate.metrics().await;
            (metric(&text, &ready)? == 1.0 && a.requests().iter().any(|r| r.path == "/healthz"))
                .then_some(())
        },
    )
    .await;

    let load = Load::start(gate.url("/toets"), 4);
    load.until_more(200, "load on both upstreams").await;
    assert!(a.requests().iter().any(|r| r.path == "/toets"));
    let killed = Instant::now();
    drop(a);
    eventually(
        Duration::from_secs(10),
        "the killed upstream out of rotation",
        || async { (metric(&gate.metrics().await, &ready)? == 0.0).then_some(()) },
    )
    .await;
    let detected = killed.elapsed();
    let failures = series("poortwachter_upstream_failures_total", a_addr);
    let at_detection = metric(&gate.metrics().await, &failures).unwrap_or(0.0);
    load.until_more(500, "load after the detection").await;
    let later = metric(&gate.metrics().await, &failures).unwrap_or(0.0);
    let (ok, failed) = load.stop().await;
    println!(
        "killed upstream: out of rotation {detected:?} after the kill (interval 200ms, 2 failures); \
         {at_detection} attempts failed on it until then (each retried on the other), \
         {} after; {ok} requests answered, {} failed",
        later - at_detection,
        failed.len()
    );
    assert!(failed.is_empty(), "{failed:?}");
    assert!(
        at_detection >= 1.0,
        "requests did try the killed upstream before the check"
    );
    // In-flight attempts may still fail right at the detection; none after that.
    assert!(later - at_detection <= 4.0, "{at_detection} then {later}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upstream_is_ejected_for_its_fail_timeout() {
    let dead = RefusedAddr::new();
    let live = Upstream::start("live").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![dead.addr(), live.addr],
        upstream_extra: "connect_timeout = \"1s\"\nfail_timeout = \"30s\"\n".to_string(),
        ..Default::default()
    })
    .await;
    for _ in 0..20 {
        let r = get(&gate, "/toets").await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let text = gate.metrics().await;
    let failures = metric(
        &text,
        &series("poortwachter_upstream_failures_total", dead.addr()),
    );
    let ejections = metric(
        &text,
        &series("poortwachter_upstream_ejections_total", dead.addr()),
    );
    assert_eq!(failures, Some(1.0), "tried once, then out of rotation");
    assert_eq!(ejections, Some(1.0));
    assert_eq!(live.requests().len(), 20);
}

/// An upstream that takes the request head and then resets the connection.
async fn resetting() -> (Loopback, Arc<AtomicU64>) {
    let seen = Arc::new(AtomicU64::new(0));
    let count = seen.clone();
    let server = Loopback::start(move |mut stream| {
        let count = count.clone();
        async move {
            read_request_head(&mut stream).await;
            count.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_zero_linger();
            drop(stream);
        }
    })
    .await;
    (server, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_safe_requests_are_sent_again_after_a_reset() {
    let (reset, reset_seen) = resetting().await;
    let live = Upstream::start("live").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![reset.addr(), live.addr],
        // No ejection: every request meets the resetting upstream in turn.
        upstream_extra: "connect_timeout = \"1s\"\nfail_timeout = \"0s\"\n".to_string(),
        ..Default::default()
    })
    .await;
    let c = client();
    let mut statuses = Vec::new();
    // One method after the other: the rotation alternates, so each meets the reset.
    for _ in 0..10 {
        let r = c
            .get(gate.url("/toets"))
            .header(XFF, "192.0.2.1")
            .send()
            .await
            .unwrap();
        statuses.push(("GET", r.status().as_u16()));
    }
    for _ in 0..10 {
        let r = c
            .post(gate.url("/antwoord"))
            .header(XFF, "192.0.2.1")
            .body("vraag=1&antwoord=B")
            .send()
            .await
            .unwrap();
        statuses.push(("POST", r.status().as_u16()));
    }
    let count = |m: &str, code: u16| statuses.iter().filter(|s| **s == (m, code)).count();
    let on_live = |m: &str| live.requests().iter().filter(|r| r.method == m).count();
    let reset_seen = reset_seen.load(Ordering::SeqCst) as usize;
    let shown = format!(
        "{statuses:?}, live saw {} GET {} POST, reset saw {reset_seen}",
        on_live("GET"),
        on_live("POST")
    );
    assert_eq!(
        count("GET", 200),
        10,
        "a GET met by a reset is answered by the other upstream: {shown}"
    );
    assert_eq!(on_live("GET"), 10, "{shown}");
    // Every POST reached one upstream once: one met by a reset got the page, never a retry.
    assert_eq!(count("POST", 200), on_live("POST"), "{shown}");
    assert_eq!(count("POST", 200) + count("POST", 502), 10, "{shown}");
    let gets_reset = reset_seen - count("POST", 502);
    assert!(
        count("POST", 502) >= 1,
        "the rotation sent POSTs to the resetting upstream: {shown}"
    );
    assert!(gets_reset >= 1, "and GETs: {shown}");
}

/// An upstream that takes the request and never answers.
async fn silent() -> Loopback {
    Loopback::start(|mut stream| async move {
        read_request_head(&mut stream).await;
        std::future::pending::<()>().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_failure_gets_the_gates_page() {
    let dead = RefusedAddr::new();
    let (reset, _) = resetting().await;
    let hang = silent().await;
    let cases: [(&str, Vec<SocketAddr>, Vec<String>, u16); 4] = [
        ("refused", vec![dead.addr()], vec![], 502),
        ("reset", vec![reset.addr()], vec![], 502),
        ("timed out", vec![hang.addr()], vec![], 504),
        // A name that resolves to nothing: no address at all.
        (
            "no address",
            vec![],
            vec!["nowhere.invalid:80".to_string()],
            503,
        ),
    ];
    for (what, upstreams, upstream_names, code) in cases {
        let gate = start_gate(GateSpec {
            upstreams,
            upstream_names,
            upstream_extra: "connect_timeout = \"1s\"\nread_timeout = \"300ms\"\n".to_string(),
            ..Default::default()
        })
        .await;
        let r = get(&gate, "/toets").await.unwrap();
        assert_eq!(r.status(), code, "{what}");
        assert_eq!(r.headers()["cache-control"], "no-store, private", "{what}");
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = r.text().await.unwrap();
        assert!(
            body.contains("De toetsomgeving is even niet bereikbaar"),
            "{what}: {body}"
        );
        assert!(body.contains(&id), "{what}");
        let r = client()
            .get(gate.url("/toets"))
            .header(XFF, "192.0.2.1")
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), code, "{what}");
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(json["reason"], "upstream_error", "{what}");
    }
}

/// An HTTPS upstream with a certificate for `localhost` (`cert`), answering `hello over TLS`.
async fn https_upstream(cert: &rcgen::CertifiedKey<rcgen::KeyPair>) -> Loopback {
    use tokio_rustls::rustls;
    let chain = vec![cert.cert.der().clone()];
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    Loopback::start(move |stream| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(mut tls) = acceptor.accept(stream).await else {
                return;
            };
            let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                use tokio::io::AsyncReadExt;
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("hello over TLS to {sni}");
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_verified_against_its_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_file, _) = common::self_signed(dir.path());
    let up = https_upstream(&cert).await;
    let port = up.addr().port();

    // By IP with `sni`, and by host name (its own name is the SNI), against the right CA.
    for (upstreams, names, sni) in [
        (vec![up.addr()], vec![], "sni = \"localhost\"\n"),
        (vec![], vec![format!("localhost:{port}")], ""),
    ] {
        let gate = start_gate(GateSpec {
            upstreams,
            upstream_names: names,
            upstream_extra: format!(
                "connect_timeout = \"1s\"\ntls = true\n{sni}ca_file = \"{}\"\n",
                cert_file.display()
            ),
            ..Default::default()
        })
        .await;
        let r = get(&gate, "/toets").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "hello over TLS to localhost");
    }

    // Another CA: the certificate is not trusted, the pupil gets the page, nothing passes.
    let other_dir = tempfile::tempdir().unwrap();
    let (_, other_ca, _) = common::self_signed(other_dir.path());
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr()],
        upstream_extra: format!(
            "connect_timeout = \"1s\"\ntls = true\nsni = \"localhost\"\nca_file = \"{}\"\n",
            other_ca.display()
        ),
        ..Default::default()
    })
    .await;
    let r = get(&gate, "/toets").await.unwrap();
    assert_eq!(r.status(), 502);
    // A name the certificate does not have: refused as well.
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr()],
        upstream_extra: format!(
            "connect_timeout = \"1s\"\ntls = true\nsni = \"toets.example.nl\"\nca_file = \"{}\"\n",
            cert_file.display()
        ),
        ..Default::default()
    })
    .await;
    let r = get(&gate, "/toets").await.unwrap();
    assert_eq!(r.status(), 502);
}

#[test]
fn upstream_settings_are_checked_with_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let allowlist = dir.path().join("allowlist.json");
    std::fs::write(&allowlist, common::ALLOWLIST).unwrap();
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let cases = [
        ("addrs = [\"toets.internal\"]", "`upstream.addrs` = \"toets.internal\""),
        ("addrs = [\"toets.internal:0\"]", "the port must be 1 to 65535"),
        ("addrs = [\"127.0.0.1:8081\"]\ntls = true", "`upstream.sni` is missing"),
        ("addrs = [\"127.0.0.1:8081\"]\nsni = \"x.nl\"", "only used with upstream.tls = true"),
        (
            &format!("addrs = [\"toets.internal:443\"]\ntls = true\nca_file = \"{}\"", not_pem.display()),
            "no CERTIFICATE in this PEM file",
        ),
        (
            "addrs = [\"toets.internal:443\"]\ntls = true\nclient_cert_file = \"c.pem\"",
            "`upstream.client_key_file` is missing",
        ),
        ("addrs = [\"127.0.0.1:8081\"]\nread_timeout = \"2h\"", "`upstream.read_timeout` = \"2h\""),
        (
            "addrs = [\"127.0.0.1:8081\"]\n[upstream.health_check]\npath = \"healthz\"",
            "`upstream.health_check.path` = \"healthz\"",
        ),
        (
            "addrs = [\"127.0.0.1:8081\"]\n[upstream.health_check]\npath = \"/h\"\ninterval = \"1s\"\ntimeout = \"2s\"",
            "`upstream.health_check.timeout` = \"2s\"",
        ),
    ];
    for (upstream, want) in cases {
        let path = dir.path().join("gate.toml");
        std::fs::write(
            &path,
            format!(
                "[upstream]\n{upstream}\n[allowlist]\nsource = \"{}\"\n",
                allowlist.display()
            ),
        )
        .unwrap();
        let (code, text) = common::check_config(&path);
        assert_ne!(code, Some(0), "{upstream}: {text}");
        assert!(text.contains(want), "{upstream}: want {want:?} in {text}");
    }
}
