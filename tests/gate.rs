//! The gate end to end: the real gate in-process, a real upstream, real HTTP over loopback.

mod common;

use common::{client, eventually, metric, start_gate, GateSpec, RefusedAddr, Upstream};
use std::time::Duration;

const XFF: &str = "x-forwarded-for";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_request_reaches_upstream_with_only_gate_written_headers() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let resp = client()
        .get(gate.url("/toets/start?x=1"))
        .header(XFF, "192.0.2.5")
        .header("x-real-ip", "198.51.100.7")
        .header("true-client-ip", "198.51.100.7")
        .header("cf-connecting-ip", "198.51.100.7")
        .header("x-client-ip", "198.51.100.7")
        .header("x_forwarded_for", "198.51.100.7")
        .header("forwarded", "for=198.51.100.7")
        .header("x-request-id", "client-chosen")
        .header("x-poortwachter-site", "12AB00")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(request_id.len(), 16);
    assert_eq!(resp.text().await.unwrap(), "hello from a");

    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.path, "/toets/start");
    assert_eq!(r.all(XFF), vec!["192.0.2.5"]);
    assert_eq!(r.all("x-request-id"), vec![request_id.as_str()]);
    for h in [
        "x-real-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        "x_forwarded_for",
        "forwarded",
        "x-poortwachter-site",
    ] {
        assert!(
            r.all(h).is_empty(),
            "{h} must not reach the upstream: {:?}",
            r.all(h)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_nomination_cannot_remove_the_gate_header() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    // A client naming x-request-id as hop-by-hop must not make the gate's own header vanish.
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "192.0.2.5")
        .header("connection", "x-request-id")
        .header("x-request-id", "client-chosen")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let seen = up.requests();
    assert_eq!(seen[0].all("x-request-id"), vec![id.as_str()]);
    assert_eq!(seen[0].all(XFF), vec!["192.0.2.5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nominating_the_forwarding_header_is_refused() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "192.0.2.5")
        .header("connection", "x-forwarded-for")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Pingora refuses it while preparing the upstream request: nothing is forwarded.
    assert!(up.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spelling_of_a_forwarding_header_is_removed() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let spellings = [
        "x-forwarded_for",
        "x_forwarded-for",
        "X_Real-IP",
        "x-real_ip",
        "cf-connecting_ip",
        "x-client_ip",
        "true_client-ip",
        "X-Request_Id",
        "x_poortwachter-site",
    ];
    let mut req = client().get(gate.url("/")).header(XFF, "192.0.2.5");
    for name in spellings {
        req = req.header(name, "198.51.100.7");
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
    let seen = &up.requests()[0];
    for (name, value) in &seen.headers {
        assert!(value != "198.51.100.7", "{name} reached the upstream");
    }
    assert_eq!(seen.all(XFF), vec!["192.0.2.5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_never_shown_as_the_pupils_address() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        trusted: vec!["127.0.0.1/32", "10.0.0.0/8"],
        ..Default::default()
    })
    .await;
    // No header from our proxy, or only trusted hops: the client is a proxy address.
    for xff in [None, Some("10.1.2.3"), Some("10.1.2.3, 10.4.5.6")] {
        let mut req = client()
            .get(gate.url("/"))
            .header("accept", "application/json");
        if let Some(x) = xff {
            req = req.header(XFF, x);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 403, "{xff:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["reason"], "not_registered", "{xff:?}");
        assert!(body["client_ip"].is_null(), "{xff:?}: {body}");
        assert!(body.get("register").is_none(), "{xff:?}: {body}");
    }
    let html = client()
        .get(gate.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("127.0.0.1"), "{html}");
    assert!(html.contains("niet vast te stellen"));
    assert_eq!(up.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_requests_with_bodies_never_reach_upstream_and_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    for head in [
        "POST /toets HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.50\r\nContent-Length: 5\r\n\r\nhello",
        "POST /toets HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.50\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /toets HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.50\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the gate closes the connection after a block with an unread body")
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 403"), "{text}");
        assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
    }
    assert_eq!(up.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_keepalive_connection_is_judged_per_request() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let s = tokio::net::TcpStream::connect(gate.proxy).await.unwrap();
    let mut r = BufReader::new(s);
    for (xff, want) in [
        ("203.0.113.50", "403"),
        ("192.0.2.1", "200"),
        ("203.0.113.50", "403"),
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}\r\n\r\n");
        r.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut status = String::new();
        r.read_line(&mut status).await.unwrap();
        assert!(status.contains(want), "{xff}: {status}");
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.unwrap();
    }
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_request_gets_the_page_and_never_touches_upstream() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        let resp = client()
            .get(gate.url("/toets"))
            .header(XFF, "203.0.113.50")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["cache-control"], "no-store, private");
        assert_eq!(resp.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(resp.headers()["content-language"], "nl");
        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        let body = resp.text().await.unwrap();
        assert!(body.contains("<html lang=\"nl\">"));
        assert!(
            body.contains("<code>203.0.113.50</code>"),
            "address shown: {body}"
        );
        assert!(body.contains(&id), "request id shown");
        assert!(
            body.contains("Basispoort"),
            "tells the admin where to register"
        );
    }
    // A HEAD is answered too, without a body.
    let resp = client()
        .head(gate.url("/"))
        .header(XFF, "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        up.connections(),
        0,
        "a blocked request must never reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_header_from_untrusted_peer_is_ignored() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        trusted: vec!["10.0.0.0/8"],
        ..Default::default()
    })
    .await;
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "192.0.2.5")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["client_ip"], "127.0.0.1",
        "the peer is the client: {body}"
    );
    assert_eq!(body["reason"], "not_registered");
    assert_eq!(up.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_leftmost_forwarded_for_is_ignored() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    // The pupil's browser sent "192.0.2.5"; our trusted proxy appended the real address.
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "192.0.2.5, 203.0.113.50")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["client_ip"], "203.0.113.50");
    // Two field lines are one list: the rightmost untrusted element wins.
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "203.0.113.50")
        .header(XFF, "192.0.2.5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(up.requests()[0].all(XFF), vec!["192.0.2.5"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_and_ipv4_mapped_clients() {
    let up = Upstream::start("a").await;
    let doc = common::ALLOWLIST.replace("\"198.51.100.7\"", "\"198.51.100.7\", \"::1\"");
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        trusted: vec!["127.0.0.1/32"],
        allowlist: Some(doc),
        also_listen_v6: true,
        ..Default::default()
    })
    .await;
    let c = client();
    // IPv6 client in a registered /48.
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "2001:db8:12:7::abcd")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // IPv4-mapped IPv6 is the IPv4 address: registered, and forwarded as IPv4.
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "::ffff:192.0.2.5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.requests();
    assert_eq!(seen[0].all(XFF), vec!["2001:db8:12:7::abcd"]);
    assert_eq!(seen[1].all(XFF), vec!["192.0.2.5"]);
    // An unregistered IPv6 client is told which prefix to register.
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "[2001:db8:99:1:2:3:4:5]:4711")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["client_ip"], "2001:db8:99:1:2:3:4:5");
    assert_eq!(body["register"], "2001:db8:99:1::/64");
    let html = c
        .get(gate.url("/"))
        .header(XFF, "2001:db8:99:1:2:3:4:5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<code>2001:db8:99:1::/64</code>"), "{html}");
    // A real IPv6 peer (::1 is not a trusted proxy, and registered in this allowlist).
    let v6 = gate.proxy_v6.unwrap();
    let resp = c
        .get(format!("http://{v6}/"))
        .header(XFF, "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "peer ::1 is the client; its header is not believed"
    );
    assert_eq!(up.requests()[2].all(XFF), vec!["::1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolvable_client_fails_closed() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    for bad in [
        "192.0.2.5, garbage",
        "192.0.2.005",
        "192.0.2.5/32",
        "unknown",
    ] {
        let resp = client()
            .get(gate.url("/"))
            .header(XFF, bad)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 403, "{bad}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["reason"], "unresolvable_client_ip", "{bad}");
        assert!(
            body["client_ip"].is_null(),
            "never show a proxy or a header value: {body}"
        );
        assert!(
            !body.to_string().contains("garbage"),
            "raw header text is never echoed"
        );
    }
    let html = client()
        .get(gate.url("/"))
        .header(XFF, "<script>")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("<script>"));
    assert!(html.contains("niet vast te stellen"));
    assert_eq!(up.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_only_lets_through_and_counts_what_would_be_blocked() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        mode: "report-only",
        ..Default::default()
    })
    .await;
    let c = client();
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = eventually(Duration::from_secs(5), "metrics counted", || {
        let c = c.clone();
        let url = gate.admin_url("/metrics");
        async move {
            let text = c.get(url).send().await.ok()?.text().await.ok()?;
            let counted = metric(
                &text,
                "poortwachter_requests_total{decision=\"allow\",reason=\"registered\",route=\"default\"}",
            )? >= 1.0;
            counted.then_some(text)
        }
    })
    .await;
    assert_eq!(
        metric(
            &text,
            "poortwachter_would_block_total{reason=\"not_registered\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "poortwachter_requests_total{decision=\"allow\",reason=\"not_registered\",route=\"default\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "poortwachter_requests_total{decision=\"block\",reason=\"not_registered\",route=\"default\"}"
        ),
        Some(0.0)
    );
    assert_eq!(up.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_off_allows_everything() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        mode: "off",
        ..Default::default()
    })
    .await;
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Even in off mode the upstream never receives a client-controlled address.
    assert!(up.requests()[0].all(XFF).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_and_json_variants() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let c = client();
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "203.0.113.50")
        .header("accept-language", "en-GB,en;q=0.9,nl;q=0.5")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-language"], "en");
    let body = resp.text().await.unwrap();
    assert!(body.contains("<html lang=\"en\">"));
    assert!(body.contains("Tests cannot be taken at this location yet"));
    assert!(body.contains("Register this IP address"));

    let resp = c
        .get(gate.url("/"))
        .header(XFF, "203.0.113.50")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["cache-control"], "no-store, private");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["client_ip"], "203.0.113.50");
    assert_eq!(body["reason"], "not_registered");
    assert_eq!(body["request_id"], id.as_str());
    assert_eq!(body["status"], 403);
    assert_eq!(body["register"], "203.0.113.50");

    // Page heads are built once per variant and reused: every variant, asked for twice in
    // turn, keeps its own content type and language, and each answer its own request id
    // and length.
    let variants = [
        ("nl", "text/html", "text/html; charset=utf-8", "nl"),
        ("en", "text/html", "text/html; charset=utf-8", "en"),
        ("nl", "application/json", "application/problem+json", "nl"),
        ("en", "application/json", "application/problem+json", "en"),
    ];
    let mut ids = std::collections::HashSet::new();
    for _ in 0..2 {
        for (language, accept, content_type, content_language) in variants {
            let resp = c
                .get(gate.url("/"))
                .header(XFF, "203.0.113.50")
                .header("accept-language", language)
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403);
            let h = resp.headers().clone();
            assert_eq!(h["content-type"], content_type, "{language} {accept}");
            assert_eq!(
                h["content-language"], content_language,
                "{language} {accept}"
            );
            assert_eq!(h["cache-control"], "no-store, private");
            assert_eq!(h["vary"], "Accept, Accept-Language");
            assert_eq!(h.get_all("x-request-id").iter().count(), 1);
            assert!(ids.insert(h["x-request-id"].to_str().unwrap().to_string()));
            let body = resp.bytes().await.unwrap();
            assert_eq!(h["content-length"], body.len().to_string().as_str());
        }
    }
    assert_eq!(up.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_decisions_and_allowlist() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let c = client();
    for xff in ["192.0.2.1", "192.0.2.2", "203.0.113.50"] {
        c.get(gate.url("/")).header(XFF, xff).send().await.unwrap();
    }
    let text = eventually(Duration::from_secs(5), "three requests counted", || {
        let c = c.clone();
        let url = gate.admin_url("/metrics");
        async move {
            let text = c.get(url).send().await.ok()?.text().await.ok()?;
            let b = metric(
                &text,
                "poortwachter_requests_total{decision=\"block\",reason=\"not_registered\",route=\"default\"}",
            )?;
            let a = metric(
                &text,
                "poortwachter_requests_total{decision=\"allow\",reason=\"registered\",route=\"default\"}",
            )?;
            (a == 2.0 && b == 1.0).then_some(text)
        }
    })
    .await;
    // 192.0.2.5/24 of the second site is quarantined (host bits set).
    assert_eq!(metric(&text, "poortwachter_allowlist_ranges"), Some(4.0));
    assert_eq!(metric(&text, "poortwachter_allowlist_sites"), Some(2.0));
    assert_eq!(
        metric(&text, "poortwachter_allowlist_quarantined_entries"),
        Some(1.0)
    );
    assert_eq!(metric(&text, "poortwachter_allowlist_loaded"), Some(1.0));
    assert!(
        text.contains("poortwachter_allowlist_info{source="),
        "{text}"
    );
    assert!(text.contains("version=\"test-1\"} 1"));
    assert!(metric(&text, "poortwachter_allowlist_load_duration_seconds").is_some());
    assert_eq!(
        metric(&text, "poortwachter_mode{mode=\"enforce\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, "poortwachter_upstream_duration_seconds_count"),
        Some(2.0)
    );
    assert!(metric(&text, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(metric(&text, "process_open_fds").unwrap() > 0.0);
    assert_eq!(
        metric(
            &text,
            "poortwachter_pages_total{format=\"html\",page=\"location\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_no_allowlist_page() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        allowlist: None,
        ..Default::default()
    })
    .await;
    let c = client();
    assert_eq!(
        c.get(gate.admin_url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(gate.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503, "no allowlist never means allow");
    assert_eq!(resp.headers()["cache-control"], "no-store, private");
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("De toetsomgeving start op"));
    let status: serde_json::Value = c
        .get(gate.admin_url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["ready"], false);
    assert_eq!(status["allowlist"]["last_result"]["result"], "read_error");
    assert_eq!(up.connections(), 0);

    let ready = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    assert_eq!(
        c.get(ready.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_allowlist_and_quarantine() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    let status: serde_json::Value = client()
        .get(gate.admin_url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let a = &status["allowlist"];
    assert_eq!(a["version"], "test-1");
    assert_eq!(a["sites"], 2);
    assert_eq!(a["ranges"], 4);
    assert_eq!(a["quarantined"][0]["site"], "34CD01");
    assert_eq!(a["quarantined"][0]["value"], "\"192.0.2.5/24\"");
    assert_eq!(a["last_result"]["result"], "ok");
    assert!(a["age_seconds"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_needs_token_off_loopback() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token-0123456789\n").unwrap();
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        admin_host: "0.0.0.0",
        extra: format!("token_file = \"{}\"\n", token_file.display()),
        ..Default::default()
    })
    .await;
    let c = client();
    assert_eq!(
        c.get(gate.admin_url("/status"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let wrong = c
        .get(gate.admin_url("/status"))
        .bearer_auth("s3cret-token-0123456780")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = c
        .get(gate.admin_url("/status"))
        .bearer_auth("s3cret-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    // Health and metrics stay open for probes and scrapers.
    assert_eq!(
        c.get(gate.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(gate.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_with_keepalive_reuse() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![a.addr, b.addr],
        ..Default::default()
    })
    .await;
    let c = client();
    for _ in 0..40 {
        let resp = c
            .get(gate.url("/"))
            .header(XFF, "192.0.2.1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    assert_eq!(a.requests().len(), 20);
    assert_eq!(b.requests().len(), 20);
    assert!(
        a.connections() + b.connections() < 10,
        "upstream connections are reused: {} + {}",
        a.connections(),
        b.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failure_gets_a_friendly_page() {
    // Refused for as long as `dead` lives.
    let dead = RefusedAddr::new();
    let gate = start_gate(GateSpec {
        upstreams: vec![dead.addr()],
        ..Default::default()
    })
    .await;
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["cache-control"], "no-store, private");
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("De toetsomgeving is even niet bereikbaar"),
        "{body}"
    );
    assert!(body.contains(&id));
    let resp = client()
        .get(gate.url("/"))
        .header(XFF, "192.0.2.1")
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "upstream_error");
    assert_eq!(body["client_ip"], "192.0.2.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_upstream_is_skipped_for_the_next() {
    let dead = RefusedAddr::new();
    let up = Upstream::start("live").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![dead.addr(), up.addr],
        ..Default::default()
    })
    .await;
    for _ in 0..6 {
        let resp = client()
            .get(gate.url("/"))
            .header(XFF, "192.0.2.1")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(up.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_header_mode() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        header: "forwarded",
        ..Default::default()
    })
    .await;
    let c = client();
    let resp = c
        .get(gate.url("/"))
        .header(
            "forwarded",
            "for=203.0.113.50, for=\"[2001:db8:12::1]:443\";proto=https",
        )
        .header(XFF, "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        200,
        "Forwarded is the configured header; XFF is ignored"
    );
    let seen = up.requests();
    assert_eq!(seen[0].all(XFF), vec!["2001:db8:12::1"]);
    assert!(seen[0].all("forwarded").is_empty());
    let resp = c
        .get(gate.url("/"))
        .header(XFF, "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "XFF is not believed in forwarded mode");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_speaks_http2() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_file, key_file) = common::self_signed(dir.path());
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        tls: Some((cert_file, key_file)),
        ..Default::default()
    })
    .await;
    let tls = gate.tls.unwrap();
    let c = common::https_client(&cert, tls).build().unwrap();
    let url = format!("https://localhost:{}/", tls.port());
    let resp = c.get(&url).header(XFF, "192.0.2.1").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiates HTTP/2"
    );
    let resp = c
        .get(&url)
        .header(XFF, "203.0.113.50")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["cache-control"], "no-store, private");
    assert_eq!(up.requests().len(), 1);
}

/// `[proxy] h2_max_concurrent_streams`: one HTTP/2 connection never has more requests in
/// the gate than that; the rest wait at the client and are served as streams finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_per_connection_are_capped() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // An upstream that holds every request until the test lets one go.
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let (i, m, r) = (in_flight.clone(), most.clone(), release.clone());
    let up = common::server::Loopback::http(move |_req| {
        let (i, m, r) = (i.clone(), m.clone(), r.clone());
        async move {
            let now = i.fetch_add(1, Ordering::SeqCst) + 1;
            m.fetch_max(now, Ordering::SeqCst);
            r.acquire().await.unwrap().forget();
            i.fetch_sub(1, Ordering::SeqCst);
            hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("held")))
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_file, key_file) = common::self_signed(dir.path());
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr()],
        tls: Some((cert_file, key_file)),
        proxy_extra: "h2_max_concurrent_streams = 2\n",
        ..Default::default()
    })
    .await;
    let tls = gate.tls.unwrap();
    let c = common::https_client(&cert, tls)
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/", tls.port());
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let (c, url) = (c.clone(), url.clone());
            tokio::spawn(async move {
                let r = c.get(&url).header(XFF, "192.0.2.1").send().await.unwrap();
                (r.status(), r.version())
            })
        })
        .collect();
    // The cap is reached; then they go one by one, and each time another one comes in.
    eventually(
        Duration::from_secs(10),
        "two requests held at the upstream",
        || {
            let i = in_flight.clone();
            async move { (i.load(Ordering::SeqCst) == 2).then_some(()) }
        },
    )
    .await;
    for _ in 0..6 {
        eventually(
            Duration::from_secs(10),
            "a request held at the upstream",
            || {
                let i = in_flight.clone();
                async move { (i.load(Ordering::SeqCst) >= 1).then_some(()) }
            },
        )
        .await;
        release.add_permits(1);
    }
    for r in requests {
        let (status, version) = r.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(version, reqwest::Version::HTTP_2);
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        2,
        "at most 2 streams of the one connection at once, and the cap was reached"
    );
}

/// The rapid-reset attack (CVE-2023-44487): a client that opens streams and resets each at
/// once is sent GOAWAY (ENHANCE_YOUR_CALM) and loses the connection after a bounded number
/// of streams, while at most `h2_max_concurrent_streams` of them are ever in the gate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_loses_the_connection() {
    let up = Upstream::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_file, key_file) = common::self_signed(dir.path());
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        tls: Some((cert_file, key_file)),
        ..Default::default()
    })
    .await;
    let tls_addr = gate.tls.unwrap();
    let tcp = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let stream = common::tls_client(&cert, b"h2")
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut client, connection) = h2::client::handshake(stream).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut sent = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let refused = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still connected after {sent} reset streams"
        );
        if sent > 10_000 {
            panic!("10000 streams reset without losing the connection");
        }
        client = match client.ready().await {
            Ok(c) => c,
            Err(e) => break e,
        };
        let req = hyper::Request::get(format!("https://localhost:{}/", tls_addr.port()))
            .header(XFF, "192.0.2.1")
            .body(())
            .unwrap();
        match client.send_request(req, true) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(e) => break e,
        }
        sent += 1;
    };
    let closed = tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("the connection ends")
        .unwrap();
    let why = closed.err().map(|e| e.to_string()).unwrap_or_default();
    // GOAWAY with ENHANCE_YOUR_CALM (h2's reset guard, as the gate configures it), or the
    // connection already gone when the client writes again after it.
    assert!(
        refused.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) || refused.is_io(),
        "after {sent}: {refused} / {why}"
    );
    // Streams are taken up as fast as they come, so most resets come after that and count
    // only toward the gate's own limit; still a few thousand at most, never unbounded.
    assert!(sent < 5000, "the guard took {sent} reset streams to act");
    let upstream = up.requests().len();
    assert!(
        upstream < sent,
        "{upstream} of {sent} reset requests reached the upstream"
    );
    // The gate itself is fine: a new connection is served.
    let c = common::https_client(&cert, tls_addr).build().unwrap();
    let resp = c
        .get(format!("https://localhost:{}/", tls_addr.port()))
        .header(XFF, "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.version()),
        (200, reqwest::Version::HTTP_2)
    );
    eprintln!("rapid reset: connection lost after {sent} reset streams ({upstream} reached the upstream): {refused}");
}
