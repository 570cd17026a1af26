//! The one fake admin store: a real HTTP/1.1 server on `127.0.0.1:0` that serves an
//! allowlist document with conditional GET, or misbehaves on demand (any status, a hang, a
//! truncated body), optionally demands a bearer token, and records every request it saw.
//! [`RawServer`] writes bytes by hand, for what hyper will not send: endless chunked bodies
//! and lying `Content-Length`s.

use super::server::Loopback;
use super::Seen;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::net::TcpStream;

pub use super::server::read_request_head;

/// The path the store's URL names (it answers on every path).
pub const PATH: &str = "/v1/allowlist.json";

/// The document the store serves, with its validators.
#[derive(Debug, Clone)]
pub struct Document {
    pub body: Bytes,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Document {
    pub fn new(
        body: impl Into<Bytes>,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Document {
        Document {
            body: body.into(),
            etag: etag.map(str::to_owned),
            last_modified: last_modified.map(str::to_owned),
        }
    }
}

/// How the store answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// The document with real conditional-GET semantics: 304 when `If-None-Match` matches
    /// the ETag, or, without `If-None-Match`, when `If-Modified-Since` equals
    /// `Last-Modified` (a string compare is enough: the client only echoes what it got).
    Serve,
    /// Always this answer.
    Fixed {
        status: u16,
        headers: Vec<(String, String)>,
        body: Bytes,
    },
    /// Read the request, never answer.
    Hang,
    /// The document's headers and full `Content-Length`, half its body, then the
    /// connection breaks off.
    Truncate,
}

impl Behaviour {
    /// This status with a short JSON error body.
    pub fn status(status: u16) -> Behaviour {
        Behaviour::Fixed {
            status,
            headers: Vec::new(),
            body: Bytes::from_static(b"{\"error\":\"from the test store\"}"),
        }
    }
}

struct State {
    document: Document,
    /// Bumped by [`AdminStore::publish`], which names the ETag after it.
    version: u64,
    behaviour: Behaviour,
    /// When set, requests without `Authorization: Bearer <token>` get 401.
    required_token: Option<String>,
    seen: Vec<Seen>,
}

/// The store; stops when dropped.
pub struct AdminStore {
    state: Arc<Mutex<State>>,
    server: Loopback,
}

type Answer = Response<http_body_util::combinators::BoxBody<Bytes, std::io::Error>>;

impl AdminStore {
    /// Serve `document`.
    pub async fn start(document: Document) -> AdminStore {
        let state = Arc::new(Mutex::new(State {
            document,
            version: 1,
            behaviour: Behaviour::Serve,
            required_token: None,
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let server = Loopback::http(move |req| handle(shared.clone(), req)).await;
        AdminStore { state, server }
    }

    /// Serve `body` with the ETag `"v1"`; each [`AdminStore::publish`] makes the next one.
    pub async fn versioned(body: &str) -> AdminStore {
        AdminStore::start(Document::new(body.to_owned(), Some("\"v1\""), None)).await
    }

    /// Answer with `behaviour` from the start (an empty document behind it).
    pub async fn answering(behaviour: Behaviour) -> AdminStore {
        let store = AdminStore::start(Document::new(Bytes::new(), None, None)).await;
        store.set_behaviour(behaviour);
        store
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.server.addr())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("store state")
    }

    /// Serve `document` from now on (and stop misbehaving).
    pub fn set_document(&self, document: Document) {
        let mut s = self.state();
        s.document = document;
        s.behaviour = Behaviour::Serve;
    }

    /// Serve a new version of the document: the next ETag (`"v2"`, `"v3"`, …).
    pub fn publish(&self, body: &str) {
        let mut s = self.state();
        s.version += 1;
        let etag = format!("\"v{}\"", s.version);
        s.document = Document::new(body.to_owned(), Some(&etag), None);
        s.behaviour = Behaviour::Serve;
    }

    /// Answer with `behaviour` from now on; the document stays for [`Behaviour::Serve`]
    /// and [`Behaviour::Truncate`].
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state().behaviour = behaviour;
    }

    pub fn require_token(&self, token: &str) {
        self.state().required_token = Some(token.to_owned());
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state().seen.clone()
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<hyper::body::Incoming>) -> Answer {
    let seen = Seen::of(&req);
    let (document, behaviour, required) = {
        let mut s = state.lock().expect("store state");
        s.seen.push(seen.clone());
        (
            s.document.clone(),
            s.behaviour.clone(),
            s.required_token.clone(),
        )
    };
    if let Some(token) = required {
        if seen.header("authorization") != Some(format!("Bearer {token}").as_str()) {
            return answer(401, &[], Bytes::from_static(b"unauthorized"));
        }
    }
    match behaviour {
        Behaviour::Hang => std::future::pending().await,
        Behaviour::Fixed {
            status,
            headers,
            body,
        } => answer(status, &headers, body),
        Behaviour::Serve => {
            let headers = document_headers(&document);
            let not_modified = match seen.header("if-none-match") {
                Some(inm) => document.etag.as_deref() == Some(inm),
                None => {
                    document.last_modified.is_some()
                        && seen.header("if-modified-since") == document.last_modified.as_deref()
                }
            };
            if not_modified {
                answer(304, &headers, Bytes::new())
            } else {
                answer(200, &headers, document.body)
            }
        }
        Behaviour::Truncate => {
            let mut headers = document_headers(&document);
            headers.push(("content-length".into(), document.body.len().to_string()));
            let half = document.body.slice(..document.body.len() / 2);
            let mut builder = Response::builder().status(200);
            for (name, value) in &headers {
                builder = builder.header(name, value);
            }
            builder
                .body(BreaksOff::Bytes(half).boxed())
                .expect("test response")
        }
    }
}

/// A body that yields its bytes and then fails: hyper closes the connection with the
/// announced length unmet. In between it is pending once, which makes hyper write out what
/// it has, so the client sees the head and the bytes before the break.
enum BreaksOff {
    Bytes(Bytes),
    Flush,
    Break,
}

impl hyper::body::Body for BreaksOff {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match std::mem::replace(&mut *self, BreaksOff::Break) {
            BreaksOff::Bytes(bytes) => {
                *self = BreaksOff::Flush;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            BreaksOff::Flush => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            BreaksOff::Break => Poll::Ready(Some(Err(std::io::Error::other(
                "the test store breaks off",
            )))),
        }
    }
}

fn document_headers(document: &Document) -> Vec<(String, String)> {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(document.etag.clone().map(|e| ("etag".to_owned(), e)));
    headers.extend(
        document
            .last_modified
            .clone()
            .map(|l| ("last-modified".to_owned(), l)),
    );
    headers
}

fn answer(status: u16, headers: &[(String, String)], body: Bytes) -> Answer {
    let mut builder =
        Response::builder().status(StatusCode::from_u16(status).expect("test status"));
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(body).map_err(|never| match never {}).boxed())
        .expect("test response")
}

/// A TCP server whose `script` gets each accepted connection and writes whatever bytes it
/// likes. Stops when dropped.
pub struct RawServer {
    server: Loopback,
}

impl RawServer {
    pub async fn start<F, Fut>(script: F) -> RawServer
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        RawServer {
            server: Loopback::start(script).await,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}{PATH}", self.server.addr())
    }
}
