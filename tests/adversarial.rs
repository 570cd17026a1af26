//! Hostile HTTP/1.1 against the real gate, with an upstream that records every byte it
//! receives ([`Recorder`]): pipelined requests (RFC 9112 §9.3.2) are each answered in order
//! or the connection is closed after an answer that says so, never left hanging; request
//! smuggling, malformed framing, header injection, spoofed forwarding headers, path tricks,
//! oversized and slow input, resets and connection churn never get an unregistered client's
//! request to the upstream, never make the upstream read a second request inside one, and
//! never stop the gate from serving the next pupil.
//!
//! Each probe prints its outcome (`cargo test --test adversarial -- --nocapture`).

mod common;

use common::server::Loopback;
use common::{eventually, metric, start_gate, GateSpec, TestGate, ALLOWLIST};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A registered address (site 12AB00) and one that is not.
const REGISTERED: &str = "192.0.2.3";
const UNREGISTERED: &str = "203.0.113.50";

/// How long any exchange may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------
// The recording upstream
// ---------------------------------------------------------------------------------------

/// One request as the upstream read it, framed strictly.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    trailers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[derive(Default)]
struct Tape {
    requests: Vec<Recorded>,
    /// Bytes that were not one well-formed request (what and where).
    malformed: Vec<String>,
    /// Connections the gate closed in the middle of a request (an aborted body): not a
    /// second request, counted apart.
    cut_off: usize,
    bytes: usize,
}

/// A raw TCP upstream on `127.0.0.1:0`: reads each connection with a strict HTTP/1.1
/// parser, records every request and answers `200` with the request target as its body.
/// Anything that is not exactly well-formed requests back to back is recorded as
/// malformed and the connection closed.
struct Recorder {
    tape: Arc<Mutex<Tape>>,
    server: Loopback,
}

impl Recorder {
    async fn start() -> Recorder {
        let tape = Arc::new(Mutex::new(Tape::default()));
        let t = tape.clone();
        let server = Loopback::start(move |stream| record(stream, t.clone())).await;
        Recorder { tape, server }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    fn requests(&self) -> Vec<Recorded> {
        self.tape.lock().unwrap().requests.clone()
    }

    fn count(&self) -> usize {
        self.tape.lock().unwrap().requests.len()
    }

    /// Not even a TCP connection reached the upstream.
    fn assert_never_contacted(&self) {
        assert_eq!(
            self.server.connections(),
            0,
            "the upstream was never contacted"
        );
    }

    fn malformed(&self) -> Vec<String> {
        self.tape.lock().unwrap().malformed.clone()
    }
}

async fn record(mut stream: TcpStream, tape: Arc<Mutex<Tape>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    let mut t = tape.lock().unwrap();
                    match parse_strict(&buf) {
                        Err(e) => t.malformed.push(format!("{e}: {}", buf.escape_ascii())),
                        _ => t.cut_off += 1,
                    }
                }
                return;
            }
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        tape.lock().unwrap().bytes += n;
        loop {
            match parse_strict(&buf) {
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    let body = if req.method == "HEAD" {
                        String::new()
                    } else {
                        req.target.clone()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
                        req.target.len()
                    );
                    tape.lock().unwrap().requests.push(req);
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tape.lock()
                        .unwrap()
                        .malformed
                        .push(format!("{e}: {}", buf.escape_ascii()));
                    return;
                }
            }
        }
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// One line ending in CRLF at the start of `buf`: the line and the bytes used; `None` when
/// incomplete. A bare CR or LF is malformed.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    for (i, &c) in buf.iter().enumerate() {
        match c {
            b'\n' => return Err("bare LF".into()),
            b'\r' => {
                return match buf.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((&buf[..i], i + 2))),
                    Some(_) => Err("bare CR".into()),
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// A field line `name: value` with a token name and a value of visible characters,
/// spaces and tabs only (no obs-fold, NUL or other control characters).
fn field(l: &[u8]) -> Result<(String, String), String> {
    if l.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
        return Err("obs-fold".into());
    }
    let colon = l
        .iter()
        .position(|c| *c == b':')
        .ok_or("field without colon")?;
    let (name, value) = (&l[..colon], &l[colon + 1..]);
    if name.is_empty() || !name.iter().all(|c| is_tchar(*c)) {
        return Err(format!(
            "bad field name {:?}",
            name.escape_ascii().to_string()
        ));
    }
    if !value
        .iter()
        .all(|c| *c == b'\t' || *c == b' ' || (0x21..=0x7e).contains(c) || *c >= 0x80)
    {
        return Err("control character in a field value".into());
    }
    let value = String::from_utf8_lossy(value)
        .trim_matches([' ', '\t'])
        .to_string();
    Ok((String::from_utf8_lossy(name).into_owned(), value))
}

/// Parse one request at the start of `buf` as strictly as RFC 9112 allows a sender to
/// write it: `Ok(None)` while incomplete, with the bytes it took when complete.
fn parse_strict(buf: &[u8]) -> Result<Option<(Recorded, usize)>, String> {
    let Some((request_line, mut at)) = line(buf)? else {
        return Ok(None);
    };
    let parts: Vec<&[u8]> = request_line.split(|c| *c == b' ').collect();
    let [method, target, version] = parts[..] else {
        return Err("request line is not three parts".into());
    };
    if method.is_empty() || !method.iter().all(|c| is_tchar(*c)) {
        return Err("bad method".into());
    }
    if target.is_empty() || !target.iter().all(|c| (0x21..=0x7e).contains(c)) {
        return Err("bad request target".into());
    }
    // Origin-form, absolute-form or asterisk-form (RFC 9112 §3.2).
    if !(target.starts_with(b"/")
        || target.starts_with(b"http://")
        || target.starts_with(b"https://")
        || target == b"*")
    {
        return Err("request target in no form of RFC 9112 §3.2".into());
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err("bad version".into());
    }
    let mut headers = Vec::new();
    loop {
        let Some((l, used)) = line(&buf[at..])? else {
            return Ok(None);
        };
        at += used;
        if l.is_empty() {
            break;
        }
        headers.push(field(l)?);
    }
    let named = |n: &str| -> Vec<String> {
        headers
            .iter()
            .filter(|(h, _)| h.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let te = named("transfer-encoding");
    let cl = named("content-length");
    let mut body = Vec::new();
    let mut trailers = Vec::new();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err("both Transfer-Encoding and Content-Length".into());
        }
        if te.len() != 1 || !te[0].eq_ignore_ascii_case("chunked") {
            return Err(format!("Transfer-Encoding {te:?}"));
        }
        loop {
            let Some((size_line, used)) = line(&buf[at..])? else {
                return Ok(None);
            };
            let size = size_line.split(|c| *c == b';').next().unwrap_or(b"");
            if size.is_empty() || size.len() > 15 || !size.iter().all(u8::is_ascii_hexdigit) {
                return Err(format!(
                    "chunk size {:?}",
                    size_line.escape_ascii().to_string()
                ));
            }
            let size = usize::from_str_radix(std::str::from_utf8(size).unwrap(), 16).unwrap();
            at += used;
            if size == 0 {
                loop {
                    let Some((l, used)) = line(&buf[at..])? else {
                        return Ok(None);
                    };
                    at += used;
                    if l.is_empty() {
                        break;
                    }
                    trailers.push(field(l)?);
                }
                break;
            }
            if buf.len() < at + size + 2 {
                return Ok(None);
            }
            body.extend_from_slice(&buf[at..at + size]);
            if &buf[at + size..at + size + 2] != b"\r\n" {
                return Err("chunk without CRLF".into());
            }
            at += size + 2;
        }
    } else if !cl.is_empty() {
        if cl.len() != 1
            || cl[0].is_empty()
            || cl[0].len() > 12
            || !cl[0].bytes().all(|c| c.is_ascii_digit())
        {
            return Err(format!("Content-Length {cl:?}"));
        }
        let n: usize = cl[0].parse().unwrap();
        if buf.len() < at + n {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + n]);
        at += n;
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(Some((
        Recorded {
            method: text(method),
            target: text(target),
            version: text(version),
            headers,
            trailers,
            body,
        },
        at,
    )))
}

// ---------------------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The gate closed the connection (FIN).
    Closed,
    /// The gate reset it (typically: it closed with unread bytes of ours).
    Reset,
    /// Nothing more within [`HANG`]: a hang.
    Hung,
}

#[derive(Debug, Clone)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    fn body(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Debug)]
struct Exchange {
    responses: Vec<Response>,
    end: End,
    /// Bytes after the last complete response.
    rest: Vec<u8>,
}

impl Exchange {
    fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|r| r.status).collect()
    }

    fn summary(&self) -> String {
        let rest = if self.rest.is_empty() {
            String::new()
        } else {
            format!(" ({} bytes that are no answer)", self.rest.len())
        };
        format!("answers {:?}, then {:?}{rest}", self.statuses(), self.end)
    }
}

/// The responses in `raw`, each framed by its `Content-Length` (none for 1xx, 204 and 304,
/// the rest of the bytes otherwise), and what is left over.
fn parse_responses(raw: &[u8]) -> (Vec<Response>, Vec<u8>) {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(end) = raw[at..].windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[at..at + end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let Some(status) = status_line
            .strip_prefix("HTTP/1.1 ")
            .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
        else {
            break;
        };
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let body_start = at + end + 4;
        let len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let len = match (status, len) {
            (100..=199 | 204 | 304, _) => 0,
            (_, Some(n)) => n,
            (_, None) => raw.len() - body_start,
        };
        if raw.len() < body_start + len {
            break;
        }
        out.push(Response {
            status,
            headers,
            body: raw[body_start..body_start + len].to_vec(),
        });
        at = body_start + len;
    }
    (out, raw[at..].to_vec())
}

/// Read until the gate closes the connection, or [`HANG`] passes.
async fn read_to_end(s: &mut TcpStream) -> (Vec<u8>, End) {
    let deadline = tokio::time::Instant::now() + HANG;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) => return (raw, End::Closed),
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (raw, End::Reset),
            Err(_) => return (raw, End::Hung),
        }
    }
}

/// Send `bytes` in one write on a new connection and read everything until the gate closes.
async fn exchange(to: SocketAddr, bytes: &[u8]) -> Exchange {
    let mut s = TcpStream::connect(to).await.unwrap();
    // The gate may close before it read everything: a failed write is its answer too.
    let _ = s.write_all(bytes).await;
    let (raw, end) = read_to_end(&mut s).await;
    let (responses, rest) = parse_responses(&raw);
    Exchange {
        responses,
        end,
        rest,
    }
}

/// A GET from `xff` (through the trusted loopback peer), `extra` header lines each ending
/// in CRLF.
fn get(path: &str, xff: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {xff}\r\n{extra}\r\n"
    )
}

fn post_cl(path: &str, xff: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {xff}\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn post_chunked(path: &str, xff: &str, body: &str, extra: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {xff}\r\nTransfer-Encoding: chunked\r\n{extra}\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
}

const CLOSE: &str = "Connection: close\r\n";

async fn gate_for(rec: &Recorder) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![rec.addr()],
        proxy_extra: "header_timeout = \"1s\"\nkeepalive_timeout = \"2s\"",
        upstream_extra: "connect_timeout = \"1s\"\nread_timeout = \"2s\"".to_string(),
        ..GateSpec::default()
    })
    .await
}

/// The gate still serves: a normal allowed request on a new connection is answered 200 by
/// the upstream, which saw exactly it.
async fn assert_serves(g: &TestGate, rec: &Recorder, tag: &str) {
    let path = format!("/alive-{tag}");
    let before = rec.count();
    let ex = exchange(g.proxy, get(&path, REGISTERED, CLOSE).as_bytes()).await;
    assert_eq!(ex.statuses(), [200], "{tag}: the gate still serves: {ex:?}");
    assert_eq!(ex.responses[0].body(), path, "{tag}");
    let new = &rec.requests()[before..];
    assert_eq!(new.len(), 1, "{tag}: {new:?}");
    assert_eq!(new[0].target, path, "{tag}");
}

/// What the upstream got must be well-formed requests only, each from a registered client
/// (the gate's own `X-Forwarded-For`, exactly one value, and its own `x-request-id`), none
/// of them a request hidden in another one.
fn assert_upstream_clean(rec: &Recorder, since: usize, registered: &[&str], what: &str) {
    let malformed = rec.malformed();
    assert!(
        malformed.is_empty(),
        "{what}: the upstream read bytes that are not one well-formed request: {malformed:#?}"
    );
    for r in &rec.requests()[since..] {
        let xff = r.all("x-forwarded-for");
        assert!(
            xff.len() == 1 && registered.contains(&xff[0]),
            "{what}: forwarded with X-Forwarded-For {xff:?}: {r:?}"
        );
        assert_eq!(r.all("x-request-id").len(), 1, "{what}: {r:?}");
        assert!(
            !r.target.contains("smuggled"),
            "{what}: a smuggled request reached the upstream: {r:?}"
        );
        for (name, _) in &r.trailers {
            assert!(
                !poortwachter::forwarding::is_gate_owned(name, "x-forwarded-for"),
                "{what}: a trailer {name} reached the upstream: {r:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 1. Pipelining
// ---------------------------------------------------------------------------------------

/// Eight blocked requests in one write: eight pages in order (their languages alternate as
/// asked), none reaches the upstream, closed after the last (`Connection: close`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_blocked_requests_are_each_answered_in_order() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let mut all = String::new();
    for i in 0..8 {
        let lang = if i % 2 == 0 { "nl" } else { "en" };
        let close = if i == 7 { CLOSE } else { "" };
        let extra = format!("Accept-Language: {lang}\r\n{close}");
        all += &get(&format!("/b{i}"), UNREGISTERED, &extra);
    }
    let ex = exchange(g.proxy, all.as_bytes()).await;
    println!("8 blocked: {}", ex.summary());
    assert_eq!(ex.statuses(), [403; 8], "{ex:?}");
    let langs: Vec<_> = ex
        .responses
        .iter()
        .map(|r| r.header("content-language").unwrap_or("?").to_string())
        .collect();
    assert_eq!(langs, ["nl", "en", "nl", "en", "nl", "en", "nl", "en"]);
    let ids: std::collections::HashSet<_> = ex
        .responses
        .iter()
        .map(|r| r.header("x-request-id"))
        .collect();
    assert_eq!(ids.len(), 8, "a request id each");
    assert!(ex.responses[7].closes());
    assert_eq!(ex.end, End::Closed);
    rec.assert_never_contacted();
    assert_serves(&g, &rec, "after-8-blocked").await;
}

/// Eight allowed requests in one write: eight upstream answers in order, the paths at the
/// upstream in order, closed after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_allowed_requests_are_each_answered_in_order() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let all: String = (0..8)
        .map(|i| {
            get(
                &format!("/a{i}"),
                REGISTERED,
                if i == 7 { CLOSE } else { "" },
            )
        })
        .collect();
    let ex = exchange(g.proxy, all.as_bytes()).await;
    println!("8 allowed: {}", ex.summary());
    assert_eq!(ex.statuses(), [200; 8], "{ex:?}");
    let bodies: Vec<String> = ex.responses.iter().map(Response::body).collect();
    let want: Vec<String> = (0..8).map(|i| format!("/a{i}")).collect();
    assert_eq!(bodies, want, "answers in order");
    let seen: Vec<String> = rec.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(seen, want, "paths at the upstream in order");
    assert_eq!(ex.end, End::Closed);
    assert_upstream_clean(&rec, 0, &[REGISTERED], "8 allowed");
}

/// Allowed and blocked alternating, with Content-Length and chunked bodies on the allowed
/// POSTs: every request answered in order, the blocked ones (without bodies) never at the
/// upstream, the bodies at the upstream whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_mixed_requests_with_bodies_are_answered_in_order() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let all = [
        post_cl("/m0", REGISTERED, "body-zero", ""),
        get("/m1", UNREGISTERED, ""),
        post_chunked("/m2", REGISTERED, "chunked-two", ""),
        get("/m3", UNREGISTERED, "Accept: application/json\r\n"),
        get("/m4", REGISTERED, ""),
        post_cl("/m5", REGISTERED, "", ""),
        get("/m6", UNREGISTERED, ""),
        post_chunked("/m7", REGISTERED, "last", CLOSE),
    ]
    .concat();
    let ex = exchange(g.proxy, all.as_bytes()).await;
    println!("mixed with bodies: {}", ex.summary());
    assert_eq!(
        ex.statuses(),
        [200, 403, 200, 403, 200, 200, 403, 200],
        "{ex:?}"
    );
    for (i, r) in ex.responses.iter().enumerate() {
        if r.status == 200 {
            assert_eq!(r.body(), format!("/m{i}"), "answer {i} in its place");
        }
    }
    assert!(ex.responses[3]
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/problem+json")));
    let seen = rec.requests();
    let paths: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(paths, ["/m0", "/m2", "/m4", "/m5", "/m7"]);
    let bodies: Vec<String> = seen
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(bodies, ["body-zero", "chunked-two", "", "", "last"]);
    assert_eq!(ex.end, End::Closed);
    assert_upstream_clean(&rec, 0, &[REGISTERED], "mixed");
}

/// A blocked request with a body the gate does not read, in the middle of a pipeline: the
/// requests before it are answered, it gets its page with `Connection: close`, and the
/// connection is closed — what follows (the body, and requests after it) is never taken
/// as a request, never reaches the upstream, and nothing hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_after_a_blocked_body_are_not_read_and_the_connection_closes() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    // A body that is itself a request, to see that it is never parsed as one.
    let inner = get("/smuggled-in-body", REGISTERED, "");
    let cases = [
        (
            "content-length",
            post_cl("/blocked", UNREGISTERED, &inner, ""),
        ),
        (
            "chunked",
            post_chunked("/blocked", UNREGISTERED, &inner, ""),
        ),
        (
            "expect-100 with body",
            post_cl("/blocked", UNREGISTERED, &inner, "Expect: 100-continue\r\n"),
        ),
    ];
    for (name, blocked) in cases {
        let before = rec.count();
        let all = [
            get("/first", REGISTERED, ""),
            blocked,
            get("/after", REGISTERED, ""),
            get("/after-close", REGISTERED, CLOSE),
        ]
        .concat();
        let ex = exchange(g.proxy, all.as_bytes()).await;
        println!(
            "pipeline with a blocked {name} body in the middle: {}",
            ex.summary()
        );
        assert_ne!(ex.end, End::Hung, "{name}: {ex:?}");
        assert!(ex.statuses().len() >= 2, "{name}: {ex:?}");
        assert_eq!(ex.responses[0].status, 200, "{name}");
        assert_eq!(ex.responses[1].status, 403, "{name}");
        let seen: Vec<String> = rec.requests()[before..]
            .iter()
            .map(|r| r.target.clone())
            .collect();
        if ex.responses.len() == 2 {
            // The safe close: the page says so, nothing after it was read.
            assert!(ex.responses[1].closes(), "{name}: {ex:?}");
            assert_eq!(seen, ["/first"], "{name}");
        } else {
            // Or the body was read and skipped: then the rest is answered in order.
            assert_eq!(ex.statuses(), [200, 403, 200, 200], "{name}: {ex:?}");
            assert_eq!(seen, ["/first", "/after", "/after-close"], "{name}");
        }
        assert_upstream_clean(&rec, before, &[REGISTERED], name);
    }
    assert_serves(&g, &rec, "after-blocked-bodies").await;
}

/// A request in the middle of a pipeline that the gate refuses (malformed, or a header over
/// the limit): the requests before it are answered, it gets its 400 or 431 and the
/// connection is closed; the requests after it are never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_after_a_refused_one_are_not_read() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let cookie = format!("Cookie: a={}\r\n", "c".repeat(33 * 1024));
    for (name, refused, status) in [
        (
            "malformed field",
            get("/refused", REGISTERED, "X A: b\r\n"),
            400,
        ),
        (
            "header over the limit",
            get("/refused", REGISTERED, &cookie),
            431,
        ),
        (
            "bad Content-Length",
            post_cl("/refused", REGISTERED, "", "Content-Length: x\r\n"),
            400,
        ),
    ] {
        let before = rec.count();
        let all = [
            get("/first", REGISTERED, ""),
            refused,
            get("/after", REGISTERED, CLOSE),
        ]
        .concat();
        let ex = exchange(g.proxy, all.as_bytes()).await;
        println!(
            "pipeline with a refused {name} in the middle: {}",
            ex.summary()
        );
        assert_ne!(ex.end, End::Hung, "{name}: {ex:?}");
        assert_eq!(ex.statuses(), [200, status], "{name}: {ex:?}");
        let seen: Vec<String> = rec.requests()[before..]
            .iter()
            .map(|r| r.target.clone())
            .collect();
        assert_eq!(seen, ["/first"], "{name}");
        assert_upstream_clean(&rec, before, &[REGISTERED], name);
    }
    assert_serves(&g, &rec, "after-refused").await;
}

// ---------------------------------------------------------------------------------------
// 2. Probes: smuggling and malformed framing
// ---------------------------------------------------------------------------------------

/// What a probe must end in, on top of what every probe must (no hang, nothing but
/// well-formed requests from registered clients at the upstream, the gate serving after).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// 400-class answers only, or closed without one; nothing reaches the upstream.
    Refused,
    /// The gate's 403 page; nothing reaches the upstream.
    Blocked,
    /// Exactly these request targets at the upstream, in order, each answered 200.
    Forwarded(&'static [&'static str]),
    /// Refused, or exactly these forwarded and answered: both are safe.
    RefusedOr(&'static [&'static str]),
}

struct Probe {
    name: String,
    bytes: Vec<u8>,
    want: Want,
}

fn probe(name: impl Into<String>, bytes: impl Into<Vec<u8>>, want: Want) -> Probe {
    Probe {
        name: name.into(),
        bytes: bytes.into(),
        want,
    }
}

/// Run each probe on its own connection against `g`, check it, and print its outcome.
async fn run_probes(g: &TestGate, rec: &Recorder, probes: Vec<Probe>, registered: &[&str]) {
    let mut failures = Vec::new();
    for (i, p) in probes.into_iter().enumerate() {
        let before = rec.count();
        let ex = exchange(g.proxy, &p.bytes).await;
        let seen: Vec<Recorded> = rec.requests()[before..].to_vec();
        let targets: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
        let versions: Vec<&str> = seen.iter().map(|r| r.version.as_str()).collect();
        let trailers: Vec<&str> = seen
            .iter()
            .flat_map(|r| r.trailers.iter().map(|(n, _)| n.as_str()))
            .collect();
        println!(
            "probe {:<40} {} ; upstream got {targets:?} {versions:?}, trailers {trailers:?}",
            p.name,
            ex.summary(),
        );
        // A refusal is a 4xx, or 505 for an HTTP version the gate does not speak.
        let refused = seen.is_empty()
            && ex
                .responses
                .iter()
                .all(|r| (400..500).contains(&r.status) || r.status == 505)
            && ex.end != End::Hung;
        let forwarded = |paths: &[&str]| {
            targets == paths
                && ex.responses.iter().filter(|r| r.status == 200).count() == paths.len()
        };
        let ok = ex.end != End::Hung
            && match p.want {
                Want::Refused => refused,
                Want::Blocked => seen.is_empty() && ex.statuses().first() == Some(&403),
                Want::Forwarded(paths) => forwarded(paths),
                Want::RefusedOr(paths) => refused || forwarded(paths),
            };
        if !ok {
            failures.push(format!(
                "{}: want {:?}, got {ex:?}, upstream got {seen:?}",
                p.name, p.want
            ));
        }
        assert_upstream_clean(rec, before, registered, &p.name);
        assert_serves(g, rec, &format!("{i}")).await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Smuggling and ambiguous framing: the upstream reads exactly the requests the gate
/// judged, each well-formed; a request hidden in another never reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_probes_never_hide_a_request_from_the_gate() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let smuggled = get("/smuggled", UNREGISTERED, CLOSE);
    let head = |extra: &str| {
        format!("POST /outer HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\n{extra}")
    };
    // The chunked body that ends at once, with the smuggled request after it.
    let cl_te_body = format!("0\r\n\r\n{smuggled}");
    // A chunk that holds the smuggled request, for a parser that reads Content-Length 4.
    let te_cl_body = format!("{:x}\r\n{smuggled}\r\n0\r\n\r\n", smuggled.len());
    let cl_te = |te: &str| {
        format!(
            "{}Content-Length: {}\r\n{te}{CLOSE}\r\n{cl_te_body}",
            head(""),
            cl_te_body.len()
        )
    };
    let te_cl = |te: &str| {
        format!(
            "{}{te}Content-Length: 4\r\n{CLOSE}\r\n{te_cl_body}",
            head("")
        )
    };
    let probes = vec![
        // CL.TE: Transfer-Encoding wins, and the connection is not reused (RFC 9112 §6.1).
        probe("CL.TE", cl_te("Transfer-Encoding: chunked\r\n"), Want::Forwarded(&["/outer"])),
        probe("TE.CL", te_cl("Transfer-Encoding: chunked\r\n"), Want::Forwarded(&["/outer"])),
        probe("TE.TE xchunked", cl_te("Transfer-Encoding: xchunked\r\n"), Want::Refused),
        probe("TE.TE leading space", cl_te("Transfer-Encoding:  chunked\r\n"), Want::Forwarded(&["/outer"])),
        probe("TE.TE tab", cl_te("Transfer-Encoding:\tchunked\r\n"), Want::Forwarded(&["/outer"])),
        probe("TE.TE upper case", cl_te("Transfer-Encoding: CHUNKED\r\n"), Want::Forwarded(&["/outer"])),
        probe("TE.TE chunked, identity", cl_te("Transfer-Encoding: chunked, identity\r\n"), Want::Refused),
        probe("TE.TE identity, chunked", te_cl("Transfer-Encoding: identity, chunked\r\n"), Want::RefusedOr(&["/outer"])),
        probe(
            "TE.TE two headers chunked+identity",
            cl_te("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n"),
            Want::Refused,
        ),
        probe(
            "TE.TE two headers identity+chunked",
            te_cl("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n"),
            Want::RefusedOr(&["/outer"]),
        ),
        probe(
            "TE.TE chunked twice",
            te_cl("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            Want::RefusedOr(&["/outer"]),
        ),
        probe("TE.TE space before colon", cl_te("Transfer-Encoding : chunked\r\n"), Want::Refused),
        probe("TE.TE obs-fold", cl_te("Transfer-Encoding:\r\n chunked\r\n"), Want::Refused),
        probe("TE.TE bare CR in value", cl_te("Transfer-Encoding: chunked\rX: y\r\n"), Want::Refused),
        probe("TE on HTTP/1.0", cl_te("Transfer-Encoding: chunked\r\n").replacen("HTTP/1.1", "HTTP/1.0", 1), Want::Refused),
        probe(
            "CL duplicate, different",
            format!("{}Content-Length: 5\r\nContent-Length: 6\r\n{CLOSE}\r\nhello!", head("")),
            Want::Refused,
        ),
        probe(
            "CL comma list, different",
            format!("{}Content-Length: 5, 6\r\n{CLOSE}\r\nhello!", head("")),
            Want::Refused,
        ),
        probe("CL plus sign", format!("{}Content-Length: +5\r\n{CLOSE}\r\nhello", head("")), Want::Refused),
        probe("CL minus sign", format!("{}Content-Length: -5\r\n{CLOSE}\r\nhello", head("")), Want::Refused),
        probe("CL hex", format!("{}Content-Length: 0x5\r\n{CLOSE}\r\nhello", head("")), Want::Refused),
        probe("CL inner space", format!("{}Content-Length: 5 5\r\n{CLOSE}\r\nhello", head("")), Want::Refused),
        probe("CL decimal", format!("{}Content-Length: 5.0\r\n{CLOSE}\r\nhello", head("")), Want::Refused),
        probe(
            "CL overflow",
            format!("{}Content-Length: 184467440737095516160\r\n{CLOSE}\r\nhello", head("")),
            Want::Refused,
        ),
        probe(
            "CL surrounding spaces",
            format!("{}Content-Length:   5  \r\n{CLOSE}\r\nhello", head("")),
            Want::Forwarded(&["/outer"]),
        ),
        probe(
            "CL leading zeros",
            format!("{}Content-Length: 005\r\n{CLOSE}\r\nhello", head("")),
            Want::RefusedOr(&["/outer"]),
        ),
        probe(
            "GET with a body holding a request",
            format!("GET /outer HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\nContent-Length: {}\r\n{CLOSE}\r\n{smuggled}", smuggled.len()),
            Want::Forwarded(&["/outer"]),
        ),
        probe(
            "chunk extension",
            format!("{}Transfer-Encoding: chunked\r\n{CLOSE}\r\n5;ext=\"x\"\r\nhello\r\n0\r\n\r\n", head("")),
            Want::RefusedOr(&["/outer"]),
        ),
        probe(
            "chunk size not hex",
            format!("{}Transfer-Encoding: chunked\r\n{CLOSE}\r\nzz\r\nhello\r\n0\r\n\r\n", head("")),
            Want::RefusedOr(&[]),
        ),
        probe(
            "chunk size overflow",
            format!("{}Transfer-Encoding: chunked\r\n{CLOSE}\r\n1000000000000000000005\r\nhello\r\n0\r\n\r\n", head("")),
            Want::RefusedOr(&[]),
        ),
        probe(
            "chunk data longer than its size",
            format!("{}Transfer-Encoding: chunked\r\n{CLOSE}\r\n2\r\nhello\r\n0\r\n\r\n", head("")),
            Want::RefusedOr(&[]),
        ),
        probe(
            "chunked trailer with X-Forwarded-For",
            format!("{}Transfer-Encoding: chunked\r\n{CLOSE}\r\n5\r\nhello\r\n0\r\nX-Forwarded-For: 10.9.9.9\r\nX-Real-IP: 10.9.9.9\r\n\r\n", head("")),
            Want::RefusedOr(&["/outer"]),
        ),
        probe(
            "smuggled after a blocked CL.TE",
            cl_te("Transfer-Encoding: chunked\r\n").replacen(REGISTERED, UNREGISTERED, 1),
            Want::Blocked,
        ),
        probe(
            "Expect 100-continue from a blocked client",
            format!("POST /outer HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {UNREGISTERED}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
            Want::Blocked,
        ),
        probe(
            "Expect 100-continue from a blocked client, body sent",
            format!("POST /outer HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {UNREGISTERED}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n{smuggled}", smuggled.len()),
            Want::Blocked,
        ),
    ];
    run_probes(&g, &rec, probes, &[REGISTERED]).await;
}

/// Equal duplicate `Content-Length` values are accepted (RFC 9110 §8.6 allows a recipient
/// to), but then the upstream must get one `Content-Length`, not the client's list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_duplicate_content_lengths_reach_the_upstream_as_one() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let head = format!(
        "POST /outer HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\n"
    );
    let mut wrong = Vec::new();
    for (name, fields) in [
        ("two fields", "Content-Length: 5\r\nContent-Length: 5\r\n"),
        ("a list", "Content-Length: 5, 5\r\n"),
    ] {
        let (requests, malformed) = (rec.count(), rec.malformed().len());
        let ex = exchange(
            g.proxy,
            format!("{head}{fields}{CLOSE}\r\nhello").as_bytes(),
        )
        .await;
        let bad = rec.malformed()[malformed..].to_vec();
        println!(
            "equal Content-Length, {name}: {} ; upstream got {:?} {bad:?}",
            ex.summary(),
            rec.requests()[requests..]
                .iter()
                .map(|r| &r.target)
                .collect::<Vec<_>>()
        );
        if !bad.is_empty() || ex.statuses() != [200] {
            wrong.push(format!("{name}: {} ; upstream read {bad:?}", ex.summary()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Malformed request lines and fields: refused (Pingora's 400 for now, or a close) or, where
/// the gate's parser reads them one way only, forwarded as one well-formed request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_or_forwarded_well_formed() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let ok = |extra: &str| get("/m", REGISTERED, &format!("{extra}{CLOSE}"));
    let probes = vec![
        probe("bare LF line ends", format!("GET /m HTTP/1.1\nHost: afname.example.nl\nX-Forwarded-For: {REGISTERED}\n{}\n", "Connection: close\n"), Want::RefusedOr(&["/m"])),
        probe("bare LF hides a header", format!("GET /m HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\nX-A: 1\nX-Forwarded-For: {UNREGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&[])),
        probe("bare CR in a value", ok("X-A: 1\rX-B: 2\r\n"), Want::Refused),
        probe("bare CR as line end", format!("GET /m HTTP/1.1\rHost: afname.example.nl\rX-Forwarded-For: {REGISTERED}\r\r"), Want::Refused),
        probe("obs-fold", ok("X-A: one\r\n two\r\n"), Want::Refused),
        probe("obs-fold of X-Forwarded-For", get("/m", REGISTERED, &format!("X-Forwarded-For:\r\n {UNREGISTERED}\r\n{CLOSE}")), Want::Refused),
        probe("NUL in a value", ok("X-A: a\0b\r\n"), Want::Refused),
        probe("NUL in a name", ok("X-\0A: b\r\n"), Want::Refused),
        probe("space in a name", ok("X A: b\r\n"), Want::Refused),
        probe("field without colon", ok("X-A\r\n"), Want::Refused),
        probe("empty field name", ok(": b\r\n"), Want::Refused),
        probe("DEL in a value", ok("X-A: a\x7fb\r\n"), Want::RefusedOr(&["/m"])),
        probe("request line, space in target", format!("GET /m /x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&["/m%20/x"])),
        probe("request line, no version (HTTP/0.9)", "GET /m\r\n\r\n", Want::Refused),
        probe("request line, HTTP/1.2", format!("GET /m HTTP/1.2\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&["/m"])),
        probe("request line, HTTP/2.0", format!("GET /m HTTP/2.0\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::Refused),
        probe("request line, lower-case method", format!("get /m HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&["/m"])),
        probe("request line, bad method", format!("G(T /m HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::Refused),
        probe("request line, tab separator", format!("GET\t/m HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::Refused),
        probe("empty lines before the request", format!("\r\n\r\n{}", ok("")), Want::RefusedOr(&["/m"])),
        probe("garbage", &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"[..], Want::Refused),
        probe(
            "absolute-form URI",
            format!("GET http://afname.example.nl/m HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"),
            Want::RefusedOr(&["http://afname.example.nl/m"]),
        ),
        probe(
            "absolute-form URI, other host",
            format!("GET http://other.example/m HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"),
            Want::RefusedOr(&["http://other.example/m"]),
        ),
        probe(
            "absolute-form URI from a blocked client",
            format!("GET http://afname.example.nl/m HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {UNREGISTERED}\r\n{CLOSE}\r\n"),
            Want::Blocked,
        ),
        probe("authority-form (CONNECT)", format!("CONNECT 192.0.2.9:443 HTTP/1.1\r\nHost: 192.0.2.9:443\r\nX-Forwarded-For: {UNREGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&[])),
        probe("asterisk-form (OPTIONS *)", format!("OPTIONS * HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {UNREGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&[])),
        probe("Host twice", ok("Host: other.example\r\n"), Want::Refused),
        // HTTP/1.1 requires a host (RFC 9112 §3.2): refused, whoever sends it.
        probe("Host missing", format!("GET /m HTTP/1.1\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::Refused),
        probe("Host empty", format!("GET /m HTTP/1.1\r\nHost:\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::Refused),
        probe("Host with userinfo", format!("GET /m HTTP/1.1\r\nHost: a@other.example\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"), Want::RefusedOr(&["/m"])),
        probe("Host missing, blocked client", format!("GET /m HTTP/1.1\r\nX-Forwarded-For: {UNREGISTERED}\r\n{CLOSE}\r\n"), Want::Refused),
        probe(
            "HTTP/1.0 keep-alive, two requests",
            format!(
                "GET /m HTTP/1.0\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\nConnection: keep-alive\r\n\r\nGET /n HTTP/1.0\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n\r\n"
            ),
            Want::Forwarded(&["/m", "/n"]),
        ),
        probe(
            "HTTP/1.0 keep-alive, blocked then allowed",
            format!(
                "GET /b HTTP/1.0\r\nHost: x\r\nX-Forwarded-For: {UNREGISTERED}\r\nConnection: keep-alive\r\n\r\nGET /n HTTP/1.0\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n\r\n"
            ),
            Want::RefusedOr(&["/n"]),
        ),
        probe(
            "HTTP/1.0 without keep-alive, a second request after",
            format!("GET /m HTTP/1.0\r\nHost: x\r\nX-Forwarded-For: {REGISTERED}\r\n\r\n{}", get("/smuggled", REGISTERED, "")),
            Want::Forwarded(&["/m"]),
        ),
    ];
    run_probes(&g, &rec, probes, &[REGISTERED]).await;
}

// ---------------------------------------------------------------------------------------
// 2. Probes: the headers the upstream trusts
// ---------------------------------------------------------------------------------------

/// The loopback peer untrusted and registered itself: whatever forwarding or gate header a
/// client sends, in whatever spelling, the upstream sees the gate's `X-Forwarded-For` with
/// the peer address only, and the gate's own request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sent_gate_headers_never_reach_the_upstream() {
    let rec = Recorder::start().await;
    let g = start_gate(GateSpec {
        upstreams: vec![rec.addr()],
        trusted: vec!["10.0.0.0/8"],
        allowlist: Some(ALLOWLIST.replace("\"198.51.100.7\"", "\"198.51.100.7\", \"127.0.0.1\"")),
        proxy_extra: "header_timeout = \"1s\"\nkeepalive_timeout = \"2s\"",
        ..GateSpec::default()
    })
    .await;
    let req =
        |extra: &str| format!("GET /m HTTP/1.1\r\nHost: afname.example.nl\r\n{extra}{CLOSE}\r\n");
    let spoof = "192.0.2.3";
    let fwd = |name: &str| req(&format!("{name}: {spoof}\r\n"));
    let probes = vec![
        probe(
            "X-Forwarded-For",
            fwd("X-Forwarded-For"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "x-forwarded-for",
            fwd("x-forwarded-for"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "X-FORWARDED-FOR",
            fwd("X-FORWARDED-FOR"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "X_Forwarded_For",
            fwd("X_Forwarded_For"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "x-forwarded_for",
            fwd("x-forwarded_for"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "X-Forwarded-For twice",
            req("X-Forwarded-For: 192.0.2.3\r\nx-forwarded-for: 192.0.2.4\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "X-Forwarded-For trailing spaces",
            req("X-Forwarded-For: 192.0.2.3   \r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "X-Forwarded-For space before colon",
            req("X-Forwarded-For : 192.0.2.3\r\n"),
            Want::Refused,
        ),
        probe(
            "X-Forwarded-For tab before colon",
            req("X-Forwarded-For\t: 192.0.2.3\r\n"),
            Want::Refused,
        ),
        probe(
            "X-Forwarded-For empty",
            req("X-Forwarded-For:\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe("X-Real-IP", fwd("X-Real-IP"), Want::Forwarded(&["/m"])),
        probe("x_real_ip", fwd("x_real_ip"), Want::Forwarded(&["/m"])),
        probe(
            "True-Client-IP",
            fwd("True-Client-IP"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "CF-Connecting-IP",
            fwd("CF-Connecting-IP"),
            Want::Forwarded(&["/m"]),
        ),
        probe("X-Client-IP", fwd("X-Client-IP"), Want::Forwarded(&["/m"])),
        probe(
            "Forwarded",
            req("Forwarded: for=192.0.2.3\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "FORWARDED quoted",
            req("FORWARDED: for=\"192.0.2.3\"\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "x-request-id",
            req("X-Request-Id: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "x_request_id",
            req("x_request_id: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "x-poortwachter-site",
            req("X-Poortwachter-Site: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "x_poortwachter_site",
            req("x_poortwachter_site: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "Connection: x-request-id",
            req("Connection: x-request-id\r\nX-Request-Id: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "Connection: X-Real-IP",
            req("Connection: X-Real-IP\r\nX-Real-IP: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        probe(
            "Connection: x-poortwachter-site",
            req("Connection: keep-alive, x-poortwachter-site\r\nx-poortwachter-site: evil\r\n"),
            Want::Forwarded(&["/m"]),
        ),
        // Pingora refuses to drop the header the gate writes (see tests/gate.rs).
        probe(
            "Connection: x-forwarded-for",
            req("Connection: x-forwarded-for\r\nX-Forwarded-For: 192.0.2.3\r\n"),
            Want::RefusedOr(&["/m"]),
        ),
        probe(
            "Connection: X_Forwarded_For",
            req("Connection: X_Forwarded_For\r\nX_Forwarded_For: 192.0.2.3\r\n"),
            Want::RefusedOr(&["/m"]),
        ),
        probe(
            "encoded CRLF in the path",
            req("").replacen("/m", "/m%0d%0aX-Forwarded-For:%20192.0.2.3", 1),
            Want::Refused,
        ),
        probe(
            "encoded CRLF in the query",
            req("").replacen("/m", "/m?a=%0d%0aX-Injected:%201", 1),
            Want::Forwarded(&["/m?a=%0d%0aX-Injected:%201"]),
        ),
        probe(
            "raw CR inside a value",
            req("X-A: a\rX-Injected: 1\r\n"),
            Want::Refused,
        ),
        probe(
            "raw LF inside a value",
            req("X-A: a\nX-Forwarded-For: 192.0.2.3\r\n"),
            Want::RefusedOr(&["/m"]),
        ),
        probe(
            "fifty X-Forwarded-For",
            req(&"X-Forwarded-For: 192.0.2.3\r\n".repeat(50)),
            Want::Forwarded(&["/m"]),
        ),
    ];
    run_probes(&g, &rec, probes, &["127.0.0.1"]).await;
    // Every request the upstream got carries the gate's headers only.
    for r in rec.requests() {
        let owned: Vec<&(String, String)> = r
            .headers
            .iter()
            .filter(|(n, _)| poortwachter::forwarding::is_gate_owned(n, "x-forwarded-for"))
            .collect();
        let names: Vec<String> = owned.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        assert_eq!(names, ["x-forwarded-for", "x-request-id"], "{r:?}");
        assert_eq!(r.all("x-forwarded-for"), ["127.0.0.1"], "{r:?}");
        assert_ne!(r.all("x-request-id"), ["evil"], "{r:?}");
        assert!(r.all("x-injected").is_empty(), "{r:?}");
    }
}

/// Send `extra` headers (each line ending in CRLF) from the loopback peer; the answer.
async fn ask(g: &TestGate, extra: &str) -> Exchange {
    let req = format!(
        "GET /toets HTTP/1.1\r\nHost: afname.example.nl\r\nAccept: application/json\r\n{extra}{CLOSE}\r\n"
    );
    exchange(g.proxy, req.as_bytes()).await
}

/// From an untrusted peer (the loopback peer is trusted only when the config says so; here
/// it is not), no forwarding header in any form changes the decision: the peer is the
/// client, blocked, and the page shows the peer's address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let rec = Recorder::start().await;
    let long_list = vec![REGISTERED; 2000].join(", ");
    let many_lines = format!("X-Forwarded-For: {REGISTERED}\r\n").repeat(80);
    let long_forwarded = vec!["for=192.0.2.3"; 1500].join(", ");
    let spoofs: Vec<(&str, String)> = vec![
        ("xff plain", format!("X-Forwarded-For: {REGISTERED}\r\n")),
        ("xff quoted", format!("X-Forwarded-For: \"{REGISTERED}\"\r\n")),
        ("xff with port", format!("X-Forwarded-For: {REGISTERED}:443\r\n")),
        ("xff ipv6", "X-Forwarded-For: 2001:db8:12::1\r\n".into()),
        ("xff ipv6 brackets port", "X-Forwarded-For: [2001:db8:12::1]:443\r\n".into()),
        ("xff ipv4-mapped", "X-Forwarded-For: ::ffff:192.0.2.3\r\n".into()),
        ("xff two lines", format!("X-Forwarded-For: {REGISTERED}\r\nX-Forwarded-For: {REGISTERED}\r\n")),
        ("xff 2000 elements", format!("X-Forwarded-For: {long_list}\r\n")),
        ("xff 80 lines", many_lines),
        ("xff underscore", format!("X_Forwarded_For: {REGISTERED}\r\n")),
        ("forwarded for=", format!("Forwarded: for={REGISTERED}\r\n")),
        ("forwarded quoted", format!("Forwarded: for=\"{REGISTERED}\"\r\n")),
        ("forwarded ipv6", "Forwarded: for=\"[2001:db8:12::1]:443\"\r\n".into()),
        ("forwarded obfuscated", format!("Forwarded: for=_hidden, for={REGISTERED}\r\n")),
        ("forwarded unknown", format!("Forwarded: for=unknown, for={REGISTERED}\r\n")),
        ("forwarded 1500 elements", format!("Forwarded: {long_forwarded}\r\n")),
        ("x-real-ip", format!("X-Real-IP: {REGISTERED}\r\n")),
        ("true-client-ip", format!("True-Client-IP: {REGISTERED}\r\n")),
        ("cf-connecting-ip", format!("CF-Connecting-IP: {REGISTERED}\r\n")),
        ("x-client-ip", format!("X-Client-IP: {REGISTERED}\r\n")),
        ("every header at once", format!(
            "X-Forwarded-For: {REGISTERED}\r\nForwarded: for={REGISTERED}\r\nX-Real-IP: {REGISTERED}\r\nTrue-Client-IP: {REGISTERED}\r\nCF-Connecting-IP: {REGISTERED}\r\nX-Client-IP: {REGISTERED}\r\n"
        )),
    ];
    for header in ["x-forwarded-for", "forwarded"] {
        let g = start_gate(GateSpec {
            upstreams: vec![rec.addr()],
            trusted: vec!["10.0.0.0/8"],
            header,
            ..GateSpec::default()
        })
        .await;
        for (name, extra) in &spoofs {
            let ex = ask(&g, extra).await;
            println!("spoof ({header} mode) {name:<24} {}", ex.summary());
            assert_eq!(ex.statuses(), [403], "{header} {name}: {ex:?}");
            let page: serde_json::Value =
                serde_json::from_slice(&ex.responses[0].body).expect("the JSON page");
            assert_eq!(page["client_ip"], "127.0.0.1", "{header} {name}: {page}");
            assert_eq!(page["reason"], "not_registered", "{header} {name}: {page}");
        }
    }
    rec.assert_never_contacted();
}

/// Through a trusted proxy the header decides, walked from the right: a registered address
/// left of the real client, or a malformed element where the walk stops, never lets the
/// request through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_through_a_trusted_proxy_fail_closed() {
    let rec = Recorder::start().await;
    for (header, cases) in [
        (
            "x-forwarded-for",
            vec![
                format!("X-Forwarded-For: {REGISTERED}, {UNREGISTERED}\r\n"),
                format!("X-Forwarded-For: {REGISTERED}\r\nX-Forwarded-For: {UNREGISTERED}\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, \"{REGISTERED}\"\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, [{REGISTERED}]\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, 192.0.2.03\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, 0xc0.0.2.3\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, 192.0.2.3/28\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, 2001:db8:12::1%eth0\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, unknown\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, 192.0.2 .3\r\n"),
                format!("X-Forwarded-For: {REGISTERED}, _hidden\r\n"),
                format!("Forwarded: for={REGISTERED}\r\nX-Forwarded-For: {UNREGISTERED}\r\n"),
            ],
        ),
        (
            "forwarded",
            vec![
                format!("Forwarded: for={REGISTERED}, for={UNREGISTERED}\r\n"),
                format!("Forwarded: for={REGISTERED}\r\nForwarded: for={UNREGISTERED}\r\n"),
                format!("Forwarded: for={UNREGISTERED};x=\"for={REGISTERED}\"\r\n"),
                format!("Forwarded: for={REGISTERED}, for=_hidden\r\n"),
                format!("Forwarded: for={REGISTERED}, for=unknown\r\n"),
                format!("Forwarded: for={REGISTERED}, for={REGISTERED}:443\r\n"),
                format!("Forwarded: for={REGISTERED}, for=[2001:db8:12::1]\r\n"),
                format!("Forwarded: for={REGISTERED}, for = {REGISTERED}\r\n"),
                format!("Forwarded: for={REGISTERED}, for={REGISTERED};for={REGISTERED}\r\n"),
                format!("Forwarded: for={REGISTERED}, proto=https\r\n"),
                format!("X-Forwarded-For: {REGISTERED}\r\nForwarded: for={UNREGISTERED}\r\n"),
                format!("X-Forwarded-For: {REGISTERED}\r\n"),
            ],
        ),
    ] {
        let g = start_gate(GateSpec {
            upstreams: vec![rec.addr()],
            header,
            ..GateSpec::default()
        })
        .await;
        for extra in &cases {
            let ex = ask(&g, extra).await;
            println!(
                "trusted walk ({header}) {:<60} {}",
                extra.trim_end(),
                ex.summary()
            );
            assert_eq!(ex.statuses(), [403], "{header} {extra:?}: {ex:?}");
            let page: serde_json::Value =
                serde_json::from_slice(&ex.responses[0].body).expect("the JSON page");
            assert_ne!(page["client_ip"], REGISTERED, "{header} {extra:?}: {page}");
        }
    }
    rec.assert_never_contacted();
}

// ---------------------------------------------------------------------------------------
// 2. Probes: path tricks on routes
// ---------------------------------------------------------------------------------------

const ROUTES: &str = r#"
[[route]]
name = "static"
path_prefix = "/static/"
action = "bypass"

[[route]]
name = "beheer"
path_prefix = "/beheer/"
action = "block"

[[route]]
name = "beheer-host"
host = "beheer.example.nl"
path_prefix = "/"
action = "block"
"#;

/// A path as RFC 3986 resolves it (§5.2.4, `%2E` decoded as `.`, `%2F` as `/`, `%5C` and
/// `\` as `/` as Windows servers do, empty segments merged as nginx does), the query and
/// fragment cut off: what an ordinary upstream may serve for it.
fn resolved(target: &str) -> String {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let mut decoded = String::new();
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        decoded.push_str(&rest[..i]);
        match rest
            .get(i + 1..i + 3)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("2e") => decoded.push('.'),
            Some("2f") | Some("5c") => decoded.push('/'),
            _ => decoded.push('%'),
        }
        rest = if decoded.ends_with('%') {
            &rest[i + 1..]
        } else {
            &rest[i + 3..]
        };
    }
    decoded.push_str(rest);
    let decoded = decoded.replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        match seg {
            "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let trailing = if decoded.ends_with('/') && !out.is_empty() {
        "/"
    } else {
        ""
    };
    format!("/{}{trailing}", out.join("/"))
}

/// Path tricks against a bypass route (`/static/`, open to everyone) and a block route
/// (`/beheer/`, never forwarded): a tricky path is refused 400 or judged as what it
/// resolves to. Nothing an unregistered client gets through resolves outside `/static/`,
/// nothing a registered one gets through resolves inside `/beheer/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_never_escape_a_route() {
    let rec = Recorder::start().await;
    let g = start_gate(GateSpec {
        upstreams: vec![rec.addr()],
        extra: ROUTES.to_string(),
        proxy_extra: "header_timeout = \"1s\"\nkeepalive_timeout = \"2s\"",
        ..GateSpec::default()
    })
    .await;
    // Out of the bypass route, from an unregistered client.
    let out_of_static = [
        "/static/../toets",
        "/static/./../toets",
        "/static//../toets",
        "/static/%2e%2e/toets",
        "/static/%2E%2E/toets",
        "/static/.%2e/toets",
        "/static/%2e./toets",
        "/static/..%2ftoets",
        "/static/..%2Ftoets",
        "/static%2f..%2ftoets",
        "/static/..%5ctoets",
        "/static/..\\toets",
        "/static/x/../../toets",
        "/static/../toets?x=1",
        "/static/..",
        "/static/%2e%2e",
        "/static/..%00/toets",
        "/static/..%0a/toets",
        "//static/../toets",
        "/static/x?/../../toets",
        "/static/x#/../../toets",
        "/STATIC/x",
        "/Static/x",
        "/static",
        "/staticx/toets",
        "/%73tatic/../toets",
        "/static/%252e%252e/toets",
        "static/x",
        " /toets",
        "/static/x /../../toets",
        "*",
        "http://afname.example.nl/static/../toets",
    ];
    // Into the block route, from a registered client.
    let into_beheer = [
        "/beheer/../beheer/x",
        "/x/../beheer/",
        "/x/%2e%2e/beheer/",
        "/x/..%2fbeheer/",
        "//beheer/",
        "/./beheer/",
        "/beheer//",
        "/%62eheer/",
        "/%62%65%68%65%65%72/x",
        "/x%2f..%2fbeheer/",
        "/x\\..\\beheer\\",
        "/beheer%2f",
        "/beheer%2Fx",
        "/static/../beheer/",
        "/beheer/?x",
        "/beheer/#x",
        "http://afname.example.nl/beheer/",
        "http://other.example/beheer/",
        "/beheer/x ",
    ];
    let mut escapes = Vec::new();
    for (client, paths) in [
        (UNREGISTERED, &out_of_static[..]),
        (REGISTERED, &into_beheer[..]),
    ] {
        for path in paths {
            let before = rec.count();
            let ex = exchange(g.proxy, get(path, client, CLOSE).as_bytes()).await;
            assert_ne!(ex.end, End::Hung, "{path}: {ex:?}");
            let seen: Vec<String> = rec.requests()[before..]
                .iter()
                .map(|r| r.target.clone())
                .collect();
            println!(
                "path {client:<13} {path:<42} {} ; upstream got {seen:?}",
                ex.summary()
            );
            for target in &seen {
                let r = resolved(target);
                let escaped = if client == UNREGISTERED {
                    !r.starts_with("/static/")
                } else {
                    r.starts_with("/beheer/") || r == "/beheer"
                };
                if escaped {
                    escapes.push(format!(
                        "{client} {path:?}: upstream got {target:?} = {r:?}"
                    ));
                }
            }
            assert_upstream_clean(&rec, before, &[REGISTERED, UNREGISTERED], path);
            if seen.is_empty() {
                assert!(
                    ex.responses.iter().all(|r| (400..500).contains(&r.status)),
                    "{path}: {ex:?}"
                );
            }
        }
    }
    // Into the block route by host, from a registered client.
    for (host_lines, target) in [
        ("Host: BEHEER.example.NL\r\n", "/x"),
        ("Host: beheer.example.nl.\r\n", "/x"),
        ("Host: beheer.example.nl:8080\r\n", "/x"),
        ("Host: beheer.example.nl:\r\n", "/x"),
        ("Host: beheer.example.nl..\r\n", "/x"),
        ("Host:   beheer.example.nl  \r\n", "/x"),
        (
            "Host: beheer.example.nl\r\nHost: afname.example.nl\r\n",
            "/x",
        ),
        (
            "Host: afname.example.nl\r\nHost: beheer.example.nl\r\n",
            "/x",
        ),
        ("Host: afname.example.nl\r\n", "http://beheer.example.nl/x"),
        ("Host: beheer.example.nl\r\n", "http://afname.example.nl/x"),
        ("Host: beheer.example.nl\r\n", "HTTP://BEHEER.EXAMPLE.NL/x"),
        ("Host: user@beheer.example.nl\r\n", "/x"),
        ("Host: beheer.example.nl%2e\r\n", "/x"),
        ("Host: [beheer.example.nl]\r\n", "/x"),
        (
            "X-Forwarded-Host: beheer.example.nl\r\nHost: afname.example.nl\r\n",
            "/x",
        ),
    ] {
        let before = rec.count();
        let req = format!(
            "GET {target} HTTP/1.1\r\n{host_lines}X-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"
        );
        let ex = exchange(g.proxy, req.as_bytes()).await;
        assert_ne!(ex.end, End::Hung, "{req:?}: {ex:?}");
        let seen = rec.requests()[before..].to_vec();
        println!(
            "host {:<60} {target:<28} {} ; upstream got {:?}",
            host_lines.replace("\r\n", " "),
            ex.summary(),
            seen.iter()
                .map(|r| (r.target.clone(), r.all("host").join("|")))
                .collect::<Vec<_>>()
        );
        for r in &seen {
            let hosts: Vec<String> = r
                .all("host")
                .into_iter()
                .chain(
                    r.target
                        .split("://")
                        .nth(1)
                        .and_then(|a| a.split('/').next()),
                )
                .map(poortwachter::route::normalise_host)
                .collect();
            if hosts.iter().any(|h| h == "beheer.example.nl") {
                escapes.push(format!(
                    "{req:?}: upstream got {} with Host {:?}",
                    r.target,
                    r.all("host")
                ));
            }
        }
        assert_upstream_clean(&rec, before, &[REGISTERED], &req);
    }
    assert!(
        escapes.is_empty(),
        "requests that escaped a route: {escapes:#?}"
    );
    assert_serves(&g, &rec, "after-paths").await;
}

/// A request in absolute-form without `Host` is for the target's authority (RFC 9112
/// §3.2.2), and the upstream gets it with that `Host`: a host route must apply to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_without_host_is_judged_by_its_authority() {
    let rec = Recorder::start().await;
    let g = start_gate(GateSpec {
        upstreams: vec![rec.addr()],
        extra: ROUTES.to_string(),
        ..GateSpec::default()
    })
    .await;
    let req = format!(
        "GET http://beheer.example.nl/x HTTP/1.1\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"
    );
    let ex = exchange(g.proxy, req.as_bytes()).await;
    println!(
        "{req:?}: {} ; upstream got {:?}",
        ex.summary(),
        rec.requests()
    );
    assert!(
        rec.requests().is_empty(),
        "passed the block route of beheer.example.nl: {:?}",
        rec.requests()
    );
    assert!(
        ex.responses
            .iter()
            .all(|r| r.status == 400 || r.status == 403),
        "{ex:?}"
    );
}

/// A request target that is in no form of RFC 9112 §3.2 (Pingora turns `GET  /x` into the
/// target `%20/x`; `GET beheer/x` is sent as it is) must be refused, or judged as what is
/// forwarded: the gate judges such a target as `/` (Pingora's URI for it) while the
/// upstream gets the target verbatim, so a block route is never applied to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_targets_not_in_origin_form_are_judged_as_forwarded() {
    let rec = Recorder::start().await;
    let g = start_gate(GateSpec {
        upstreams: vec![rec.addr()],
        extra: ROUTES.to_string(),
        ..GateSpec::default()
    })
    .await;
    let mut passed = Vec::new();
    for line in [
        "GET  /beheer/x HTTP/1.1",
        "GET beheer/x HTTP/1.1",
        "GET %2Fbeheer/x HTTP/1.1",
        "GET ./beheer/x HTTP/1.1",
    ] {
        let req = format!(
            "{line}\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\n{CLOSE}\r\n"
        );
        let (requests, malformed) = (rec.count(), rec.malformed().len());
        let ex = exchange(g.proxy, req.as_bytes()).await;
        // What the upstream read, whether or not it took it for a request.
        let got: Vec<String> = rec.requests()[requests..]
            .iter()
            .map(|r| r.target.clone())
            .chain(rec.malformed()[malformed..].iter().cloned())
            .collect();
        println!("{line:<28} {} ; upstream got {got:?}", ex.summary());
        if !got.is_empty()
            || ex
                .responses
                .iter()
                .any(|r| r.status != 400 && r.status != 403)
        {
            passed.push(format!("{line:?}: {} ; upstream got {got:?}", ex.summary()));
        }
    }
    assert!(passed.is_empty(), "passed the block route: {passed:#?}");
}

// ---------------------------------------------------------------------------------------
// 2. Probes: size limits, slow bodies, resets, churn
// ---------------------------------------------------------------------------------------

/// Headers just over `max_header_bytes` (32 KiB) or `max_header_count` (100), and far over
/// them: the 431 page or a close, never the upstream, from either client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_and_many_headers_are_refused() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let cookie = |bytes: usize| format!("Cookie: a={}\r\n", "c".repeat(bytes));
    let fields = |n: usize| -> String { (0..n).map(|i| format!("X-F{i}: {i}\r\n")).collect() };
    let mut probes = Vec::new();
    for (client, who) in [(REGISTERED, "registered"), (UNREGISTERED, "unregistered")] {
        let with = |extra: String| get("/toets", client, &format!("{extra}{CLOSE}"));
        probes.extend([
            probe(
                format!("{who}, cookie of 32 KiB + 1"),
                with(cookie(32 * 1024 + 1)),
                Want::Refused,
            ),
            probe(
                format!("{who}, 101 fields"),
                with(fields(101)),
                Want::Refused,
            ),
            probe(
                format!("{who}, 300 fields"),
                with(fields(300)),
                Want::Refused,
            ),
            probe(
                format!("{who}, cookie of 70 KiB"),
                with(cookie(70 * 1024)),
                Want::Refused,
            ),
            probe(
                format!("{who}, 2000 equal fields"),
                with("X-A: b\r\n".repeat(2000)),
                Want::Refused,
            ),
            probe(
                format!("{who}, path of 33 KiB"),
                get(&format!("/{}", "p".repeat(33 * 1024)), client, CLOSE),
                Want::Refused,
            ),
        ]);
    }
    run_probes(&g, &rec, probes, &[REGISTERED]).await;
    assert!(rec
        .requests()
        .iter()
        .all(|r| r.target.starts_with("/alive-")));
}

/// The time until the gate ends the exchange (closes, or answers and closes) while the
/// client sends `head` and then dribbles `body` one byte every `every`; `None` when it
/// is still open after `limit`.
async fn dribble_body(
    to: SocketAddr,
    head: &str,
    body: &[u8],
    every: Duration,
    limit: Duration,
) -> Option<(Duration, Vec<u8>)> {
    let mut s = TcpStream::connect(to).await.unwrap();
    let started = Instant::now();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    for b in body.iter().chain(std::iter::repeat(&b'x')) {
        if started.elapsed() > limit {
            return None;
        }
        if !body.is_empty() && s.write_all(std::slice::from_ref(b)).await.is_err() {
            return Some((started.elapsed(), got));
        }
        match tokio::time::timeout(every, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some((started.elapsed(), got)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    unreachable!("the body never ends")
}

/// A gate whose timeouts are all short, for the slow-body tests.
async fn short_timeouts_gate(rec: &Recorder) -> TestGate {
    start_gate(GateSpec {
        upstreams: vec![rec.addr()],
        proxy_extra: "header_timeout = \"1s\"\nkeepalive_timeout = \"1s\"\nbody_timeout = \"1s\"",
        upstream_extra: "connect_timeout = \"1s\"\nread_timeout = \"1s\"\nwrite_timeout = \"1s\""
            .to_string(),
        ..GateSpec::default()
    })
    .await
}

fn slow_head(xff: &str) -> String {
    format!("POST /slow HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {xff}\r\nContent-Length: 100000\r\n\r\n")
}

/// A blocked request's body, dribbled or stalled, is never read: the page comes at once and
/// the connection is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_of_blocked_requests_are_not_waited_for() {
    let rec = Recorder::start().await;
    let g = short_timeouts_gate(&rec).await;
    for (name, body) in [("dribbling", &b"x"[..]), ("stalled", &b""[..])] {
        let ended = dribble_body(
            g.proxy,
            &slow_head(UNREGISTERED),
            body,
            Duration::from_millis(100),
            HANG,
        )
        .await;
        let (took, got) = ended.unwrap_or_else(|| panic!("{name}: still open after {HANG:?}"));
        let (answers, _) = parse_responses(&got);
        let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        println!("slow body, blocked, {name:<10} ended after {took:?} with answers {statuses:?}");
        assert_eq!(statuses, [403], "{name}");
        assert!(took < Duration::from_secs(2), "{name}: {took:?}");
    }
    rec.assert_never_contacted();
    assert_serves(&g, &rec, "after-slow-bodies").await;
}

/// An allowed request's body that dribbles (a byte every 100 ms) or stalls must be ended by
/// one of the gate's timeouts, here all 1 s; the test allows 6 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_of_allowed_requests_are_bounded() {
    let rec = Recorder::start().await;
    let g = short_timeouts_gate(&rec).await;
    let limit = Duration::from_secs(6);
    let mut open = Vec::new();
    for (name, body) in [("dribbling", &b"x"[..]), ("stalled", &b""[..])] {
        let ended = dribble_body(
            g.proxy,
            &slow_head(REGISTERED),
            body,
            Duration::from_millis(100),
            limit,
        )
        .await;
        match ended {
            Some((took, got)) => {
                let (answers, _) = parse_responses(&got);
                let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
                println!(
                    "slow body, allowed, {name:<10} ended after {took:?} with answers {statuses:?}"
                );
            }
            None => {
                println!("slow body, allowed, {name:<10} still open after {limit:?}");
                open.push(name);
            }
        }
    }
    assert_upstream_clean(&rec, 0, &[REGISTERED], "slow bodies");
    assert!(open.is_empty(), "still open after {limit:?}: {open:?}");
}

async fn open_connections(g: &TestGate) -> f64 {
    let series = format!("poortwachter_connections_open{{listener=\"{}\"}}", g.proxy);
    metric(&g.metrics().await, &series).unwrap_or(0.0)
}

/// Dropping `s` sends RST instead of FIN. Deprecated in tokio because a non-zero linger
/// blocks the thread on drop; a zero linger never waits.
#[allow(deprecated)]
fn reset_on_drop(s: &TcpStream) {
    s.set_linger(Some(Duration::ZERO)).unwrap();
}

/// Reset (RST, `SO_LINGER` 0) after `bytes`.
async fn reset_after(to: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(bytes).await.unwrap();
    reset_on_drop(&s);
    drop(s);
}

/// Resets in the middle of a header, after a blocked request, and in the middle of a body
/// being forwarded (Content-Length and chunked): the gate keeps serving, the upstream never
/// reads a request that was cut off as a complete one, and the connection count goes back
/// to where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_mid_request_leave_nothing_behind() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let base = open_connections(&g).await;
    let head = get("/toets", REGISTERED, "");
    reset_after(g.proxy, &head.as_bytes()[..30]).await;
    reset_after(g.proxy, get("/toets", UNREGISTERED, "").as_bytes()).await;
    let body_head = format!(
        "POST /cut HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\nContent-Length: 1000\r\n\r\n{}",
        "b".repeat(100)
    );
    // The upstream sees the head first: wait for it, then reset.
    let mut s = TcpStream::connect(g.proxy).await.unwrap();
    s.write_all(body_head.as_bytes()).await.unwrap();
    eventually(
        Duration::from_secs(5),
        "the head at the upstream",
        || async { (rec.tape.lock().unwrap().bytes >= 100).then_some(()) },
    )
    .await;
    reset_on_drop(&s);
    drop(s);
    eventually(
        Duration::from_secs(5),
        "the upstream connection cut off",
        || async { (rec.tape.lock().unwrap().cut_off >= 1).then_some(()) },
    )
    .await;
    // Chunked, reset between chunks.
    reset_after(
        g.proxy,
        format!("POST /cut HTTP/1.1\r\nHost: afname.example.nl\r\nX-Forwarded-For: {REGISTERED}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").as_bytes(),
    )
    .await;
    assert_serves(&g, &rec, "after-resets").await;
    eventually(
        Duration::from_secs(5),
        "the open connections back to base",
        || async { (open_connections(&g).await == base).then_some(()) },
    )
    .await;
    let complete: Vec<String> = rec.requests().iter().map(|r| r.target.clone()).collect();
    assert!(
        complete.iter().all(|t| t.starts_with("/alive-")),
        "only the check request was complete at the upstream: {complete:?}"
    );
    assert_upstream_clean(&rec, 0, &[REGISTERED], "resets");
}

/// 10 000 connections opened and dropped, 200 at a time, some after part of a header, half
/// of them reset: the gate keeps serving and its open-connection gauge returns to its base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_dropped_connections_leave_the_gate_serving() {
    let rec = Recorder::start().await;
    let g = gate_for(&rec).await;
    let base = open_connections(&g).await;
    let started = Instant::now();
    let partial = get("/toets", UNREGISTERED, "");
    for batch in 0..50 {
        let conns: Vec<_> = (0..200)
            .map(|i| {
                let partial = partial.clone();
                let to = g.proxy;
                tokio::spawn(async move {
                    let mut s = TcpStream::connect(to).await.unwrap();
                    if i % 4 >= 2 {
                        let _ = s.write_all(&partial.as_bytes()[..20]).await;
                    }
                    if i % 2 == 1 {
                        reset_on_drop(&s);
                    }
                    s
                })
            })
            .collect();
        let mut held = Vec::new();
        for c in conns {
            held.push(c.await.unwrap());
        }
        drop(held);
        if batch % 10 == 9 {
            assert_serves(&g, &rec, &format!("churn-{batch}")).await;
        }
    }
    println!(
        "10 000 connections opened and dropped in {:?}",
        started.elapsed()
    );
    eventually(
        Duration::from_secs(15),
        "the open connections back to base",
        || async { (open_connections(&g).await == base).then_some(()) },
    )
    .await;
    println!("gauge back to {base} after {:?}", started.elapsed());
    assert_serves(&g, &rec, "after-churn").await;
    assert_eq!(
        rec.count(),
        6,
        "only the check requests reached the upstream"
    );
}
