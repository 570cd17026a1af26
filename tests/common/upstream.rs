//! A real HTTP/1.1 upstream on `127.0.0.1:0` that answers 200 and records what it saw.

use super::server::Loopback;
use super::Seen;
use bytes::Bytes;
use http_body_util::Full;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The upstream; stops when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: Loopback,
}

impl Upstream {
    /// Answers `hello from {name}` with `x-upstream: {name}`.
    pub async fn start(name: &'static str) -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let server = Loopback::http(move |req| {
            s.lock().unwrap().push(Seen::of(&req));
            async move {
                hyper::Response::builder()
                    .header("x-upstream", name)
                    .body(Full::new(Bytes::from(format!("hello from {name}"))))
                    .unwrap()
            }
        })
        .await;
        Upstream {
            addr: server.addr(),
            seen,
            server,
        }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
