//! HTTP/2 from real clients (curl): with prior knowledge (h2c) on listeners that enable it,
//! and by ALPN over TLS. The decision, the block page and the metrics are the same as for
//! HTTP/1.1; a blocked request never reaches the upstream; HTTP/1.1 clients on an h2c
//! listener keep working, with the header deadline.
//!
//! Needs `curl` with HTTP2 in its features (`curl -V`).

mod common;

use common::{eventually, metric, start_gate, GateSpec, TestGate, Upstream};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What curl got: exit code, `%{http_version}`, status, content type and body.
#[derive(Debug)]
struct Got {
    exit: i32,
    version: String,
    status: u16,
    content_type: String,
    body: String,
}

const MARK: &str = "\n@@curl@@";

/// Run curl with `args` (the URL among them); the body and what `-w` reports, parsed.
async fn curl(args: Vec<String>) -> Got {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--noproxy", "*", "--max-time", "10"])
            .args([
                "-w",
                &format!("{MARK}%{{http_version}} %{{http_code}} %{{content_type}}"),
            ])
            .args(&args)
            .output()
            .expect("curl runs (is it installed?)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, tail) = text.rsplit_once(MARK).unwrap_or((&text, "0 0 "));
        let mut fields = tail.splitn(3, ' ');
        Got {
            exit: out.status.code().unwrap_or(-1),
            version: fields.next().unwrap_or_default().to_string(),
            status: fields.next().unwrap_or_default().parse().unwrap_or(0),
            content_type: fields.next().unwrap_or_default().to_string(),
            body: body.to_string(),
        }
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The counters a request moves: decisions, pages, upstream responses.
fn counters(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| {
            [
                "poortwachter_requests_total{",
                "poortwachter_pages_total{",
                "poortwachter_upstream_responses_total{",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            Some((series.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// What moved between two snapshots of [`counters`].
fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0.0);
            (d != 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

/// The block page's JSON without its per-request id.
fn without_request_id(body: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
    assert!(v["request_id"].is_string(), "{v}");
    v.as_object_mut().unwrap().remove("request_id");
    v
}

async fn h2c_gate(up: &Upstream) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![up.addr],
        proxy_extra: "h2c = true\nheader_timeout = \"1s\"\n",
        ..Default::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_is_decided_as_http1_is() {
    let up = Upstream::start("a").await;
    let gate = h2c_gate(&up).await;
    let url = gate.url("/toets");

    let allowed = curl(args(&[
        "--http2-prior-knowledge",
        "-H",
        "X-Forwarded-For: 192.0.2.10",
        &url,
    ]))
    .await;
    assert_eq!(allowed.exit, 0, "{allowed:?}");
    assert_eq!(allowed.version, "2", "{allowed:?}");
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.body, "hello from a");
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/toets");
    assert_eq!(seen[0].header("x-forwarded-for"), Some("192.0.2.10"));

    // The same blocked request over HTTP/1.1 and over h2c: the same page, the same counters.
    let blocked = |version: &'static str| {
        let url = url.clone();
        async move {
            curl(args(&[
                version,
                "-H",
                "X-Forwarded-For: 203.0.113.50",
                "-H",
                "Accept: application/json",
                &url,
            ]))
            .await
        }
    };
    let m0 = counters(&gate.metrics().await);
    let h1 = blocked("--http1.1").await;
    let m1 = counters(&gate.metrics().await);
    let h2 = blocked("--http2-prior-knowledge").await;
    let m2 = counters(&gate.metrics().await);
    assert_eq!((h1.version.as_str(), h1.status), ("1.1", 403), "{h1:?}");
    assert_eq!((h2.version.as_str(), h2.status), ("2", 403), "{h2:?}");
    assert!(
        h2.content_type.starts_with("application/problem+json"),
        "{h2:?}"
    );
    assert_eq!(h1.content_type, h2.content_type);
    let page = without_request_id(&h2.body);
    assert_eq!(page["client_ip"], "203.0.113.50", "{page}");
    assert_eq!(page["reason"], "not_registered", "{page}");
    assert_eq!(without_request_id(&h1.body), page);
    let (by_h1, by_h2) = (moved(&m0, &m1), moved(&m1, &m2));
    assert_eq!(
        by_h1.get("poortwachter_requests_total{decision=\"block\",reason=\"not_registered\",route=\"default\"}"),
        Some(&1.0),
        "{by_h1:?}"
    );
    assert_eq!(by_h1, by_h2, "HTTP/2 moves the counters HTTP/1.1 moves");
    assert_eq!(
        up.requests().len(),
        1,
        "the upstream never saw a blocked request"
    );

    // The Dutch HTML page by default.
    let html = curl(args(&[
        "--http2-prior-knowledge",
        "-H",
        "X-Forwarded-For: 203.0.113.50",
        &url,
    ]))
    .await;
    assert_eq!((html.version.as_str(), html.status), ("2", 403), "{html:?}");
    assert!(html.content_type.starts_with("text/html"), "{html:?}");
    assert!(html.body.contains("203.0.113.50"), "{}", html.body);

    // HTTP/1.1 on the same listener is served as before.
    let h1 = curl(args(&[
        "--http1.1",
        "-H",
        "X-Forwarded-For: 192.0.2.10",
        &url,
    ]))
    .await;
    assert_eq!((h1.version.as_str(), h1.status), ("1.1", 200), "{h1:?}");
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_without_h2c_does_not_speak_it() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let got = curl(args(&[
        "--http2-prior-knowledge",
        "-H",
        "X-Forwarded-For: 192.0.2.10",
        &gate.url("/"),
    ]))
    .await;
    assert!(
        got.exit != 0 || got.version != "2",
        "HTTP/2 was spoken: {got:?}"
    );
    assert!(up.requests().is_empty(), "{:?}", up.requests());
    // HTTP/1.1 still is.
    let h1 = curl(args(&["-H", "X-Forwarded-For: 192.0.2.10", &gate.url("/")])).await;
    assert_eq!((h1.version.as_str(), h1.status), ("1.1", 200), "{h1:?}");
}

/// On an h2c listener the header deadline still holds: a client that sends nothing, or
/// only the start of the preface, is closed at `header_timeout` and counted; an HTTP/1
/// request shorter than the preface is answered at once (it is not waited on for 24 bytes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_listener_keeps_the_header_deadline() {
    let up = Upstream::start("a").await;
    let gate = h2c_gate(&up).await;
    let timeouts = "poortwachter_header_timeouts_total";
    let before = metric(&gate.metrics().await, timeouts).unwrap_or(0.0);

    for sent in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut s = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
        s.write_all(sent).await.unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed within header_timeout")
            .unwrap_or(0);
        assert_eq!(n, 0, "closed without an answer");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }
    eventually(
        Duration::from_secs(5),
        "two header timeouts counted",
        || {
            let gate = &gate;
            async move {
                let now = metric(&gate.metrics().await, timeouts).unwrap_or(0.0);
                (now - before == 2.0).then_some(())
            }
        },
    )
    .await;

    let mut s = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_millis(900), s.read_to_end(&mut answer))
        .await
        .expect("answered before header_timeout")
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1."),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

/// A PROXY protocol listener with `h2c = true`: the header first, then HTTP/2 with prior
/// knowledge (curl sends a v1 header with its own address, a trusted proxy here, so the
/// forwarding header names the client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_after_a_proxy_protocol_header() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        proxy_protocol: Some(
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1\"]\nh2c = true".into(),
        ),
        ..Default::default()
    })
    .await;
    let addr = gate.proxy_protocol.unwrap();
    let url = format!("http://{addr}/");
    let pp = |xff: &'static str| {
        let url = url.clone();
        async move {
            curl(args(&[
                "--haproxy-protocol",
                "--http2-prior-knowledge",
                "-H",
                &format!("X-Forwarded-For: {xff}"),
                "-H",
                "Accept: application/json",
                &url,
            ]))
            .await
        }
    };
    let allowed = pp("192.0.2.10").await;
    assert_eq!(
        (allowed.version.as_str(), allowed.status),
        ("2", 200),
        "{allowed:?}"
    );
    let blocked = pp("203.0.113.50").await;
    assert_eq!(
        (blocked.version.as_str(), blocked.status),
        ("2", 403),
        "{blocked:?}"
    );
    assert_eq!(
        without_request_id(&blocked.body)["client_ip"],
        "203.0.113.50"
    );
    assert_eq!(up.requests().len(), 1);
    let text = gate.metrics().await;
    let series = format!(
        "poortwachter_proxy_protocol_headers_total{{kind=\"proxy\",listener=\"{addr}\",version=\"v1\"}}"
    );
    assert_eq!(metric(&text, &series), Some(2.0), "{text}");
}

/// HTTP/2 by ALPN on the TLS listener, from curl: allowed and blocked alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_from_curl() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (_cert, cert_file, key_file) = common::self_signed(dir.path());
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        tls: Some((cert_file.clone(), key_file)),
        ..Default::default()
    })
    .await;
    let port = gate.tls.unwrap().port();
    let tls = |xff: &'static str| {
        let cert = cert_file.display().to_string();
        async move {
            curl(args(&[
                "--http2",
                "--cacert",
                &cert,
                "--resolve",
                &format!("localhost:{port}:127.0.0.1"),
                "-H",
                &format!("X-Forwarded-For: {xff}"),
                "-H",
                "Accept: application/json",
                &format!("https://localhost:{port}/"),
            ]))
            .await
        }
    };
    let allowed = tls("192.0.2.10").await;
    assert_eq!(
        (allowed.version.as_str(), allowed.status),
        ("2", 200),
        "{allowed:?}"
    );
    assert_eq!(allowed.body, "hello from a");
    let blocked = tls("203.0.113.50").await;
    assert_eq!(
        (blocked.version.as_str(), blocked.status),
        ("2", 403),
        "{blocked:?}"
    );
    assert!(
        blocked.content_type.starts_with("application/problem+json"),
        "{blocked:?}"
    );
    assert_eq!(
        without_request_id(&blocked.body)["reason"],
        "not_registered"
    );
    assert_eq!(
        up.requests().len(),
        1,
        "the upstream never saw the blocked request"
    );
}

/// An HTTP/2 connection with no stream open is closed after `keepalive_timeout`, as an idle
/// HTTP/1.1 one is; one with a stream in flight is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed_after_the_keepalive_timeout() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        proxy_extra: "h2c = true\nkeepalive_timeout = \"1s\"\n",
        ..Default::default()
    })
    .await;
    let tcp = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let closed = tokio::spawn(async move {
        let _ = connection.await;
        Instant::now()
    });
    let req = http::Request::get(format!("http://{}/toets", gate.proxy))
        .header("x-forwarded-for", "192.0.2.1")
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    while let Some(chunk) = body.data().await {
        chunk.unwrap();
    }
    let idle_from = Instant::now();
    let closed_at = tokio::time::timeout(Duration::from_secs(10), closed)
        .await
        .expect("the idle connection is closed")
        .unwrap();
    let idle = closed_at - idle_from;
    assert!(
        idle >= Duration::from_millis(800),
        "closed too early: {idle:?}"
    );
    drop(client);
}
