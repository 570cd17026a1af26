//! The Pingora wiring of the request path, kept thin: `request_filter` evaluates and may
//! answer with a page; `upstream_request_filter` writes the headers the upstream may trust;
//! `fail_to_proxy` turns upstream failures into a friendly page; `logging` is the one place
//! for the decision log line and metrics.

use crate::client_ip::{ClientIpSource, PeerAddr};
use crate::decision::{Decision, Verdict};
use crate::forwarding;
use crate::gate::{Evaluation, Gate, Generation, RouteMatch, Routed, Runtime};
use crate::page::{self, PageKind, PageRequest, Rendered};
use crate::request_id::RequestId;
use crate::route;
use crate::upstream::pool::inet;
use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::protocols::http::ServerSession;
use pingora::{Error, ErrorSource, ErrorType, Result};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

/// A site id kept inline (ids are at most 64 ASCII characters), so the per-request context
/// neither allocates nor keeps the whole allowlist snapshot alive for logging.
#[derive(Clone, Copy)]
struct SiteId {
    buf: [u8; 64],
    len: u8,
}

impl SiteId {
    fn new(id: &str) -> Option<SiteId> {
        let bytes = id.as_bytes();
        if bytes.len() > 64 {
            return None;
        }
        let mut buf = [0u8; 64];
        buf[..bytes.len()].copy_from_slice(bytes);
        Some(SiteId {
            buf,
            len: bytes.len() as u8,
        })
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..usize::from(self.len)]).unwrap_or("?")
    }
}

/// Per-request state.
pub struct RequestCtx {
    /// What the request is decided on, loaded once when it starts; dropped once decided, so
    /// a long request does not keep an old allowlist alive.
    generation: Option<Arc<Generation>>,
    /// The configuration and pages of that same generation, for the rest of the request.
    runtime: Arc<Runtime>,
    started: Instant,
    request_id: RequestId,
    /// The resolved client address (logs, the upstream header).
    client_ip: Option<IpAddr>,
    /// The address shown to the person on a page: never one of our own proxies.
    shown_ip: Option<IpAddr>,
    source: &'static str,
    decision: Option<Decision>,
    site: Option<SiteId>,
    /// With `[site_binding]`: the verified site of the claim (`Some(None)`: no valid claim),
    /// sent upstream as `x-poortwachter-site`.
    claimed_site: Option<Option<SiteId>>,
    /// The claim's verification result for the log (`None` without `[site_binding]`).
    claim: Option<&'static str>,
    /// The matched `[[route]]`, by name.
    route: Option<String>,
    /// The path was refused (400) before any decision.
    bad_path: Option<route::PathError>,
    /// Why a request was refused before a decision other than its path.
    refused: Option<&'static str>,
    /// Page answered by the gate itself, for logging.
    page: Option<PageKind>,
    /// The upstream addresses tried for this request; a retry goes to another.
    tried: Vec<SocketAddr>,
    /// The backend of the attempt in progress.
    backend: Option<pingora::lb::Backend>,
    /// Retry on the same backend: its pooled connection had been closed by the upstream.
    retry_same: bool,
    upstream: Option<SocketAddr>,
    upstream_started: Option<Instant>,
    /// Request body bytes read so far (`[proxy] body_min_rate`).
    body_bytes: u64,
}

impl RequestCtx {
    /// Record the resolved client. A proxy of ours (no header, or only trusted hops) is never
    /// shown as the pupil's address: registering it could never work.
    fn set_client(&mut self, ip: IpAddr, trusted: &crate::client_ip::TrustedProxies) {
        self.client_ip = Some(ip);
        self.shown_ip = (!trusted.contains(ip)).then_some(ip);
    }

    /// Record the client as resolved, with where its address came from.
    fn set_resolved(
        &mut self,
        client: &Result<crate::client_ip::Resolved, crate::client_ip::Unresolvable>,
        cfg: &crate::client_ip::ClientIpConfig,
    ) {
        match client {
            Ok(r) => {
                self.set_client(r.ip.addr(), &cfg.trusted);
                self.source = match r.source {
                    ClientIpSource::Peer => "peer",
                    ClientIpSource::Header => cfg.header.header_name(),
                };
            }
            Err(_) => self.source = "unresolvable",
        }
    }
}

pub struct GateProxy {
    gate: Arc<Gate>,
}

impl GateProxy {
    pub fn new(gate: Arc<Gate>) -> GateProxy {
        GateProxy { gate }
    }

    /// An attempt on the backend in progress failed: counted, and with `eject` out of
    /// rotation for `fail_timeout`.
    fn failed(&self, ctx: &RequestCtx, e: &Error, eject: bool) {
        let Some(b) = &ctx.backend else { return };
        self.gate
            .metrics
            .upstream_failures
            .with_label_values(&[&b.addr.to_string()])
            .inc();
        if !eject {
            return;
        }
        let fail_timeout = ctx.runtime.config.upstream.fail_timeout;
        if self.gate.upstreams.eject(b, fail_timeout) {
            self.gate
                .metrics
                .upstream_ejections
                .with_label_values(&[&b.addr.to_string()])
                .inc();
            tracing::warn!(
                upstream = %b.addr,
                error = %e,
                fail_timeout = ?fail_timeout,
                "upstream failed a request: out of rotation for its fail_timeout"
            );
        }
    }

    fn render(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        kind: PageKind,
        status: u16,
        reason: &str,
    ) -> Rendered {
        let h = &session.req_header().headers;
        ctx.runtime.pages.render(&PageRequest {
            kind,
            status,
            reason,
            client_ip: ctx.shown_ip,
            request_id: &ctx.request_id,
            accept: h.get(http::header::ACCEPT).map(|v| v.as_bytes()),
            accept_language: h.get(http::header::ACCEPT_LANGUAGE).map(|v| v.as_bytes()),
            registered: match kind {
                PageKind::CheckRegistered
                | PageKind::CheckOwnSchool
                | PageKind::CheckOtherSchool => Some(true),
                PageKind::CheckNotRegistered => Some(false),
                _ => None,
            },
        })
    }

    async fn send_page(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        kind: PageKind,
        page: Rendered,
    ) -> Result<()> {
        let mut resp = page_response(&page, &ctx.request_id)?;
        if kind == PageKind::Busy {
            resp.insert_header(http::header::RETRY_AFTER, BUSY_RETRY_AFTER)?;
        }
        self.gate
            .metrics
            .count_page(kind, page.content_type.starts_with("application/"));
        ctx.page = Some(kind);
        let head_only = session.req_header().method == http::Method::HEAD;
        session
            .write_response_header(Box::new(resp), head_only)
            .await?;
        if !head_only {
            session.write_response_body(Some(page.body), true).await?;
        }
        Ok(())
    }
}

impl GateProxy {
    /// Answer a request refused before a decision with `reason`'s page and `status`,
    /// counted by reason.
    async fn refuse(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        reason: crate::refused::Reason,
        status: u16,
    ) -> Result<()> {
        self.gate.metrics.count_bad_request(reason);
        ctx.refused = Some(reason.as_str());
        let page = self.render(session, ctx, reason.page(), status, reason.as_str());
        self.send_page(session, ctx, reason.page(), page).await
    }
}

/// What the busy page's `Retry-After` asks of a client, in seconds.
const BUSY_RETRY_AFTER: &str = "10";

/// Whether the request came on a connection over its listener's `max_connections`
/// (`src/connection.rs` marks it).
fn over_capacity(session: &Session) -> bool {
    session
        .as_downstream()
        .stream()
        .and_then(|s| {
            s.as_any()
                .downcast_ref::<crate::connection::HeaderDeadline>()
        })
        .is_some_and(crate::connection::HeaderDeadline::over_capacity)
}

/// A page's response head without its per-request headers (`content-length`,
/// `x-request-id`). Built once per (status, content type, language) and worker thread,
/// then cloned: building it per page was a visible part of the blocked path
/// (benches/README.md, "Per-request work").
/// Pages come in a fixed set of variants, so the cache stays a few entries long.
fn page_head(page: &Rendered) -> Result<ResponseHeader> {
    type Head = ((u16, &'static str, &'static str), ResponseHeader);
    thread_local! {
        static HEADS: std::cell::RefCell<Vec<Head>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = (page.status, page.content_type, page.language);
    HEADS.with_borrow_mut(|heads| {
        if let Some((_, head)) = heads.iter().find(|(k, _)| *k == key) {
            return Ok(head.clone());
        }
        let mut head = ResponseHeader::build(page.status, Some(6))?;
        head.insert_header(http::header::CONTENT_TYPE, page.content_type)?;
        head.insert_header(http::header::CACHE_CONTROL, page::CACHE_CONTROL)?;
        head.insert_header(http::header::CONTENT_LANGUAGE, page.language)?;
        head.insert_header(http::header::VARY, page::VARY)?;
        heads.push((key, head.clone()));
        Ok(head)
    })
}

/// A page's whole response head: [`page_head`] with the page's length and request id.
fn page_response(page: &Rendered, request_id: &RequestId) -> Result<ResponseHeader> {
    let mut resp = page_head(page)?;
    resp.insert_header(http::header::CONTENT_LENGTH, page.body.len())?;
    resp.insert_header("x-request-id", request_id.as_str())?;
    Ok(resp)
}

/// The client address in the access log's privacy form, rendered when the line is written.
struct LoggedAddress<'a> {
    form: &'a crate::privacy::LogAddress,
    ip: IpAddr,
    gate: &'a Gate,
}

impl std::fmt::Display for LoggedAddress<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let today = self.gate.now().to_offset(time::UtcOffset::UTC).date();
        f.write_str(&self.form.render(self.ip, today))
    }
}

/// The host and path a request is judged by, read from what goes to the upstream.
///
/// Pingora keeps an HTTP/1 request target that is not origin-form as it was sent (it is
/// forwarded so) and gives the parsed URI only `/` or the absolute URI's path, with no
/// authority. So: an origin-form target (`/...`) is judged by its path and `Host`; an
/// absolute-form one (`http://host/...`) by its path and its own authority (Pingora has
/// refused it already when a `Host` field differs); any other target (`beheer/x`, `*`, a
/// `%20/...` that was a stray space) is refused, as its path could mean anything upstream.
fn request_target(req: &RequestHeader) -> Result<(Option<&str>, &str), route::PathError> {
    let host = || {
        let h = req.headers.get(http::header::HOST)?.to_str().ok()?;
        Some(h).filter(|h| !h.is_empty())
    };
    if let Some(a) = req.uri.authority() {
        // HTTP/2 `:authority`.
        return Ok((Some(a.as_str()), req.uri.path()));
    }
    let raw = req.raw_path();
    if raw.first() == Some(&b'/') {
        return Ok((host(), req.uri.path()));
    }
    let lower = |n: usize| raw.get(..n).map(|p| p.to_ascii_lowercase());
    let rest = if lower(7).as_deref() == Some(b"http://".as_slice()) {
        &raw[7..]
    } else if lower(8).as_deref() == Some(b"https://".as_slice()) {
        &raw[8..]
    } else {
        return Err(route::PathError::NotAbsolute);
    };
    let end = rest
        .iter()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let authority = std::str::from_utf8(&rest[..end]).map_err(|_| route::PathError::Control)?;
    Ok((
        Some(authority).filter(|a| !a.is_empty()).or_else(host),
        req.uri.path(),
    ))
}

impl GateProxy {
    /// The self-check page: the address as the gate sees it and whether it is registered —
    /// with a valid site claim, whether for the pupil's own school — never which school,
    /// never an exception's or override's reason. Always answered by the gate.
    async fn self_check(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        generation: &Generation,
        client: Result<crate::client_ip::Resolved, crate::client_ip::Unresolvable>,
    ) -> Result<bool> {
        let now = self.gate.now();
        let trusted = &generation.runtime.config.client_ip.trusted;
        let eval = generation.evaluate(
            client,
            &session.req_header().headers,
            &RouteMatch::default_route(),
            now,
        );
        if let Ok(r) = &eval.client {
            ctx.set_client(r.ip.addr(), trusted);
        }
        let kind = self_check_page(ctx.shown_ip.is_some(), &eval, trusted, now);
        let page = self.render(session, ctx, kind, 200, "self_check");
        self.send_page(session, ctx, kind, page).await?;
        Ok(true)
    }
}

/// The self-check answer for an evaluated request: the location check run as "any school"
/// and, with a valid claim, as "this school". The mode and routes play no part: the page
/// says what enforcement would say about the address.
fn self_check_page(
    shown: bool,
    eval: &Evaluation,
    trusted: &crate::client_ip::TrustedProxies,
    at: time::OffsetDateTime,
) -> PageKind {
    use crate::decision::{check_location, Binding, Location};
    let Some(snapshot) = eval.snapshot() else {
        return if shown {
            PageKind::CheckNotRegistered
        } else {
            PageKind::CheckUnknown
        };
    };
    if !shown {
        return PageKind::CheckUnknown;
    }
    let check = |binding| {
        check_location(Location {
            client: eval.client.as_ref(),
            binding,
            snapshot,
            overrides: eval.overrides(),
            trusted,
            at,
        })
    };
    if !check(Binding::AnySite).pass {
        return PageKind::CheckNotRegistered;
    }
    match eval.claimed_site() {
        None => PageKind::CheckRegistered,
        Some(site) if check(Binding::Site(site)).pass => PageKind::CheckOwnSchool,
        Some(_) => PageKind::CheckOtherSchool,
    }
}

fn peer_of(session: &Session) -> PeerAddr {
    PeerAddr(
        session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip()),
    )
}

#[async_trait]
impl ProxyHttp for GateProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        let generation = self.gate.current();
        RequestCtx {
            runtime: generation.runtime.clone(),
            generation: Some(generation),
            started: Instant::now(),
            request_id: RequestId::new(),
            client_ip: None,
            shown_ip: None,
            source: "none",
            decision: None,
            site: None,
            claimed_site: None,
            claim: None,
            route: None,
            bad_path: None,
            refused: None,
            page: None,
            tried: Vec::new(),
            backend: None,
            retry_same: false,
            upstream_started: None,
            upstream: None,
            body_bytes: 0,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let proxy = &ctx.runtime.config.proxy;
        // Pingora keeps an idle HTTP/1.1 connection open forever by default; a client that
        // asked to close keeps its close.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(proxy.keepalive_timeout.as_secs()));
        }
        // Each read of the request body (the header has been read): a body that stops
        // arriving is answered 408 (`refused::Reason::BodyTimeout`).
        session
            .as_downstream_mut()
            .set_read_timeout(Some(proxy.body_timeout));
        // Requests sent before the previous answer are served in order (RFC 9112 §9.3.2),
        // not dropped with the connection.
        session.as_downstream_mut().set_pipelining_enabled(true);
        Ok(())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let gate = &self.gate;
        let Some(generation) = ctx.generation.take() else {
            // Not reachable: every request starts with a generation and is decided once.
            return Err(Error::explain(
                ErrorType::InternalError,
                "request decided twice",
            ));
        };
        let req = session.req_header();
        let (header_bytes, header_fields) = crate::connection::header_size(req);
        // The client address first: every answer, a refused path's included, shows it.
        let client = generation.resolve_client(peer_of(session), &req.headers);
        if over_capacity(session) {
            ctx.set_resolved(&client, &generation.runtime.config.client_ip);
            drop(generation);
            ctx.refused = Some("busy");
            session.set_keepalive(None);
            let page = self.render(session, ctx, PageKind::Busy, 503, "busy");
            self.send_page(session, ctx, PageKind::Busy, page).await?;
            return Ok(true);
        }
        // The route is judged on the normalised path; a path that could mean something else
        // to the upstream is refused below, after the client address is known for the page.
        // The self-check page comes before any route.
        let target = request_target(req);
        // HTTP/1.1 requires a host (RFC 9112 §3.2): without one the upstream would choose.
        if req.version == http::Version::HTTP_11 && matches!(target, Ok((None, _))) {
            ctx.set_resolved(&client, &generation.runtime.config.client_ip);
            drop(generation);
            session.set_keepalive(None);
            let reason = crate::refused::Reason::Host;
            self.refuse(session, ctx, reason, reason.status()).await?;
            return Ok(true);
        }
        let routed = target.and_then(|(host, path)| generation.route_for(host, path));
        let (route, bad_path) = match routed {
            Ok(Routed::SelfCheck) => {
                return self.self_check(session, ctx, &generation, client).await
            }
            Ok(Routed::Route(m)) => (m, None),
            Err(e) => (RouteMatch::default_route(), Some(e)),
        };
        let now = gate.now();
        let eval = generation.evaluate(client, &req.headers, &route, now);
        let config = &generation.runtime.config;
        ctx.route = route.name;
        ctx.set_resolved(&eval.client, &config.client_ip);
        if let Some(claim) = &eval.claim {
            ctx.claimed_site = Some(eval.claimed_site().and_then(SiteId::new));
            ctx.claim = Some(claim.as_str());
            if route.action != crate::decision::RouteAction::Bypass {
                gate.metrics
                    .claims
                    .with_label_values(&[claim.result()])
                    .inc();
            }
        }
        let limits = &config.proxy;
        if header_bytes > limits.max_header_bytes || header_fields > limits.max_header_count {
            drop(eval);
            drop(generation);
            ctx.refused = Some("header_too_large");
            gate.metrics
                .headers_too_large
                .with_label_values(&["page"])
                .inc();
            // Whatever made the header grow comes again on this connection: close it.
            session.set_keepalive(None);
            let kind = PageKind::HeaderTooLarge;
            let page = self.render(session, ctx, kind, 431, "header_too_large");
            self.send_page(session, ctx, kind, page).await?;
            return Ok(true);
        }
        if let Some(e) = bad_path {
            drop(eval);
            drop(generation);
            ctx.bad_path = Some(e);
            gate.metrics.bad_paths.inc();
            let page = self.render(session, ctx, PageKind::BadRequest, 400, "bad_path");
            self.send_page(session, ctx, PageKind::BadRequest, page)
                .await?;
            return Ok(true);
        }
        let decision = eval.decision;
        ctx.decision = Some(decision);
        ctx.site = eval.site_id().and_then(SiteId::new);
        if decision.would_block {
            let today = now.to_offset(time::UtcOffset::UTC).date();
            let address = ctx
                .shown_ip
                .map(|ip| config.log.client_ip.render(ip, today));
            let listed =
                gate.would_block
                    .record(eval.school(), decision.reason, address.as_deref(), now);
            if !listed {
                gate.metrics.would_block_report_dropped.inc();
            }
        }
        drop(eval);
        drop(generation);
        if decision.verdict != Verdict::Block {
            return Ok(false);
        }
        let kind = match ctx.shown_ip {
            // The address is one of our proxies: explain it as an undeterminable address.
            None if ctx.client_ip.is_some() => PageKind::Unresolvable,
            _ => PageKind::for_reason(decision.reason),
        };
        let page = self.render(
            session,
            ctx,
            kind,
            decision.block_status(),
            decision.reason.as_str(),
        );
        self.send_page(session, ctx, kind, page).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let pool = &self.gate.upstreams;
        if !pool.resolved() {
            // Host names not resolved yet (the first requests after the start).
            pool.refresh().await;
        }
        let backend = match (ctx.retry_same, ctx.backend.take()) {
            (true, Some(b)) => b,
            _ => pool.select(&ctx.tried).ok_or_else(|| {
                Error::explain(
                    ErrorType::HTTPStatus(503),
                    "no upstream address (none resolved, or every one tried)",
                )
            })?,
        };
        ctx.retry_same = false;
        let up = &ctx.runtime.config.upstream;
        let mut peer = pool
            .peer(&backend, up)
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "upstream without an IP"))?;
        if let Some(addr) = inet(&backend) {
            if !ctx.tried.contains(&addr) {
                ctx.tried.push(addr);
            }
            ctx.upstream = Some(addr);
        }
        ctx.backend = Some(backend);
        ctx.upstream_started.get_or_insert_with(Instant::now);
        // An upgrade (WebSocket) becomes a tunnel that may stay quiet for long. Pingora times
        // out each read of it, from the upstream with the peer's read timeout and from the
        // client with the session's (60 s unless set), each started again whenever the other
        // side passes something on: both get the tunnel's, so it is closed once neither
        // direction has moved for that long. The upgrade's answer is waited for as long.
        if session.is_upgrade_req() {
            peer.options.read_timeout = Some(up.upgrade_idle_timeout);
            session
                .as_downstream_mut()
                .set_read_timeout(Some(up.upgrade_idle_timeout));
        }
        Ok(Box::new(peer))
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing was sent yet, so another upstream may take any request.
        self.failed(ctx, &e, true);
        if self.gate.upstreams.has_untried(&ctx.tried) {
            e.set_retry(true);
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("Peer: {peer}"));
        if e.esource() != &ErrorSource::Upstream {
            // A pupil who hung up is not the upstream's failure: no retry, no ejection.
            e.set_retry(false);
            return e;
        }
        // Sent again only when that cannot do harm: an idempotent method, its body (if any)
        // still whole in the retry buffer, and nothing of an answer passed to the client.
        let safe = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated()
            && session.response_written().is_none();
        if client_reused {
            // Pingora marks the errors that mean "the upstream had closed this kept-alive
            // connection" (not the upstream's fault): the same upstream takes the request
            // again on a new connection. Any other error on it (a timeout) is not retried.
            e.retry.decide_reuse(true);
            let again = safe && e.retry();
            if !again {
                self.failed(ctx, &e, false);
            }
            ctx.retry_same = again;
            e.set_retry(again);
            return e;
        }
        // A timeout is the request's as much as the upstream's (a slow export): counted, not
        // sent again, and the upstream stays in rotation. A reset or a closed connection
        // takes the upstream out.
        let timed_out = e.etype() == &ErrorType::ReadTimedout;
        self.failed(ctx, &e, !timed_out);
        e.set_retry(safe && !timed_out && self.gate.upstreams.has_untried(&ctx.tried));
        e
    }

    /// A body that keeps coming, but slower than `[proxy] body_min_rate` on average once
    /// `body_timeout` has passed, is refused as a stalled one (408): the per-read timeout
    /// alone lets a byte every few seconds hold the connection for ever.
    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // An upgraded connection (WebSocket) passes its client's frames here too: it may stay
        // quiet for long, bounded by `[upstream] upgrade_idle_timeout` instead.
        if session.is_upgrade_req() {
            return Ok(());
        }
        let Some(chunk) = body else { return Ok(()) };
        ctx.body_bytes += chunk.len() as u64;
        let proxy = &ctx.runtime.config.proxy;
        if too_slow(
            ctx.body_bytes,
            ctx.started.elapsed(),
            proxy.body_timeout,
            proxy.body_min_rate,
        ) {
            let mut e = Error::explain(
                ErrorType::ReadTimedout,
                "request body slower than [proxy] body_min_rate",
            );
            e.as_down();
            return Err(e);
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Runs after Pingora's hop-by-hop processing, so a `Connection:` nomination cannot
        // remove what is written here.
        let client_ip_header = &ctx.runtime.config.upstream.client_ip_header;
        // Removed one name at a time (a request rarely carries more than one), without a
        // list of names per request.
        while let Some(name) = req
            .headers
            .keys()
            .find(|n| forwarding::is_gate_owned(n.as_str(), client_ip_header.as_str()))
            .cloned()
        {
            req.remove_header(&name);
        }
        if let Some(ip) = ctx.client_ip {
            req.insert_header(client_ip_header.clone(), ip.to_string())?;
        }
        req.insert_header("x-request-id", ctx.request_id.as_str())?;
        if let Some(length) = forwarding::collapsed_content_length(&req.headers) {
            req.insert_header(http::header::CONTENT_LENGTH, length)?;
        }
        if let Some(site) = ctx.claimed_site {
            req.insert_header(
                "x-poortwachter-site",
                site.as_ref().map_or("none", SiteId::as_str),
            )?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        resp.insert_header("x-request-id", ctx.request_id.as_str())?;
        let m = &self.gate.metrics;
        m.count_upstream_response(resp.status.as_u16());
        if let Some(t) = ctx.upstream_started {
            m.upstream_duration.observe(t.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> pingora::proxy::FailToProxy {
        // The client's own error with the answer still possible (a broken or stalled body):
        // the gate's page, as before any decision.
        let refusal = crate::refused::classify_downstream(e);
        let code = match e.etype() {
            _ if let Some(r) = refusal => r.status(),
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
                if e.esource() == &ErrorSource::Upstream =>
            {
                504
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if e.esource() == &ErrorSource::Upstream {
            self.gate
                .metrics
                .upstream_responses
                .with_label_values(&["error"])
                .inc();
        }
        // The connection is not reused after a failure: say so in the response.
        session.set_keepalive(None);
        if code >= 500 && session.response_written().is_none() {
            let page = self.render(session, ctx, PageKind::Upstream, code, "upstream_error");
            if let Err(err) = self.send_page(session, ctx, PageKind::Upstream, page).await {
                tracing::debug!(error = %err, "could not send the upstream failure page");
            }
        } else if code > 0 && session.response_written().is_none() {
            let reason = refusal.unwrap_or(crate::refused::Reason::Body);
            if let Err(err) = self.refuse(session, ctx, reason, code).await {
                tracing::debug!(error = %err, "could not send the refusal page");
            }
        }
        pingora::proxy::FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// A request refused before any phase (a header Pingora cannot read, CONNECT): the
    /// gate's page with the peer's address (the headers that could name another are not
    /// read), counted and logged by reason, never with the request's bytes. A connection
    /// that broke or timed out before a whole header is closed unanswered, logged at debug
    /// (the header deadline has its own counter).
    async fn request_refused(&self, session: &mut ServerSession, e: &Error) -> bool {
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let Some(reason) = crate::refused::classify(e) else {
            tracing::debug!(
                peer = ?peer,
                error = e.etype().as_str(),
                "connection closed before a whole request header"
            );
            return true;
        };
        let generation = self.gate.current();
        let runtime = &generation.runtime;
        self.gate.metrics.count_bad_request(reason);
        let request_id = RequestId::new();
        let shown_ip = peer.filter(|ip| !runtime.config.client_ip.trusted.contains(*ip));
        let kind = reason.page();
        let status = reason.status();
        // Headers are there when the header parsed and only its framing or method was
        // refused; never for a parse failure.
        let header = |name: http::header::HeaderName| -> Option<&[u8]> {
            match &*session {
                ServerSession::H1(s) => s.get_header(name).map(|v| v.as_bytes()),
                ServerSession::H2(s) => s.req_header().headers.get(name).map(|v| v.as_bytes()),
                _ => None,
            }
        };
        let page = runtime.pages.render(&PageRequest {
            kind,
            status,
            reason: reason.as_str(),
            client_ip: shown_ip,
            request_id: &request_id,
            accept: header(http::header::ACCEPT),
            accept_language: header(http::header::ACCEPT_LANGUAGE),
            registered: None,
        });
        tracing::info!(
            target: "poortwachter::access",
            request_id = %request_id,
            client_ip = peer.map(|ip| tracing::field::display(LoggedAddress {
                form: &runtime.config.log.client_ip,
                ip,
                gate: &self.gate,
            })),
            client_ip_source = "peer",
            status,
            refused = reason.as_str(),
            "request refused before a decision"
        );
        let sent = async {
            let resp = page_response(&page, &request_id)?;
            session.set_keepalive(None);
            session.write_response_header(Box::new(resp)).await?;
            session.write_response_body(page.body.clone(), true).await?;
            session.finish_body().await
        };
        match sent.await {
            Ok(()) => self
                .gate
                .metrics
                .count_page(kind, page.content_type.starts_with("application/")),
            Err(err) => tracing::debug!(error = %err, "could not send the refusal page"),
        }
        true
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        // A pupil closing a tab is not an error of ours; a malformed request still is logged.
        e.esource() == &ErrorSource::Downstream
            && matches!(
                e.etype(),
                ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
            )
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        let m = &self.gate.metrics;
        let Some(d) = ctx.decision else {
            // The request failed before a decision (e.g. a malformed request).
            tracing::info!(
                target: "poortwachter::access",
                request_id = %ctx.request_id,
                status,
                bad_path = ctx.bad_path.map(tracing::field::display),
                refused = ctx.refused,
                error = e.map(|e| e.to_string()),
                "request ended before a decision"
            );
            return;
        };
        m.observe_decision(
            &d,
            ctx.route
                .as_deref()
                .unwrap_or(crate::metrics::DEFAULT_ROUTE),
        );
        m.observe_duration(d.verdict, elapsed.as_secs_f64());
        m.count_client_ip(match ctx.source {
            "peer" => Some(ClientIpSource::Peer),
            "unresolvable" => None,
            _ => Some(ClientIpSource::Header),
        });
        let req = session.req_header();
        // Field values are evaluated only when the line is written, and the address rendered
        // only then: the access log is often off under load (level `warn`).
        tracing::info!(
            target: "poortwachter::access",
            request_id = %ctx.request_id,
            client_ip = ctx.client_ip.map(|ip| tracing::field::display(LoggedAddress {
                form: &ctx.runtime.config.log.client_ip,
                ip,
                gate: &self.gate,
            })),
            client_ip_source = ctx.source,
            site = ctx.site.as_ref().map(SiteId::as_str),
            claimed_site = ctx.claimed_site.flatten().as_ref().map(SiteId::as_str),
            claim = ctx.claim,
            route = ctx.route.as_deref(),
            decision = d.verdict.as_str(),
            reason = d.reason.as_str(),
            would_block = d.would_block,
            status,
            method = %req.method,
            path = req.uri.path(),
            upstream = ctx.upstream.map(tracing::field::display),
            page = ctx.page.map(PageKind::key),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            error = e
                .filter(|e| !matches!(e.etype(), ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError))
                .map(|e| e.to_string()),
        );
    }
}

/// Whether a body of `bytes` after `elapsed` is below `min_rate` bytes a second on average,
/// judged only once `grace` has passed; a `min_rate` of 0 never is.
fn too_slow(
    bytes: u64,
    elapsed: std::time::Duration,
    grace: std::time::Duration,
    min_rate: u64,
) -> bool {
    min_rate > 0 && elapsed > grace && (bytes as f64) < min_rate as f64 * elapsed.as_secs_f64()
}

#[cfg(test)]
mod body_rate_tests {
    use super::too_slow;
    use std::time::Duration;

    #[test]
    fn a_body_is_judged_by_its_average_rate_after_the_grace() {
        let s = Duration::from_secs;
        // Within the grace: never, however slow.
        assert!(!too_slow(0, s(59), s(60), 1024));
        // After it: below the average rate is too slow, at or above it is not.
        assert!(too_slow(10, s(61), s(60), 1024));
        assert!(too_slow(61 * 1024 - 1, s(61), s(60), 1024));
        assert!(!too_slow(61 * 1024, s(61), s(60), 1024));
        // Off.
        assert!(!too_slow(0, s(3600), s(60), 0));
    }
}

#[cfg(test)]
mod target_tests {
    use super::request_target;
    use crate::route::PathError;
    use pingora::http::RequestHeader;

    fn req(target: &[u8], host: Option<&str>) -> RequestHeader {
        let mut r = RequestHeader::build("GET", target, None).unwrap();
        if let Some(h) = host {
            r.insert_header("host", h).unwrap();
        }
        r
    }

    #[test]
    fn origin_form_is_judged_by_path_and_host() {
        let r = req(b"/toets/1?x=1", Some("afname.example.nl"));
        assert_eq!(
            request_target(&r),
            Ok((Some("afname.example.nl"), "/toets/1"))
        );
        assert_eq!(request_target(&req(b"/", None)), Ok((None, "/")));
    }

    #[test]
    fn absolute_form_is_judged_by_its_own_authority() {
        let r = req(b"http://beheer.example.nl/x", None);
        assert_eq!(request_target(&r), Ok((Some("beheer.example.nl"), "/x")));
        let r = req(
            b"HTTPS://beheer.example.nl:443?q",
            Some("beheer.example.nl"),
        );
        assert_eq!(request_target(&r), Ok((Some("beheer.example.nl:443"), "/")));
    }

    #[test]
    fn any_other_target_is_refused() {
        for target in [
            b"beheer/x".as_slice(),
            b"%20/beheer/x",
            b"%2Fbeheer/x",
            b"./beheer/x",
            b"*",
            b"ftp://beheer.example.nl/x",
        ] {
            assert_eq!(
                request_target(&req(target, Some("afname.example.nl"))),
                Err(PathError::NotAbsolute),
                "{}",
                String::from_utf8_lossy(target)
            );
        }
    }
}
