//! Prometheus metrics: one [`Metrics`] struct registered on an injected registry, so two gates
//! in one process (tests) never share counters. Labels are low-cardinality only: never a
//! school id or an address.

use crate::decision::{Decision, Reason, Verdict};
use pingora_prometheus::prometheus::{
    self, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The `route` label of requests no `[[route]]` matched.
pub const DEFAULT_ROUTE: &str = "default";

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
        };
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
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
        self.requests
            .with_label_values(&[d.verdict.as_str(), d.reason.as_str(), route])
            .inc();
        if d.would_block {
            self.would_block
                .with_label_values(&[d.reason.as_str()])
                .inc();
        }
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
