//! Own-school binding, emergency overrides, the "would be blocked" report and explanations
//! on the admin listener, through the real gate and a real upstream.

mod common;

use common::{client, eventually, metric, start_gate, GateSpec, TestGate, Upstream, TOKEN};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use std::path::PathBuf;
use std::time::Duration;

const XFF: &str = "x-forwarded-for";
const SECRET_1: &str = "first-secret-0123456789abcdef0123";
const SECRET_2: &str = "second-secret-0123456789abcdef012";

/// Keys and overrides live in their own directory, written before the gate starts.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let f = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        f.write("k1.key", &format!("{SECRET_1}\n"));
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write atomically (a new inode), as deployment tools do.
    fn write(&self, name: &str, text: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// `[site_binding]` with one HS256 key, plus a login route that needs no claim.
    fn binding(&self, missing: &str) -> String {
        format!(
            r#"
[site_binding]
cookie = "afname_site"
missing = "{missing}"
[[site_binding.key]]
kid = "k1"
alg = "HS256"
secret_file = "{}"

[[route]]
name = "login"
path_prefix = "/login"
missing = "any-site"

[[route]]
name = "static"
path_prefix = "/static"
action = "bypass"
"#,
            self.path("k1.key").display()
        )
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A site claim signed with `secret` under `kid`, expiring `exp_in` seconds from now.
fn token(site: &str, kid: &str, secret: &str, exp_in: i64) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_string());
    encode(
        &header,
        &serde_json::json!({ "site": site, "exp": now() + exp_in }),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn good(site: &str) -> String {
    token(site, "k1", SECRET_1, 600)
}

/// GET with an address and, optionally, a site-claim cookie; JSON answers.
async fn get(
    gate: &TestGate,
    path: &str,
    xff: &str,
    claim: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut req = client()
        .get(gate.url(path))
        .header(XFF, xff)
        .header("accept", "application/json")
        // A client cannot choose the site the upstream sees.
        .header("x-poortwachter-site", "99ZZ99");
    if let Some(t) = claim {
        req = req.header("cookie", format!("theme=dark; afname_site={t}; lang=nl"));
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

async fn admin_json(gate: &TestGate, path: &str) -> serde_json::Value {
    let resp = client()
        .get(gate.admin_url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_school_passes_and_every_other_claim_is_refused_with_its_reason() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(binding_spec(&files, &up)).await;

    // Own school, from its registered address: through, with the verified site upstream.
    let (code, body) = get(&gate, "/toets", "192.0.2.1", Some(&good("12AB00"))).await;
    assert_eq!(code, 200, "{body}");
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].all("x-poortwachter-site"), ["12AB00"]);

    // A pupil of another school, from that registered address: other_site, never upstream.
    let (code, body) = get(&gate, "/toets", "192.0.2.1", Some(&good("34CD01"))).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (403, Some("other_site")),
        "{body}"
    );
    // ...and that school's own address works for it.
    let (code, _) = get(&gate, "/toets", "198.51.100.70", Some(&good("34CD01"))).await;
    assert_eq!(code, 200);

    // Claim problems, each with its own reason.
    let cases = [
        (None, "claim_missing"),
        (
            Some(token("12AB00", "k1", SECRET_1, -3600)),
            "claim_expired",
        ),
        (Some(token("12AB00", "k1", SECRET_2, 600)), "claim_invalid"),
        (Some(token("12AB00", "k9", SECRET_1, 600)), "claim_invalid"),
        (Some("not.a.token".to_string()), "claim_invalid"),
        (Some(alg_none("12AB00")), "claim_invalid"),
    ];
    for (claim, reason) in &cases {
        let (code, body) = get(&gate, "/toets", "192.0.2.1", claim.as_deref()).await;
        assert_eq!(
            (code, body["reason"].as_str()),
            (403, Some(*reason)),
            "{body}"
        );
    }
    // Within the 60 s leeway an expired claim still counts.
    let (code, _) = get(
        &gate,
        "/toets",
        "192.0.2.1",
        Some(&token("12AB00", "k1", SECRET_1, -30)),
    )
    .await;
    assert_eq!(code, 200);
    // An unregistered address is reported as such, claim or not.
    let (code, body) = get(&gate, "/toets", "203.0.113.50", Some(&good("12AB00"))).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (403, Some("not_registered"))
    );

    // The login route: no claim needed, but still a registered location.
    let (code, _) = get(&gate, "/login", "192.0.2.1", None).await;
    assert_eq!(code, 200);
    assert_eq!(
        up.requests().last().unwrap().all("x-poortwachter-site"),
        ["none"]
    );
    let (code, _) = get(&gate, "/login", "203.0.113.50", None).await;
    assert_eq!(code, 403);
    // A bypass route reaches the upstream from anywhere.
    let (code, _) = get(&gate, "/static/app.js", "203.0.113.50", None).await;
    assert_eq!(code, 200);
    assert_eq!(
        up.requests().len(),
        5,
        "only allowed requests reached the upstream"
    );

    let t = gate.metrics().await;
    assert_eq!(
        metric(&t, "poortwachter_requests_total{decision=\"block\",reason=\"other_site\",route=\"default\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(&t, "poortwachter_site_claims_total{result=\"invalid\"}"),
        Some(4.0)
    );
}

/// A token with `alg: none` and no signature.
fn alg_none(site: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine;
    format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(serde_json::json!({ "site": site, "exp": now() + 600 }).to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_without_a_restart() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(binding_spec(&files, &up)).await;
    let new_token = token("12AB00", "k1", SECRET_2, 600);
    assert_eq!(get(&gate, "/", "192.0.2.1", Some(&new_token)).await.0, 403);
    // The key file changes (a secret rotated by the deployment): picked up by itself.
    files.write("k1.key", SECRET_2);
    eventually(Duration::from_secs(10), "the new key in force", || {
        let (g, t) = (&gate, new_token.clone());
        async move { (get(g, "/", "192.0.2.1", Some(&t)).await.0 == 200).then_some(()) }
    })
    .await;
    assert_eq!(
        get(&gate, "/", "192.0.2.1", Some(&good("12AB00"))).await.0,
        403
    );
    // A broken key file keeps the keys in force.
    files.write("k1.key", "");
    let c = client();
    eventually(
        Duration::from_secs(10),
        "the refused key file counted",
        || {
            let (c, url) = (c.clone(), gate.admin_url("/metrics"));
            async move {
                let t = c.get(url).send().await.ok()?.text().await.ok()?;
                (metric(&t, "poortwachter_site_key_reloads_total{result=\"error\"}")? >= 1.0)
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(get(&gate, "/", "192.0.2.1", Some(&new_token)).await.0, 200);
}

const OVERRIDES: &str = r#"{ "entries": [
  { "action": "allow", "range": "203.0.113.64/29", "site": "12AB00",
    "reason": "new fibre line, admin store not updated yet", "expires": "EXPIRES" },
  { "action": "allow", "range": "203.0.113.128/29",
    "reason": "school unknown yet", "expires": "EXPIRES" },
  { "action": "deny", "range": "192.0.2.8/29", "reason": "reported misuse", "expires": "EXPIRES" }
] }"#;

fn overrides_in(days: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    OVERRIDES.replace(
        "EXPIRES",
        &at.format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    )
}

/// A gate in front of `up` with the site binding of [`Files::binding`].
fn binding_spec(files: &Files, up: &Upstream) -> GateSpec {
    GateSpec {
        upstreams: vec![up.addr],
        extra: files.binding("block"),
        ..Default::default()
    }
}

fn overrides_spec(files: &Files, up: &Upstream, extra: String) -> GateSpec {
    files.write("overrides.json", &overrides_in(2));
    GateSpec {
        upstreams: vec![up.addr],
        allowlist_extra: format!("overrides = \"{}\"", files.path("overrides.json").display()),
        extra,
        admin_token: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_allow_deny_and_reload_keeping_the_last_good_file() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(overrides_spec(&files, &up, files.binding("block"))).await;

    // An allow for 12AB00 lets its pupils in from the new line; not another school's.
    assert_eq!(
        get(&gate, "/", "203.0.113.65", Some(&good("12AB00")))
            .await
            .0,
        200
    );
    let (code, body) = get(&gate, "/", "203.0.113.65", Some(&good("34CD01"))).await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("other_site")));
    // An allow without a site never satisfies own-school binding...
    let (code, body) = get(&gate, "/", "203.0.113.129", Some(&good("12AB00"))).await;
    assert_eq!((code, body["reason"].as_str()), (403, Some("other_site")));
    // ...but is a registered location where no claim is needed.
    assert_eq!(get(&gate, "/login", "203.0.113.129", None).await.0, 200);
    // A deny wins over the registration of 12AB00's own address.
    let (code, body) = get(&gate, "/", "192.0.2.9", Some(&good("12AB00"))).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (403, Some("override_deny"))
    );

    let status = admin_json(&gate, "/status").await;
    let o = &status["overrides"];
    assert!(
        o["file"].as_str().unwrap().ends_with("overrides.json"),
        "{o}"
    );
    assert_eq!(o["entries"].as_array().map(Vec::len), Some(3), "{o}");
    assert!(o["last_error"].is_null(), "{o}");

    // A broken file is refused and the last good one stays in force.
    files.write("overrides.json", "{ \"entries\": [ ");
    let status = eventually(Duration::from_secs(10), "the refusal in /status", || {
        let g = &gate;
        async move {
            let s = admin_json(g, "/status").await;
            (!s["overrides"]["last_error"].is_null()).then_some(s)
        }
    })
    .await;
    assert!(
        status["overrides"]["last_error"]
            .as_str()
            .unwrap()
            .contains("overrides.json"),
        "the error names the file: {status}"
    );
    assert_eq!(
        get(&gate, "/", "203.0.113.65", Some(&good("12AB00")))
            .await
            .0,
        200
    );

    // The deny is lifted in a new file: in force by itself.
    files.write(
        "overrides.json",
        &overrides_in(2).replace(
            "\"deny\", \"range\": \"192.0.2.8/29\"",
            "\"deny\", \"range\": \"198.51.100.0/24\"",
        ),
    );
    eventually(Duration::from_secs(10), "the new overrides in force", || {
        let g = &gate;
        async move {
            (get(g, "/", "192.0.2.9", Some(&good("12AB00"))).await.0 == 200).then_some(())
        }
    })
    .await;
    assert!(admin_json(&gate, "/status").await["overrides"]["last_error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_beyond_the_cap_is_skipped_and_named() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let spec = overrides_spec(&files, &up, String::new());
    // Written after the spec: 30 days is beyond the default cap of 14.
    files.write("overrides.json", &overrides_in(30));
    let gate = start_gate(spec).await;
    let (code, _) = get(&gate, "/", "203.0.113.65", None).await;
    assert_eq!(code, 403, "a capped entry does not count");
    let status = admin_json(&gate, "/status").await;
    let skipped = &status["overrides"]["quarantined"][0];
    assert_eq!(
        (
            skipped["entry"].as_u64(),
            skipped["field"].as_str(),
            skipped["kind"].as_str()
        ),
        (Some(0), Some("expires"), Some("expiry_too_far")),
        "the skipped entry is named: {status}"
    );
    assert!(skipped["problem"]
        .as_str()
        .unwrap()
        .contains("max_override_days"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_only_lists_the_schools_that_would_be_blocked() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        mode: "report-only",
        admin_token: true,
        ..binding_spec(&files, &up)
    })
    .await;
    // All let through; three would have been blocked.
    for (xff, claim) in [
        ("192.0.2.1", Some(good("12AB00"))),
        ("192.0.2.1", Some(good("34CD01"))),
        ("192.0.2.2", Some(good("34CD01"))),
        ("192.0.2.1", None),
        ("203.0.113.50", None),
    ] {
        assert_eq!(get(&gate, "/", xff, claim.as_deref()).await.0, 200);
    }
    assert_eq!(up.requests().len(), 5);
    // The report is token-protected.
    let resp = client()
        .get(gate.admin_url("/would-block"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let r = admin_json(&gate, "/would-block").await;
    let sites = r["sites"].as_array().unwrap();
    let other = sites
        .iter()
        .find(|s| s["site"] == "34CD01")
        .expect("34CD01 listed");
    assert_eq!(other["count"], 2, "{r}");
    assert_eq!(other["reasons"][0]["reason"], "other_site");
    // Addresses in the privacy form of the logs (truncated by default), never in full.
    assert_eq!(other["reasons"][0]["address"], "192.0.2.0/24", "{r}");
    assert!(other["first_seen"].is_string() && other["last_seen"].is_string());
    let own = sites
        .iter()
        .find(|s| s["site"] == "12AB00")
        .expect("12AB00 listed");
    assert_eq!(own["reasons"][0]["reason"], "claim_missing", "{r}");
    let unknown = sites
        .iter()
        .find(|s| s["site"].is_null())
        .expect("unknown school listed");
    assert_eq!(unknown["reasons"][0]["reason"], "not_registered");
    assert!(!r.to_string().contains("203.0.113.50"), "{r}");

    // Resetting is a mutation: always the token.
    let resp = client()
        .post(gate.admin_url("/would-block/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client()
        .post(gate.admin_url("/would-block/reset"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(admin_json(&gate, "/would-block").await["entries"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_check_says_whether_the_address_is_registered_for_this_school() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(binding_spec(&files, &up)).await;
    const CHECK: &str = "/.well-known/poortwachter/check";
    let (code, v) = get(&gate, CHECK, "192.0.2.1", Some(&good("12AB00"))).await;
    assert_eq!(code, 200);
    assert_eq!(
        (v["registered"].as_bool(), v["own_school"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );
    let (_, v) = get(&gate, CHECK, "192.0.2.1", Some(&good("34CD01"))).await;
    assert_eq!(
        (v["registered"].as_bool(), v["own_school"].as_bool()),
        (Some(true), Some(false)),
        "{v}"
    );
    assert_eq!(v["register"], "192.0.2.1", "{v}");
    let text = v.to_string();
    assert!(
        !text.contains("12AB00") && !text.contains("34CD01"),
        "no school ids: {text}"
    );
    // Without a claim: registered for some school, no word about which.
    let (_, v) = get(&gate, CHECK, "192.0.2.1", None).await;
    assert_eq!(
        (v["registered"].as_bool(), v.get("own_school")),
        (Some(true), None),
        "{v}"
    );
    let (_, v) = get(&gate, CHECK, "203.0.113.50", Some(&good("12AB00"))).await;
    assert_eq!(v["registered"].as_bool(), Some(false), "{v}");
    // Dutch HTML by default.
    let html = client()
        .get(gate.url(CHECK))
        .header(XFF, "192.0.2.1")
        .header("cookie", format!("afname_site={}", good("12AB00")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("geregistreerd voor jouw school"), "{html}");
    assert_eq!(up.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_listener_explains_a_request_like_the_command_line() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(overrides_spec(&files, &up, files.binding("block"))).await;
    let explain = |params: Vec<(&'static str, String)>| {
        let url = gate.admin_url("/explain");
        async move {
            let resp = client()
                .get(url)
                .query(&params)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let code = resp.status().as_u16();
            (code, resp.text().await.unwrap())
        }
    };
    let (code, body) = explain(vec![
        ("peer", "127.0.0.1".into()),
        ("header", "X-Forwarded-For: 192.0.2.1".into()),
        ("header", format!("Cookie: afname_site={}", good("34CD01"))),
        ("path", "/toets".into()),
    ])
    .await;
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["client_ip"], "192.0.2.1");
    assert_eq!(v["decision"], "block");
    assert_eq!(v["reason"], "other_site");
    assert_eq!(v["sites"], serde_json::json!(["12AB00"]));
    assert_eq!(v["claim"]["result"], "valid");
    assert_eq!(v["claim"]["site"], "34CD01");
    assert_eq!(v["route"], "default");

    // An override shows up with its reason; `at` after its expiry changes the answer.
    let (_, body) = explain(vec![
        ("peer", "127.0.0.1".into()),
        ("header", "X-Forwarded-For: 192.0.2.9".into()),
        ("header", format!("Cookie: afname_site={}", good("12AB00"))),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["reason"], "override_deny", "{v}");
    assert_eq!(v["overrides"][0]["reason"], "reported misuse", "{v}");
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (_, body) = explain(vec![
        ("peer", "127.0.0.1".into()),
        ("header", "X-Forwarded-For: 192.0.2.9".into()),
        ("path", "/login".into()),
        ("at", later),
    ])
    .await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v["reason"].as_str(), v["route"].as_str()),
        (Some("registered"), Some("login")),
        "{v}"
    );
    assert_eq!(v["claim"]["result"], "missing");
    assert_eq!(v["claim"]["missing"], "any-site");

    // Bad input is named; no token, no explanation.
    let (code, body) = explain(vec![("peer", "not-an-ip".into())]).await;
    assert_eq!(code, 400);
    assert!(body.contains("not-an-ip"), "{body}");
    let resp = client()
        .get(gate.admin_url("/explain?peer=127.0.0.1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_local_file_is_reported_and_the_previous_one_stays() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(overrides_spec(&files, &up, files.binding("block"))).await;
    let reload = || async {
        let resp = client()
            .post(gate.admin_url("/reload"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let code = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.unwrap();
        (code, body)
    };
    // An operator edits the overrides file in an emergency and reloads: a broken file is
    // not a success, and the previous overrides stay in force.
    files.write("overrides.json", "{ \"entries\": [ ");
    let (code, body) = reload().await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body["config"]["overrides"]
            .as_str()
            .unwrap()
            .contains("overrides.json"),
        "{body}"
    );
    assert_eq!(
        get(&gate, "/", "203.0.113.65", Some(&good("12AB00")))
            .await
            .0,
        200
    );
    files.write("overrides.json", &overrides_in(2));
    let (code, body) = reload().await;
    assert_eq!(code, 200, "{body}");

    // A key file that disappears: refused, named in /status, the keys in force stay.
    std::fs::remove_file(files.path("k1.key")).unwrap();
    let (code, body) = reload().await;
    assert_eq!(
        code, 409,
        "the config names a key file that is gone: {body}"
    );
    let status = eventually(Duration::from_secs(10), "the key error in /status", || {
        let g = &gate;
        async move {
            let s = admin_json(g, "/status").await;
            (!s["site_binding"]["last_error"].is_null()).then_some(s)
        }
    })
    .await;
    let sb = &status["site_binding"];
    assert!(
        sb["last_error"].as_str().unwrap().contains("k1.key"),
        "{sb}"
    );
    assert_eq!(
        sb["keys_in_force"],
        serde_json::json!(["k1 (HS256)"]),
        "{sb}"
    );
    assert_eq!(
        get(&gate, "/", "192.0.2.1", Some(&good("12AB00"))).await.0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_in_a_header_and_a_global_any_site() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let extra = files
        .binding("any-site")
        .replace("cookie = \"afname_site\"", "header = \"x-afname-site\"");
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        extra,
        admin_token: true,
        ..Default::default()
    })
    .await;
    let send = |xff: &'static str, value: Option<String>| {
        let url = gate.url("/toets");
        async move {
            let mut req = client()
                .get(url)
                .header(XFF, xff)
                .header("accept", "application/json");
            if let Some(v) = value {
                req = req.header("x-afname-site", v);
            }
            let resp = req.send().await.unwrap();
            let code = resp.status().as_u16();
            (code, resp.json::<serde_json::Value>().await.ok())
        }
    };
    // The global `missing = "any-site"`: no claim, any registered location.
    assert_eq!(send("198.51.100.70", None).await.0, 200);
    assert_eq!(
        up.requests().last().unwrap().all("x-poortwachter-site"),
        ["none"]
    );
    // A valid claim (with or without `Bearer `) binds even so.
    assert_eq!(
        send("192.0.2.1", Some(format!("Bearer {}", good("12AB00"))))
            .await
            .0,
        200
    );
    assert_eq!(
        up.requests().last().unwrap().all("x-poortwachter-site"),
        ["12AB00"]
    );
    let (code, body) = send("192.0.2.1", Some(good("34CD01"))).await;
    assert_eq!(
        (code, body.unwrap()["reason"].as_str().map(str::to_string)),
        (403, Some("other_site".into()))
    );
    // An unregistered address stays blocked without a claim.
    assert_eq!(send("203.0.113.50", None).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_endpoints_need_a_configured_token() {
    let files = Files::new();
    let up = Upstream::start("a").await;
    let gate = start_gate(GateSpec {
        mode: "report-only",
        ..binding_spec(&files, &up)
    })
    .await;
    assert_eq!(get(&gate, "/", "192.0.2.1", None).await.0, 200);
    for path in ["/would-block", "/explain?peer=127.0.0.1"] {
        let resp = client().get(gate.admin_url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 403, "{path}");
        assert!(resp.text().await.unwrap().contains("token_file"));
    }
}

/// A Kubernetes ConfigMap as the kubelet mounts it: `overrides.json` → `..data/overrides.json`,
/// `..data` → a timestamped directory. An update writes a new directory and swaps `..data`
/// in one rename; the gate follows it, even when the new file has the old one's size and
/// modification time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrides_follow_a_configmap_symlink_swap() {
    use std::os::unix::fs::symlink;
    let files = Files::new();
    let up = Upstream::start("a").await;
    let mount = files.path("configmap");
    let version = |name: &str, text: &str| {
        let dir = mount.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("overrides.json"), text).unwrap();
        dir.join("overrides.json")
    };
    let first = version("..2026_12_07_10_00_00.1", &overrides_in(2));
    symlink("..2026_12_07_10_00_00.1", mount.join("..data")).unwrap();
    symlink("..data/overrides.json", mount.join("overrides.json")).unwrap();
    let gate = start_gate(GateSpec {
        upstreams: vec![up.addr],
        allowlist_extra: format!("overrides = \"{}\"", mount.join("overrides.json").display()),
        admin_token: true,
        ..Default::default()
    })
    .await;
    assert_eq!(get(&gate, "/", "203.0.113.65", None).await.0, 200);
    assert_eq!(get(&gate, "/", "203.0.113.73", None).await.0, 403);
    // The gate's first look at the files reads them once more; the swap must come after
    // it, or it would be read by that look and not noticed as a change.
    let loaded = admin_json(&gate, "/status").await["overrides"]["loaded_at"].clone();
    eventually(
        Duration::from_secs(10),
        "the first look at the files",
        || {
            let (g, loaded) = (&gate, &loaded);
            async move {
                let s = admin_json(g, "/status").await;
                (s["overrides"]["loaded_at"] != *loaded).then_some(())
            }
        },
    )
    .await;

    // The new version moves the allow to the next /29: same length, same mtime.
    let text = std::fs::read_to_string(&first)
        .unwrap()
        .replace("203.0.113.64/29", "203.0.113.72/29");
    let second = version("..2026_12_07_10_05_00.2", &text);
    let mtime = std::fs::metadata(&first).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&second)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&first).unwrap().len(),
        std::fs::metadata(&second).unwrap().len()
    );
    symlink("..2026_12_07_10_05_00.2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    std::fs::remove_dir_all(mount.join("..2026_12_07_10_00_00.1")).unwrap();

    eventually(
        Duration::from_secs(10),
        "the swapped overrides in force",
        || {
            let g = &gate;
            async move { (get(g, "/", "203.0.113.73", None).await.0 == 200).then_some(()) }
        },
    )
    .await;
    assert_eq!(get(&gate, "/", "203.0.113.65", None).await.0, 403);
    let status = admin_json(&gate, "/status").await;
    assert!(status["overrides"]["last_error"].is_null(), "{status}");
    assert!(
        status["overrides"]["entries"][0]["range"] == "203.0.113.72/29",
        "{status}"
    );
}
