//! `explain`: why would this request be allowed or blocked? It builds the same `Gate` the
//! proxy uses and takes the same steps on one generation (`Generation::resolve_client`,
//! `route_for`, `evaluate`), so the answer is the proxy's answer.

use crate::client_ip::{ClientIpSource, PeerAddr};
use crate::decision::RouteAction;
use crate::gate::{Gate, RouteMatch, Routed};
use crate::site_binding::Claim;
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

/// What a `[[proxy.listener]]` with the PROXY protocol makes of `line` (`--proxy-protocol`,
/// a v1 line; its CRLF may be left off) sent by `peer`: `Ok` with the peer the gate then
/// decides on and a note for the answer, `Err` with why the connection would be closed.
pub fn proxy_protocol_peer(
    listeners: &[crate::listener::ProxyProtocolListener],
    peer: PeerAddr,
    line: &str,
) -> Result<(PeerAddr, serde_json::Value), serde_json::Value> {
    use crate::proxy_protocol::{parse, Parsed};
    let mut bytes = line.as_bytes().to_vec();
    if !bytes.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    let closed = |reason: &str, detail: String| {
        serde_json::json!({
            "proxy_protocol": { "refused": reason, "detail": detail },
            "connection": "closed before any HTTP is read",
        })
    };
    let Some(listener) = listeners
        .iter()
        .find(|l| peer.0.is_some_and(|ip| l.from.contains(ip)))
    else {
        return Err(closed(
            "peer_not_allowed",
            "no [[proxy.listener]] lists this peer in proxy_protocol_from".into(),
        ));
    };
    match parse(&bytes, listener.accept) {
        Ok(Parsed::Done { header, .. }) => {
            let source = header.addresses.map(|a| a.source);
            let note = serde_json::json!({
                "listener": listener.addr.to_string(),
                "source": source.map(|s| s.to_string()),
                "peer_used": match source {
                    Some(_) => "the header's source",
                    None => "the balancer (UNKNOWN)",
                },
            });
            Ok((source.map_or(peer, |s| PeerAddr(Some(s.ip()))), note))
        }
        Ok(Parsed::Incomplete) => Err(closed("truncated", "the line is incomplete".into())),
        Err(e) => Err(closed(e.reason(), e.to_string())),
    }
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
    /// The site claim as verified; `null` without `[site_binding]`.
    pub claim: Option<ClaimExplanation>,
    /// Override entries covering the client address, whether or not they count at `at`.
    pub overrides: Vec<serde_json::Value>,
    /// Extra context for support; not part of the stable contract.
    pub detail: Detail,
}

#[derive(Debug, Serialize)]
pub struct ClaimExplanation {
    /// `missing`, `valid`, `expired` or `invalid`.
    pub result: &'static str,
    /// The verified site id (valid claims only).
    pub site: Option<String>,
    /// Why an invalid claim is invalid (`bad_signature`, `alg_mismatch`, `unknown_kid`, ...).
    pub problem: Option<&'static str>,
    /// What this route does with requests without a usable claim: `block` or `any-site`.
    pub missing: &'static str,
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

/// The headers of a request described by `--header` arguments (or the admin listener's
/// `header=` parameters), in order, several lines of one name kept as several lines.
pub fn header_map(headers: &[HeaderArg]) -> Result<http::HeaderMap, String> {
    let mut map = http::HeaderMap::new();
    for h in headers {
        let name = http::HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("invalid header name {:?}", h.name))?;
        let value = http::HeaderValue::from_str(&h.value)
            .map_err(|_| format!("invalid value for header {:?}", h.name))?;
        map.append(name, value);
    }
    Ok(map)
}

/// Explain one request: the peer, its headers, path and host, at a moment.
pub fn explain(
    gate: &Gate,
    peer: PeerAddr,
    headers: &http::HeaderMap,
    path: &str,
    host: Option<&str>,
    at: OffsetDateTime,
) -> Explanation {
    let g = gate.current();
    let cfg = &g.runtime.config;
    let client = g.resolve_client(peer, headers);
    let header = cfg.client_ip.header.header_name();
    let host = host.or_else(|| headers.get(http::header::HOST)?.to_str().ok());
    let (route, path_error) = match g.route_for(host, path) {
        // The proxy answers the self-check page itself; judged here like any enforced path.
        Ok(Routed::SelfCheck) => (RouteMatch::default_route(), None),
        Ok(Routed::Route(m)) => (m, None),
        // The proxy answers such a request 400 before any decision; shown as a refusal.
        Err(e) => (
            RouteMatch {
                action: RouteAction::Block,
                ..RouteMatch::default_route()
            },
            Some(e.to_string()),
        ),
    };
    let eval = g.evaluate(client, headers, &route, at);
    let d = eval.decision;
    let claim = cfg
        .site_binding
        .as_ref()
        .zip(eval.claim.as_ref())
        .map(|(b, c)| ClaimExplanation {
            result: c.result(),
            site: c.site().map(str::to_string),
            problem: match c {
                Claim::Invalid(why) => Some(why.as_str()),
                _ => None,
            },
            missing: route.missing.unwrap_or(b.0.missing).as_str(),
        });
    let overrides = match (&eval.client, eval.overrides()) {
        (Ok(r), Some(o)) => o
            .covering(r.ip.addr())
            .map(|e| super::status::entry_json(e, at))
            .collect(),
        _ => Vec::new(),
    };
    Explanation {
        client_ip: eval.client.as_ref().ok().map(|r| r.ip.to_string()),
        client_ip_source: eval.client.as_ref().ok().map(|r| match r.source {
            ClientIpSource::Peer => "peer".to_string(),
            ClientIpSource::Header => header.to_string(),
        }),
        sites: eval.site_ids().into_iter().map(str::to_string).collect(),
        route: route
            .name
            .clone()
            .unwrap_or_else(|| crate::metrics::DEFAULT_ROUTE.to_string()),
        route_action: route.action.as_str(),
        mode: crate::decision::effective_mode(cfg.policy.mode, cfg.policy.enforce_from, at)
            .as_str(),
        decision: d.verdict.as_str(),
        would_block: d.would_block,
        reason: d.reason.as_str(),
        claim,
        overrides,
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
                .snapshot()
                .and_then(|s| s.version().map(str::to_string)),
            allowlist_loaded: eval.snapshot().is_some(),
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
