//! Prometheus metrics: one [`Metrics`] struct registered on an injected registry, so two gates
//! in one process (tests) never share counters. Labels are low-cardinality only: never a
//! school id or an address.

use crate::client_ip::ClientIpSource;
use crate::decision::{Decision, Reason, Verdict};
use crate::page::PageKind;
use pingora_prometheus::prometheus::{
    self, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::OnceLock;

/// The `route` label of requests no `[[route]]` matched.
pub use crate::route::DEFAULT_ROUTE;

/// The `reason` values of `poortwachter_tls_handshake_failures_total` (`crate::connection`).
pub const TLS_HANDSHAKE_FAILURES: [&str; 3] = ["timeout", "closed", "failed"];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub would_block: IntCounterVec,
    pub request_duration: HistogramVec,
    pub client_ip: IntCounterVec,
    pub pages: IntCounterVec,
    pub upstream_responses: IntCounterVec,
    pub upstream_duration: Histogram,
    pub bad_paths: IntCounter,
    pub enforce_from: Gauge,
    pub mode: IntGaugeVec,
    pub allowlist_ranges: IntGauge,
    pub allowlist_sites: IntGauge,
    pub allowlist_exceptions: IntGauge,
    pub allowlist_quarantined: IntGauge,
    pub allowlist_unknown_fields: IntGauge,
    pub allowlist_syncs: IntCounterVec,
    pub allowlist_sync_duration: Histogram,
    pub allowlist_load_seconds: Gauge,
    pub allowlist_last_success_timestamp: Gauge,
    pub allowlist_age: Gauge,
    pub allowlist_from_last_good: IntGauge,
    pub last_good_write_errors: IntCounter,
    pub config_reloads: IntCounterVec,
    pub allowlist_loaded_timestamp: Gauge,
    pub allowlist_info: IntGaugeVec,
    pub allowlist_loaded: IntGauge,
    pub build_info: IntGaugeVec,
    pub admin_unauthorized: IntCounter,
    pub overrides_active: IntGauge,
    pub overrides_loads: IntCounterVec,
    pub key_reloads: IntCounterVec,
    pub claims: IntCounterVec,
    pub would_block_report_dropped: IntCounter,
    pub proxy_protocol_headers: IntCounterVec,
    pub header_timeouts: IntCounter,
    pub headers_too_large: IntCounterVec,
    /// Requests refused before a decision, by [`crate::refused::Reason`].
    pub bad_requests: IntCounterVec,
    pub proxy_protocol_rejected: IntCounterVec,
    pub connections_open: IntGaugeVec,
    pub connections_refused: IntCounterVec,
    /// The end of validity of each TLS certificate in force, by its name.
    pub tls_certificate_expiry: IntGaugeVec,
    pub tls_certificate_reloads: IntCounterVec,
    /// 1 while the certificate files on disk are refused and an older set keeps serving.
    pub tls_certificates_refused: IntGauge,
    /// TLS handshakes on `tls_listen` that did not complete, by reason.
    pub tls_handshake_failures: IntCounterVec,
    /// Failed attempts per upstream address (refused, TLS failure, reset, timed out), retried
    /// or not.
    pub upstream_failures: IntCounterVec,
    /// Requests' failures that took an upstream address out for its `fail_timeout`.
    pub upstream_ejections: IntCounterVec,
    /// Whether each upstream address is in rotation (healthy and not ejected).
    pub upstream_ready: IntGaugeVec,
    /// The per-request series, each looked up once and then kept.
    children: Children,
}

/// Children of the labelled metrics every request touches, resolved on first use:
/// `with_label_values` hashes the label values on every call, a measurable share of a blocked
/// request's instructions (benches/README.md, "Per-request work"). Filled lazily, so a series
/// appears only once it has been counted, exactly as before. None of these vectors is ever
/// reset, so a kept child stays the registry's.
#[derive(Default)]
struct Children {
    /// `requests_total{route="default"}` by verdict and reason: most requests match no route.
    default_route: [[OnceLock<IntCounter>; Reason::ALL.len()]; 3],
    would_block: [OnceLock<IntCounter>; Reason::ALL.len()],
    duration: [OnceLock<prometheus::Histogram>; 3],
    /// Peer, header, unresolvable.
    client_ip: [OnceLock<IntCounter>; 3],
    /// By page kind, then HTML / JSON.
    pages: [[OnceLock<IntCounter>; PageKind::ALL.len()]; 2],
    /// 1xx to 5xx.
    upstream: [OnceLock<IntCounter>; 5],
}

/// Use the kept child at `i` of `cells`, resolved on first use. An index beyond the array
/// (an enum grown without its `ALL` list) resolves the child on every call rather than
/// panicking on the request path.
fn with_child<T>(cells: &[OnceLock<T>], i: usize, resolve: impl FnOnce() -> T, f: impl FnOnce(&T)) {
    match cells.get(i) {
        Some(cell) => f(cell.get_or_init(resolve)),
        None => f(&resolve()),
    }
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: T) -> T {
    // Names are fixed in this file and registered once per registry, so a clash is a bug.
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered twice");
    c
}

impl Metrics {
    /// Create and register every metric on `registry`.
    pub fn new(registry: Registry) -> Metrics {
        let r = &registry;
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            reg(
                r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let int_gauge =
            |name: &str, help: &str| reg(r, IntGauge::new(name, help).expect("valid metric"));
        let m = Metrics {
            overrides_active: int_gauge(
                "poortwachter_overrides_active",
                "Override entries in force now (not expired).",
            ),
            overrides_loads: counter_vec(
                "poortwachter_overrides_loads_total",
                "Reads of the overrides file by result; on error the previous overrides stay in force.",
                &["result"],
            ),
            key_reloads: counter_vec(
                "poortwachter_site_key_reloads_total",
                "Reads of the site-claim key files by result; on error the previous keys stay in force.",
                &["result"],
            ),
            would_block_report_dropped: reg(
                r,
                IntCounter::new(
                    "poortwachter_would_block_report_dropped_total",
                    "Would-block requests not listed in /would-block because the report was full for their kind of entry.",
                )
                .expect("valid metric"),
            ),
            header_timeouts: reg(
                r,
                IntCounter::new(
                    "poortwachter_header_timeouts_total",
                    "Connections closed because a request header was not complete within [proxy] header_timeout (slow or stalled clients).",
                )
                .expect("valid metric"),
            ),
            headers_too_large: counter_vec(
                "poortwachter_headers_too_large_total",
                "Requests whose header exceeded [proxy] max_header_bytes or max_header_count: answered with the 431 page (page), or closed while read at twice the byte limit (closed).",
                &["action"],
            ),
            bad_requests: counter_vec(
                "poortwachter_bad_requests_total",
                "Requests answered with the gate's page before any decision because they cannot be read or served as sent, by reason: request_line, version, header, too_large, framing, host, method (CONNECT), body (broken chunked framing), body_timeout.",
                &["reason"],
            ),
            proxy_protocol_headers: counter_vec(
                "poortwachter_proxy_protocol_headers_total",
                "PROXY protocol headers accepted, per listener, version and kind: proxy (the client's address is used) or local (a balancer's own connection: v1 UNKNOWN, v2 LOCAL or UNSPEC).",
                &["listener", "version", "kind"],
            ),
            proxy_protocol_rejected: counter_vec(
                "poortwachter_proxy_protocol_rejected_total",
                "Connections closed before any HTTP was read because their PROXY header was missing, late, malformed or came from a peer that may not send one, per listener and reason.",
                &["listener", "reason"],
            ),
            tls_certificate_expiry: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "poortwachter_tls_certificate_expiry_timestamp_seconds",
                        "When each TLS certificate in force stops being valid (Unix time), by its first name (or \"default\") and file.",
                    ),
                    &["name", "file"],
                )
                .expect("valid metric"),
            ),
            tls_certificate_reloads: counter_vec(
                "poortwachter_tls_certificate_reloads_total",
                "Reads of the TLS certificate and key files by result; on error the certificates in force stay.",
                &["result"],
            ),
            tls_handshake_failures: counter_vec(
                "poortwachter_tls_handshake_failures_total",
                "TLS handshakes on the tls_listen addresses that did not complete: timeout (not done within [proxy] header_timeout), closed (the client went away), failed (a protocol error: no shared version or cipher, a name without a certificate, not TLS at all).",
                &["reason"],
            ),
            tls_certificates_refused: int_gauge(
                "poortwachter_tls_certificates_refused",
                "1 while the TLS certificate files last read were refused and the certificates read before keep serving; 0 once a read is in force.",
            ),
            upstream_failures: counter_vec(
                "poortwachter_upstream_failures_total",
                "Failed attempts per upstream address (refused, TLS failure, reset, timed out), whether another address then answered or not.",
                &["upstream"],
            ),
            upstream_ejections: counter_vec(
                "poortwachter_upstream_ejections_total",
                "Failed requests (refused, reset, timed out) that took an upstream address out of rotation for its fail_timeout.",
                &["upstream"],
            ),
            upstream_ready: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "poortwachter_upstream_ready",
                        "1 while an upstream address is in rotation (passes its health check and is not ejected), else 0.",
                    ),
                    &["upstream"],
                )
                .expect("valid metric"),
            ),
            connections_open: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "poortwachter_connections_open",
                        "Client connections open per proxy listener, those over its cap included.",
                    ),
                    &["listener"],
                )
                .expect("valid metric"),
            ),
            connections_refused: counter_vec(
                "poortwachter_connections_refused_total",
                "Client connections over their listener's max_connections: answered with the 503 page (page, HTTP/1) or closed (closed, HTTP/2), per listener.",
                &["listener", "action"],
            ),
            claims: counter_vec(
                "poortwachter_site_claims_total",
                "Site claims seen on enforced routes: missing, valid, expired or invalid.",
                &["result"],
            ),
            requests: counter_vec(
                "poortwachter_requests_total",
                "Requests by decision, reason and route (\"default\" when no route matched).",
                &["decision", "reason", "route"],
            ),
            would_block: counter_vec(
                "poortwachter_would_block_total",
                "Requests let through that enforcement would have blocked (report-only), by reason.",
                &["reason"],
            ),
            request_duration: reg(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "poortwachter_request_duration_seconds",
                        "Time from request start to the end of the response, by decision.",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                        2.5, 5.0, 10.0,
                    ]),
                    &["decision"],
                )
                .expect("valid metric"),
            ),
            client_ip: counter_vec(
                "poortwachter_client_ip_resolutions_total",
                "Client IP resolution outcomes: source peer, header, or unresolvable.",
                &["outcome"],
            ),
            pages: counter_vec(
                "poortwachter_pages_total",
                "Pages answered by the gate itself, by page kind and format.",
                &["page", "format"],
            ),
            upstream_responses: counter_vec(
                "poortwachter_upstream_responses_total",
                "Responses to forwarded requests, by status class (gate-generated failures as 'error').",
                &["class"],
            ),
            upstream_duration: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "poortwachter_upstream_duration_seconds",
                        "Time from choosing an upstream to its response header.",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ]),
                )
                .expect("valid metric"),
            ),
            bad_paths: reg(
                r,
                IntCounter::new(
                    "poortwachter_bad_paths_total",
                    "Requests answered 400 because their path could mean something else upstream (encoded separators, dot segments, //).",
                )
                .expect("valid metric"),
            ),
            enforce_from: reg(
                r,
                Gauge::new(
                    "poortwachter_enforce_from_timestamp_seconds",
                    "Unix time from which mode = enforce really blocks (before it: report-only); 0 when not set.",
                )
                .expect("valid metric"),
            ),
            mode: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "poortwachter_mode",
                        "The enforcement mode in force (value 1): enforce, report-only or off.",
                    ),
                    &["mode"],
                )
                .expect("valid metric"),
            ),
            allowlist_ranges: int_gauge(
                "poortwachter_allowlist_ranges",
                "Ranges in the allowlist in force.",
            ),
            allowlist_sites: int_gauge(
                "poortwachter_allowlist_sites",
                "Sites in the allowlist in force.",
            ),
            allowlist_exceptions: int_gauge(
                "poortwachter_allowlist_exceptions",
                "Exceptions in the allowlist in force (valid or not at this moment).",
            ),
            allowlist_quarantined: int_gauge(
                "poortwachter_allowlist_quarantined_entries",
                "Entries of the allowlist in force that were skipped as invalid.",
            ),
            allowlist_unknown_fields: int_gauge(
                "poortwachter_allowlist_unknown_fields",
                "Unknown fields seen in the allowlist in force (tolerated).",
            ),
            allowlist_syncs: counter_vec(
                "poortwachter_allowlist_sync_total",
                "Allowlist sync attempts by result: ok, not_modified, http_error, timeout, invalid, shrink_refused, read_error.",
                &["result"],
            ),
            allowlist_sync_duration: reg(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "poortwachter_allowlist_sync_duration_seconds",
                        "Time one sync attempt took: fetch, parse, compile, persist and swap.",
                    )
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
                )
                .expect("valid metric"),
            ),
            allowlist_last_success_timestamp: reg(
                r,
                Gauge::new(
                    "poortwachter_allowlist_last_success_timestamp_seconds",
                    "Unix time of the last sync that put a document from the source in force (or found it unchanged).",
                )
                .expect("valid metric"),
            ),
            allowlist_age: reg(
                r,
                Gauge::new(
                    "poortwachter_allowlist_age_seconds",
                    "Seconds since the snapshot in force was loaded (at scrape time).",
                )
                .expect("valid metric"),
            ),
            allowlist_from_last_good: int_gauge(
                "poortwachter_allowlist_from_last_good",
                "1 while the snapshot in force was loaded from the last-known-good file, not the source.",
            ),
            last_good_write_errors: reg(
                r,
                IntCounter::new(
                    "poortwachter_last_good_write_errors_total",
                    "Accepted documents that could not be persisted as last-known-good.",
                )
                .expect("valid metric"),
            ),
            config_reloads: counter_vec(
                "poortwachter_config_reloads_total",
                "Config reloads by result: ok or error (the running config stays).",
                &["result"],
            ),
            allowlist_load_seconds: reg(
                r,
                Gauge::new(
                    "poortwachter_allowlist_load_duration_seconds",
                    "Time the last successful load took to read, parse and compile.",
                )
                .expect("valid metric"),
            ),
            allowlist_loaded_timestamp: reg(
                r,
                Gauge::new(
                    "poortwachter_allowlist_loaded_timestamp_seconds",
                    "Unix time when the allowlist in force was loaded.",
                )
                .expect("valid metric"),
            ),
            allowlist_info: reg(
                r,
                IntGaugeVec::new(
                    Opts::new(
                        "poortwachter_allowlist_info",
                        "The allowlist in force (value 1), by version and source.",
                    ),
                    &["version", "source"],
                )
                .expect("valid metric"),
            ),
            allowlist_loaded: int_gauge(
                "poortwachter_allowlist_loaded",
                "1 once a valid allowlist is in force (the gate is ready), else 0.",
            ),
            build_info: reg(
                r,
                IntGaugeVec::new(
                    Opts::new("poortwachter_build_info", "Build information (value 1)."),
                    &["version"],
                )
                .expect("valid metric"),
            ),
            admin_unauthorized: reg(
                r,
                IntCounter::new(
                    "poortwachter_admin_unauthorized_total",
                    "Admin requests refused for a missing or wrong token.",
                )
                .expect("valid metric"),
            ),
            registry,
            children: Children::default(),
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for reason in TLS_HANDSHAKE_FAILURES {
            m.tls_handshake_failures.with_label_values(&[reason]);
        }
        for reason in crate::refused::Reason::ALL {
            m.bad_requests.with_label_values(&[reason.as_str()]);
        }
        // Every result exists from the start, so `increase()` sees the first failure too.
        for result in [
            "ok",
            "not_modified",
            "http_error",
            "timeout",
            "invalid",
            "shrink_refused",
            "read_error",
        ] {
            m.allowlist_syncs.with_label_values(&[result]);
        }
        for result in ["ok", "error"] {
            m.config_reloads.with_label_values(&[result]);
            m.overrides_loads.with_label_values(&[result]);
            m.key_reloads.with_label_values(&[result]);
            m.tls_certificate_reloads.with_label_values(&[result]);
        }
        for result in ["missing", "valid", "expired", "invalid"] {
            m.claims.with_label_values(&[result]);
        }
        // CPU, memory and open file descriptors of this process.
        let process = prometheus::process_collector::ProcessCollector::for_self();
        if let Err(e) = m.registry.register(Box::new(process)) {
            tracing::warn!(error = %e, "process metrics unavailable");
        }
        // Pre-create the label sets a dashboard expects, so absent traffic reads as 0, not
        // "no data" — only those the decision table can produce.
        for reason in Reason::ALL {
            let verdicts: &[Verdict] = match reason {
                Reason::BypassRoute => &[Verdict::Bypass],
                Reason::Registered
                | Reason::Exception
                | Reason::OverrideAllow
                | Reason::ModeOff => &[Verdict::Allow],
                // Blocked under enforce, let through (would_block) under report-only.
                _ => &[Verdict::Block, Verdict::Allow],
            };
            for verdict in verdicts {
                m.requests
                    .with_label_values(&[verdict.as_str(), reason.as_str(), DEFAULT_ROUTE]);
            }
        }
        m
    }

    /// Show the mode in force (one series at 1).
    pub fn set_mode(
        &self,
        mode: crate::decision::Mode,
        enforce_from: Option<time::OffsetDateTime>,
    ) {
        self.mode.reset();
        self.mode.with_label_values(&[mode.as_str()]).set(1);
        self.enforce_from
            .set(enforce_from.map_or(0.0, |t| t.unix_timestamp() as f64));
    }

    /// Count one decided request.
    pub fn observe_decision(&self, d: &Decision, route: &str) {
        let labels = [d.verdict.as_str(), d.reason.as_str(), route];
        if route == DEFAULT_ROUTE {
            let row = self.children.default_route.get(d.verdict as usize);
            let cells = row.map_or(&[][..], |r| &r[..]);
            with_child(
                cells,
                d.reason as usize,
                || self.requests.with_label_values(&labels),
                IntCounter::inc,
            );
        } else {
            self.requests.with_label_values(&labels).inc();
        }
        if d.would_block {
            with_child(
                &self.children.would_block,
                d.reason as usize,
                || self.would_block.with_label_values(&[d.reason.as_str()]),
                IntCounter::inc,
            );
        }
    }

    /// Time one decided request took, from start to the end of its response.
    pub fn observe_duration(&self, verdict: Verdict, seconds: f64) {
        with_child(
            &self.children.duration,
            verdict as usize,
            || self.request_duration.with_label_values(&[verdict.as_str()]),
            |h| h.observe(seconds),
        );
    }

    /// Count which address a decided request was judged by (`None`: none could be).
    pub fn count_client_ip(&self, source: Option<ClientIpSource>) {
        let (i, label) = match source {
            Some(ClientIpSource::Peer) => (0, "peer"),
            Some(ClientIpSource::Header) => (1, "header"),
            None => (2, "unresolvable"),
        };
        with_child(
            &self.children.client_ip,
            i,
            || self.client_ip.with_label_values(&[label]),
            IntCounter::inc,
        );
    }

    /// Count one request refused before a decision.
    pub fn count_bad_request(&self, reason: crate::refused::Reason) {
        self.bad_requests
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    /// Count one page served by the gate itself.
    pub fn count_page(&self, kind: PageKind, json: bool) {
        let format = if json { "json" } else { "html" };
        with_child(
            &self.children.pages[usize::from(json)],
            kind as usize,
            || self.pages.with_label_values(&[kind.key(), format]),
            IntCounter::inc,
        );
    }

    /// Count one upstream response by status class.
    pub fn count_upstream_response(&self, status: u16) {
        let (i, class) = match status {
            100..=199 => (0, "1xx"),
            200..=299 => (1, "2xx"),
            300..=399 => (2, "3xx"),
            400..=499 => (3, "4xx"),
            _ => (4, "5xx"),
        };
        with_child(
            &self.children.upstream,
            i,
            || self.upstream_responses.with_label_values(&[class]),
            IntCounter::inc,
        );
    }

    /// Prometheus text exposition of this registry.
    pub fn encode(&self) -> (String, Vec<u8>) {
        let encoder = TextEncoder::new();
        let mut buf = Vec::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        (encoder.format_type().to_string(), buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(m: &Metrics) -> String {
        String::from_utf8(m.encode().1).expect("text exposition is UTF-8")
    }

    fn decision(verdict: Verdict, reason: Reason, would_block: bool) -> Decision {
        Decision {
            verdict,
            reason,
            would_block,
            site: None,
        }
    }

    /// The kept children are the registry's own series: counts through them show in the
    /// exposition, per label set, next to the ones counted by label lookup.
    #[test]
    fn kept_children_count_into_the_registry() {
        let m = Metrics::new(Registry::new());
        let blocked = decision(Verdict::Block, Reason::NotRegistered, false);
        let let_through = decision(Verdict::Allow, Reason::NotRegistered, true);
        for _ in 0..3 {
            m.observe_decision(&blocked, DEFAULT_ROUTE);
        }
        m.observe_decision(&blocked, "login");
        m.observe_decision(&let_through, DEFAULT_ROUTE);
        m.observe_decision(&let_through, DEFAULT_ROUTE);
        let requests = |verdict: Verdict, route: &str| {
            m.requests
                .with_label_values(&[verdict.as_str(), "not_registered", route])
                .get()
        };
        assert_eq!(requests(Verdict::Block, DEFAULT_ROUTE), 3);
        assert_eq!(requests(Verdict::Block, "login"), 1);
        assert_eq!(requests(Verdict::Allow, DEFAULT_ROUTE), 2);
        assert_eq!(
            m.would_block.with_label_values(&["not_registered"]).get(),
            2
        );

        m.observe_duration(Verdict::Block, 0.002);
        m.observe_duration(Verdict::Block, 0.004);
        m.observe_duration(Verdict::Allow, 0.001);
        let durations = |v: Verdict| {
            m.request_duration
                .with_label_values(&[v.as_str()])
                .get_sample_count()
        };
        assert_eq!(
            (durations(Verdict::Block), durations(Verdict::Allow)),
            (2, 1)
        );

        m.count_client_ip(Some(ClientIpSource::Header));
        m.count_client_ip(Some(ClientIpSource::Header));
        m.count_client_ip(Some(ClientIpSource::Peer));
        m.count_client_ip(None);
        let sources =
            ["peer", "header", "unresolvable"].map(|s| m.client_ip.with_label_values(&[s]).get());
        assert_eq!(sources, [1, 2, 1]);

        m.count_page(PageKind::Location, false);
        m.count_page(PageKind::Location, true);
        m.count_page(PageKind::Location, true);
        m.count_page(PageKind::Upstream, false);
        let pages = |kind: &str, format: &str| m.pages.with_label_values(&[kind, format]).get();
        assert_eq!(pages("location", "html"), 1);
        assert_eq!(pages("location", "json"), 2);
        assert_eq!(pages("upstream", "html"), 1);

        for status in [101, 200, 204, 304, 404, 500, 599] {
            m.count_upstream_response(status);
        }
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .map(|c| m.upstream_responses.with_label_values(&[c]).get());
        assert_eq!(classes, [1, 2, 1, 1, 2]);
    }

    /// The kept children are indexed by `as usize`, sized by the `ALL` lists: each list
    /// must hold every variant in declaration order.
    #[test]
    fn all_lists_are_in_declaration_order() {
        for (i, reason) in Reason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i, "{reason:?}");
        }
        for (i, kind) in PageKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{kind:?}");
        }
        for (i, verdict) in [Verdict::Allow, Verdict::Block, Verdict::Bypass]
            .iter()
            .enumerate()
        {
            assert_eq!(*verdict as usize, i);
        }
    }

    /// An index beyond a kept array is counted all the same, by label lookup.
    #[test]
    fn an_index_beyond_the_kept_children_still_counts() {
        let m = Metrics::new(Registry::new());
        with_child(
            &m.children.upstream,
            99,
            || m.upstream_responses.with_label_values(&["5xx"]),
            IntCounter::inc,
        );
        assert_eq!(m.upstream_responses.with_label_values(&["5xx"]).get(), 1);
        assert!(m.children.upstream.iter().all(|c| c.get().is_none()));
    }

    /// A series appears once it has been counted, not before: absent traffic on a page
    /// or a source is no series, as it was when every count looked its labels up.
    #[test]
    fn series_appear_when_first_counted() {
        let m = Metrics::new(Registry::new());
        let before = exposition(&m);
        assert!(!before.contains("poortwachter_pages_total{"), "{before}");
        assert!(!before.contains("poortwachter_client_ip_resolutions_total{"));
        m.count_page(PageKind::Claim, true);
        m.count_client_ip(None);
        let after = exposition(&m);
        assert!(
            after.contains(r#"poortwachter_pages_total{format="json",page="claim"} 1"#),
            "{after}"
        );
        assert!(
            after.contains(r#"poortwachter_client_ip_resolutions_total{outcome="unresolvable"} 1"#)
        );
        assert!(!after.contains(r#"format="html""#));
    }
}
