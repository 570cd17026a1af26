//! The binary's command line: `check`, `explain` and `run` (signals), as an operator uses them.

mod common;

use common::ports::{says_addr_in_use, Family, PortRetry, PortTaken};
use common::{eventually_blocking, RefusedAddr, ALLOWLIST};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_poortwachter"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run poortwachter")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A config in a temp dir with the given allowlist and extra TOML. `{upstream}` left in
/// `body` becomes [`NEVER_CONTACTED`].
fn write_config(dir: &Path, body: &str, allowlist: &str) -> PathBuf {
    let al = dir.join("allowlist.json");
    std::fs::write(&al, allowlist).unwrap();
    let cfg = dir.join("gate.toml");
    let body = body
        .replace("{allowlist}", &al.display().to_string())
        .replace("{upstream}", NEVER_CONTACTED);
    std::fs::write(&cfg, body).unwrap();
    cfg
}

/// The upstream of configs that are only checked or explained, never run.
const NEVER_CONTACTED: &str = "192.0.2.80:8080";

const BASE: &str = r#"
[upstream]
addrs = ["{upstream}"]
[client_ip]
trusted_proxies = ["10.0.0.0/8"]
[allowlist]
source = "{allowlist}"
"#;

#[test]
fn every_shipped_config_checks() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = run(&["check", "--config", path.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {}", path.display(), text(&out));
            n += 1;
        }
    }
    assert!(n >= 2, "expected the shipped configs, found {n}");
}

#[test]
fn check_names_unknown_keys_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = RefusedAddr::new();
    let cases = [
        (
            format!("{BASE}\n[proxy]\nlisten_on = [\"192.0.2.80:8443\"]\n"),
            vec!["gate.toml", "listen_on"],
        ),
        (
            BASE.replace("10.0.0.0/8", "0.0.0.0/0"),
            vec!["client_ip.trusted_proxies[0]", "0.0.0.0/0"],
        ),
        (
            BASE.replace("10.0.0.0/8", "::/0"),
            vec!["client_ip.trusted_proxies[0]", "::/0"],
        ),
        (
            BASE.replace("10.0.0.0/8", "10.0.0.1/8"),
            vec!["host bits", "10.0.0.0/8"],
        ),
        (
            BASE.replace("10.0.0.0/8", "tien"),
            vec!["client_ip.trusted_proxies[0]", "tien"],
        ),
        (
            format!("{BASE}\n[policy]\nmode = \"enforcing\"\n"),
            vec!["policy.mode", "enforcing"],
        ),
        (
            format!("{BASE}\n[policy]\nenforce_from = \"11-01-2027\"\n"),
            vec!["policy.enforce_from", "11-01-2027"],
        ),
        (
            BASE.replace(
                "source = \"{allowlist}\"",
                "source = \"{allowlist}\"\noverrides = \"/tmp/x\"",
            ),
            vec!["allowlist.overrides", "/tmp/x", "cannot read"],
        ),
        (
            BASE.replace(
                "source = \"{allowlist}\"",
                "source = \"{allowlist}\"\nmax_shrink = 1.5",
            ),
            vec!["allowlist.max_shrink", "1.5"],
        ),
        (
            BASE.replace(
                "source = \"{allowlist}\"",
                "source = \"{allowlist}\"\ntoken_file = \"/t\"",
            ),
            vec!["allowlist.token_file", "https://"],
        ),
        (
            format!("{BASE}\n[[route]]\npath_prefix = \"/static/\"\naction = \"bypass\"\nmissing = \"any-site\"\n"),
            vec!["route[0].missing", "only meaningful with [site_binding]"],
        ),
        (
            BASE.replace("{allowlist}", "http://admin.example/allowlist"),
            vec![
                "allowlist.source",
                "http://admin.example/allowlist",
                "loopback",
            ],
        ),
        (
            BASE.replace(
                "{allowlist}",
                &format!("http://{}/allowlist.json", store.addr()),
            ),
            vec!["no allowlist.last_good", "--fetch"],
        ),
        (
            BASE.replace("{upstream}", "localhost"),
            vec!["upstream.addrs", "\"localhost\"", "name:port"],
        ),
        (
            format!("{BASE}\n[admin]\nlisten = \"0.0.0.0:9090\"\n"),
            vec!["admin.token_file"],
        ),
    ];
    for (body, needles) in cases {
        let cfg = write_config(dir.path(), &body, ALLOWLIST);
        let out = run(&["check", "--config", cfg.to_str().unwrap()]);
        assert!(!out.status.success(), "should fail: {body}");
        let t = text(&out);
        for n in needles {
            assert!(t.contains(n), "error should mention {n:?}: {t}");
        }
    }
}

#[test]
fn check_reports_quarantine_and_overlap_and_strict_fails() {
    let dir = tempfile::tempdir().unwrap();
    let body = BASE.replace("10.0.0.0/8", "198.51.100.0/24");
    let cfg = write_config(dir.path(), &body, ALLOWLIST);
    let out = run(&["check", "--config", cfg.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("quarantined entry: site 34CD01"), "{t}");
    assert!(t.contains("192.0.2.5/24"), "{t}");
    assert!(
        t.contains("overlaps allowlisted range 198.51.100.7/32 of site 12AB00"),
        "{t}"
    );
    assert!(t.contains("unknown field"), "{t}");
    let out = run(&["check", "--config", cfg.to_str().unwrap(), "--strict"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// A TOML mistake is shown as the parser draws it (the line, a caret, the problem), under
/// one first line that names the file, with exit code 1.
#[test]
fn check_shows_a_toml_mistake_as_the_parser_draws_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("[proxy]\nlisten = [\"127.0.0.1:8080\" 8081]\n{BASE}"),
        ALLOWLIST,
    );
    let out = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    let first = format!(
        "error: {}: TOML parse error at line 2, column",
        cfg.display()
    );
    assert!(lines[0].starts_with(&first), "{err}");
    assert!(
        lines.iter().any(|l| l.starts_with("2 | listen = [")),
        "the line itself: {err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("|") && l.contains('^')),
        "a caret under it: {err}"
    );
    assert!(!lines[0].contains(" | "), "not joined into one line: {err}");
}

#[test]
fn check_rejects_a_broken_allowlist_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), BASE, "{\"sites\": [");
    let out = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    assert!(t.contains("allowlist.json"), "{t}");
    let cfg = write_config(dir.path(), BASE, "{\"version\": \"x\"}");
    let out = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("sites"), "{}", text(&out));
}

fn explain(cfg: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["explain", "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "explain exits 0 whatever the decision: {}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// `explain --proxy-protocol`: what a listener behind a TCP balancer makes of its header.
#[test]
fn explain_shows_the_effect_of_a_proxy_protocol_header() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{BASE}\n[[proxy.listener]]\naddr = \"127.0.0.1:8082\"\nproxy_protocol = \"v1\"\nproxy_protocol_from = [\"10.0.0.5\"]\n"
    );
    let cfg = write_config(dir.path(), &body, ALLOWLIST);
    let line = "PROXY TCP4 192.0.2.3 10.0.0.9 40000 443";
    let out = explain(&cfg, &["--peer", "10.0.0.5", "--proxy-protocol", line]);
    assert_eq!(out["client_ip"], "192.0.2.3", "{out:#}");
    assert_eq!(out["decision"], "allow", "{out:#}");
    assert_eq!(
        out["proxy_protocol"]["source"], "192.0.2.3:40000",
        "{out:#}"
    );
    assert_eq!(
        out["proxy_protocol"]["listener"], "127.0.0.1:8082",
        "{out:#}"
    );
    // The header's source is the client; the balancer's address no longer plays a part.
    let out = explain(
        &cfg,
        &[
            "--peer",
            "10.0.0.5",
            "--proxy-protocol",
            "PROXY TCP4 203.0.113.9 10.0.0.9 1 443\r\n",
        ],
    );
    assert_eq!(
        (&out["client_ip"], &out["decision"]),
        (&"203.0.113.9".into(), &"block".into()),
        "{out:#}"
    );
    for (peer, line, reason) in [
        (
            "10.0.0.5",
            "PROXY TCP4 010.0.0.1 10.0.0.9 1 443",
            "v1_malformed",
        ),
        (
            "10.0.0.5",
            "PROXY TCP6 192.0.2.3 10.0.0.9 1 443",
            "v1_malformed",
        ),
        ("10.0.0.6", line, "peer_not_allowed"),
    ] {
        let out = explain(&cfg, &["--peer", peer, "--proxy-protocol", line]);
        assert_eq!(out["proxy_protocol"]["refused"], reason, "{line}: {out:#}");
        assert_eq!(
            out["connection"], "closed before any HTTP is read",
            "{out:#}"
        );
        assert!(out.get("decision").is_none(), "{out:#}");
    }
}

#[test]
fn explain_answers_like_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let doc = r#"{"sites": [{"id": "12AB00", "ranges": ["192.0.2.0/28"],
        "exceptions": [{"range": "203.0.113.9", "not_before": "2026-12-01T08:00:00+01:00", "not_after": "2026-12-05T17:00:00+01:00"}]}]}"#;
    let cfg = write_config(dir.path(), BASE, doc);

    let v = explain(
        &cfg,
        &[
            "--peer",
            "10.1.2.3",
            "--header",
            "X-Forwarded-For: 198.51.100.1, 192.0.2.3",
        ],
    );
    assert_eq!(v["client_ip"], "192.0.2.3");
    assert_eq!(v["client_ip_source"], "x-forwarded-for");
    assert_eq!(v["sites"], serde_json::json!(["12AB00"]));
    assert_eq!(v["route"], "default");
    assert_eq!(v["route_action"], "enforce");
    assert_eq!(v["mode"], "enforce");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["would_block"], false);
    assert_eq!(v["reason"], "registered");

    let v = explain(
        &cfg,
        &[
            "--peer",
            "203.0.113.50",
            "--header",
            "X-Forwarded-For: 192.0.2.3",
        ],
    );
    assert_eq!(v["client_ip"], "203.0.113.50");
    assert_eq!(v["client_ip_source"], "peer");
    assert_eq!(v["decision"], "block");
    assert_eq!(v["reason"], "not_registered");

    let v = explain(
        &cfg,
        &[
            "--peer",
            "10.0.0.1",
            "--header",
            "x-forwarded-for: 192.0.2.03",
        ],
    );
    assert!(v["client_ip"].is_null());
    assert_eq!(v["reason"], "unresolvable_client_ip");

    let v = explain(&cfg, &["--peer", "unix"]);
    assert_eq!(v["reason"], "unresolvable_client_ip");

    // Exceptions are judged at --at, in the half-open window.
    let at = |t: &str| explain(&cfg, &["--peer", "203.0.113.9", "--at", t]);
    assert_eq!(at("2026-12-01T07:59:59Z")["reason"], "exception");
    assert_eq!(at("2026-12-01T06:59:59Z")["reason"], "not_registered");
    assert_eq!(at("2026-12-05T15:59:59Z")["reason"], "exception");
    assert_eq!(at("2026-12-05T16:00:00Z")["reason"], "not_registered");

    // A trusted proxy is never a registered location.
    let v = explain(&cfg, &["--peer", "10.9.9.9"]);
    assert_eq!(v["client_ip"], "10.9.9.9");
    assert_eq!(v["reason"], "not_registered");
}

#[test]
fn explain_covers_routes_and_the_rollout_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let body = format!(
        "{BASE}\n[policy]\nmode = \"enforce\"\nenforce_from = \"2027-01-11T00:00:00+01:00\"\n\
         [[route]]\nname = \"static\"\npath_prefix = \"/static/\"\naction = \"bypass\"\n\
         [[route]]\nname = \"beheer\"\nhost = \"afname.example.nl\"\npath_prefix = \"/beheer\"\naction = \"block\"\n"
    );
    let cfg = write_config(dir.path(), &body, ALLOWLIST);
    let v = explain(
        &cfg,
        &[
            "--peer",
            "203.0.113.50",
            "--path",
            "/static/app.js",
            "--at",
            "2027-02-01T09:00:00+01:00",
        ],
    );
    assert_eq!(
        (
            v["route"].as_str(),
            v["decision"].as_str(),
            v["reason"].as_str()
        ),
        (Some("static"), Some("bypass"), Some("bypass_route"))
    );
    let v = explain(
        &cfg,
        &[
            "--peer",
            "203.0.113.50",
            "--path",
            "/beheer/x",
            "--host",
            "Afname.example.nl:443",
            "--at",
            "2027-02-01T09:00:00+01:00",
        ],
    );
    assert_eq!(
        (
            v["route"].as_str(),
            v["reason"].as_str(),
            v["decision"].as_str()
        ),
        (Some("beheer"), Some("route_blocked"), Some("block"))
    );
    // Before enforce_from the gate is report-only.
    let v = explain(
        &cfg,
        &[
            "--peer",
            "203.0.113.50",
            "--at",
            "2027-01-10T23:59:59+01:00",
        ],
    );
    assert_eq!(
        (
            v["mode"].as_str(),
            v["decision"].as_str(),
            v["would_block"].as_bool()
        ),
        (Some("report-only"), Some("allow"), Some(true))
    );
    let v = explain(
        &cfg,
        &[
            "--peer",
            "203.0.113.50",
            "--at",
            "2027-01-11T00:00:00+01:00",
        ],
    );
    assert_eq!(
        (v["mode"].as_str(), v["decision"].as_str()),
        (Some("enforce"), Some("block"))
    );
    assert_eq!(v["detail"]["configured_mode"], "enforce");
    // A path the proxy refuses is shown as refused.
    let v = explain(
        &cfg,
        &["--peer", "192.0.2.1", "--path", "/static/../beheer"],
    );
    assert!(
        v["detail"]["path_refused"].as_str().unwrap().contains(".."),
        "{v}"
    );
}

#[test]
fn explain_in_report_only_mode() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!("{BASE}\n[policy]\nmode = \"report-only\"\n"),
        ALLOWLIST,
    );
    let v = explain(&cfg, &["--peer", "203.0.113.50"]);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["would_block"], true);
    assert_eq!(v["reason"], "not_registered");
    assert_eq!(v["mode"], "report-only");
}

#[test]
fn explain_refuses_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), BASE, ALLOWLIST);
    let out = run(&[
        "explain",
        "--config",
        cfg.to_str().unwrap(),
        "--peer",
        "not-an-ip",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not-an-ip"));
    let out = run(&[
        "explain",
        "--config",
        cfg.to_str().unwrap(),
        "--peer",
        "192.0.2.1",
        "--at",
        "tomorrow",
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("tomorrow"));
}

/// The gate as a process (`poortwachter run`), ready to serve.
struct Running {
    child: std::process::Child,
    proxy: u16,
    admin: u16,
    config: PathBuf,
    dir: tempfile::TempDir,
    /// The upstream when none is given: refused for as long as the process runs.
    _dead_upstream: RefusedAddr,
}

impl Running {
    /// Start `run` with the given grace period in front of `upstream` (default: an address
    /// that refuses), on reserved ports; started again on new ones when a port was taken.
    fn start(grace: &str, upstream: Option<u16>) -> Running {
        Running::start_with(grace, upstream, "json")
    }

    /// [`Running::start`] with the given `[log] format`.
    fn start_with(grace: &str, upstream: Option<u16>, format: &str) -> Running {
        Running::start_full(grace, upstream, format, "enforce")
    }

    /// [`Running::start_with`] with the given `[policy] mode`. The admin token is
    /// `common::TOKEN`.
    fn start_full(grace: &str, upstream: Option<u16>, format: &str, mode: &str) -> Running {
        let dead = RefusedAddr::new();
        let upstream = upstream.map_or(dead.addr(), |p| SocketAddr::from(([127, 0, 0, 1], p)));
        let mut retry = PortRetry::new("poortwachter run");
        loop {
            let reserved = retry.reserve(&[Family::V4, Family::V4]);
            let [proxy, admin] = reserved.ports()[..] else {
                unreachable!("two ports reserved")
            };
            let dir = tempfile::tempdir().unwrap();
            let socket = dir.path().join("upgrade.sock");
            let socket = socket.display();
            let token = dir.path().join("admin-token");
            std::fs::write(&token, common::TOKEN).unwrap();
            let token = token.display();
            let body = format!(
                "[proxy]\nlisten = [\"127.0.0.1:{proxy}\"]\nthreads = 1\ngrace_period = \"{grace}\"\nshutdown_timeout = \"1s\"\nupgrade_socket = \"{socket}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken_file = \"{token}\"\n[log]\nformat = \"{format}\"\n[policy]\nmode = \"{mode}\"\n{BASE}"
            )
            .replace("{upstream}", &upstream.to_string())
            // curl-like clients on this machine play the school.
            .replace("10.0.0.0/8", "127.0.0.1/32");
            let cfg = write_config(dir.path(), &body, ALLOWLIST);
            reserved.release();
            let mut child = bin()
                .args(["run", "--config", cfg.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            match wait_ready(&mut child, proxy, admin) {
                Ok(()) => {
                    return Running {
                        child,
                        proxy,
                        admin,
                        config: cfg,
                        dir,
                        _dead_upstream: dead,
                    }
                }
                Err(taken) => retry.taken(taken),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Wait for the exit; panics after `limit`.
    fn wait_exit(&mut self, limit: Duration) -> (std::process::ExitStatus, Duration, String) {
        let started = Instant::now();
        let status = eventually_blocking(limit, "the process exited", || {
            self.child.try_wait().unwrap()
        });
        (status, started.elapsed(), stderr_of(&mut self.child))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait until the process answers on both ports and is ready. `Err` when it could not
/// bind a port because someone else took it; any other failure to start panics.
fn wait_ready(child: &mut std::process::Child, proxy: u16, admin: u16) -> Result<(), PortTaken> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let exited = child.try_wait().unwrap();
        let timed_out = Instant::now() > deadline;
        if exited.is_none() && timed_out {
            let _ = child.kill();
            let _ = child.wait();
        }
        if exited.is_some() || timed_out {
            let err = stderr_of(child);
            if says_addr_in_use(&err) {
                return Err(PortTaken(err));
            }
            panic!("the gate did not start ({exited:?}): {err}");
        }
        let ready = http_get(admin, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200"));
        if ready && std::net::TcpStream::connect(("127.0.0.1", proxy)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}

/// An upstream that holds one request until the test releases it: a request in flight
/// during shutdown. `arrived` hears when the request is there; a send on `release` lets
/// the answer go.
struct HeldUpstream {
    port: u16,
    arrived: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

fn held_upstream() -> HeldUpstream {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (arrived_tx, arrived) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = arrived_tx.send(());
            // A test that fails before releasing must not leave this thread behind.
            if release_rx.recv_timeout(Duration::from_secs(60)).is_ok() {
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\ndone",
                );
            }
        }
    });
    HeldUpstream {
        port,
        arrived,
        release,
    }
}

/// SIGTERM: the listener closes, the request in flight still completes, and the process
/// exits after the grace period (plus the runtime shutdown timeout).
#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let upstream = held_upstream();
    let mut gate = Running::start("3s", Some(upstream.port));
    let proxy = gate.proxy;
    let in_flight = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    // The request is at the upstream before the signal.
    upstream
        .arrived
        .recv_timeout(Duration::from_secs(10))
        .expect("the request reached the upstream");
    gate.signal("-TERM");
    // New connections are refused while the old request waits at the upstream.
    eventually_blocking(
        Duration::from_secs(3),
        "the proxy listener closes after SIGTERM",
        || {
            std::net::TcpStream::connect(("127.0.0.1", proxy))
                .is_err()
                .then_some(())
        },
    );
    // Only now does the upstream answer: the request was in flight during the shutdown.
    upstream.release.send(()).unwrap();
    let answer = in_flight.join().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"),
        "in-flight request completed: {answer}"
    );
    let (status, _took, err) = gate.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "clean exit after SIGTERM: {status}: {err}"
    );
    assert!(err.contains("SIGTERM"), "{err}");
}

/// SIGINT exits at once, whatever the grace period.
#[test]
fn sigint_exits_without_waiting_for_the_grace_period() {
    let mut gate = Running::start("60s", None);
    gate.signal("-INT");
    // Well within the grace period (`wait_exit` panics past its limit).
    let (_, took, err) = gate.wait_exit(Duration::from_secs(30));
    assert!(err.contains("SIGINT"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// A second signal during the grace period means "now".
#[test]
fn a_second_signal_cuts_the_grace_period_short() {
    let mut gate = Running::start("60s", None);
    gate.signal("-TERM");
    let proxy = gate.proxy;
    eventually_blocking(
        Duration::from_secs(5),
        "the proxy listener closes after SIGTERM",
        || {
            std::net::TcpStream::connect(("127.0.0.1", proxy))
                .is_err()
                .then_some(())
        },
    );
    gate.signal("-INT");
    let (_, _took, err) = gate.wait_exit(Duration::from_secs(30));
    assert!(err.contains("second signal"), "{err}");
}

/// Logs keep only the client's network by default: pupils' addresses are personal data.
#[test]
fn access_logs_truncate_client_addresses_by_default() {
    let mut gate = Running::start("1s", None);
    let r =
        http_get_with(gate.proxy, "/", &[("X-Forwarded-For", "203.0.113.77")]).unwrap_or_default();
    assert!(
        r.contains("203.0.113.77"),
        "the page itself shows the full address: {r}"
    );
    gate.signal("-INT");
    let (_, _, err) = gate.wait_exit(Duration::from_secs(30));
    let line = err
        .lines()
        .find(|l| l.contains("\"reason\":\"not_registered\""))
        .unwrap_or_else(|| panic!("an access line: {err}"));
    assert!(line.contains("\"client_ip\":\"203.0.113.0/24\""), "{line}");
    assert!(
        !err.contains("203.0.113.77"),
        "the full address is not logged: {err}"
    );
}

/// Human logs written to a pipe or file (systemd, `kubectl logs`, `> gate.log`) carry no
/// colour codes: `grep` and `less` see plain text.
#[test]
fn human_logs_off_a_terminal_have_no_escape_codes() {
    let mut gate = Running::start_with("1s", None, "human");
    let r =
        http_get_with(gate.proxy, "/", &[("X-Forwarded-For", "203.0.113.77")]).unwrap_or_default();
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    gate.signal("-INT");
    let (_, _, err) = gate.wait_exit(Duration::from_secs(30));
    assert!(
        err.lines().any(|l| l.contains("not_registered")),
        "the access line is there: {err}"
    );
    assert!(!err.contains('\x1b'), "no escape byte: {err:?}");
}

/// SIGHUP re-reads the config: the allowlist source it names now is followed, and a new
/// mode applies. Each change is seen in the answers of the running process.
#[test]
fn sighup_reloads_the_config_and_the_allowlist_is_followed() {
    let gate = Running::start("1s", None);
    // The upstream refuses: an allowed request gets the gate's 502, a blocked one its 403;
    // the JSON reason says which.
    let answer = |xff: &str| -> (String, String) {
        let r = http_get_with(
            gate.proxy,
            "/",
            &[("X-Forwarded-For", xff), ("Accept", "application/json")],
        )
        .unwrap_or_default();
        let status = r.get(9..12).unwrap_or("").to_string();
        let reason = r
            .split_once("\r\n\r\n")
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
            .and_then(|v| v["reason"].as_str().map(str::to_owned))
            .unwrap_or_default();
        (status, reason)
    };
    let blocked = ("403".to_string(), "not_registered".to_string());
    let allowed = ("502".to_string(), "upstream_error".to_string());
    assert_eq!(answer("203.0.113.50"), blocked);

    // A second allowlist file registers 203.0.113.0/24, and the config now names it. The
    // file in force stays untouched, so only a config reload can bring the new range.
    let first = gate.dir.path().join("allowlist.json");
    let second = gate.dir.path().join("allowlist-2.json");
    std::fs::write(
        &second,
        ALLOWLIST.replace("\"198.51.100.7\"", "\"198.51.100.7\", \"203.0.113.0/24\""),
    )
    .unwrap();
    let text = std::fs::read_to_string(&gate.config).unwrap();
    let moved = text.replace(
        &format!("\"{}\"", first.display()),
        &format!("\"{}\"", second.display()),
    );
    assert_ne!(moved, text, "the config names the first file");
    std::fs::write(&gate.config, moved).unwrap();
    assert_eq!(
        answer("203.0.113.50"),
        blocked,
        "nothing changes before the signal"
    );
    gate.signal("-HUP");
    eventually_blocking(
        Duration::from_secs(10),
        "203.0.113.50 allowed by the allowlist the reloaded config names",
        || (answer("203.0.113.50") == allowed).then_some(()),
    );
    // Still enforcing: an address in neither file stays blocked.
    assert_eq!(answer("198.51.100.200"), blocked);

    let text = std::fs::read_to_string(&gate.config).unwrap();
    let report_only = text.replace("mode = \"enforce\"", "mode = \"report-only\"");
    assert_ne!(report_only, text, "the config says enforce");
    std::fs::write(&gate.config, report_only).unwrap();
    gate.signal("-HUP");
    eventually_blocking(
        Duration::from_secs(10),
        "198.51.100.200 let through in report-only mode",
        || (answer("198.51.100.200") == allowed).then_some(()),
    );
}

fn http_get_with(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// A minimal HTTP/1.1 GET over a raw socket (keeps this test free of an async runtime).
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The shipped policy example: site binding, routes, overrides and the schedule, explained.
#[test]
fn explain_covers_claims_and_overrides_on_the_shipped_policy_example() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/school-policy.toml");
    // Demo claims signed with config/demo-site-claim.key, valid until 2030 (see docs/policy.md "Worked example").
    const A: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlbW8tMjAyNi0xMSJ9.eyJzaXRlIjoiMTJBQjAwIiwiZXhwIjoxODkzNDU2MDAwfQ.v4ZYPw5P8nZdX5qwFjAi6NwkLq8apKaE1kOgy9N98Wc";
    const B: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRlbW8tMjAyNi0xMSJ9.eyJzaXRlIjoiMzRDRDAxIiwiZXhwIjoxODkzNDU2MDAwfQ.z9wS0QBNee4nSoZIS6Pr-UGXs_PXvmSVjkOKYkgwcOg";
    const AT: &str = "2026-12-01T09:00:00+01:00";
    let ex = |xff: &str, claim: Option<&str>, path: &str, at: &str| {
        let xff = format!("X-Forwarded-For: {xff}");
        let cookie = claim.map(|c| format!("Cookie: lang=nl; afname_site={c}"));
        let mut args = vec![
            "--peer",
            "127.0.0.1",
            "--header",
            xff.as_str(),
            "--path",
            path,
            "--at",
            at,
        ];
        if let Some(c) = &cookie {
            args.extend(["--header", c.as_str()]);
        }
        explain(&cfg, &args)
    };
    let v = ex("192.0.2.10", Some(A), "/toets", AT);
    assert_eq!(
        (v["decision"].as_str(), v["reason"].as_str()),
        (Some("allow"), Some("registered")),
        "{v}"
    );
    assert_eq!(v["claim"]["site"], "12AB00");
    let v = ex("192.0.2.10", Some(B), "/toets", AT);
    assert_eq!(
        (v["decision"].as_str(), v["reason"].as_str()),
        (Some("block"), Some("other_site")),
        "{v}"
    );
    assert_eq!(
        (v["claim"]["result"].as_str(), v["claim"]["site"].as_str()),
        (Some("valid"), Some("34CD01"))
    );
    let v = ex("192.0.2.10", None, "/toets", AT);
    assert_eq!(v["reason"], "claim_missing", "{v}");
    let v = ex("192.0.2.10", None, "/login", AT);
    assert_eq!(
        (v["reason"].as_str(), v["route"].as_str()),
        (Some("registered"), Some("login")),
        "{v}"
    );
    assert_eq!(v["claim"]["missing"], "any-site");
    // A tampered claim: invalid, with the problem named.
    let tampered = format!("{}x", &A[..A.len() - 1]);
    let v = ex("192.0.2.10", Some(&tampered), "/toets", AT);
    assert_eq!(
        (v["reason"].as_str(), v["claim"]["problem"].as_str()),
        (Some("claim_invalid"), Some("bad_signature")),
        "{v}"
    );
    // The allow override for 12AB00's new line counts until it expires.
    let v = ex("203.0.113.66", Some(A), "/toets", AT);
    assert_eq!(v["reason"], "override_allow", "{v}");
    assert_eq!(v["overrides"][0]["action"], "allow");
    let v = ex(
        "203.0.113.66",
        Some(A),
        "/toets",
        "2026-12-11T17:00:00+01:00",
    );
    assert_eq!(v["reason"], "not_registered", "{v}");
    assert_eq!(v["overrides"][0]["active"], false);
    // The deny override wins over 34CD01's own registration; a bypass route still passes.
    let v = ex("198.51.100.100", Some(B), "/toets", AT);
    assert_eq!(v["reason"], "override_deny", "{v}");
    let v = ex("198.51.100.100", None, "/static/app.js", AT);
    assert_eq!(v["decision"], "bypass", "{v}");
}

/// What the load of [`upgrade_under_load_fails_no_request`] saw.
#[derive(Default)]
struct Tally {
    ok: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    /// The first few failures, for the assertion message.
    why: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn ok(&self) -> u64 {
        self.ok.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn fail(&self, why: String) {
        self.failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut w = self.why.lock().unwrap();
        if w.len() < 5 {
            w.push(why);
        }
    }
}

/// One answer read off `s`: its status and whether the server keeps the connection.
fn read_answer(s: &mut std::io::BufReader<std::net::TcpStream>) -> std::io::Result<(u16, bool)> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    if s.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before an answer",
        ));
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let (mut length, mut keep) = (0usize, true);
    loop {
        line.clear();
        if s.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().map_err(std::io::Error::other)?;
        }
        if l == "connection: close" {
            keep = false;
        }
        if l.starts_with("transfer-encoding:") {
            return Err(std::io::Error::other("chunked answer: not expected here"));
        }
    }
    let mut body = vec![0; length];
    s.read_exact(&mut body)?;
    Ok((status, keep))
}

/// A client of the load: keep-alive (reconnects only when told `Connection: close`) or a
/// new connection per request; every request must be answered 200.
fn load_client(port: u16, keep_alive: bool, tally: &Tally, stop: &std::sync::atomic::AtomicBool) {
    use std::io::Write;
    let mut conn: Option<std::io::BufReader<std::net::TcpStream>> = None;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let s = match conn.take() {
            Some(s) => Ok(s),
            None => std::net::TcpStream::connect(("127.0.0.1", port)).map(|s| {
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                std::io::BufReader::new(s)
            }),
        };
        let mut s = match s {
            Ok(s) => s,
            Err(e) => {
                tally.fail(format!("connect: {e}"));
                continue;
            }
        };
        let close = if keep_alive {
            ""
        } else {
            "Connection: close\r\n"
        };
        let sent = write!(
            s.get_mut(),
            "GET /load HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.1\r\n{close}\r\n"
        );
        match sent.and_then(|()| read_answer(&mut s)) {
            Ok((200, keep)) => {
                tally.ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if keep && keep_alive {
                    conn = Some(s);
                }
            }
            Ok((status, _)) => tally.fail(format!("status {status}")),
            Err(e) => tally.fail(format!("keep_alive={keep_alive}: {e}")),
        }
    }
}

/// The stderr of a running process, read as it is written.
fn follow_stderr(child: &mut std::process::Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    use std::io::BufRead;
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err = child.stderr.take().expect("stderr piped");
    let o = out.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let mut o = o.lock().unwrap();
            o.push_str(&line);
            o.push('\n');
        }
    });
    out
}

/// Zero-downtime upgrade: under load from keep-alive and one-request clients, a new process
/// started with `run --upgrade` takes the sockets over on SIGQUIT to the old one, which
/// drains and exits; not one request fails, and the new process serves on. A SIGQUIT while
/// no new process waits is ignored (the gate keeps serving).
#[test]
fn upgrade_under_load_fails_no_request() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let upstream = rt.block_on(common::upstream::Upstream::start("origin"));
    let mut old = Running::start("4s", Some(upstream.addr.port()));
    let old_err = follow_stderr(&mut old.child);
    let socket = old.dir.path().join("upgrade.sock");

    // Nobody waits yet: SIGQUIT must not take the gate off the air.
    old.signal("-QUIT");
    eventually_blocking(Duration::from_secs(10), "the SIGQUIT is ignored", || {
        old_err
            .lock()
            .unwrap()
            .contains("SIGQUIT ignored")
            .then_some(())
    });

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let port = old.proxy;
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let (tally, stop) = (tally.clone(), stop.clone());
            std::thread::spawn(move || load_client(port, i % 3 != 0, &tally, &stop))
        })
        .collect();
    eventually_blocking(Duration::from_secs(20), "load is answered", || {
        let failed = tally.failed.load(Ordering::Relaxed);
        assert_eq!(
            failed,
            0,
            "before the upgrade: {:?}",
            tally.why.lock().unwrap()
        );
        (tally.ok() >= 200).then_some(())
    });

    let mut new = bin()
        .args(["run", "--upgrade", "--config", old.config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let new_err = follow_stderr(&mut new);
    let _new = Adopted(new.id());
    eventually_blocking(Duration::from_secs(20), "the new process waits", || {
        socket.exists().then_some(())
    });
    old.signal("-QUIT");
    let (status, _, _) = old.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "old process: {status}");
    let at_exit = tally.ok();
    eventually_blocking(Duration::from_secs(20), "the new process serves", || {
        (tally.ok() >= at_exit + 500).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }

    let (ok, failed) = (tally.ok(), tally.failed.load(Ordering::Relaxed));
    eprintln!("upgrade under load: {ok} answered, {failed} failed");
    assert_eq!(
        failed,
        0,
        "{failed} of {} requests failed: {:?}",
        ok + failed,
        tally.why.lock().unwrap()
    );
    let old_log = old_err.lock().unwrap().clone();
    assert!(
        old_log.contains("handing the listening sockets to the new process"),
        "{old_log}"
    );
    assert!(
        http_get_with(port, "/", &[("X-Forwarded-For", "192.0.2.1")])
            .is_some_and(|r| r.starts_with("HTTP/1.1 200")),
        "the new process answers after the old one is gone"
    );
    assert!(
        new.try_wait().unwrap().is_none(),
        "{}",
        new_err.lock().unwrap()
    );
    let _ = new.kill();
    let _ = new.wait();
}

/// The pid `/status` gives: the process that answered.
fn status_pid(admin: u16) -> Option<u32> {
    let r = http_get(admin, "/status")?;
    let body = r.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(v["pid"].as_u64()? as u32)
}

/// A process the test did not start itself, stopped when the test ends however it ends.
struct Adopted(u32);

impl Drop for Adopted {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .status();
    }
}

/// SIGUSR2: the gate starts the new process itself, from the binary at its own path, with
/// its config; once that one is ready the sockets go over and the old process exits. The
/// new process then answers on the same ports.
#[test]
fn sigusr2_starts_the_new_process_and_hands_over() {
    let mut old = Running::start_full("1s", None, "json", "report-only");
    let old_pid = old.child.id();
    assert_eq!(status_pid(old.admin), Some(old_pid));
    // Report-only: a school that is not registered is let through and goes in the report,
    // which the new process takes over.
    let through = http_get_with(old.proxy, "/", &[("X-Forwarded-For", "203.0.113.9")]);
    assert!(through.is_some_and(|r| !r.starts_with("HTTP/1.1 403")));
    let bearer = format!("Bearer {}", common::TOKEN);
    let report = |admin| {
        let r = http_get_with(admin, "/would-block", &[("Authorization", &bearer)])?;
        let doc: serde_json::Value = serde_json::from_str(r.split_once("\r\n\r\n")?.1).ok()?;
        Some(doc)
    };
    assert_eq!(report(old.admin).unwrap()["entries"], 1);
    // Followed, not read to its end: the new process writes to the same stderr.
    let log = follow_stderr(&mut old.child);
    old.signal("-USR2");
    let (status, _, _) = old.wait_exit(Duration::from_secs(60));
    let err = log.lock().unwrap().clone();
    assert!(status.success(), "old process: {status}: {err}");
    assert!(err.contains("SIGUSR2: the new process is ready"), "{err}");
    let new_pid = status_pid(old.admin).expect("the new process answers /status");
    let _new = Adopted(new_pid);
    assert_ne!(new_pid, old_pid);
    assert!(err.contains(&format!("\"new_pid\":{new_pid}")), "{err}");
    let doc = report(old.admin).expect("the new process's report");
    assert_eq!(doc["entries"], 1, "{doc}");
    assert_eq!(
        doc["sites"][0]["reasons"][0]["address"], "203.0.113.0/24",
        "{doc}"
    );
    assert!(err.contains("took the would-block report over"), "{err}");
    let page = http_get(old.proxy, "/").expect("the new process answers the proxy port");
    assert!(page.starts_with("HTTP/1.1 "), "{page}");
    // The new process, not a leftover: it stops on SIGTERM like any gate.
    let ok = Command::new("kill")
        .args(["-TERM", &new_pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    eventually_blocking(Duration::from_secs(20), "the new process exits", || {
        std::net::TcpStream::connect(("127.0.0.1", old.proxy))
            .is_err()
            .then_some(())
    });
}
