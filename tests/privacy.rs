//! The data inventory of `docs/privacy.md`, checked against the running gate: in each
//! `[log] client_ip` mode the real binary serves allowed, blocked, report-only and malformed
//! requests from IPv4 and IPv6 clients, directly, through trusted proxies (both forwarding
//! headers, switched by a config reload) and through a TCP balancer (the PROXY protocol),
//! with a real admin store and upstream.
//! Then every file the gate wrote, `/metrics`, `/status` and `/would-block` are scanned for
//! any full client address. None may appear, except in mode `full` (in the log and the
//! would-block report, which follow the log's form) and on the pupil's own page.

mod common;

use common::admin_store::AdminStore;
use common::ports::{says_addr_in_use, Family, PortRetry, PortTaken};
use common::{eventually_blocking, Upstream};
use poortwachter::privacy::LogAddress;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The registered locations: the pupils' side of each family, and a range for clients
/// that reach the gate directly (loopback addresses other than the trusted proxy).
const ALLOWLIST: &str = r#"{
  "version": "privacy-1",
  "sites": [
    { "id": "12AB00", "name": "OBS De Regenboog",
      "ranges": ["192.0.2.0/24", "2001:db8:12::/48", "127.8.9.0/24"] }
  ]
}"#;

const ADMIN_TOKEN: &str = "privacy-admin-token-0123456789";
const HASH_SECRET: &str = "privacy-hash-secret-0123456789";

/// One client address the test used, and what the gate must do with it.
struct Sent {
    ip: IpAddr,
    /// A request from it reached a decision, so mode `full` must log it.
    decided: bool,
}

/// Addresses handed out so far; each request gets its own, never seen before.
#[derive(Default)]
struct Addresses {
    next: u16,
    sent: Vec<Sent>,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Inside a registered range.
    Allowed,
    /// Outside every range.
    Unregistered,
}

impl Addresses {
    fn fresh(&mut self, v6: bool, kind: Kind, decided: bool) -> IpAddr {
        self.next += 1;
        let n = self.next;
        assert!(n < 250, "the address plan has room for 250 requests");
        let text = match (v6, kind) {
            (false, Kind::Allowed) => format!("192.0.2.{n}"),
            (false, Kind::Unregistered) => format!("198.51.100.{n}"),
            (true, Kind::Allowed) => format!("2001:db8:12:7::{n:x}"),
            (true, Kind::Unregistered) => format!("2001:db8:99:7::{n:x}"),
        };
        self.remember(text.parse().unwrap(), decided)
    }

    /// A loopback source address other than the trusted proxy: a client without a proxy.
    fn direct(&mut self, kind: Kind) -> IpAddr {
        self.next += 1;
        let n = self.next;
        let text = match kind {
            Kind::Allowed => format!("127.8.9.{n}"),
            Kind::Unregistered => format!("127.7.0.{n}"),
        };
        self.remember(text.parse().unwrap(), true)
    }

    fn remember(&mut self, ip: IpAddr, decided: bool) -> IpAddr {
        self.sent.push(Sent { ip, decided });
        ip
    }
}

/// Does `hay` hold `ip` as a whole address, in any context (`::ffff:` prefix, `:port`
/// suffix, quotes, JSON)? Only a longer address that merely starts or ends the same way
/// (`192.0.2.1` inside `192.0.2.17`) does not count.
fn holds(hay: &str, ip: IpAddr) -> bool {
    let needle = ip.to_string();
    let part_of_address = |c: char| match ip {
        IpAddr::V4(_) => c.is_ascii_digit() || c == '.',
        IpAddr::V6(_) => c.is_ascii_hexdigit() || c == ':',
    };
    hay.match_indices(&needle).any(|(at, _)| {
        let before = hay[..at].chars().next_back();
        let after = hay[at + needle.len()..].chars().next();
        // `:` does not belong to an IPv4 address: `::ffff:192.0.2.9` and `192.0.2.9:443`
        // hold it.
        before.is_none_or(|c| !part_of_address(c)) && after.is_none_or(|c| !part_of_address(c))
    })
}

#[test]
fn holds_finds_whole_addresses_only() {
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    let v6: IpAddr = "2001:db8:12:7::b".parse().unwrap();
    assert!(holds("client 192.0.2.1 blocked", v4));
    assert!(holds("\"192.0.2.1:51234\"", v4));
    assert!(holds("::ffff:192.0.2.1", v4));
    assert!(!holds("192.0.2.17 and 10.192.0.2.1", v4));
    assert!(!holds("192.0.2.0/24", v4));
    assert!(holds("for=\"[2001:db8:12:7::b]:443\"", v6));
    assert!(!holds("2001:db8:12:7::bc", v6));
    assert!(!holds("2001:db8:12::/48", v6));
}

/// The gate as a process, its output in files of its own directory.
struct Gate {
    child: Child,
    proxy_v4: SocketAddr,
    proxy_v6: SocketAddr,
    /// The listener behind a TCP balancer (PROXY protocol).
    proxy_protocol: SocketAddr,
    admin: SocketAddr,
    config: PathBuf,
    dir: tempfile::TempDir,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The config for one phase: `header` the forwarding header believed, `policy` the mode.
fn config_text(
    mode: &str,
    ports: [u16; 4],
    dir: &Path,
    store: &str,
    upstream: SocketAddr,
    header: &str,
    policy: &str,
) -> String {
    let [v4, v6, admin, pp] = ports;
    let d = dir.display();
    let secret = match mode {
        "hashed" => format!("hash_secret_file = \"{d}/hash-secret\"\n"),
        _ => String::new(),
    };
    // Both log formats are covered, and the most verbose level: Pingora's own debug lines
    // carry raw request heads.
    let (format, level) = if mode == "hashed" {
        ("human", "debug")
    } else {
        ("json", "info")
    };
    format!(
        r#"[proxy]
listen = ["127.0.0.1:{v4}", "[::1]:{v6}"]
threads = 1
grace_period = "1s"
shutdown_timeout = "1s"
[admin]
listen = "127.0.0.1:{admin}"
token_file = "{d}/admin-token"
[log]
format = "{format}"
level = "{level}"
client_ip = "{mode}"
{secret}[upstream]
addrs = ["{upstream}"]
[client_ip]
trusted_proxies = ["127.0.0.1/32", "::1/128"]
header = "{header}"
[allowlist]
source = "{store}"
last_good = "{d}/state/last-good.json"
[policy]
mode = "{policy}"
[[proxy.listener]]
addr = "127.0.0.1:{pp}"
proxy_protocol = "any"
proxy_protocol_from = ["127.0.0.1/32"]
"#
    )
}

impl Gate {
    fn start(mode: &str, store: &str, upstream: SocketAddr) -> Gate {
        let mut retry = PortRetry::new("poortwachter run");
        loop {
            let reserved = retry.reserve(&[Family::V4, Family::V6, Family::V4, Family::V4]);
            let [v4, v6, admin, pp] = reserved.ports()[..] else {
                unreachable!("four ports reserved")
            };
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir(dir.path().join("state")).unwrap();
            std::fs::write(dir.path().join("admin-token"), ADMIN_TOKEN).unwrap();
            std::fs::write(dir.path().join("hash-secret"), HASH_SECRET).unwrap();
            let config = dir.path().join("gate.toml");
            let body = config_text(
                mode,
                [v4, v6, admin, pp],
                dir.path(),
                store,
                upstream,
                "x-forwarded-for",
                "enforce",
            );
            std::fs::write(&config, body).unwrap();
            reserved.release();
            let out = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
            let err = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_poortwachter"))
                .args(["run", "--config", config.to_str().unwrap()])
                .stdout(out)
                .stderr(err)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            let mut gate = Gate {
                child,
                proxy_v4: ([127, 0, 0, 1], v4).into(),
                proxy_v6: (std::net::Ipv6Addr::LOCALHOST, v6).into(),
                proxy_protocol: ([127, 0, 0, 1], pp).into(),
                admin: ([127, 0, 0, 1], admin).into(),
                config,
                dir,
            };
            match gate.wait_ready() {
                Ok(()) => return gate,
                Err(taken) => retry.taken(taken),
            }
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Result<(), PortTaken> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let exited = self.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let err = self.stderr();
                if says_addr_in_use(&err) {
                    return Err(PortTaken(err));
                }
                panic!("the gate did not start ({exited:?}): {err}");
            }
            let ready = admin_get(self.admin, "/readyz").starts_with("HTTP/1.1 200");
            let v4 = std::net::TcpStream::connect(self.proxy_v4).is_ok();
            let v6 = std::net::TcpStream::connect(self.proxy_v6).is_ok();
            let pp = std::net::TcpStream::connect(self.proxy_protocol).is_ok();
            if ready && v4 && v6 && pp {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Write the next phase's config and reload it with SIGHUP.
    fn reload(&self, body: String) {
        std::fs::write(&self.config, body).unwrap();
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGINT, then wait for the exit so every line is written.
    fn stop(&mut self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        eventually_blocking(Duration::from_secs(30), "the gate exited", || {
            self.child.try_wait().unwrap()
        });
    }
}

/// One request over a fresh connection, from `from` when given; the whole answer.
fn exchange(
    rt: &tokio::runtime::Runtime,
    from: Option<IpAddr>,
    to: SocketAddr,
    req: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    rt.block_on(async {
        let socket = match to {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .unwrap();
        if let Some(ip) = from {
            socket.bind(SocketAddr::new(ip, 0)).unwrap();
        }
        let mut s = socket.connect(to).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("the gate answers and closes within 10 s");
        match read {
            Ok(_) => {}
            // A connection refused before HTTP is closed with the request unread: a reset.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && out.is_empty() => {}
            Err(e) => panic!("reading the answer to {req:?}: {e}"),
        }
        String::from_utf8_lossy(&out).into_owned()
    })
}

fn get(path: &str, headers: &[(&str, String)]) -> String {
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    format!("GET {path} HTTP/1.1\r\nHost: afname.example.nl\r\n{extra}Connection: close\r\n\r\n")
}

/// An admin endpoint over a raw socket, with the token.
fn admin_get(admin: SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(admin) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn status_of(answer: &str) -> &str {
    answer.get(9..12).unwrap_or("")
}

/// How `Forwarded` names an address.
fn forwarded_for(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("for={v4}"),
        IpAddr::V6(v6) => format!("for=\"[{v6}]\""),
    }
}

/// Run every kind of request in `mode`, scan what the gate keeps and shows; the places
/// scanned and the leaks found (where, which address).
fn inventory(mode: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(AdminStore::versioned(ALLOWLIST));
    let upstream = rt.block_on(Upstream::start("afname"));
    let mut gate = Gate::start(mode, &store.url(), upstream.addr);
    let mut a = Addresses::default();
    let mut pages = 0;
    let day_started = time::OffsetDateTime::now_utc().date();

    // A request whose answer must be `status`; a blocking page must show the pupil's own
    // address in full, whatever the log mode.
    let mut expect =
        |from: Option<IpAddr>, v6: bool, req: String, status: &str, shown: Option<IpAddr>| {
            let to = if v6 { gate.proxy_v6 } else { gate.proxy_v4 };
            let answer = exchange(&rt, from, to, &req);
            assert_eq!(status_of(&answer), status, "{req:?} got {answer}");
            if let Some(ip) = shown {
                assert!(
                    holds(&answer, ip),
                    "the page shows the pupil {ip}: {answer}"
                );
                pages += 1;
            }
        };

    // Phase 1: enforcing, X-Forwarded-For believed from the trusted proxies.
    for v6 in [false, true] {
        let ip = a.fresh(v6, Kind::Allowed, true);
        expect(
            None,
            v6,
            get("/toets", &[("X-Forwarded-For", ip.to_string())]),
            "200",
            None,
        );
        let ip = a.fresh(v6, Kind::Unregistered, true);
        expect(
            None,
            v6,
            get("/toets", &[("X-Forwarded-For", ip.to_string())]),
            "403",
            Some(ip),
        );
        // The self-check page tells the pupil the address the gate sees (it decides
        // nothing, so its log line names no client).
        let ip = a.fresh(v6, Kind::Unregistered, false);
        let path = "/.well-known/poortwachter/check";
        expect(
            None,
            v6,
            get(path, &[("X-Forwarded-For", ip.to_string())]),
            "200",
            Some(ip),
        );
        // A chain with a part that is no address: the gate cannot tell who it is.
        let ip = a.fresh(v6, Kind::Allowed, false);
        let chain = format!("{ip}, not-an-address");
        expect(
            None,
            v6,
            get("/toets", &[("X-Forwarded-For", chain)]),
            "403",
            None,
        );
        let ip = a.fresh(v6, Kind::Unregistered, false);
        let chain = format!("{ip}:99999");
        expect(
            None,
            v6,
            get("/toets", &[("X-Forwarded-For", chain)]),
            "403",
            None,
        );
        // A path the gate refuses, from a known client.
        let ip = a.fresh(v6, Kind::Allowed, false);
        expect(
            None,
            v6,
            get("/a/../toets", &[("X-Forwarded-For", ip.to_string())]),
            "400",
            None,
        );
        // A request head that is no HTTP: refused before any decision, the address in it.
        let ip = a.fresh(v6, Kind::Unregistered, false);
        let req = format!(
            "GET /toets HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {ip}\r\nno header line\r\n\r\n"
        );
        expect(None, v6, req, "400", None);
    }
    // Clients without a proxy: the peer address is the client address.
    let ip = a.direct(Kind::Allowed);
    expect(Some(ip), false, get("/toets", &[]), "200", None);
    let ip = a.direct(Kind::Unregistered);
    expect(Some(ip), false, get("/toets", &[]), "403", Some(ip));
    // Through a TCP balancer: the PROXY header names the client.
    let mut balancer_pages = 0;
    for (v6, kind, status) in [
        (false, Kind::Allowed, "200"),
        (false, Kind::Unregistered, "403"),
        (true, Kind::Allowed, "200"),
        (true, Kind::Unregistered, "403"),
    ] {
        let ip = a.fresh(v6, kind, true);
        let line = match ip {
            IpAddr::V4(_) => format!("PROXY TCP4 {ip} 127.0.0.1 40000 443\r\n"),
            IpAddr::V6(_) => format!("PROXY TCP6 {ip} ::1 40000 443\r\n"),
        };
        let answer = exchange(
            &rt,
            None,
            gate.proxy_protocol,
            &(line + &get("/toets", &[])),
        );
        assert_eq!(status_of(&answer), status, "{ip}: {answer}");
        if status == "403" {
            assert!(
                holds(&answer, ip),
                "the page shows the pupil {ip}: {answer}"
            );
            balancer_pages += 1;
        }
    }
    // A malformed header naming an address; a good one from a peer that is no balancer.
    let ip = a.fresh(false, Kind::Unregistered, false);
    let answer = exchange(
        &rt,
        None,
        gate.proxy_protocol,
        &format!("PROXY TCP4 {ip} 127.0.0.1 99999 443\r\n"),
    );
    assert!(answer.is_empty(), "{answer}");
    let peer = a.direct(Kind::Unregistered);
    a.sent.last_mut().unwrap().decided = false;
    let named = a.fresh(false, Kind::Allowed, false);
    let req = format!("PROXY TCP4 {named} 127.0.0.1 40000 443\r\n") + &get("/toets", &[]);
    let answer = exchange(&rt, Some(peer), gate.proxy_protocol, &req);
    assert!(answer.is_empty(), "{answer}");

    // A forged header from a client that is no proxy is not believed, nor repeated.
    let ip = a.direct(Kind::Unregistered);
    let forged = a.fresh(false, Kind::Allowed, false);
    expect(
        Some(ip),
        false,
        get("/toets", &[("X-Forwarded-For", forged.to_string())]),
        "403",
        Some(ip),
    );

    // Phase 2, by a config reload: report-only, RFC 7239 `Forwarded` believed.
    let body = std::fs::read_to_string(&gate.config)
        .unwrap()
        .replace("header = \"x-forwarded-for\"", "header = \"forwarded\"")
        .replace("mode = \"enforce\"", "mode = \"report-only\"");
    gate.reload(body);
    let probe = a.fresh(false, Kind::Unregistered, true);
    let req = get("/toets", &[("Forwarded", forwarded_for(probe))]);
    eventually_blocking(Duration::from_secs(20), "the reload to report-only", || {
        let answer = exchange(&rt, None, gate.proxy_v4, &req);
        (status_of(&answer) == "200").then_some(())
    });
    for v6 in [false, true] {
        let ip = a.fresh(v6, Kind::Allowed, true);
        expect(
            None,
            v6,
            get("/toets", &[("Forwarded", forwarded_for(ip))]),
            "200",
            None,
        );
        // Would be blocked: let through and listed in the would-block report.
        let ip = a.fresh(v6, Kind::Unregistered, true);
        expect(
            None,
            v6,
            get("/toets", &[("Forwarded", forwarded_for(ip))]),
            "200",
            None,
        );
        // Malformed `Forwarded`: an unclosed bracket, a parameter without a value.
        let ip = a.fresh(v6, Kind::Allowed, false);
        let bad = match ip {
            IpAddr::V4(v4) => format!("for={v4};by"),
            IpAddr::V6(v6) => format!("for=\"[{v6}\""),
        };
        expect(None, v6, get("/toets", &[("Forwarded", bad)]), "200", None);
        let ip = a.fresh(v6, Kind::Unregistered, false);
        expect(
            None,
            v6,
            get("/a//toets", &[("Forwarded", forwarded_for(ip))]),
            "400",
            None,
        );
    }

    // Support asks about a pupil's address: the answer names it (to the one asking), the
    // gate keeps it nowhere. Also when the question is sent broken.
    let ip = a.fresh(false, Kind::Unregistered, false);
    let answer = admin_get(gate.admin, &format!("/explain?peer={ip}"));
    assert!(
        answer.starts_with("HTTP/1.1 200") && holds(&answer, ip),
        "{answer}"
    );
    let ip = a.fresh(true, Kind::Unregistered, false);
    let req = format!(
        "GET /explain?peer={ip} HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nno header line\r\n\r\n"
    );
    let answer = exchange(&rt, None, gate.admin, &req);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");

    // What the gate shows operations, then everything it wrote.
    let mut places: Vec<(String, String)> =
        ["/metrics", "/status", "/would-block", "/healthz", "/readyz"]
            .iter()
            .map(|p| (p.to_string(), admin_get(gate.admin, p)))
            .collect();
    for (p, answer) in &places {
        assert!(answer.starts_with("HTTP/1.1 200"), "{p}: {answer}");
    }
    let would_block = places[2].1.clone();
    if mode == "full" {
        // The investigation ends: back to `truncated`, and the report keeps no full address.
        let body = std::fs::read_to_string(&gate.config)
            .unwrap()
            .replace("client_ip = \"full\"", "client_ip = \"truncated\"");
        gate.reload(body);
        let report =
            eventually_blocking(Duration::from_secs(20), "the report started anew", || {
                let r = admin_get(gate.admin, "/would-block");
                (r.starts_with("HTTP/1.1 200") && !holds(&r, probe)).then_some(r)
            });
        let again = a.fresh(false, Kind::Unregistered, false);
        expect(
            None,
            false,
            get("/toets", &[("Forwarded", forwarded_for(again))]),
            "200",
            None,
        );
        let report = admin_get(gate.admin, "/would-block") + &report;
        let network = LogAddress::Truncated.render(again, day_started);
        assert!(report.contains(&network), "listed as {network}: {report}");
        places.push(("/would-block after the investigation".to_string(), report));
    }
    gate.stop();
    let mut files = Vec::new();
    walk(gate.dir.path(), &mut files);
    for f in files {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        places.push((f.display().to_string(), text));
    }
    assert!(
        places.iter().any(|(p, _)| p.ends_with("last-good.json")),
        "the last-good file was written: {:?}",
        places.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let log = places
        .iter()
        .filter(|(p, _)| p.ends_with(".log"))
        .map(|(_, t)| t.as_str())
        .collect::<String>();

    // The log shows each decided request in this mode's form.
    let day_ended = time::OffsetDateTime::now_utc().date();
    let form = match mode {
        "full" => LogAddress::Full,
        "hashed" => LogAddress::Hashed {
            secret: HASH_SECRET.as_bytes().to_vec(),
        },
        _ => LogAddress::Truncated,
    };
    for s in a.sent.iter().filter(|s| s.decided) {
        let shown = [day_started, day_ended].map(|d| form.render(s.ip, d));
        assert!(
            shown.iter().any(|f| log.contains(f.as_str())),
            "the log shows {} as {shown:?} in mode {mode}:\n{log}",
            s.ip
        );
    }
    // At `debug` Pingora writes raw request heads; they are there, in this mode's form.
    if mode == "hashed" {
        let pingora: Vec<&str> = log.lines().filter(|l| l.contains(" pingora_")).collect();
        let redacted = a.sent.iter().any(|s| {
            let shown = [day_started, day_ended].map(|d| form.render(s.ip, d));
            pingora.iter().any(|l| {
                l.contains("x-forwarded-for") && shown.iter().any(|f| l.contains(f.as_str()))
            })
        });
        assert!(redacted, "a Pingora line with a pseudonym: {pingora:#?}");
    }
    // The would-block report lists the report-only requests in the same form.
    let listed = [day_started, day_ended].map(|d| form.render(probe, d));
    assert!(
        listed.iter().any(|f| would_block.contains(f.as_str())),
        "/would-block lists {probe} as {listed:?}: {would_block}"
    );

    let mut leaks = Vec::new();
    for (place, text) in &places {
        let may_hold = mode == "full" && (place.ends_with(".log") || place == "/would-block");
        for s in &a.sent {
            if holds(text, s.ip) && !may_hold {
                let line = text.lines().find(|l| holds(l, s.ip)).unwrap_or_default();
                let line: String = line.chars().take(300).collect();
                leaks.push(format!("{place}: {} in {line}", s.ip));
            }
        }
    }
    // Nor does a line quote the admin token of a request it could not read.
    for (place, text) in &places {
        if text.contains(ADMIN_TOKEN) && !place.ends_with("admin-token") {
            leaks.push(format!("{place}: the admin token"));
        }
    }
    println!(
        "client_ip = {mode:?}: {} addresses sent ({} v6), {} places scanned, {} pages showed the pupil's own address, {} leaks found",
        a.sent.len(),
        a.sent.iter().filter(|s| s.ip.is_ipv6()).count(),
        places.len(),
        pages + balancer_pages,
        leaks.len()
    );
    assert!(
        leaks.is_empty(),
        "full client addresses (or the admin token) where they may not be:\n{}",
        leaks.join("\n")
    );
}

/// Every file under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn truncated_mode_keeps_no_full_address() {
    inventory("truncated");
}

#[test]
fn hashed_mode_keeps_no_full_address() {
    inventory("hashed");
}

#[test]
fn full_mode_keeps_addresses_only_in_the_log_and_the_report() {
    inventory("full");
}
