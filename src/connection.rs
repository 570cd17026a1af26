//! Limits per client connection that Pingora 0.9 does not have: a deadline for a whole
//! request header. Pingora times out each read on its own, so a client that sends its header
//! one byte at a time, just inside that timeout, holds a connection for as long as it likes
//! (slowloris). Here the header of each request must be complete within
//! `[proxy] header_timeout`: for the first request counted from the connection's start (a
//! timer, so a connection that never sends is closed too), for a keep-alive request from its
//! first byte, checked as its bytes arrive (no timer per request: a dribbling client is
//! caught at its next byte; one that stalls is closed by `keepalive_timeout`, which Pingora
//! applies to each read). When it passes, the read fails and Pingora closes the connection.
//!
//! The same adaptor bounds the bytes of a header while it is read: at twice
//! `[proxy] max_header_bytes` the read fails (below that the proxy answers the 431 page, see
//! [`header_size`]), so no connection makes the gate buffer Pingora's 1 MiB.
//!
//! A stream adaptor ([`HeaderDeadline`]) under the HTTP/1 session, put there by a
//! [`ServerApp`] around the proxy's ([`ConnectionApp`]), which also sees each request end
//! when Pingora hands the connection back for the next one. HTTP/2 connections (TLS with
//! ALPN h2) are passed through: their framing is not HTTP/1's.
//!
//! On a plain listener with `h2c` on, the connection's first bytes are read until they
//! either are HTTP/2's 24-byte preface (the connection goes to Pingora's HTTP/2 loop, with
//! the same cap as a TLS one) or differ from it (HTTP/1, with the deadline above), then put
//! back for the protocol to read again. Reading them is held to the first header's
//! deadline, so a client that sends nothing, or a preface byte at a time, is closed as an
//! HTTP/1 client would be.

use crate::metrics::Metrics;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::l4::stream::Stream as TcpStream;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::tls::ALPN;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl, Stream,
    TimingDigest, UniqueID, UniqueIDType,
};
use pingora::server::ShutdownWatch;
use pingora_prometheus::prometheus::{IntCounter, IntGauge};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where the end of a request header is, fed the bytes as they arrive: a blank line
/// (`\r\n\r\n`, or `\n\n` as lenient parsers accept) after at least one other byte, so empty
/// lines sent ahead of a request do not end it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HeaderEnd {
    seen_content: bool,
    newlines: u8,
}

impl HeaderEnd {
    /// Feed `bytes`; the index just past the header's end when it is among them.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if self.seen_content => {
                    self.newlines += 1;
                    if self.newlines == 2 {
                        return Some(i + 1);
                    }
                }
                b'\r' | b'\n' => {}
                _ => {
                    self.seen_content = true;
                    self.newlines = 0;
                }
            }
        }
        None
    }
}

/// The stream of one HTTP/1 connection with a deadline on each request header.
pub struct HeaderDeadline {
    inner: Stream,
    timeout: Duration,
    /// The first request's timer: it also closes a connection that never sends a byte.
    /// `None` once that header is complete.
    first: Option<Pin<Box<Sleep>>>,
    /// When the header being read started (its first byte); checked as bytes arrive, so a
    /// keep-alive request costs no timer. One that stalls without sending is closed by the
    /// keep-alive timeout, which Pingora applies to each of its reads.
    started: Option<Instant>,
    in_header: bool,
    end: HeaderEnd,
    /// Header bytes read so far, and the most allowed.
    header_bytes: usize,
    max_header_bytes: usize,
    timeouts: IntCounter,
    too_large: IntCounter,
    /// The connection is over its listener's cap: its request gets the 503 page.
    over_capacity: bool,
    /// Holds the connection's place in its listener's count.
    _open: Option<Open>,
}

impl std::fmt::Debug for HeaderDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDeadline")
            .field("inner", &self.inner)
            .field("in_header", &self.in_header)
            .finish()
    }
}

impl HeaderDeadline {
    /// The first request's header is due `limits.header_timeout` after `start`, the
    /// connection's start.
    pub fn new(inner: Stream, limits: &Limits, start: Instant) -> HeaderDeadline {
        HeaderDeadline {
            inner,
            timeout: limits.header_timeout,
            first: Some(Box::pin(tokio::time::sleep_until(
                start + limits.header_timeout,
            ))),
            started: Some(start),
            in_header: true,
            end: HeaderEnd::default(),
            header_bytes: 0,
            max_header_bytes: limits.max_raw_header_bytes,
            timeouts: limits.timeouts.clone(),
            too_large: limits.too_large.clone(),
            over_capacity: false,
            _open: None,
        }
    }

    /// Whether the connection came over its listener's `max_connections`: its request is
    /// answered the 503 page and the connection closed.
    pub fn over_capacity(&self) -> bool {
        self.over_capacity
    }

    /// A request ended: the next header is due `timeout` after its first byte.
    pub fn next_request(&mut self) {
        self.in_header = true;
        self.first = None;
        self.started = None;
        self.end = HeaderEnd::default();
        self.header_bytes = 0;
    }
}

impl HeaderDeadline {
    /// The header is late: counted, and the read fails.
    fn timed_out(&mut self) -> std::io::Error {
        self.in_header = false;
        self.first = None;
        self.timeouts.inc();
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request header was not complete within header_timeout",
        )
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let late = this
            .first
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        if late {
            return Poll::Ready(Err(this.timed_out()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let new = &buf.filled()[before..];
            if this.in_header && !new.is_empty() {
                let now = Instant::now();
                let started = *this.started.get_or_insert(now);
                if now.duration_since(started) > this.timeout {
                    return Poll::Ready(Err(this.timed_out()));
                }
                let end = this.end.feed(new);
                this.header_bytes += end.unwrap_or(new.len());
                if this.header_bytes > this.max_header_bytes {
                    this.in_header = false;
                    this.first = None;
                    this.too_large.inc();
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the request header is more than twice max_header_bytes",
                    )));
                }
                if end.is_some() {
                    this.in_header = false;
                    this.first = None;
                }
            }
        }
        polled
    }
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeaderDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

/// What every HTTP/1 connection is held to, and where its breaches are counted.
#[derive(Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_raw_header_bytes: usize,
    pub timeouts: IntCounter,
    pub too_large: IntCounter,
    /// The listeners of the service and their caps on open connections.
    pub caps: Arc<[Arc<ConnectionCap>]>,
    /// After a stop (SIGTERM, or SIGQUIT's hand-over), how long an idle keep-alive
    /// connection may still send one more request, answered with `Connection: close`, before
    /// it is closed. A busy client so learns of the stop from an answer instead of finding
    /// its next request on a closed connection.
    pub drain_idle: Duration,
    /// The plain listeners that also speak HTTP/2 with prior knowledge (`h2c`).
    pub h2c: Arc<[SocketAddr]>,
    /// The TLS listeners (`tls_listen`): their handshake is done here.
    pub tls: Option<Arc<TlsAccept>>,
}

/// The TLS handshake of the `tls_listen` addresses, done by the gate rather than by
/// Pingora's listener: there it may take 60 s, is not counted, and logs every failure (a port
/// scan, a client without a shared cipher) at ERROR. Here it must be done within
/// `header_timeout` from the connection's start, like a request header, while the connection
/// counts against its listener's `max_connections`; a failure is counted by reason and
/// logged at debug.
pub struct TlsAccept {
    pub acceptor: pingora::listeners::tls::Acceptor,
    pub listen: Arc<[SocketAddr]>,
    pub failures: pingora_prometheus::prometheus::IntCounterVec,
}

impl TlsAccept {
    /// Whether `stream` came in on one of the TLS listeners (and is not TLS yet).
    fn serves(&self, stream: &Stream) -> bool {
        plain_on(&self.listen, stream)
    }

    /// The stream after the handshake, or `None` (counted and logged) when it did not
    /// complete by `deadline`.
    async fn handshake(&self, stream: Stream, deadline: Instant) -> Option<Stream> {
        let peer = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).copied());
        let tcp = stream.into_any().downcast::<TcpStream>().ok()?;
        let reason =
            match tokio::time::timeout_at(deadline, self.acceptor.tls_handshake(*tcp)).await {
                Ok(Ok(tls)) => return Some(Box::new(tls)),
                Ok(Err(e)) => {
                    let reason = handshake_failure(&e.to_string());
                    tracing::debug!(peer = ?peer, reason, error = %e, "TLS handshake failed");
                    reason
                }
                Err(_) => {
                    tracing::debug!(peer = ?peer, "TLS handshake not done within header_timeout");
                    "timeout"
                }
            };
        self.failures.with_label_values(&[reason]).inc();
        None
    }
}

/// The reason of a failed handshake from its error text: the client closed or reset the
/// connection, or anything else (a protocol error).
fn handshake_failure(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    let gone = [
        "eof",
        "end of file",
        "reset by peer",
        "broken pipe",
        "connection closed",
        "connectionclosed",
    ];
    if gone.iter().any(|g| e.contains(g)) {
        "closed"
    } else {
        "failed"
    }
}

/// One listener's open connections against its `max_connections`.
pub struct ConnectionCap {
    addr: SocketAddr,
    max: usize,
    open: AtomicUsize,
    gauge: IntGauge,
    /// Over the cap: `page` (HTTP/1, answered the 503 page), `closed` (HTTP/2, closed).
    refused_page: IntCounter,
    refused_closed: IntCounter,
}

impl ConnectionCap {
    /// The cap of the listener at `addr`, counted in `metrics` under the address.
    pub fn new(addr: SocketAddr, max: usize, metrics: &Metrics) -> Self {
        let label = addr.to_string();
        let refused = |action| {
            metrics
                .connections_refused
                .with_label_values(&[label.as_str(), action])
        };
        ConnectionCap {
            addr,
            max,
            open: AtomicUsize::new(0),
            gauge: metrics.connections_open.with_label_values(&[&label]),
            refused_page: refused("page"),
            refused_closed: refused("closed"),
        }
    }

    fn serves(&self, local: SocketAddr) -> bool {
        serves(self.addr, local)
    }

    /// Count a connection in; `false` when that takes the listener over its cap (it is
    /// counted all the same, until it is answered and closed).
    fn enter(self: &Arc<Self>) -> (Open, bool) {
        let n = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.gauge.inc();
        (Open(self.clone()), n <= self.max)
    }
}

/// Whether a connection accepted at `local` (its own address, which for a wildcard
/// listener is the address the client reached) came in on the listener at `listener`.
fn serves(listener: SocketAddr, local: SocketAddr) -> bool {
    listener.port() == local.port()
        && (listener.ip().is_unspecified() || listener.ip() == local.ip())
}

/// HTTP/2's connection preface (RFC 9113 §3.4), with which a client that knows the server
/// speaks it (h2c) starts.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether a plain connection's first bytes are the HTTP/2 preface. Reads only until they
/// differ from it (one byte of an HTTP/1 request line is enough; a request shorter than the
/// preface is not waited on), then puts what it read back for the protocol to read again.
async fn starts_with_preface(tcp: &mut TcpStream) -> std::io::Result<bool> {
    let mut got = [0u8; H2_PREFACE.len()];
    let mut n = 0;
    let result = loop {
        if n == got.len() {
            break Ok(true);
        }
        match tcp.read(&mut got[n..]).await {
            // Closed early: HTTP/1 reads the close (or the few bytes before it).
            Ok(0) => break Ok(false),
            Ok(k) => {
                n += k;
                if got[..n] != H2_PREFACE[..n] {
                    break Ok(false);
                }
            }
            Err(e) => break Err(e),
        }
    };
    tcp.rewind(&got[..n]);
    result
}

/// Whether `stream`, a connection on a listener with `h2c` on, is HTTP/2: `None` when it is
/// closed first (its preface not read by `due`, or a read error), with the stream to serve
/// otherwise.
async fn sniff_h2c(stream: Stream, due: Instant, limits: &Limits) -> Option<(Stream, bool)> {
    if !stream.as_any().is::<TcpStream>() {
        // Not a plain TCP stream (cannot happen on a plain listener): HTTP/1 as before.
        return Some((stream, false));
    }
    let mut tcp = stream.into_any().downcast::<TcpStream>().ok()?;
    match tokio::time::timeout_at(due, starts_with_preface(&mut tcp)).await {
        Ok(Ok(h2)) => Some((tcp, h2)),
        Ok(Err(_)) => None,
        Err(_) => {
            limits.timeouts.inc();
            None
        }
    }
}

/// The local address a connection came in on.
fn local_inet(stream: &Stream) -> Option<SocketAddr> {
    stream
        .get_socket_digest()
        .and_then(|d| d.local_addr().and_then(|a| a.as_inet()).copied())
}

/// Whether a plain (not yet TLS) `stream` came in on one of `listeners`.
fn plain_on(listeners: &[SocketAddr], stream: &Stream) -> bool {
    !listeners.is_empty()
        && stream.get_ssl_digest().is_none()
        && local_inet(stream).is_some_and(|local| listeners.iter().any(|l| serves(*l, local)))
}

/// Whether the listener `stream` came in on has `h2c` on (never for TLS: ALPN chooses).
fn speaks_h2c(h2c: &[SocketAddr], stream: &Stream) -> bool {
    plain_on(h2c, stream)
}

/// One open connection of a listener; dropped when the connection ends.
struct Open(Arc<ConnectionCap>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
        self.0.gauge.dec();
    }
}

/// The cap of the listener a connection came in on, from its local address; with one
/// listener, that one.
fn cap_for(caps: &[Arc<ConnectionCap>], stream: &Stream) -> Option<Arc<ConnectionCap>> {
    if let [only] = caps {
        return Some(only.clone());
    }
    let local = local_inet(stream)?;
    caps.iter().find(|c| c.serves(local)).cloned()
}

/// The proxy's app with the header limits on every HTTP/1 connection.
pub struct ConnectionApp<A> {
    inner: Arc<A>,
    limits: Limits,
}

impl<A> ConnectionApp<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        ConnectionApp {
            inner: Arc::new(inner),
            limits,
        }
    }
}

/// The size of a request header as it was sent (request line, fields, line ends) and its
/// number of fields, from the parsed header: what `[proxy] max_header_bytes` and
/// `max_header_count` are compared with.
pub fn header_size(req: &pingora::http::RequestHeader) -> (usize, usize) {
    let line = req.method.as_str().len() + 1 + req.raw_path().len() + " HTTP/1.1\r\n".len();
    let fields: usize = req
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    (line + fields + 2, req.headers.len())
}

/// How long an idle HTTP/1.1 connection waits for its next request when nothing else is set
/// (Pingora's own default; `[proxy] keepalive_timeout` sets it per request).
const DEFAULT_KEEPALIVE_SECS: u64 = 60;

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> ServerApp for ConnectionApp<A> {
    /// Pingora's HTTP/1 loop (`apps::ServerApp for HttpServerApp`), with the header limits
    /// around the stream and the next request's deadline set between requests, where
    /// Pingora's own loop gives no hook. HTTP/2 goes to Pingora's loop unchanged.
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let start = Instant::now();
        let (open, admitted) = match cap_for(&self.limits.caps, &stream) {
            Some(cap) => {
                let (open, admitted) = cap.enter();
                (Some(open), admitted)
            }
            None => (None, true),
        };
        // The handshake and the h2c sniff are awaited boxed: this future lives as long as the
        // connection, and inline they would make every idle keep-alive connection hold the
        // space of a TLS handshake (benches/README.md, "Memory per connection").
        let stream = match &self.limits.tls {
            Some(tls) if tls.serves(&stream) => {
                Box::pin(tls.handshake(stream, start + self.limits.header_timeout)).await?
            }
            _ => stream,
        };
        let (stream, h2c) = if speaks_h2c(&self.limits.h2c, &stream) {
            Box::pin(sniff_h2c(
                stream,
                start + self.limits.header_timeout,
                &self.limits,
            ))
            .await?
        } else {
            (stream, false)
        };
        if h2c || matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            if !admitted {
                // HTTP/2 has no place for the page before its own framing: closed.
                if let Some(Open(cap)) = &open {
                    cap.refused_closed.inc();
                }
                return None;
            }
            let _open = open;
            // Pingora's loop takes a plain stream that starts with the preface as HTTP/2
            // (its `h2c` option is on; only such streams reach it without TLS).
            return ServerApp::process_new(&self.inner, stream, shutdown).await;
        }
        let mut deadline = HeaderDeadline::new(stream, &self.limits, start);
        if !admitted {
            if let Some(Open(cap)) = &open {
                cap.refused_page.inc();
            }
            deadline.over_capacity = true;
        }
        deadline._open = open;
        let stream: Stream = Box::new(deadline);
        let mut session = ServerSession::new_http1(stream);
        if *shutdown.borrow() {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(DEFAULT_KEEPALIVE_SECS));
        }
        session.set_keepalive_reuses_remaining(
            self.inner
                .server_options()
                .and_then(|o| o.keepalive_request_limit),
        );
        let mut result = self.inner.process_new_http(session, shutdown).await;
        while let Some((stream, settings)) = result.map(|r| r.consume()) {
            let stream: Stream = match stream.into_any().downcast::<HeaderDeadline>() {
                Ok(mut s) => {
                    s.next_request();
                    s
                }
                // Not ours (cannot happen: the session hands back what it was given).
                Err(_) => return None,
            };
            let mut session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            result = self.inner.process_new_http(session, shutdown).await;
        }
        None
    }

    /// Called when the listeners have stopped accepting: idle keep-alive connections get
    /// `drain_idle` for one more request (its answer says `Connection: close`, as every
    /// answer does once stopping), then Pingora closes those still idle.
    async fn cleanup(&self) {
        if !self.limits.drain_idle.is_zero() {
            tokio::time::sleep(self.limits.drain_idle).await;
        }
        self.inner.http_cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::HeaderEnd;

    #[test]
    fn handshake_failures_are_told_apart_by_their_error() {
        use super::handshake_failure;
        assert_eq!(
            handshake_failure(
                "TLSHandshakeFailure context: TLS accept() failed cause: unexpected end of file"
            ),
            "closed"
        );
        assert_eq!(
            handshake_failure("Connection reset by peer (os error 104)"),
            "closed"
        );
        assert_eq!(
            handshake_failure(
                "TLSHandshakeFailure cause: received corrupt message of type InvalidContentType"
            ),
            "failed"
        );
        assert_eq!(
            handshake_failure("peer is incompatible: NoCipherSuitesInCommon"),
            "failed"
        );
    }

    #[test]
    fn the_header_ends_at_the_first_blank_line_after_content() {
        let mut e = HeaderEnd::default();
        assert_eq!(e.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"), Some(27));
        // Byte by byte, and across chunk boundaries.
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut e = HeaderEnd::default();
        for (i, b) in head.iter().enumerate() {
            let got = e.feed(std::slice::from_ref(b));
            assert_eq!(got.is_some(), i == head.len() - 1, "at byte {i}");
        }
        // LF-only line ends.
        assert_eq!(
            HeaderEnd::default().feed(b"GET / HTTP/1.1\nHost: x\n\n"),
            Some(24)
        );
        // Blank lines ahead of the request do not end it; a lone CR does not either.
        let mut e = HeaderEnd::default();
        assert_eq!(e.feed(b"\r\n\r\n\r\n"), None);
        assert_eq!(e.feed(b"GET / HTTP/1.1\r\nA: b\r\r\n"), None);
        assert_eq!(e.feed(b"\r\n"), Some(2));
        // A line of content between line ends starts over.
        assert_eq!(
            HeaderEnd::default().feed(b"GET /\r\nA: 1\r\nB: 2\r\n"),
            None
        );
    }
}
