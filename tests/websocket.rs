//! WebSocket (an HTTP/1.1 upgrade) through the gate, with a real client and a real upstream
//! (Python `websockets`, see `tests/common/websocket.rs`): an allowed client's handshake
//! reaches the upstream and the tunnel carries bytes both ways; a blocked one gets the block
//! decision before any upstream contact; a quiet tunnel outlives `[upstream] read_timeout`
//! (and Pingora's 60 s on the client side) and is closed after `[upstream]
//! upgrade_idle_timeout`; one busy in either direction is not idle.

mod common;

use common::websocket::{ws_client, WsUpstream};
use common::{metric, start_gate, GateSpec, TestGate};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A gate in front of `up` whose upstream reads time out after 1 s, and upgraded
/// connections after `idle`.
async fn gate(up: &WsUpstream, idle: &'static str) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![up.addr],
        upstream_extra: format!("connect_timeout = \"1s\"\nread_timeout = \"1s\"\n{idle}\n"),
        ..Default::default()
    })
    .await
}

fn ws_url(gate: &TestGate, path: &str) -> String {
    format!("ws://{}{path}", gate.proxy)
}

const UPGRADED: &str = "poortwachter_upstream_responses_total{class=\"1xx\"}";

/// Idle for 2.5 s, longer than the 1 s read timeout, shorter than the 4 s upgrade idle
/// timeout: the tunnel still carries both messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_websocket_outlives_the_read_timeout() {
    let up = WsUpstream::start();
    let gate = gate(&up, "upgrade_idle_timeout = \"4s\"").await;
    let got = ws_client(ws_url(&gate, "/live"), "192.0.2.10", "echo-idle:2.5").await;
    assert_eq!(got["echo"], serde_json::json!(["one", "two"]), "{got}");
    let seen = up.handshakes();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["path"], "/live");
    assert_eq!(
        seen[0]["xff"], "192.0.2.10",
        "the gate's own client IP header"
    );
    let text = gate.metrics().await;
    assert_eq!(metric(&text, UPGRADED), Some(1.0), "the 101 is counted");
    assert_eq!(
        metric(
            &text,
            "poortwachter_requests_total{decision=\"allow\",reason=\"registered\",route=\"default\"}"
        ),
        Some(1.0)
    );
}

/// Both directions quiet: closed once `upgrade_idle_timeout` (2 s) has passed, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tunnel_is_closed_after_the_upgrade_idle_timeout() {
    let up = WsUpstream::start();
    let gate = gate(&up, "upgrade_idle_timeout = \"2s\"").await;
    let got = ws_client(ws_url(&gate, "/quiet"), "192.0.2.10", "wait-close").await;
    assert_eq!(got["echo"], serde_json::json!(["one"]), "{got}");
    let after = got["closed_after"]
        .as_f64()
        .unwrap_or_else(|| panic!("{got}"));
    assert!((1.8..6.0).contains(&after), "closed after {after} s: {got}");
}

/// The upstream pushes every 300 ms, the client sends nothing: for 6 s, three times the
/// upgrade idle timeout, the tunnel stays open. A tunnel is idle only when neither
/// direction moves (Pingora starts each side's read timeout again whenever the other side
/// has something to pass on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_busy_in_one_direction_stays_open() {
    let up = WsUpstream::start();
    let gate = gate(&up, "upgrade_idle_timeout = \"2s\"").await;
    let got = ws_client(ws_url(&gate, "/push"), "192.0.2.10", "listen:6").await;
    assert!(got.get("closed_after").is_none(), "closed: {got}");
    assert!(
        got["ticks"].as_u64().unwrap_or(0) >= 15,
        "the pushes came through: {got}"
    );
}

/// Quiet for 62 s, past the 60 s Pingora times a client's reads out with by default: the
/// tunnel still carries both messages, as the client side's read timeout is the upgrade idle
/// timeout (70 s) too. (The one test here that waits a minute: nothing shorter shows it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_tunnel_outlives_the_default_client_read_timeout() {
    let up = WsUpstream::start();
    let gate = gate(&up, "upgrade_idle_timeout = \"70s\"").await;
    let got = ws_client(ws_url(&gate, "/long"), "192.0.2.10", "echo-idle:62").await;
    assert_eq!(got["echo"], serde_json::json!(["one", "two"]), "{got}");
}

/// A blocked client's handshake is answered by the gate: 403 to the WebSocket client, the
/// JSON block page to one that asks for JSON, and the upstream never sees either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_websocket_gets_the_block_page_and_never_reaches_the_upstream() {
    let up = WsUpstream::start();
    let gate = gate(&up, "").await;
    let got = ws_client(ws_url(&gate, "/live"), "203.0.113.50", "echo-idle:0").await;
    assert_eq!(got["status"], 403, "{got}");

    let mut s = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
    s.write_all(
        b"GET /live HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          X-Forwarded-For: 203.0.113.50\r\nAccept: application/json\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, body) = tokio::time::timeout(Duration::from_secs(5), read_response(&mut s))
        .await
        .expect("answered");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(!lower.contains("upgrade: websocket"), "{head}");
    let page: serde_json::Value = serde_json::from_slice(&body).expect("a JSON page");
    assert_eq!(page["reason"], "not_registered", "{page}");
    assert_eq!(page["client_ip"], "203.0.113.50", "{page}");
    assert!(page["request_id"].is_string(), "{page}");

    assert!(up.handshakes().is_empty(), "{:?}", up.handshakes());
    let text = gate.metrics().await;
    assert_eq!(
        metric(
            &text,
            "poortwachter_requests_total{decision=\"block\",reason=\"not_registered\",route=\"default\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(&text, UPGRADED),
        None,
        "nothing was upgraded: {text}"
    );
}

/// One response's head and its `Content-Length` body.
async fn read_response(s: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.unwrap();
        assert!(
            n > 0,
            "closed before the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    while buf.len() < end + len {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (head, buf[end..end + len].to_vec())
}
