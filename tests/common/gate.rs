//! The real gate, in-process, on ports chosen at run time: every use of the library's
//! start-up API by the tests is here, so a change to it is adapted in one place.

use super::ports::{Family, PortRetry, PortTaken, Reserved};
use super::{client, eventually};
use pingora::server::RunArgs;
use pingora_prometheus::prometheus::Registry;
use poortwachter::config::Config;
use poortwachter::gate::{self, Gate};
use poortwachter::server::{self, StopHandle};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to configure a test gate. `{proxy}`, `{admin}` and `{allowlist}` in `extra` are
/// replaced with the chosen addresses and the allowlist path.
pub struct GateSpec {
    pub upstreams: Vec<SocketAddr>,
    /// More upstream addresses as written (`name:port`).
    pub upstream_names: Vec<String>,
    pub trusted: Vec<&'static str>,
    pub header: &'static str,
    pub mode: &'static str,
    /// Allowlist document; `None` = the file does not exist.
    pub allowlist: Option<String>,
    pub also_listen_v6: bool,
    pub admin_host: &'static str,
    pub extra: String,
    /// Replaces the file source, e.g. an admin-store URL.
    pub source: Option<String>,
    /// More `[allowlist]` keys (`{dir}` is the test's temp dir).
    pub allowlist_extra: String,
    /// Write an admin token file and configure it (see [`TOKEN`]).
    pub admin_token: bool,
    /// A TLS listener with this PEM certificate chain and key.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The gate's clock (default: the system clock).
    pub clock: Option<gate::Clock>,
    /// A `[[proxy.listener]]` with these keys besides `addr` (the PROXY protocol settings).
    pub proxy_protocol: Option<String>,
    /// More `[proxy]` keys (limits such as `header_timeout`).
    pub proxy_extra: &'static str,
    /// More `[upstream]` keys (replacing the timeouts of the default config when given).
    pub upstream_extra: String,
}

/// The admin token of gates started with `admin_token: true`.
pub const TOKEN: &str = "test-admin-token-0123456789";

impl Default for GateSpec {
    fn default() -> Self {
        GateSpec {
            upstreams: Vec::new(),
            upstream_names: Vec::new(),
            trusted: vec!["127.0.0.1/32"],
            header: "x-forwarded-for",
            mode: "enforce",
            allowlist: Some(ALLOWLIST.to_string()),
            also_listen_v6: false,
            admin_host: "127.0.0.1",
            extra: String::new(),
            source: None,
            allowlist_extra: String::new(),
            admin_token: false,
            tls: None,
            clock: None,
            proxy_protocol: None,
            proxy_extra: "",
            upstream_extra: String::new(),
        }
    }
}

/// The allowlist most tests use: documentation ranges only.
pub const ALLOWLIST: &str = r#"{
  "version": "test-1",
  "sites": [
    { "id": "12AB00", "name": "OBS De Regenboog",
      "ranges": ["192.0.2.0/28", "2001:db8:12::/48", "198.51.100.7"] },
    { "id": "34CD01", "ranges": ["198.51.100.64/27", "192.0.2.5/24"], "contact": "unknown field" }
  ]
}"#;

/// The real gate, in-process, on run-time ports. Stopped on drop.
pub struct TestGate {
    pub proxy: SocketAddr,
    pub tls: Option<SocketAddr>,
    pub proxy_v6: Option<SocketAddr>,
    /// The listener with the PROXY protocol, when the spec has one.
    pub proxy_protocol: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub gate: Arc<Gate>,
    pub dir: tempfile::TempDir,
    stop: StopHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestGate {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.proxy, path)
    }
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// The admin listener's JSON answer to `method path`, with the admin token.
    pub async fn admin_json(&self, method: reqwest::Method, path: &str) -> serde_json::Value {
        client()
            .request(method, self.admin_url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.admin_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for TestGate {
    fn drop(&mut self) {
        self.stop.stop(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn config_text(
    spec: &GateSpec,
    proxy: u16,
    proxy_v6: Option<u16>,
    tls: Option<u16>,
    admin: u16,
    allowlist: &std::path::Path,
    proxy_protocol: Option<u16>,
) -> String {
    let mut listen = vec![format!("\"127.0.0.1:{proxy}\"")];
    if let Some(p) = proxy_v6 {
        listen.push(format!("\"[::1]:{p}\""));
    }
    let quote = |v: &[String]| v.join(", ");
    let upstreams: Vec<String> = spec
        .upstreams
        .iter()
        .map(ToString::to_string)
        .chain(spec.upstream_names.iter().cloned())
        .map(|a| format!("\"{a}\""))
        .collect();
    let trusted: Vec<String> = spec.trusted.iter().map(|t| format!("\"{t}\"")).collect();
    let dir = allowlist.parent().unwrap_or(std::path::Path::new("."));
    let source = spec
        .source
        .clone()
        .unwrap_or_else(|| allowlist.display().to_string());
    let allowlist_extra = spec
        .allowlist_extra
        .replace("{dir}", &dir.display().to_string());
    let mut extra = spec.extra.clone();
    if spec.admin_token {
        let token_file = dir.join("admin-token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token");
        extra = format!("token_file = \"{}\"\n{extra}", token_file.display());
    }
    if let (Some(port), Some(keys)) = (proxy_protocol, &spec.proxy_protocol) {
        extra = format!("{extra}\n[[proxy.listener]]\naddr = \"127.0.0.1:{port}\"\n{keys}\n");
    }
    let extra = extra
        .replace("{proxy}", &proxy.to_string())
        .replace("{admin}", &admin.to_string())
        .replace("{allowlist}", &allowlist.display().to_string());
    format!(
        r#"
[proxy]
listen = [{listen}]
{tls}
{proxy_extra}
threads = 1
grace_period = "0s"
shutdown_timeout = "1s"

[upstream]
addrs = [{upstreams}]
{upstream_extra}

[client_ip]
trusted_proxies = [{trusted}]
header = "{header}"

[allowlist]
source = "{source}"
{allowlist_extra}

[policy]
mode = "{mode}"

[admin]
listen = "{admin_host}:{admin}"
{extra}
"#,
        listen = quote(&listen),
        tls = match (tls, &spec.tls) {
            (Some(port), Some((cert, key))) => format!(
                "tls_listen = [\"127.0.0.1:{port}\"]\ntls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                cert.display(),
                key.display()
            ),
            _ => String::new(),
        },
        proxy_extra = spec.proxy_extra,
        upstream_extra = if spec.upstream_extra.is_empty() {
            "connect_timeout = \"1s\"\nread_timeout = \"5s\""
        } else {
            spec.upstream_extra.as_str()
        },
        upstreams = quote(&upstreams),
        trusted = quote(&trusted),
        header = spec.header,
        mode = spec.mode,
        admin_host = spec.admin_host,
    )
}

/// Start the gate on reserved ports; started again on new ones when a port was taken
/// before the gate bound it.
pub async fn start_gate(spec: GateSpec) -> TestGate {
    let dir = tempfile::tempdir().expect("tempdir");
    let allowlist: PathBuf = dir.path().join("allowlist.json");
    if let Some(doc) = &spec.allowlist {
        std::fs::write(&allowlist, doc).expect("write allowlist");
    }
    let mut families = vec![Family::V4, Family::V4];
    if spec.also_listen_v6 {
        families.push(Family::V6);
    }
    if spec.tls.is_some() {
        families.push(Family::V4);
    }
    if spec.proxy_protocol.is_some() {
        families.push(Family::V4);
    }
    let mut retry = PortRetry::new("the in-process gate");
    let (gate, ports, stop, thread) = loop {
        let reserved = retry.reserve(&families);
        let ports = GatePorts::from(&reserved, &spec);
        match start_on(&spec, &dir, &allowlist, &ports, reserved) {
            Ok((gate, stop, thread)) => break (gate, ports, stop, thread),
            Err(taken) => retry.taken(taken),
        }
    };
    let v4 = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let tg = TestGate {
        proxy: v4(ports.proxy),
        tls: ports.tls.map(v4),
        proxy_v6: ports
            .proxy_v6
            .map(|p| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, p))),
        proxy_protocol: ports.proxy_protocol.map(v4),
        admin: v4(ports.admin),
        gate,
        dir,
        stop,
        thread: Some(thread),
    };
    for addr in [tg.proxy, tg.admin]
        .into_iter()
        .chain(tg.proxy_v6)
        .chain(tg.tls)
        .chain(tg.proxy_protocol)
    {
        wait_listening(addr).await;
    }
    tg
}

/// The ports of one start attempt.
struct GatePorts {
    proxy: u16,
    admin: u16,
    proxy_v6: Option<u16>,
    tls: Option<u16>,
    proxy_protocol: Option<u16>,
}

impl GatePorts {
    /// In the order `start_gate` reserved them.
    fn from(reserved: &Reserved, spec: &GateSpec) -> GatePorts {
        let mut ports = reserved.ports().into_iter();
        let mut next = || ports.next().expect("a reserved port");
        GatePorts {
            proxy: next(),
            admin: next(),
            proxy_v6: spec.also_listen_v6.then(&mut next),
            tls: spec.tls.is_some().then(&mut next),
            proxy_protocol: spec.proxy_protocol.is_some().then(&mut next),
        }
    }
}

/// One attempt: config, gate and first load while the ports are still held, then the
/// server, which binds them.
fn start_on(
    spec: &GateSpec,
    dir: &tempfile::TempDir,
    allowlist: &Path,
    ports: &GatePorts,
    reserved: Reserved,
) -> Result<(Arc<Gate>, StopHandle, std::thread::JoinHandle<()>), PortTaken> {
    let text = config_text(
        spec,
        ports.proxy,
        ports.proxy_v6,
        ports.tls,
        ports.admin,
        allowlist,
        ports.proxy_protocol,
    );
    let config_path = dir.path().join("poortwachter.toml");
    std::fs::write(&config_path, &text).expect("write config");
    let cfg = Config::from_toml(&config_path, &text).expect("test config is valid");
    let clock = spec.clock.clone().unwrap_or_else(gate::system_clock);
    let gate =
        Arc::new(poortwachter::lifecycle::build_gate(cfg, Registry::new(), clock).expect("gate"));
    poortwachter::lifecycle::startup(&gate);
    reserved.release();
    let (tx, rx) = std::sync::mpsc::channel();
    let g = gate.clone();
    // The signal watch is not `Send`, so the server thread makes the channel and hands
    // back only the stop handle.
    let thread = std::thread::spawn(move || match server::build(g, false) {
        Ok(server) => {
            let (stop, signal) = server::stop_channel();
            let _ = tx.send(Ok(stop));
            server.run(RunArgs {
                shutdown_signal: signal,
            });
        }
        Err(e) => {
            let _ = tx.send(Err(e));
        }
    });
    match rx.recv().expect("server thread answered") {
        Ok(stop) => Ok((gate, stop, thread)),
        Err(e) if e.is_addr_in_use() => {
            let _ = thread.join();
            Err(PortTaken(e.to_string()))
        }
        Err(e) => panic!("gate did not start: {e}"),
    }
}

async fn wait_listening(addr: SocketAddr) {
    eventually(
        Duration::from_secs(10),
        &format!("listener on {addr}"),
        || async move { tokio::net::TcpStream::connect(addr).await.ok().map(|_| ()) },
    )
    .await
}
