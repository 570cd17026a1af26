//! A real WebSocket upstream and client: Python's `websockets` (Debian `python3-websockets`,
//! which `deploy/ensure-build-deps` installs), run as child processes. The scripts are
//! `ws_upstream.py` and `ws_client.py` beside this file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const UPSTREAM: &str = include_str!("ws_upstream.py");
const CLIENT: &str = include_str!("ws_client.py");

/// A Python that can `import websockets`: the one on `PATH`, else Debian's.
fn python() -> &'static str {
    static FOUND: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    FOUND.get_or_init(|| {
        ["python3", "/usr/bin/python3"]
            .into_iter()
            .find(|p| {
                Command::new(p)
                    .args(["-c", "import websockets"])
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .expect(
                "no python3 with the `websockets` module: run deploy/ensure-build-deps \
                 (installs python3-websockets)",
            )
    })
}

/// The WebSocket upstream: echoes, or pushes on `/push`. Killed on drop.
pub struct WsUpstream {
    pub addr: SocketAddr,
    child: Child,
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl WsUpstream {
    pub fn start() -> WsUpstream {
        let mut child = Command::new(python())
            .args(["-c", UPSTREAM])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the WebSocket upstream");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: serde_json::Value = serde_json::from_str(
            &lines
                .next()
                .expect("the upstream says its port")
                .expect("read the upstream"),
        )
        .expect("the port line is JSON");
        let port = first["port"].as_u64().expect("a port") as u16;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    s.lock().unwrap().push(v);
                }
            }
        });
        WsUpstream {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            seen,
        }
    }

    /// The handshakes received so far: `{"path": ..., "xff": ...}` each.
    pub fn handshakes(&self) -> Vec<serde_json::Value> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for WsUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run the client against `url` as `xff` in `mode` (see `ws_client.py`); what it printed.
pub async fn ws_client(url: String, xff: &str, mode: &str) -> serde_json::Value {
    let (xff, mode) = (xff.to_string(), mode.to_string());
    tokio::task::spawn_blocking(move || {
        let out = Command::new(python())
            .args(["-c", CLIENT, &url, &xff, &mode])
            .output()
            .expect("run the WebSocket client");
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "client output {text:?} ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    })
    .await
    .unwrap()
}
