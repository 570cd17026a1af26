//! Listeners with the PROXY protocol, against the real gate over raw sockets: the header's
//! source is the client the gate decides on (and the client-IP rules apply on top of it),
//! a balancer's own connections keep their peer, and every kind of bad start closes the
//! connection before any HTTP is read, counted by reason.

mod common;

use common::{metric, start_gate, GateSpec, TestGate, Upstream};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The v2 signature.
const SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A gate in front of `upstream` with a PROXY protocol listener taking `accept` from the
/// loopback balancer; the client-IP rules trust `trusted` besides.
async fn gate(upstream: &Upstream, accept: &str, trusted: Vec<&'static str>) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![upstream.addr],
        trusted,
        proxy_protocol: Some(format!(
            "proxy_protocol = \"{accept}\"\nproxy_protocol_from = [\"127.0.0.1/32\"]\nproxy_protocol_timeout = \"400ms\""
        )),
        ..GateSpec::default()
    })
    .await
}

/// Send `bytes` over a new connection (from `from` when given), then read to the end.
async fn exchange(to: SocketAddr, from: Option<IpAddr>, bytes: &[u8]) -> Vec<u8> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(ip) = from {
        socket.bind(SocketAddr::new(ip, 0)).unwrap();
    }
    let mut s = socket.connect(to).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    // A refused connection may also be reset rather than closed: both end it.
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("the gate answers or closes within 5 s");
    out
}

fn get(extra: &str) -> String {
    format!("GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\n{extra}Connection: close\r\n\r\n")
}

fn v1(src: &str, extra: &str) -> Vec<u8> {
    let family = if src.contains(':') { "TCP6" } else { "TCP4" };
    let dst = if src.contains(':') {
        "::1"
    } else {
        "127.0.0.1"
    };
    format!("PROXY {family} {src} {dst} 40000 443\r\n{}", get(extra)).into_bytes()
}

/// A v2 header: command, family byte, payload.
fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = SIG.to_vec();
    b.push(0x20 | command);
    b.push(family);
    b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn inet4(src: [u8; 4]) -> Vec<u8> {
    let mut p = src.to_vec();
    p.extend_from_slice(&[127, 0, 0, 1]);
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&443u16.to_be_bytes());
    p
}

fn status(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn label(g: &TestGate) -> String {
    g.proxy_protocol.unwrap().to_string()
}

async fn rejected(g: &TestGate, reason: &str) -> f64 {
    let series = format!(
        "poortwachter_proxy_protocol_rejected_total{{listener=\"{}\",reason=\"{reason}\"}}",
        label(g)
    );
    metric(&g.metrics().await, &series).unwrap_or(0.0)
}

async fn headers(g: &TestGate, version: &str, kind: &str) -> f64 {
    let series = format!(
        "poortwachter_proxy_protocol_headers_total{{kind=\"{kind}\",listener=\"{}\",version=\"{version}\"}}",
        label(g)
    );
    metric(&g.metrics().await, &series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_source_is_the_client() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream, "any", vec!["127.0.0.1/32"]).await;
    let pp = g.proxy_protocol.unwrap();

    // v1, a registered school: forwarded, the upstream told the school's address.
    let answer = exchange(pp, None, &v1("192.0.2.3", "")).await;
    assert!(
        status(&answer).contains("200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let seen = upstream.requests();
    assert_eq!(
        seen.last().unwrap().header("x-forwarded-for"),
        Some("192.0.2.3")
    );

    // v1, not registered: the block page names the header's source, not the balancer.
    let answer = exchange(pp, None, &v1("203.0.113.9", "")).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        status(&answer).contains("403") && text.contains("203.0.113.9"),
        "{text}"
    );

    // v1 TCP6 and v2 over IPv4 and IPv6, with TLVs (ALPN, a vendor type) skipped.
    let answer = exchange(pp, None, &v1("2001:db8:12::5", "")).await;
    assert!(
        status(&answer).contains("200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let mut payload = inet4([192, 0, 2, 4]);
    payload.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2', 0xEA, 0x00, 0x01, 0x01]);
    let mut bytes = v2(1, 0x11, &payload);
    bytes.extend_from_slice(get("").as_bytes());
    let answer = exchange(pp, None, &bytes).await;
    assert!(
        status(&answer).contains("200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        upstream
            .requests()
            .last()
            .unwrap()
            .header("x-forwarded-for"),
        Some("192.0.2.4")
    );
    let src: std::net::Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    let mut payload = src.octets().to_vec();
    payload.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    payload.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb]);
    let mut bytes = v2(1, 0x21, &payload);
    bytes.extend_from_slice(get("").as_bytes());
    let text = String::from_utf8_lossy(&exchange(pp, None, &bytes).await).into_owned();
    assert!(
        text.contains("403") && text.contains("2001:db8:99::1"),
        "{text}"
    );

    // A client-sent X-Forwarded-For is not believed from a source that is no proxy.
    let answer = exchange(
        pp,
        None,
        &v1("203.0.113.10", "X-Forwarded-For: 192.0.2.3\r\n"),
    )
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.contains("403") && text.contains("203.0.113.10"),
        "{text}"
    );
    assert_eq!(headers(&g, "v1", "proxy").await, 4.0);
    assert_eq!(headers(&g, "v2", "proxy").await, 2.0);
}

/// The shared vector civ-129 live: an L4 balancer (PROXY) behind a trusted CDN edge; the
/// edge's X-Forwarded-For is walked from the header's source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_ip_rules_apply_on_top_of_the_header() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream, "v1", vec!["127.0.0.1/32", "198.51.100.0/24"]).await;
    let pp = g.proxy_protocol.unwrap();
    let answer = exchange(
        pp,
        None,
        &v1(
            "198.51.100.20",
            "X-Forwarded-For: 203.0.113.99, 192.0.2.9\r\n",
        ),
    )
    .await;
    assert!(
        status(&answer).contains("200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(
        upstream
            .requests()
            .last()
            .unwrap()
            .header("x-forwarded-for"),
        Some("192.0.2.9")
    );
}

/// v1 `UNKNOWN` and v2 `LOCAL`: the balancer's own connection, its peer kept. Here the
/// balancer is a trusted proxy that named no client: the gate cannot tell who it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_and_unknown_keep_the_socket_peer() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream, "any", vec!["127.0.0.1/32"]).await;
    let pp = g.proxy_protocol.unwrap();
    let mut unknown = b"PROXY UNKNOWN\r\n".to_vec();
    unknown.extend_from_slice(get("").as_bytes());
    let mut local = v2(0, 0x00, &[]);
    local.extend_from_slice(get("").as_bytes());
    for bytes in [unknown, local] {
        let text = String::from_utf8_lossy(&exchange(pp, None, &bytes).await).into_owned();
        assert!(
            text.contains("403") && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
    assert_eq!(headers(&g, "v1", "local").await, 1.0);
    assert_eq!(headers(&g, "v2", "local").await, 1.0);
    assert!(upstream.requests().is_empty());
}

/// The header is read once per connection: keep-alive requests after it are the same
/// client's. (Sent one after the other: pipelined requests are a matter of their own.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_header_serves_every_request_of_the_connection() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream, "v1", vec!["127.0.0.1/32"]).await;
    let mut s = tokio::net::TcpStream::connect(g.proxy_protocol.unwrap())
        .await
        .unwrap();
    s.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n")
        .await
        .unwrap();
    for i in 0..3 {
        s.write_all(format!("GET /a/{i} HTTP/1.1\r\nHost: afname.example.nl\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let head = read_response(&mut s).await;
        assert!(head.starts_with("HTTP/1.1 200"), "request {i}: {head}");
    }
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|s| s.header("x-forwarded-for") == Some("192.0.2.7")));
    assert_eq!(headers(&g, "v1", "proxy").await, 1.0);
}

/// One response with a `content-length` body; its head.
async fn read_response(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return head.to_string();
            }
        }
        assert!(
            Instant::now() < deadline,
            "a whole response within 5 s: {text}"
        );
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed early: {text}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Every bad start: closed before any HTTP is read (no byte answered, the upstream never
/// contacted), and counted under its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_start_is_closed_and_counted() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream, "v1", vec!["127.0.0.1/32"]).await;
    let pp = g.proxy_protocol.unwrap();
    let long = format!("PROXY UNKNOWN {}\r\n", "x".repeat(120));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("missing", get("").into_bytes()),
        (
            "missing",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        ),
        ("v1_malformed", v1("010.0.0.1", "")),
        (
            "v1_malformed",
            b"PROXY TCP4 2001:db8::1 192.0.2.2 123 5678\r\n".to_vec(),
        ),
        (
            "v1_malformed",
            b"PROXY TCP4 192.0.2.1 192.0.2.2 123 65536\r\n".to_vec(),
        ),
        (
            "v1_malformed",
            b"PROXY TCP4 192.0.2.1  192.0.2.2 123 80\r\n".to_vec(),
        ),
        ("v1_too_long", long.into_bytes()),
        ("version_not_accepted", v2(1, 0x11, &inet4([192, 0, 2, 3]))),
    ];
    for (reason, bytes) in &cases {
        let before = rejected(&g, reason).await;
        let answer = exchange(pp, None, bytes).await;
        assert!(
            answer.is_empty(),
            "{reason}: answered {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(
            rejected(&g, reason).await,
            before + 1.0,
            "{reason}: {bytes:?}"
        );
    }

    // A peer that is no listed balancer, even with a perfect header.
    let before = rejected(&g, "peer_not_allowed").await;
    let answer = exchange(pp, Some("127.0.0.2".parse().unwrap()), &v1("192.0.2.3", "")).await;
    assert!(answer.is_empty());
    assert_eq!(rejected(&g, "peer_not_allowed").await, before + 1.0);

    // Half a header, then the balancer hangs up; or nothing more within the timeout.
    let before = rejected(&g, "truncated").await;
    {
        let mut s = tokio::net::TcpStream::connect(pp).await.unwrap();
        s.write_all(b"PROXY TCP4 192.0.2.3").await.unwrap();
        s.shutdown().await.unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        assert!(out.is_empty());
    }
    common::eventually(
        Duration::from_secs(5),
        "the truncated header counted",
        || async { (rejected(&g, "truncated").await == before + 1.0).then_some(()) },
    )
    .await;
    let before = rejected(&g, "timeout").await;
    let started = Instant::now();
    let answer = exchange(pp, None, b"PROXY TCP4 192.0.2.3 ").await;
    assert!(answer.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "closed only at the timeout: {took:?}"
    );
    assert_eq!(rejected(&g, "timeout").await, before + 1.0);
    assert!(
        upstream.requests().is_empty(),
        "the upstream never contacted"
    );
}

/// v2's own checks, on a listener that takes only v2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rejections_are_counted() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream, "v2", vec!["127.0.0.1/32"]).await;
    let pp = g.proxy_protocol.unwrap();
    let mut too_long = v2(1, 0x11, &inet4([192, 0, 2, 3]));
    too_long[14..16].copy_from_slice(&2000u16.to_be_bytes());
    let mut bad_crc = inet4([192, 0, 2, 3]);
    bad_crc.extend_from_slice(&[0x03, 0x00, 0x04, 1, 2, 3, 4]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("v2_family", v2(1, 0x12, &inet4([192, 0, 2, 3]))),
        ("v2_malformed", v2(2, 0x11, &inet4([192, 0, 2, 3]))),
        ("v2_too_long", too_long),
        ("v2_truncated", v2(1, 0x11, &[192, 0, 2, 3])),
        ("v2_crc", v2(1, 0x11, &bad_crc)),
        ("version_not_accepted", v1("192.0.2.3", "")),
    ];
    for (reason, bytes) in &cases {
        let before = rejected(&g, reason).await;
        let answer = exchange(pp, None, bytes).await;
        assert!(
            answer.is_empty(),
            "{reason}: answered {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(rejected(&g, reason).await, before + 1.0, "{reason}");
    }
    assert!(upstream.requests().is_empty());
}

/// `tls = true`: a balancer that passes TLS through sends the PROXY header first, then the
/// pupil's TLS handshake follows on the same connection. The gate reads the header, does
/// the handshake with `[proxy]`'s certificate, and judges the pupil by the header's source,
/// over HTTP/1.1 and HTTP/2 (ALPN).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_listener_reads_the_header_before_the_handshake() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_file, key_file) = common::self_signed(dir.path());
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        trusted: vec![],
        tls: Some((cert_file, key_file)),
        proxy_protocol: Some(
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1/32\"]\ntls = true".into(),
        ),
        ..GateSpec::default()
    })
    .await;
    let addr = gate.proxy_protocol.unwrap();
    let connect = |src: &'static str, alpn: &'static [u8]| {
        let cert = &cert;
        async move {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tcp.write_all(format!("PROXY TCP4 {src} 127.0.0.1 40000 443\r\n").as_bytes())
                .await
                .unwrap();
            common::tls_client(cert, alpn)
                .connect("localhost".try_into().unwrap(), tcp)
                .await
                .expect("TLS handshake after the PROXY header")
        }
    };

    // HTTP/1.1: a registered school's pupil, then an unregistered address.
    for (src, want) in [
        ("192.0.2.1", "HTTP/1.1 200"),
        ("203.0.113.50", "HTTP/1.1 403"),
    ] {
        let mut tls = connect(src, b"http/1.1").await;
        tls.write_all(get("").as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out))
            .await
            .unwrap()
            .ok();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with(want), "{src}: {text}");
    }
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].all("x-forwarded-for"), vec!["192.0.2.1"]);

    // HTTP/2 by ALPN on the same listener.
    let tls = connect("192.0.2.1", b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let req = hyper::Request::get(format!("https://localhost:{}/", addr.port()))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.requests().len(), 2);
    assert_eq!(up.requests()[1].all("x-forwarded-for"), vec!["192.0.2.1"]);

    // Each of the three connections had its header read and counted.
    let accepted = metric(
        &gate.metrics().await,
        &format!(
            "poortwachter_proxy_protocol_headers_total{{kind=\"proxy\",listener=\"{addr}\",version=\"v1\"}}"
        ),
    );
    assert_eq!(accepted, Some(3.0));
}
