//! A real TCP balancer in front of the gate: HAProxy in TCP mode with `send-proxy` (v1)
//! and `send-proxy-v2` (with its CRC32c), as an exam environment's L4 load balancer would
//! stand. The pupil's address reaches the gate only through the PROXY header.
//!
//! Needs `haproxy` (`deploy/ensure-build-deps` installs it).

mod common;

use common::ports::{Family, PortRetry, PortTaken};
use common::{metric, start_gate, GateSpec, TestGate, Upstream};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// School 12AB00 at 127.0.0.64/26: loopback sources the clients bind, so HAProxy sees a
/// client that is neither itself nor a trusted proxy.
const ALLOWLIST: &str = r#"{
  "version": "haproxy-1",
  "sites": [ { "id": "12AB00", "ranges": ["127.0.0.64/26", "192.0.2.0/24"] } ]
}"#;

struct Haproxy {
    child: Child,
    v1: SocketAddr,
    v2: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn haproxy_config(v1: u16, v2: u16, gate: SocketAddr) -> String {
    format!(
        "defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend lb_v1
  bind 127.0.0.1:{v1}
  default_backend gate_v1

backend gate_v1
  server gate {gate} send-proxy

frontend lb_v2
  bind 127.0.0.1:{v2}
  default_backend gate_v2

backend gate_v2
  server gate {gate} send-proxy-v2 proxy-v2-options crc32c
"
    )
}

/// HAProxy on two reserved ports in front of `gate`, ready to accept.
fn start_haproxy(gate: SocketAddr) -> Haproxy {
    let mut retry = PortRetry::new("haproxy");
    loop {
        let reserved = retry.reserve(&[Family::V4, Family::V4]);
        let [v1, v2] = reserved.ports()[..] else {
            unreachable!("two ports reserved")
        };
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_config(v1, v2, gate)).unwrap();
        reserved.release();
        // Debian puts it in /usr/sbin, not always on a user's PATH.
        let bin = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .unwrap_or("haproxy");
        let child = Command::new(bin)
            .args(["-db", "-f", cfg.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run haproxy ({e}); deploy/ensure-build-deps installs it")
            });
        let mut h = Haproxy {
            child,
            v1: ([127, 0, 0, 1], v1).into(),
            v2: ([127, 0, 0, 1], v2).into(),
            _dir: dir,
        };
        match wait_ready(&mut h) {
            Ok(()) => return h,
            Err(taken) => retry.taken(taken),
        }
    }
}

fn wait_ready(h: &mut Haproxy) -> Result<(), PortTaken> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = h.child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = h.child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            if err.contains("cannot bind") || err.contains("Address already in use") {
                return Err(PortTaken(err));
            }
            panic!("haproxy exited ({status}): {err}");
        }
        // A listening frontend accepts; nothing is sent, so nothing reaches the gate.
        let up = [h.v1, h.v2]
            .iter()
            .all(|a| std::net::TcpStream::connect(a).is_ok());
        if up {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "haproxy did not listen within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn gate(upstream: &Upstream) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![upstream.addr],
        trusted: vec!["127.0.0.1/32"],
        allowlist: Some(ALLOWLIST.to_string()),
        proxy_protocol: Some(
            "proxy_protocol = \"any\"\nproxy_protocol_from = [\"127.0.0.1/32\"]".to_string(),
        ),
        ..GateSpec::default()
    })
    .await
}

/// A GET through the balancer from the loopback source `from`; the whole answer.
async fn get_via(lb: SocketAddr, from: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let mut s = socket.connect(lb).await.unwrap();
    s.write_all(b"GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("an answer through haproxy within 10 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_send_proxy_v1_and_v2_carry_the_pupils_address() {
    let upstream = Upstream::start("afname").await;
    let g = gate(&upstream).await;
    let lb = start_haproxy(g.proxy_protocol.unwrap());
    let listener = g.proxy_protocol.unwrap().to_string();
    for (version, front, school, elsewhere) in [
        ("v1", lb.v1, "127.0.0.77", "127.0.0.200"),
        ("v2", lb.v2, "127.0.0.78", "127.0.0.201"),
    ] {
        let answer = get_via(front, school).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{version}: {answer}");
        assert!(answer.contains("hello from afname"), "{version}: {answer}");
        let seen = upstream.requests();
        assert_eq!(
            seen.last().unwrap().header("x-forwarded-for"),
            Some(school),
            "{version}: the upstream is told the pupil's address"
        );
        let answer = get_via(front, elsewhere).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{version}: {answer}");
        assert!(
            answer.contains(elsewhere),
            "{version}: the page names {elsewhere}: {answer}"
        );
        let series = format!(
            "poortwachter_proxy_protocol_headers_total{{kind=\"proxy\",listener=\"{listener}\",version=\"{version}\"}}"
        );
        let counted = metric(&g.metrics().await, &series).unwrap_or(0.0);
        assert!(counted >= 2.0, "{series} = {counted}");
    }
    assert_eq!(
        upstream.requests().len(),
        2,
        "blocked requests never reach the upstream"
    );
}

/// TLS passed through: HAProxy in TCP mode sends the PROXY v2 header, then the pupil's own
/// TLS handshake reaches a `tls = true` listener, which judges the header's source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_passes_tls_through_after_the_header() {
    let upstream = Upstream::start("afname").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, cert_file, key_file) = common::self_signed(dir.path());
    let g = start_gate(GateSpec {
        upstreams: vec![upstream.addr],
        trusted: vec![],
        allowlist: Some(ALLOWLIST.to_string()),
        tls: Some((cert_file, key_file)),
        proxy_protocol: Some(
            "proxy_protocol = \"v2\"\nproxy_protocol_from = [\"127.0.0.1/32\"]\ntls = true"
                .to_string(),
        ),
        ..GateSpec::default()
    })
    .await;
    let lb = start_haproxy(g.proxy_protocol.unwrap());
    for (from, want) in [
        ("127.0.0.79", "HTTP/1.1 200"),
        ("127.0.0.202", "HTTP/1.1 403"),
    ] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))
            .unwrap();
        let tcp = socket.connect(lb.v2).await.unwrap();
        let mut tls = common::tls_client(&cert, b"http/1.1")
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .expect("the pupil's TLS handshake through haproxy");
        tls.write_all(
            b"GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
            .await
            .expect("an answer through haproxy within 10 s");
        let answer = String::from_utf8_lossy(&out);
        assert!(answer.starts_with(want), "{from}: {answer}");
    }
    let seen = upstream.requests();
    assert_eq!(
        seen.len(),
        1,
        "the blocked pupil never reaches the upstream"
    );
    assert_eq!(seen[0].header("x-forwarded-for"), Some("127.0.0.79"));
}
