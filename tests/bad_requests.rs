//! Requests the gate cannot read or will not serve as sent, on the real gate: each gets the
//! gate's own page (request id, Dutch/English, JSON when asked), a count by reason in
//! `poortwachter_bad_requests_total` and one access log line, never a framework's empty
//! answer; none reaches the upstream, and the gate keeps serving.

mod common;

use bytes::Bytes;
use common::server::Loopback;
use common::{metric, start_gate, GateSpec, TestGate, Upstream};
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn gate(upstream: &Upstream) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![upstream.addr],
        // Short, so the stalled body below is refused quickly.
        proxy_extra: "body_timeout = \"1s\"",
        ..GateSpec::default()
    })
    .await
}

/// Write `bytes`, then read until the gate closes (at most 5 s): the whole answer.
async fn exchange(to: SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(to).await.unwrap();
    // The gate may close before it read everything: a failed write is its answer too.
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answered and closed within 5 s");
    String::from_utf8_lossy(&out).into_owned()
}

async fn refused(g: &TestGate, reason: &str) -> f64 {
    let series = format!("poortwachter_bad_requests_total{{reason=\"{reason}\"}}");
    metric(&g.metrics().await, &series).expect("every reason is exported from the start")
}

/// The answer's status code, and its head lower-cased.
fn head_of(answer: &str) -> (u16, String) {
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"));
    let end = answer.find("\r\n\r\n").unwrap_or(answer.len());
    (status, answer[..end].to_ascii_lowercase())
}

/// Asserts it is the gate's page: its request id and content type, `Connection: close`,
/// nothing of Pingora's, and the text of `title`.
fn assert_gate_page(answer: &str, status: u16, title: &str) {
    let (got, head) = head_of(answer);
    assert_eq!(got, status, "{answer}");
    assert!(head.contains("\r\nx-request-id: "), "{head}");
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(!head.contains("pingora"), "{head}");
    assert!(answer.contains(title), "{answer}");
}

const MALFORMED_NL: &str = "Dit verzoek kan niet worden gelezen";

/// Each kind of request Pingora refuses while reading the header: the status, the reason
/// counted, and the page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_requests_get_the_gates_page_counted_by_reason() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let host = "Host: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "space in a header name",
            format!("GET / HTTP/1.1\r\n{host}Bad Name: x\r\n\r\n"),
            400,
            "header",
        ),
        (
            "NUL in a header value",
            format!("GET / HTTP/1.1\r\n{host}X-A: a\0b\r\n\r\n"),
            400,
            "header",
        ),
        (
            "obs-fold",
            format!("GET / HTTP/1.1\r\n{host}X-A: a\r\n  folded\r\n\r\n"),
            400,
            "header",
        ),
        (
            "an unknown HTTP version",
            format!("GET / HTTP/1.2\r\n{host}\r\n"),
            505,
            "version",
        ),
        (
            "HTTP/2 on an HTTP/1 request line",
            format!("GET / HTTP/2.0\r\n{host}\r\n"),
            505,
            "version",
        ),
        (
            "a method with a separator",
            format!("GE(T / HTTP/1.1\r\n{host}\r\n"),
            400,
            "request_line",
        ),
        (
            "two different Content-Length",
            format!(
                "POST / HTTP/1.1\r\n{host}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
            ),
            400,
            "framing",
        ),
        (
            "a signed Content-Length",
            format!("POST / HTTP/1.1\r\n{host}Content-Length: +5\r\n\r\nhello"),
            400,
            "framing",
        ),
        (
            "Transfer-Encoding not chunked last",
            format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
            400,
            "framing",
        ),
        (
            "Transfer-Encoding with HTTP/1.0",
            format!("POST / HTTP/1.0\r\n{host}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400,
            "framing",
        ),
        (
            "two Host fields",
            format!("GET / HTTP/1.1\r\n{host}Host: other.example\r\n\r\n"),
            400,
            "host",
        ),
        (
            "Host against the absolute-form target",
            format!("GET http://other.example/ HTTP/1.1\r\n{host}\r\n"),
            400,
            "host",
        ),
        (
            "HTTP/1.1 without Host",
            "GET / HTTP/1.1\r\nX-Forwarded-For: 192.0.2.3\r\n\r\n".to_string(),
            400,
            "host",
        ),
        (
            "HTTP/1.1 with an empty Host",
            "GET / HTTP/1.1\r\nHost:\r\nX-Forwarded-For: 192.0.2.3\r\n\r\n".to_string(),
            400,
            "host",
        ),
        (
            "CONNECT",
            format!("CONNECT afname.example.nl:443 HTTP/1.1\r\n{host}\r\n"),
            405,
            "method",
        ),
    ];
    for (what, request, status, reason) in cases {
        let before = refused(&g, reason).await;
        let answer = exchange(g.proxy, request.as_bytes()).await;
        assert_gate_page(&answer, status, MALFORMED_NL);
        let counted: Vec<String> = g
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("poortwachter_bad_requests_total{"))
            .map(str::to_string)
            .collect();
        assert_eq!(
            refused(&g, reason).await,
            before + 1.0,
            "{what}: counted as {reason}: {counted:?}"
        );
    }
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
    // And the gate keeps serving.
    let answer = exchange(
        g.proxy,
        format!("GET /ok HTTP/1.1\r\n{host}Connection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(head_of(&answer).0, 200, "{answer}");
}

/// The page follows `Accept` and `Accept-Language` when the header could be read and only
/// its framing was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_page_speaks_json_and_english_when_asked() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let framing =
        "POST / HTTP/1.1\r\nHost: afname.example.nl\r\nContent-Length: 1\r\nContent-Length: 2\r\n";
    let answer = exchange(
        g.proxy,
        format!("{framing}Accept: application/json\r\n\r\nxx").as_bytes(),
    )
    .await;
    let (status, head) = head_of(&answer);
    assert_eq!(status, 400, "{answer}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["status"], 400, "{json}");
    let id = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap();
    assert!(body.to_ascii_lowercase().contains(id), "{body}");
    let answer = exchange(
        g.proxy,
        format!("{framing}Accept-Language: en\r\n\r\nxx").as_bytes(),
    )
    .await;
    assert_gate_page(&answer, 400, "This request cannot be read");
    assert!(upstream.requests().is_empty());
}

/// A body that breaks its chunked framing, or stops arriving, on an allowed request: the
/// gate's page (400, 408), not an empty answer; the upstream's own answer never comes in
/// between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_stalled_bodies_get_the_gates_page() {
    // An upstream that answers only once it has the whole body, as an upload handler does.
    let reading = Loopback::http(|req: hyper::Request<hyper::body::Incoming>| async move {
        let whole = req.into_body().collect().await.is_ok();
        hyper::Response::builder()
            .status(if whole { 200 } else { 500 })
            .body(Full::new(Bytes::from_static(b"read")))
            .unwrap()
    })
    .await;
    let g = start_gate(GateSpec {
        upstreams: vec![reading.addr()],
        proxy_extra: "body_timeout = \"1s\"",
        ..GateSpec::default()
    })
    .await;
    let head = "POST /upload HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n";
    let before = refused(&g, "body").await;
    let answer = exchange(
        g.proxy,
        format!("{head}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n").as_bytes(),
    )
    .await;
    assert_gate_page(&answer, 400, MALFORMED_NL);
    assert_eq!(refused(&g, "body").await, before + 1.0);

    // Five bytes promised, two sent, then nothing: refused after body_timeout (1 s).
    let before = refused(&g, "body_timeout").await;
    let mut s = tokio::net::TcpStream::connect(g.proxy).await.unwrap();
    s.write_all(format!("{head}Content-Length: 5\r\n\r\nhe").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered within 10 s");
    let answer = String::from_utf8_lossy(&out);
    assert_gate_page(&answer, 408, MALFORMED_NL);
    assert_eq!(refused(&g, "body_timeout").await, before + 1.0);
}
