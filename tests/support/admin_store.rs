//! A real HTTP admin store on `127.0.0.1:0` (hyper 1), reconfigurable per
//! test, recording every request it saw; and [`RawServer`], a TCP listener
//! whose script writes bytes by hand, for truncated bodies, endless chunked
//! bodies and lying `Content-Length`s.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the store answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Serve this document with real conditional-GET semantics: 304 when
    /// `If-None-Match` matches the ETag, or, without `If-None-Match`, when
    /// `If-Modified-Since` equals `Last-Modified` (a string compare is enough
    /// here: the client only ever echoes what we sent).
    Document {
        body: Bytes,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// Always this answer.
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Read the request, never answer.
    Hang,
}

impl Behaviour {
    pub fn document(
        body: impl Into<Bytes>,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Behaviour {
        Behaviour::Document {
            body: body.into(),
            etag: etag.map(str::to_owned),
            last_modified: last_modified.map(str::to_owned),
        }
    }

    pub fn status(status: u16) -> Behaviour {
        Behaviour::Fixed {
            status,
            headers: Vec::new(),
            body: Bytes::from_static(b"{\"error\":\"from the test store\"}"),
        }
    }
}

/// One request as the store received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Seen {
    /// The value of header `name`, if it was sent (once).
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(values.next().is_none(), "header {name} sent more than once");
        first
    }
}

struct Shared {
    behaviour: Mutex<Behaviour>,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    required_token: Mutex<Option<String>>,
    seen: Mutex<Vec<Seen>>,
}

/// The in-test admin store. Stops accepting when dropped.
pub struct AdminStore {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

pub const PATH: &str = "/v1/allowlist.json";

impl AdminStore {
    pub async fn start(behaviour: Behaviour) -> AdminStore {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            required_token: Mutex::new(None),
            seen: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&accept_shared);
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
                    // A client giving up mid-answer is part of the tests.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        AdminStore { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = behaviour;
    }

    pub fn require_token(&self, token: &str) {
        *self.shared.required_token.lock().expect("lock") = Some(token.to_owned());
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().expect("lock").clone()
    }
}

impl Drop for AdminStore {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        headers: req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
    };
    let behaviour = shared.behaviour.lock().expect("lock").clone();
    let required = shared.required_token.lock().expect("lock").clone();
    shared.seen.lock().expect("lock").push(seen.clone());

    if let Some(token) = required {
        if seen.header("authorization") != Some(format!("Bearer {token}").as_str()) {
            return Ok(answer(401, &[], Bytes::from_static(b"unauthorized")));
        }
    }
    Ok(match behaviour {
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Fixed {
            status,
            headers,
            body,
        } => answer(status, &headers, body),
        Behaviour::Document {
            body,
            etag,
            last_modified,
        } => {
            let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
            headers.extend(etag.clone().map(|e| ("etag".to_owned(), e)));
            headers.extend(
                last_modified
                    .clone()
                    .map(|l| ("last-modified".to_owned(), l)),
            );
            let not_modified = match seen.header("if-none-match") {
                Some(inm) => etag.as_deref() == Some(inm),
                None => {
                    last_modified.is_some()
                        && seen.header("if-modified-since") == last_modified.as_deref()
                }
            };
            if not_modified {
                answer(304, &headers, Bytes::new())
            } else {
                answer(200, &headers, body)
            }
        }
    })
}

fn answer(status: u16, headers: &[(String, String)], body: Bytes) -> Response<Full<Bytes>> {
    let mut builder =
        Response::builder().status(StatusCode::from_u16(status).expect("test status"));
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder.body(Full::new(body)).expect("test response")
}

/// A TCP server whose `script` gets each accepted connection and writes
/// whatever bytes it likes.
pub struct RawServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl RawServer {
    pub async fn start<F, Fut>(script: F) -> RawServer
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(script(stream));
            }
        });
        RawServer { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.addr)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read up to the end of the request head, so the client sees its request
/// taken before the scripted answer starts.
pub async fn read_request_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    head
}

/// A port that refuses connections: bound a moment ago, then closed.
pub async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    listener.local_addr().expect("local addr")
}
