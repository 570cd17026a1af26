//! Routes and the staged rollout through the real gate: bypass, block, refused paths, host
//! routes, and `enforce_from` with a clock the test moves.

mod common;

use common::{client, eventually, metric, start_gate, GateSpec, TestClock, Upstream};
use std::time::Duration;
use time::macros::datetime;

const XFF: &str = "x-forwarded-for";
const ROUTES: &str = r#"
[[route]]
name = "static"
path_prefix = "/static"
action = "bypass"

[[route]]
name = "beheer"
host = "afname.example.nl"
path_prefix = "/beheer/"
action = "block"

[[route]]
name = "health"
path_prefix = "/health"
action = "bypass"
"#;

async fn get(gate: &common::TestGate, path: &str, xff: &str, host: Option<&str>) -> (u16, String) {
    let mut req = client()
        .get(gate.url(path))
        .header(XFF, xff)
        .header("accept", "application/json");
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// One request with exactly this path, on a raw socket.
async fn raw_get(addr: std::net::SocketAddr, path: &str, xff: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {xff}\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_bypass_block_and_refuse_tricks() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        extra: ROUTES.into(),
        ..Default::default()
    })
    .await;
    // Bypass: static assets reach the upstream from anywhere, even an unregistered address.
    assert_eq!(
        get(&gate, "/static/app.js", "203.0.113.50", None).await.0,
        200
    );
    assert_eq!(get(&gate, "/static", "203.0.113.50", None).await.0, 200);
    assert_eq!(up.requests().len(), 2);
    assert_eq!(
        up.requests()[0].path,
        "/static/app.js",
        "forwarded as judged"
    );
    // Segment boundaries: /staticx is not /static.
    let (code, body) = get(&gate, "/staticx", "203.0.113.50", None).await;
    assert_eq!(
        (code, body.contains("not_registered")),
        (403, true),
        "{body}"
    );
    // Block for one host only, case-insensitive, port ignored; even a registered school.
    let (code, body) = get(
        &gate,
        "/beheer/users",
        "192.0.2.1",
        Some("Afname.Example.NL:8443"),
    )
    .await;
    assert_eq!(code, 403);
    assert!(body.contains("route_blocked"), "{body}");
    assert_eq!(
        get(
            &gate,
            "/beheer/users",
            "192.0.2.1",
            Some("other.example.nl")
        )
        .await
        .0,
        200
    );
    // Tricks that could mean another path upstream are answered 400, never matched.
    // (Sent on a raw socket: HTTP client libraries would clean the path up first.)
    for path in [
        "/static/..%2f..%2fbeheer/x",
        "/static/%2e%2e/toets",
        "/static//x",
        "/static/../toets",
        "/static/%2E/x",
    ] {
        let answer = raw_get(gate.proxy, path, "203.0.113.50").await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(
            answer.contains("request_id"),
            "the gate's own page: {answer}"
        );
    }
    // Percent-encoded letters are decoded for matching: no way around a route.
    assert_eq!(
        get(
            &gate,
            "/%62eheer/users",
            "192.0.2.1",
            Some("afname.example.nl")
        )
        .await
        .0,
        403
    );
    assert!(raw_get(gate.proxy, "/st%61tic/app.js", "203.0.113.50")
        .await
        .starts_with("HTTP/1.1 200"));
    assert_eq!(
        up.requests().len(),
        4,
        "no refused or blocked request reached the upstream"
    );

    let c = client();
    let text = eventually(Duration::from_secs(5), "bypasses counted", || {
        let c = c.clone();
        let url = gate.admin_url("/metrics");
        async move {
            let t = c.get(url).send().await.ok()?.text().await.ok()?;
            (metric(&t, "poortwachter_requests_total{decision=\"bypass\",reason=\"bypass_route\",route=\"static\"}")? == 3.0).then_some(t)
        }
    })
    .await;
    assert_eq!(metric(&text, "poortwachter_requests_total{decision=\"block\",reason=\"route_blocked\",route=\"beheer\"}"), Some(2.0));
    assert_eq!(metric(&text, "poortwachter_bad_paths_total"), Some(5.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_from_switches_from_report_only_without_a_restart() {
    let up = Upstream::start("a").await;
    let clock = TestClock::at(datetime!(2027-01-10 22:00 UTC));
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        extra: String::new(),
        clock: Some(clock.clock()),
        mode: "enforce\"\nenforce_from = \"2027-01-11T00:00:00+01:00",
        ..Default::default()
    })
    .await;
    // Before the moment: report-only, the unregistered school gets through and is counted.
    assert_eq!(get(&gate, "/", "203.0.113.50", None).await.0, 200);
    clock.set(datetime!(2027-01-10 22:59:59 UTC));
    assert_eq!(get(&gate, "/", "203.0.113.50", None).await.0, 200);
    // From the moment on: enforced.
    clock.set(datetime!(2027-01-10 23:00:00 UTC));
    let (code, body) = get(&gate, "/", "203.0.113.50", None).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(get(&gate, "/", "192.0.2.1", None).await.0, 200);
    let t = gate.metrics().await;
    assert_eq!(
        metric(
            &t,
            "poortwachter_would_block_total{reason=\"not_registered\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(&t, "poortwachter_enforce_from_timestamp_seconds"),
        Some(datetime!(2027-01-10 23:00 UTC).unix_timestamp() as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_check_page_shows_the_address_and_registration_only() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        trusted: vec!["127.0.0.1/32", "10.0.0.0/8"],
        // A route that would block the page if it came first.
        extra: "\n[[route]]\nname = \"wk\"\npath_prefix = \"/.well-known/\"\naction = \"block\"\n"
            .into(),
        ..Default::default()
    })
    .await;
    const CHECK: &str = "/.well-known/poortwachter/check";
    let json = |xff: &'static str| {
        let url = gate.url(CHECK);
        async move {
            let resp = client()
                .get(url)
                .header(XFF, xff)
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["cache-control"], "no-store, private");
            resp.json::<serde_json::Value>().await.unwrap()
        }
    };
    let v = json("192.0.2.1").await;
    assert_eq!(
        (v["client_ip"].as_str(), v["registered"].as_bool()),
        (Some("192.0.2.1"), Some(true)),
        "{v}"
    );
    let text = v.to_string();
    assert!(
        !text.contains("12AB00") && !text.contains("Regenboog"),
        "no school id or name: {text}"
    );
    let v = json("203.0.113.50").await;
    assert_eq!(
        (v["registered"].as_bool(), v["register"].as_str()),
        (Some(false), Some("203.0.113.50")),
        "{v}"
    );
    let v = json("2001:db8:99::7").await;
    assert_eq!(v["register"], "2001:db8:99::/64", "{v}");
    // Only our own proxies in the header: the address cannot be shown.
    let v = json("10.1.2.3").await;
    assert!(v["client_ip"].is_null(), "{v}");
    assert!(v.get("registered").is_none(), "{v}");
    // HTML, in English on request.
    let html = client()
        .get(gate.url(CHECK))
        .header(XFF, "203.0.113.50")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("This address is not registered")
            && html.contains("<code>203.0.113.50</code>"),
        "{html}"
    );
    assert_eq!(
        up.connections(),
        0,
        "the self-check page never reaches the upstream"
    );
}

/// Several replicas in report-only, one report: `poortwachter report --merge` fetches each
/// replica's `/would-block` with the admin token and adds them up. A replica that does not
/// answer (or refuses the token) is named, the others are still merged, and the exit is 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn would_block_reports_of_replicas_merge_into_one() {
    let up = Upstream::start("a").await;
    let spec = || GateSpec {
        upstreams: vec![up.addr],
        mode: "report-only",
        admin_token: true,
        ..Default::default()
    };
    let (a, b) = (start_gate(spec()).await, start_gate(spec()).await);
    // 203.0.113.9 is no school: twice at one replica, once at the other.
    for (gate, xff) in [
        (&a, "203.0.113.9"),
        (&a, "203.0.113.9"),
        (&b, "203.0.113.9"),
    ] {
        assert_eq!(
            get(gate, "/", xff, None).await.0,
            200,
            "report-only lets it through"
        );
    }
    assert_eq!(get(&b, "/", "198.51.100.200", None).await.0, 200);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, format!("{}\n", common::TOKEN)).unwrap();
    let report = |urls: Vec<String>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"));
        cmd.arg("report").arg("--token-file").arg(&token);
        for u in urls {
            cmd.arg("--merge").arg(u);
        }
        let out = cmd.output().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
        });
        (
            out.status.success(),
            doc,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let base = |g: &common::TestGate| g.admin_url("").trim_end_matches('/').to_string();

    let (ok, doc, err) = report(vec![base(&a), base(&b)]);
    assert!(ok, "{err}");
    assert_eq!(doc["replicas"].as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(doc["unreachable"], serde_json::json!([]));
    let noise = &doc["sites"][0];
    assert_eq!(noise["site"], serde_json::Value::Null, "{doc}");
    assert_eq!(noise["count"], 4, "{doc}");
    let by_address: Vec<(String, u64)> = noise["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["reason"], "not_registered");
            (
                r["address"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_address,
        vec![
            ("203.0.113.0/24".to_string(), 3),
            ("198.51.100.0/24".to_string(), 1)
        ]
    );

    // One replica gone: the other is still reported, the missing one named, exit 1.
    let gone = common::RefusedAddr::new();
    let (ok, doc, err) = report(vec![base(&a), format!("http://{}", gone.addr())]);
    assert!(!ok);
    assert_eq!(doc["sites"][0]["count"], 2, "{doc}");
    assert_eq!(
        doc["unreachable"].as_array().map(Vec::len),
        Some(1),
        "{doc}"
    );
    assert!(err.contains(&gone.addr().to_string()), "{err}");
    // A wrong token is no report either.
    std::fs::write(&token, "not-the-token-0123456789\n").unwrap();
    let (ok, doc, _) = report(vec![base(&a)]);
    assert!(!ok);
    assert!(
        doc["unreachable"][0]["error"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{doc}"
    );
}
