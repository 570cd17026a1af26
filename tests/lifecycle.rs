//! The allowlist lifecycle end to end: file and admin-store sources, guards, last-known-good,
//! reloads, and a swap under load — with the real gate, a real upstream and a real HTTP
//! admin store on loopback.

mod common;
#[path = "../benches/support/synth.rs"]
mod synth;

use common::admin_store::{AdminStore, Behaviour};
use common::{
    client, eventually, metric, start_gate, GateSpec, RefusedAddr, TestGate, Upstream, TOKEN,
};
use serde_json::{json, Value};
use std::time::Duration;

const XFF: &str = "x-forwarded-for";
const WAIT: Duration = Duration::from_secs(15);

/// A document with `extra` ranges for site 12AB00 on top of 20 fixed ranges, so that one
/// change is far below the shrink guard's limit.
fn doc(version: &str, extra: &[&str]) -> String {
    let mut ranges: Vec<String> = (0..20)
        .map(|i| format!("198.51.100.{}/32", 100 + i))
        .collect();
    ranges.push("192.0.2.0/28".into());
    ranges.extend(extra.iter().map(|s| s.to_string()));
    json!({ "version": version, "sites": [{ "id": "12AB00", "ranges": ranges }] }).to_string()
}

async fn status_for(gate: &TestGate, xff: &str) -> u16 {
    client()
        .get(gate.url("/"))
        .header(XFF, xff)
        .send()
        .await
        .expect("gate answers")
        .status()
        .as_u16()
}

async fn status_json(gate: &TestGate) -> Value {
    client()
        .get(gate.admin_url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn reload(gate: &TestGate, query: &str) -> (u16, Value) {
    let resp = client()
        .post(gate.admin_url(&format!("/reload{query}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn wait_version(gate: &TestGate, version: &str) {
    let v = version.to_string();
    eventually(WAIT, &format!("version {version} in force"), || async {
        let s = status_json(gate).await;
        (s["allowlist"]["version"] == v.as_str()).then_some(())
    })
    .await
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_follows_atomic_rename_and_in_place_writes() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        allowlist: Some(doc("f1", &[])),
        allowlist_extra: "poll_interval = \"1h\"".into(),
        ..Default::default()
    })
    .await;
    let file = gate.dir.path().join("allowlist.json");
    assert_eq!(status_for(&gate, "203.0.113.50").await, 403);

    // Atomic rename: a new inode. The change notification picks it up (polling is 1 h).
    write_atomically(&file, &doc("f2", &["203.0.113.0/24"]));
    wait_version(&gate, "f2").await;
    assert_eq!(status_for(&gate, "203.0.113.50").await, 200);

    // In-place write of the same file.
    std::fs::write(&file, doc("f3", &[])).unwrap();
    wait_version(&gate, "f3").await;
    assert_eq!(status_for(&gate, "203.0.113.50").await, 403);

    let s = status_json(&gate).await;
    let changes = s["allowlist"]["recent_changes"].to_string();
    assert!(
        changes.contains("203.0.113.0/24"),
        "the history names the range: {changes}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_or_half_written_file_keeps_the_last_good() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        allowlist: Some(doc("g1", &[])),
        allowlist_extra: "poll_interval = \"1h\"".into(),
        ..Default::default()
    })
    .await;
    let file = gate.dir.path().join("allowlist.json");
    let full = doc("g2", &["203.0.113.0/24"]);
    // Half a document, written in place: never loaded.
    std::fs::write(&file, &full[..full.len() / 2]).unwrap();
    eventually(WAIT, "the invalid document is judged", || async {
        let s = status_json(&gate).await;
        (s["allowlist"]["last_error"]["result"] == "invalid").then_some(())
    })
    .await;
    let s = status_json(&gate).await;
    assert_eq!(s["allowlist"]["version"], "g1");
    assert!(s["ready"].as_bool().unwrap());
    assert_eq!(status_for(&gate, "192.0.2.1").await, 200);
    assert_eq!(status_for(&gate, "203.0.113.50").await, 403);
    assert!(
        metric(
            &gate.metrics().await,
            "poortwachter_allowlist_sync_total{result=\"invalid\"}"
        )
        .unwrap()
            >= 1.0
    );
    // The rest of the write arrives: now it is loaded.
    std::fs::write(&file, &full).unwrap();
    wait_version(&gate, "g2").await;
    assert_eq!(status_for(&gate, "203.0.113.50").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_store_sync_guards_and_failures() {
    let up = Upstream::start("a").await;
    let store = AdminStore::versioned(&doc("s1", &[])).await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), "store-token\n").unwrap();
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        source: Some(store.url()),
        allowlist_extra: format!(
            "poll_interval = \"1h\"\ntimeout = \"700ms\"\nmax_body_bytes = 4096\nlast_good = \"{{dir}}/last-good.json\"\ntoken_file = \"{}\"",
            token_file.path().display()
        ),
        admin_token: true,
        ..Default::default()
    })
    .await;
    // The first fetch happens as the gate starts.
    wait_version(&gate, "s1").await;
    assert_eq!(status_for(&gate, "192.0.2.1").await, 200);
    assert_eq!(
        store.seen()[0].header("authorization"),
        Some("Bearer store-token")
    );
    // Written just after the document is in force: polled, not read at once.
    let last_good = gate.dir.path().join("last-good.json");
    eventually(
        Duration::from_secs(5),
        "the last-known-good written",
        || {
            let got = std::fs::read_to_string(&last_good).ok();
            async move { (got.as_deref() == Some(doc("s1", &[]).as_str())).then_some(()) }
        },
    )
    .await;

    // Unchanged: a conditional GET, answered 304.
    let (code, r) = reload(&gate, "").await;
    assert_eq!(
        (code, r["allowlist"]["result"].as_str()),
        (200, Some("not_modified")),
        "{r}"
    );
    assert_eq!(
        store.seen().last().unwrap().header("if-none-match"),
        Some("\"v1\"")
    );

    // A new range becomes effective.
    store.publish(&doc("s2", &["203.0.113.0/24"]));
    let (_, r) = reload(&gate, "").await;
    assert_eq!(r["allowlist"]["result"], "ok", "{r}");
    assert_eq!(status_for(&gate, "203.0.113.50").await, 200);

    // Every failure keeps the last good and is visible in /status and metrics.
    let cases: [(Behaviour, Option<String>, &str, &str); 5] = [
        (Behaviour::status(500), None, "http_error", "500"),
        (Behaviour::Hang, None, "timeout", ""),
        (Behaviour::Truncate, None, "http_error", ""),
        (
            Behaviour::Serve,
            Some(doc("big", &["203.0.113.0/24"; 300])),
            "http_error",
            "4096",
        ),
        (
            Behaviour::Serve,
            Some("{\"sites\": [oops".into()),
            "invalid",
            "",
        ),
    ];
    for (behaviour, body, result, needle) in cases {
        if let Some(b) = body {
            store.publish(&b);
        }
        store.set_behaviour(behaviour.clone());
        let (code, r) = reload(&gate, "").await;
        assert_eq!(code, 409, "{behaviour:?}: {r}");
        assert_eq!(r["allowlist"]["result"], result, "{behaviour:?}: {r}");
        assert!(
            r["allowlist"]["error"].as_str().unwrap().contains(needle),
            "{behaviour:?}: {r}"
        );
        let s = status_json(&gate).await;
        assert_eq!(
            s["allowlist"]["version"], "s2",
            "{behaviour:?}: last good stays"
        );
        assert_eq!(s["allowlist"]["last_error"]["result"], result);
        assert_eq!(
            status_for(&gate, "203.0.113.50").await,
            200,
            "{behaviour:?}"
        );
    }
    // The refused document's ETag was never kept: the store is still asked with the last
    // accepted one, so it judges the document again.
    assert_eq!(
        store.seen().last().unwrap().header("if-none-match"),
        Some("\"v2\"")
    );

    // An empty `sites` list is refused by the shrink guard until an operator forces it.
    store.publish("{\"version\": \"empty\", \"sites\": []}");
    let (code, r) = reload(&gate, "").await;
    assert_eq!(
        (code, r["allowlist"]["result"].as_str()),
        (409, Some("shrink_refused")),
        "{r}"
    );
    let s = status_json(&gate).await;
    assert!(
        s["allowlist"]["shrink_refused"]
            .as_str()
            .unwrap()
            .contains("22"),
        "{s}"
    );
    assert_eq!(status_for(&gate, "192.0.2.1").await, 200);
    let m = gate.metrics().await;
    for result in [
        "ok",
        "not_modified",
        "http_error",
        "timeout",
        "invalid",
        "shrink_refused",
    ] {
        let series = format!("poortwachter_allowlist_sync_total{{result=\"{result}\"}}");
        assert!(
            metric(&m, &series).unwrap_or(0.0) >= 1.0,
            "{series} counted"
        );
    }
    let (code, r) = reload(&gate, "?force_shrink=true").await;
    assert_eq!(
        (code, r["allowlist"]["result"].as_str()),
        (200, Some("ok")),
        "{r}"
    );
    assert_eq!(status_for(&gate, "192.0.2.1").await, 403);
    assert_eq!(
        std::fs::read_to_string(&last_good).unwrap(),
        "{\"version\": \"empty\", \"sites\": []}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_store_is_polled() {
    let up = Upstream::start("a").await;
    let store = AdminStore::versioned(&doc("p1", &[])).await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        source: Some(store.url()),
        allowlist_extra: "poll_interval = \"1s\"".into(),
        ..Default::default()
    })
    .await;
    wait_version(&gate, "p1").await;
    store.publish(&doc("p2", &["203.0.113.0/24"]));
    wait_version(&gate, "p2").await;
    assert_eq!(status_for(&gate, "203.0.113.50").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_down_at_start_serves_last_good_or_fails_closed() {
    let up = Upstream::start("a").await;
    let dead_addr = RefusedAddr::new();
    let dead = format!("http://{}/allowlist.json", dead_addr.addr());
    let state = tempfile::tempdir().unwrap();
    let extra = format!(
        "poll_interval = \"1h\"\nlast_good = \"{}/last-good.json\"",
        state.path().display()
    );

    // Nothing to serve from: not ready, 503 pages, never an allow.
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        source: Some(dead.clone()),
        allowlist_extra: extra.clone(),
        ..Default::default()
    })
    .await;
    eventually(WAIT, "the first fetch failed", || async {
        let s = status_json(&gate).await;
        (s["allowlist"]["last_error"]["result"] == "http_error").then_some(())
    })
    .await;
    assert_eq!(
        client()
            .get(gate.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert_eq!(status_for(&gate, "192.0.2.1").await, 503);
    drop(gate);

    // A store that was up once left a last-known-good behind.
    let store = AdminStore::versioned(&doc("l1", &[])).await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        source: Some(store.url()),
        allowlist_extra: extra.clone(),
        ..Default::default()
    })
    .await;
    wait_version(&gate, "l1").await;
    drop(gate);
    drop(store);

    // Restart with the store down: serving from last-known-good, and saying so.
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        source: Some(dead),
        allowlist_extra: extra.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        client()
            .get(gate.admin_url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(status_for(&gate, "192.0.2.1").await, 200);
    let s = status_json(&gate).await;
    assert_eq!(s["allowlist"]["serving_from"], "last_good");
    assert_eq!(s["allowlist"]["version"], "l1");
    assert_eq!(
        metric(
            &gate.metrics().await,
            "poortwachter_allowlist_from_last_good"
        ),
        Some(1.0)
    );
    drop(gate);

    // The store is back with the same document: the gate starts from the last-known-good copy,
    // and the store's identical answer makes it "from the source" again.
    let store = AdminStore::versioned(&doc("l1", &[])).await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        source: Some(store.url()),
        allowlist_extra: extra,
        ..Default::default()
    })
    .await;
    eventually(WAIT, "confirmed by the source", || async {
        let s = status_json(&gate).await;
        (s["allowlist"]["serving_from"] == "source").then_some(())
    })
    .await;
    assert_eq!(
        metric(
            &gate.metrics().await,
            "poortwachter_allowlist_from_last_good"
        ),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_needs_the_token() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        admin_token: true,
        ..Default::default()
    })
    .await;
    let c = client();
    assert_eq!(
        c.post(gate.admin_url("/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.post(gate.admin_url("/reload"))
            .bearer_auth("wrong-token-0123456789")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(gate.admin_url("/reload"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
    assert_eq!(reload(&gate, "").await.0, 200);
    let untokened = start_gate(GateSpec {
        upstreams: vec![up.addr],
        ..Default::default()
    })
    .await;
    assert_eq!(
        c.post(untokened.admin_url("/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_applies_mode_and_reports_restart_settings() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        admin_token: true,
        ..Default::default()
    })
    .await;
    let config = gate.dir.path().join("poortwachter.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    assert_eq!(status_for(&gate, "203.0.113.50").await, 403);

    // Mode and trusted proxies change at run time.
    std::fs::write(
        &config,
        original.replace("mode = \"enforce\"", "mode = \"report-only\""),
    )
    .unwrap();
    let (code, r) = reload(&gate, "").await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(r["config"]["restart_required"], json!([]));
    assert_eq!(status_for(&gate, "203.0.113.50").await, 200);
    let m = gate.metrics().await;
    assert_eq!(
        metric(&m, "poortwachter_mode{mode=\"report-only\"}"),
        Some(1.0)
    );
    assert_eq!(metric(&m, "poortwachter_mode{mode=\"enforce\"}"), None);

    // An invalid file is refused; the running config stays.
    std::fs::write(
        &config,
        original.replace("mode = \"enforce\"", "mode = \"enforcing\""),
    )
    .unwrap();
    let (code, r) = reload(&gate, "").await;
    assert_eq!(code, 409);
    assert!(
        r["config"]["error"]
            .as_str()
            .unwrap()
            .contains("policy.mode"),
        "{r}"
    );
    assert_eq!(status_for(&gate, "203.0.113.50").await, 200);
    assert_eq!(
        metric(
            &gate.metrics().await,
            "poortwachter_config_reloads_total{result=\"error\"}"
        ),
        Some(1.0)
    );

    // A TOML syntax error is reported on one line here, with the parser's drawing joined.
    std::fs::write(&config, original.replace("threads = 1", "threads = [1")).unwrap();
    let (code, r) = reload(&gate, "").await;
    assert_eq!(code, 409);
    let error = r["config"]["error"].as_str().unwrap();
    assert!(!error.contains('\n'), "{error:?}");
    assert!(error.contains("TOML parse error at line"), "{error}");
    assert!(error.contains(" | "), "the drawing, joined: {error}");

    // A new listen address needs a restart: reported, not silently ignored.
    let moved = original.replace("threads = 1", "threads = 2");
    std::fs::write(&config, moved).unwrap();
    let (_, r) = reload(&gate, "").await;
    assert_eq!(r["config"]["restart_required"], json!(["proxy.threads"]));
    let s = status_json(&gate).await;
    assert_eq!(s["config"]["restart_required"], json!(["proxy.threads"]));
    assert_eq!(
        status_for(&gate, "203.0.113.50").await,
        403,
        "enforce is back"
    );
}

/// Thousands of keep-alive requests while a 100k-range allowlist is replaced 50 times:
/// not one failed request, not one wrong status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_lose_no_request() {
    use crate::synth::synthetic_document;
    let up = Upstream::start("a").await;
    let make = |i: u64| {
        let mut v: Value = serde_json::from_str(&synthetic_document(100_000, i)).unwrap();
        v["version"] = json!(format!("load-{i}"));
        v["sites"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "id": "LOAD00", "ranges": ["192.0.2.0/28"] }));
        v.to_string()
    };
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        allowlist: Some(make(0)),
        allowlist_extra: "poll_interval = \"1h\"".into(),
        ..Default::default()
    })
    .await;
    wait_version(&gate, "load-0").await;
    let file = gate.dir.path().join("allowlist.json");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4 {
        let url = gate.url("/");
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let c = client();
            let (mut ok, mut wrong) = (0u32, Vec::new());
            // Bounded: stops when told, or after 20k requests per worker.
            for i in 0..20_000u32 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let (xff, want) = if (i + w) % 2 == 0 {
                    ("192.0.2.7", 200)
                } else {
                    ("203.0.113.50", 403)
                };
                match c.get(&url).header(XFF, xff).send().await {
                    Ok(r) if r.status().as_u16() == want => {
                        let _ = r.bytes().await;
                        ok += 1;
                    }
                    Ok(r) => wrong.push(format!("{xff}: {}", r.status())),
                    Err(e) => wrong.push(format!("{xff}: {e}")),
                }
            }
            (ok, wrong)
        }));
    }
    for i in 1..=50u64 {
        write_atomically(&file, &make(i));
        wait_version(&gate, &format!("load-{i}")).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = 0;
    for w in workers {
        let (ok, wrong) = w.await.unwrap();
        assert!(
            wrong.is_empty(),
            "failed or wrong answers during swaps: {:?}",
            &wrong[..wrong.len().min(10)]
        );
        total += ok;
    }
    assert!(total >= 1000, "the load loop ran ({total} requests)");
    println!("{total} requests during 50 swaps of a 100k-range allowlist, none failed");
}

/// The gate's own reads of its allowlist file are no change: it must not re-read it in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_file_does_not_trigger_another_read() {
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        allowlist: Some(doc("q1", &[])),
        allowlist_extra: "poll_interval = \"1h\"".into(),
        admin_token: true,
        ..Default::default()
    })
    .await;
    // One explicit sync reads the file; then a change is made and picked up once.
    let (code, _) = reload(&gate, "").await;
    assert_eq!(code, 200);
    write_atomically(
        &gate.dir.path().join("allowlist.json"),
        &doc("q2", &["203.0.113.0/24"]),
    );
    wait_version(&gate, "q2").await;
    // Give a read loop the chance to show itself: a further explicit sync must be the only
    // new attempt (with a loop there would be dozens).
    let before = status_json(&gate).await["allowlist"]["recent_attempts"]
        .as_array()
        .unwrap()
        .len();
    let (code, _) = reload(&gate, "").await;
    assert_eq!(code, 200);
    // Watch for half a second (an observation window, not synchronisation): a read loop runs
    // at dozens of reads a second.
    let window = std::time::Instant::now() + Duration::from_millis(500);
    while std::time::Instant::now() < window {
        let m = gate.metrics().await;
        let syncs: f64 = ["ok", "not_modified"]
            .iter()
            .map(|r| {
                metric(
                    &m,
                    &format!("poortwachter_allowlist_sync_total{{result=\"{r}\"}}"),
                )
                .unwrap_or(0.0)
            })
            .sum();
        assert!(
            syncs <= 6.0,
            "the file was read {syncs} times; before the last reload {before} attempts were listed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
