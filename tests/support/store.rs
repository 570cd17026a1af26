//! A real HTTP admin store on loopback, written by hand on a raw socket so a test can make
//! it misbehave exactly: 304 on a matching ETag, 500, hang, truncate the body, or close.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 with the document (ETag = its version counter), 304 when If-None-Match matches.
    Serve,
    Status(u16),
    /// Accept and never answer.
    Hang,
    /// Announce the full length, send half, close.
    Truncate,
}

#[derive(Debug)]
struct State {
    body: String,
    etag: u64,
    behaviour: Behaviour,
    if_none_match: Vec<Option<String>>,
    authorization: Vec<Option<String>>,
}

pub struct AdminStore {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl AdminStore {
    pub async fn start(body: &str) -> AdminStore {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind store");
        let addr = listener.local_addr().expect("store addr");
        let state = Arc::new(Mutex::new(State {
            body: body.to_string(),
            etag: 1,
            behaviour: Behaviour::Serve,
            if_none_match: Vec::new(),
            authorization: Vec::new(),
        }));
        let requests = Arc::new(AtomicUsize::new(0));
        let (st, rq) = (state.clone(), requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                let rq = rq.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    rq.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&buf).to_string();
                    let (behaviour, body, etag) = {
                        let mut s = st.lock().unwrap();
                        s.if_none_match
                            .push(header(&head, "if-none-match").map(str::to_string));
                        s.authorization
                            .push(header(&head, "authorization").map(str::to_string));
                        (s.behaviour.clone(), s.body.clone(), s.etag)
                    };
                    let etag = format!("\"v{etag}\"");
                    let response = match behaviour {
                        Behaviour::Hang => {
                            std::future::pending::<()>().await;
                            return;
                        }
                        Behaviour::Status(code) => format!(
                            "HTTP/1.1 {code} Oops\r\ncontent-length: 5\r\nconnection: close\r\n\r\noops!"
                        ),
                        Behaviour::Serve if header(&head, "if-none-match") == Some(etag.as_str()) => format!(
                            "HTTP/1.1 304 Not Modified\r\netag: {etag}\r\nconnection: close\r\n\r\n"
                        ),
                        Behaviour::Serve => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: {etag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        Behaviour::Truncate => format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\netag: {etag}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                            body.len(),
                            &body[..body.len() / 2]
                        ),
                    };
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        AdminStore {
            addr,
            state,
            requests,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/allowlist.json", self.addr)
    }

    /// Serve a new document (new ETag).
    pub fn set_body(&self, body: &str) {
        let mut s = self.state.lock().unwrap();
        s.body = body.to_string();
        s.etag += 1;
        s.behaviour = Behaviour::Serve;
    }

    pub fn set_behaviour(&self, b: Behaviour) {
        self.state.lock().unwrap().behaviour = b;
    }

    /// The If-None-Match header of every request so far.
    pub fn if_none_match(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().if_none_match.clone()
    }

    pub fn authorization(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().authorization.clone()
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for AdminStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}
