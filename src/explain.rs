//! `explain`: why would this request be allowed or blocked? It builds the same `Gate` the
//! proxy uses and calls the same `Gate::evaluate`, so the answer is the proxy's answer.

use crate::client_ip::{ClientIpSource, PeerAddr};
use crate::decision::RouteAction;
use crate::gate::Gate;
use serde::Serialize;
use std::net::IpAddr;
use time::OffsetDateTime;

/// One `--header 'Name: value'` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderArg {
    pub name: String,
    pub value: String,
}

impl std::str::FromStr for HeaderArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, value) = s
            .split_once(':')
            .ok_or_else(|| format!("expected 'Name: value', got {s:?}"))?;
        let name = name.trim();
        if name.is_empty() || http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("invalid header name {name:?} in {s:?}"));
        }
        Ok(HeaderArg {
            name: name.to_string(),
            value: value.trim_matches([' ', '\t']).to_string(),
        })
    }
}

/// The `--peer` argument: an address, or `unix` for an address-less peer.
pub fn parse_peer(s: &str) -> Result<PeerAddr, String> {
    if s.eq_ignore_ascii_case("unix") {
        return Ok(PeerAddr(None));
    }
    s.parse::<IpAddr>()
        .map(|ip| PeerAddr(Some(ip)))
        .map_err(|_| format!("--peer {s:?}: expected an IP address (or `unix`)"))
}

/// Parse `--at` (RFC 3339).
pub fn parse_at(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        format!("--at {s:?}: expected an RFC 3339 time such as 2026-12-01T09:00:00+01:00: {e}")
    })
}

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub client_ip: Option<String>,
    pub client_ip_source: Option<String>,
    pub sites: Vec<String>,
    /// The matched `[[route]]` by name, or `default`.
    pub route: String,
    pub route_action: &'static str,
    /// The mode in force at that moment (`enforce_from` applied).
    pub mode: &'static str,
    pub decision: &'static str,
    pub would_block: bool,
    pub reason: &'static str,
    /// Extra context for support; not part of the stable contract.
    pub detail: Detail,
}

#[derive(Debug, Serialize)]
pub struct Detail {
    pub at: String,
    pub peer: Option<String>,
    pub peer_trusted: bool,
    pub unresolvable: Option<String>,
    pub status: Option<u16>,
    pub matched_site: Option<String>,
    pub allowlist_version: Option<String>,
    pub allowlist_loaded: bool,
    pub configured_mode: &'static str,
    pub enforce_from: Option<String>,
    /// The proxy answers 400 to this path instead of deciding.
    pub path_refused: Option<String>,
}

/// Explain one request described on the command line.
pub fn explain(
    gate: &Gate,
    peer: PeerAddr,
    headers: &[HeaderArg],
    path: &str,
    host: Option<&str>,
    at: OffsetDateTime,
) -> Explanation {
    let rt = gate.config();
    let cfg = &rt.config;
    let header = cfg.client_ip.header.header_name();
    let lines = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(header))
        .map(|h| h.value.as_bytes());
    let host = host.or_else(|| {
        headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"))
            .map(|h| h.value.as_str())
    });
    let (route, route_name, path_error) = match gate.route_for(host, path) {
        // The proxy answers the self-check page itself; judged here like any enforced path.
        Ok(crate::gate::Routed::SelfCheck) => (RouteAction::Enforce, None, None),
        Ok(crate::gate::Routed::Route(action, name)) => (action, name, None),
        // The proxy answers such a request 400 before any decision; shown as a refusal.
        Err(e) => (RouteAction::Block, None, Some(e.to_string())),
    };
    let eval = gate.evaluate(peer, lines, route, at);
    let d = eval.decision;
    Explanation {
        client_ip: eval.client.as_ref().ok().map(|r| r.ip.to_string()),
        client_ip_source: eval.client.as_ref().ok().map(|r| match r.source {
            ClientIpSource::Peer => "peer".to_string(),
            ClientIpSource::Header => header.to_string(),
        }),
        sites: eval.site_ids().into_iter().map(str::to_string).collect(),
        route: route_name.unwrap_or_else(|| crate::metrics::DEFAULT_ROUTE.to_string()),
        route_action: route.as_str(),
        mode: crate::decision::effective_mode(cfg.policy.mode, cfg.policy.enforce_from, at)
            .as_str(),
        decision: d.verdict.as_str(),
        would_block: d.would_block,
        reason: d.reason.as_str(),
        detail: Detail {
            at: at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            peer: peer.0.map(|p| p.to_string()),
            peer_trusted: peer.0.is_some_and(|p| cfg.client_ip.trusted.contains(p)),
            unresolvable: eval.client.as_ref().err().map(|e| e.to_string()),
            status: (d.verdict == crate::decision::Verdict::Block).then(|| d.block_status()),
            matched_site: eval.site_id().map(str::to_string),
            allowlist_version: eval
                .snapshot
                .as_ref()
                .and_then(|s| s.version().map(str::to_string)),
            allowlist_loaded: eval.snapshot.is_some(),
            configured_mode: cfg.policy.mode.as_str(),
            enforce_from: cfg.policy.enforce_from.and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            }),
            path_refused: path_error,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_args_parse() {
        let h: HeaderArg = "X-Forwarded-For: 192.0.2.1, 10.0.0.1".parse().unwrap();
        assert_eq!(h.name, "X-Forwarded-For");
        assert_eq!(h.value, "192.0.2.1, 10.0.0.1");
        let h: HeaderArg = "forwarded:for=\"[2001:db8::1]:80\"".parse().unwrap();
        assert_eq!(h.value, "for=\"[2001:db8::1]:80\"");
        assert!("no colon".parse::<HeaderArg>().is_err());
        assert!(": value".parse::<HeaderArg>().is_err());
        assert!("bad name: v".parse::<HeaderArg>().is_err());
    }

    #[test]
    fn peers_parse() {
        assert_eq!(parse_peer("unix").unwrap(), PeerAddr(None));
        assert!(parse_peer("192.0.2.1").is_ok());
        assert!(parse_peer("2001:db8::1").is_ok());
        assert!(parse_peer("192.0.2.1:80").is_err());
        assert!(parse_peer("host.example").is_err());
    }

    #[test]
    fn at_parses_rfc3339_only() {
        assert!(parse_at("2026-12-01T08:00:00+01:00").is_ok());
        assert!(parse_at("2026-12-01T07:00:00Z").is_ok());
        assert!(parse_at("2026-12-01").is_err());
    }
}
