//! Limits per connection against slow and hostile clients, on the real gate: a request
//! header must be complete within `[proxy] header_timeout`, however it is dribbled, while
//! everyone else keeps being served.

mod common;

use common::{eventually, metric, start_gate, GateSpec, TestGate, Upstream};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);

async fn gate(upstream: &Upstream) -> TestGate {
    gate_with(upstream, "header_timeout = \"1s\"").await
}

async fn gate_with(upstream: &Upstream, proxy_extra: &'static str) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![upstream.addr],
        proxy_extra,
        proxy_protocol: Some(
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1/32\"]".to_string(),
        ),
        ..GateSpec::default()
    })
    .await
}

/// Dribble a request header one byte every `every` after sending `prefix`; how long until
/// the gate closed the connection (`None`: still open after `limit`).
async fn dribble(
    to: SocketAddr,
    prefix: &[u8],
    every: Duration,
    limit: Duration,
) -> Option<Duration> {
    let mut s = tokio::net::TcpStream::connect(to).await.ok()?;
    let started = Instant::now();
    s.write_all(prefix).await.ok()?;
    let header = b"GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nX-Slow: "
        .iter()
        .chain(std::iter::repeat(&b'a'));
    let mut buf = [0u8; 256];
    for &b in header {
        if started.elapsed() > limit {
            return None;
        }
        if s.write_all(&[b]).await.is_err() {
            return Some(started.elapsed());
        }
        // Closed (read returns 0 or fails) within one pause?
        match tokio::time::timeout(every, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => panic!("the gate answered a header it had not received"),
            Err(_) => {}
        }
    }
    unreachable!("the header never ends")
}

async fn get_ok(to: SocketAddr) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(to).await else {
        return false;
    };
    let req = b"GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\nConnection: close\r\n\r\n";
    if s.write_all(req).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    read.is_ok() && out.starts_with(b"HTTP/1.1 200")
}

/// The slowloris test: 300 connections dribbling their header, each closed within the
/// deadline + 2 s (at least 99% of them), while normal requests are answered throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribbling_connections_are_closed_at_the_header_deadline() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let before = metric(&g.metrics().await, "poortwachter_header_timeouts_total").unwrap_or(0.0);
    let limit = HEADER_TIMEOUT + Duration::from_secs(2);
    let attackers: Vec<_> = (0..300)
        .map(|_| {
            tokio::spawn(dribble(
                g.proxy,
                b"",
                Duration::from_millis(200),
                limit + Duration::from_secs(1),
            ))
        })
        .collect();
    // Pupils keep being served meanwhile.
    let mut served = 0;
    let mut tried = 0;
    let until = Instant::now() + limit;
    while Instant::now() < until {
        tried += 1;
        if get_ok(g.proxy).await {
            served += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut closed_in_time = 0;
    let mut slowest = Duration::ZERO;
    for a in attackers {
        if let Some(took) = a.await.unwrap() {
            slowest = slowest.max(took);
            if took <= limit {
                closed_in_time += 1;
            }
        }
    }
    println!(
        "300 dribbling connections: {closed_in_time} closed within {limit:?} (slowest {slowest:?}); {served}/{tried} normal requests served meanwhile"
    );
    assert!(
        closed_in_time >= 297,
        "{closed_in_time} of 300 closed within {limit:?}"
    );
    assert_eq!(
        served, tried,
        "every normal request during the attack was served"
    );
    assert!(tried >= 10, "{tried} normal requests sent");
    let after = metric(&g.metrics().await, "poortwachter_header_timeouts_total").unwrap_or(0.0);
    assert!(after - before >= 297.0, "counted: {}", after - before);
}

/// Behind a balancer the deadline holds too, after the PROXY header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_holds_behind_the_proxy_protocol() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let took = dribble(
        g.proxy_protocol.unwrap(),
        b"PROXY TCP4 192.0.2.3 127.0.0.1 40000 443\r\n",
        Duration::from_millis(100),
        Duration::from_secs(10),
    )
    .await
    .expect("closed");
    assert!(took >= HEADER_TIMEOUT, "not before the deadline: {took:?}");
    assert!(took <= HEADER_TIMEOUT + Duration::from_secs(2), "{took:?}");
}

/// Keep-alive: the wait between requests is not the header's (it may exceed the deadline),
/// and every request on the connection gets a new deadline from its first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_each_get_their_own_deadline() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let mut s = tokio::net::TcpStream::connect(g.proxy).await.unwrap();
    let req =
        b"GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n\r\n";
    for i in 0..2 {
        // A header sent in two halves, well inside the deadline.
        s.write_all(&req[..20]).await.unwrap();
        tokio::time::sleep(HEADER_TIMEOUT / 2).await;
        s.write_all(&req[20..]).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "request {i}: {:?}",
            String::from_utf8_lossy(&buf[..n])
        );
        // Idle longer than the header deadline before the next request.
        tokio::time::sleep(HEADER_TIMEOUT + HEADER_TIMEOUT / 2).await;
    }
    assert_eq!(upstream.requests().len(), 2);
    // A third request dribbled on the same connection meets its own deadline.
    let started = Instant::now();
    let mut closed = None;
    for &b in req.iter().cycle().take(200) {
        if s.write_all(&[b]).await.is_err() {
            closed = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = Some(started.elapsed());
                break;
            }
            Ok(Ok(n)) => panic!("answered: {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    let took = closed.expect("closed while dribbling");
    assert!(
        took >= HEADER_TIMEOUT && took <= HEADER_TIMEOUT + Duration::from_secs(2),
        "{took:?}"
    );
}

/// One request with `extra` header lines (each ends with CRLF); the whole answer, or what
/// came before the gate closed (a reset after an unread request counts as closed).
async fn send(to: SocketAddr, extra: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(to).await.unwrap();
    let req = format!(
        "GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n{extra}Connection: close\r\n\r\n"
    );
    // The gate may close before it read everything: a failed write is its answer too.
    let _ = s.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answered or closed within 5 s");
    String::from_utf8_lossy(&out).into_owned()
}

async fn too_large(g: &TestGate, action: &str) -> f64 {
    let series = format!("poortwachter_headers_too_large_total{{action=\"{action}\"}}");
    metric(&g.metrics().await, &series).unwrap_or(0.0)
}

/// Headers over `[proxy] max_header_bytes` (default 32 KiB) or `max_header_count` (100) get
/// the 431 page, which tells the pupil what to do; over twice the bytes the connection is
/// closed while it is read. Nothing of it reaches the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_the_431_page_or_are_closed() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let cookie = |kib: usize| format!("Cookie: big={}\r\n", "c".repeat(kib * 1024));

    // Just inside: served.
    let answer = send(g.proxy, &cookie(30)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert_eq!(upstream.requests().len(), 1);

    // Too large, or too many fields: the page, in Dutch by default, and the connection closed.
    let many: String = (0..120).map(|i| format!("X-Field-{i}: {i}\r\n")).collect();
    for extra in [cookie(40), many] {
        let before = too_large(&g, "page").await;
        let answer = send(g.proxy, &extra).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{}",
            &answer[..answer.len().min(300)]
        );
        assert!(
            answer.contains("cookies"),
            "the page says what to do: {answer}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(
            answer.contains("192.0.2.3"),
            "the page shows the pupil's address"
        );
        assert_eq!(too_large(&g, "page").await, before + 1.0);
    }

    // Over twice the limit: closed while it is read, never buffered whole.
    let before = too_large(&g, "closed").await;
    let answer = send(g.proxy, &cookie(80)).await;
    assert!(answer.is_empty(), "{}", &answer[..answer.len().min(200)]);
    assert_eq!(too_large(&g, "closed").await, before + 1.0);
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the first request was forwarded"
    );
}

/// Requests sent before the previous answer (pipelining) are each answered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let one = |path: &str, last: bool| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n{}\r\n",
            if last { "Connection: close\r\n" } else { "" }
        )
    };
    // Allowed, blocked (the gate's own page) and allowed again, in one write.
    let blocked =
        "GET /b HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n";
    let all = format!("{}{blocked}{}", one("/a", false), one("/c", true));
    let answer = send_raw(g.proxy, all.as_bytes()).await;
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "403", "200"], "{answer}");
    let paths: Vec<String> = upstream.requests().iter().map(|s| s.path.clone()).collect();
    assert_eq!(
        paths,
        ["/a", "/c"],
        "the blocked one never reached the upstream"
    );
}

/// An idle keep-alive connection is closed after `[proxy] keepalive_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let upstream = Upstream::start("afname").await;
    let g = gate_with(&upstream, "keepalive_timeout = \"1s\"").await;
    let mut s = tokio::net::TcpStream::connect(g.proxy).await.unwrap();
    s.write_all(
        b"GET /a HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed within 5 s")
        .unwrap_or(0);
    let took = idle.elapsed();
    assert_eq!(n, 0, "closed, not answered");
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_secs(3),
        "{took:?}"
    );
}

/// After `[proxy] max_requests_per_connection` answers the connection is closed; the last
/// answer says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_serves_at_most_max_requests() {
    let upstream = Upstream::start("afname").await;
    let g = gate_with(&upstream, "max_requests_per_connection = 3").await;
    let mut s = tokio::net::TcpStream::connect(g.proxy).await.unwrap();
    let req = b"GET /a HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: 192.0.2.3\r\n\r\n";
    let mut heads = Vec::new();
    for _ in 0..3 {
        s.write_all(req).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        heads.push(String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase());
    }
    assert!(
        heads.iter().all(|h| h.starts_with("http/1.1 200")),
        "{heads:?}"
    );
    assert!(heads[2].contains("connection: close"), "{}", heads[2]);
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "closed after the third");
    assert_eq!(upstream.requests().len(), 3);
}

async fn send_raw(to: SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(to).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answered within 5 s");
    String::from_utf8_lossy(&out).into_owned()
}

async fn open_connections(g: &TestGate, listener: SocketAddr) -> f64 {
    let series = format!("poortwachter_connections_open{{listener=\"{listener}\"}}");
    metric(&g.metrics().await, &series).unwrap_or(0.0)
}

/// A listener's `max_connections` (`[proxy]`, or its own table's): a connection over it is
/// answered the 503 busy page, in the pupil's language, with the pupil's address and
/// `Retry-After`, and closed; nothing reaches the upstream. Each listener counts its own,
/// and a place that comes free is used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_the_busy_page() {
    let upstream = Upstream::start("afname").await;
    let g = start_gate(GateSpec {
        upstreams: vec![upstream.addr],
        proxy_extra: "max_connections = 3",
        proxy_protocol: Some(
            "proxy_protocol = \"v1\"\nproxy_protocol_from = [\"127.0.0.1/32\"]\nmax_connections = 1"
                .to_string(),
        ),
        ..GateSpec::default()
    })
    .await;
    let pp = g.proxy_protocol.unwrap();

    // Three idle connections fill the plain listener.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(g.proxy).await.unwrap());
    }
    eventually(Duration::from_secs(5), "three connections open", || async {
        (open_connections(&g, g.proxy).await == 3.0).then_some(())
    })
    .await;

    for (language, text) in [
        ("", "Het is nu erg druk"),
        ("Accept-Language: en\r\n", "very busy"),
    ] {
        let answer = send(g.proxy, language).await;
        assert!(
            answer.starts_with("HTTP/1.1 503"),
            "{}",
            &answer[..answer.len().min(300)]
        );
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("retry-after: 10\r\n"), "{answer}");
        assert!(lower.contains("connection: close"), "{answer}");
        assert!(answer.contains(text), "{answer}");
        assert!(
            answer.contains("192.0.2.3"),
            "the page shows the pupil's address"
        );
    }
    let refused = |listener: SocketAddr, action: &str| {
        format!(
            "poortwachter_connections_refused_total{{action=\"{action}\",listener=\"{listener}\"}}"
        )
    };
    let text = g.metrics().await;
    assert_eq!(
        metric(&text, &refused(g.proxy, "page")),
        Some(2.0),
        "{text}"
    );
    assert!(upstream.requests().is_empty());

    // The PROXY listener has its own count (1): its first connection is served, a second
    // one at the same time is not.
    let mut first = tokio::net::TcpStream::connect(pp).await.unwrap();
    first
        .write_all(b"PROXY TCP4 192.0.2.3 127.0.0.1 50000 8080\r\n")
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "the PROXY connection open",
        || async { (open_connections(&g, pp).await == 1.0).then_some(()) },
    )
    .await;
    let second = send_raw(
        pp,
        b"PROXY TCP4 192.0.2.4 127.0.0.1 50001 8080\r\nGET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(second.starts_with("HTTP/1.1 503"), "{second}");
    assert!(second.contains("192.0.2.4"), "{second}");
    first
        .write_all(b"GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(metric(&g.metrics().await, &refused(pp, "page")), Some(1.0));

    // A place that comes free on the plain listener is used again.
    drop(held.pop());
    eventually(Duration::from_secs(5), "a place free", || async {
        (open_connections(&g, g.proxy).await <= 2.0).then_some(())
    })
    .await;
    assert!(get_ok(g.proxy).await, "served once below the cap");
    assert_eq!(upstream.requests().len(), 2);
}
