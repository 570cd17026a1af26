//! The vocabulary of client IP resolution: what the listener reports ([`PeerAddr`]), what
//! the rule produces ([`ClientIp`], [`Resolved`]) and which header it may read ([`HeaderMode`]).
//!
//! `PeerAddr` and `ClientIp` are distinct types so that an unresolved peer address can never
//! reach the allowlist by accident: only [`super::resolve`] turns one into the other.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::addr::canonical;

/// Address of the TCP peer as the listener reports it. `None` = Unix socket or otherwise
/// address-less.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub Option<IpAddr>);

/// A resolved client address, always canonical (IPv4-mapped IPv6 is unmapped to IPv4).
///
/// Only [`super::resolve`] creates it on the request path; [`ClientIp::from_trusted_source`]
/// exists for explicit construction by tests and the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientIp(IpAddr);

impl ClientIp {
    /// Wraps an address that did not come from a request (a CLI argument, a test).
    /// Canonicalised like every other client address, so `::ffff:192.0.2.1` becomes
    /// `192.0.2.1`.
    pub fn from_trusted_source(ip: IpAddr) -> Self {
        ClientIp(canonical(ip))
    }

    /// Crate-internal constructor for addresses that are already canonical.
    pub(super) fn from_canonical(ip: IpAddr) -> Self {
        debug_assert_eq!(ip, canonical(ip), "ClientIp must hold a canonical address");
        ClientIp(ip)
    }

    /// The address itself.
    pub fn addr(&self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientIp {
    /// The parsed address in its standard text form (RFC 5952 for IPv6), never raw header text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<ClientIp> for IpAddr {
    fn from(ip: ClientIp) -> IpAddr {
        ip.0
    }
}

/// The one forwarding header trusted by configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// `X-Forwarded-For`: a comma-separated list of addresses (the default).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239): a list of `for=...;by=...` elements.
    Forwarded,
}

impl HeaderMode {
    /// The header's name in lower case, as used in configuration and in `explain` output.
    pub fn header_name(&self) -> &'static str {
        match self {
            HeaderMode::XForwardedFor => "x-forwarded-for",
            HeaderMode::Forwarded => "forwarded",
        }
    }
}

impl fmt::Display for HeaderMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_name())
    }
}

/// The configured `header` value is not one of the two supported forwarding headers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unsupported forwarding header {0:?}: expected \"x-forwarded-for\" or \"forwarded\"")]
pub struct ParseHeaderModeError(pub String);

impl FromStr for HeaderMode {
    type Err = ParseHeaderModeError;

    /// Accepts exactly `x-forwarded-for` or `forwarded`, in any letter case (header names
    /// are case-insensitive). Anything else, including `x-real-ip` or surrounding spaces,
    /// is refused so that a typo cannot silently select no header.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("x-forwarded-for") {
            Ok(HeaderMode::XForwardedFor)
        } else if s.eq_ignore_ascii_case("forwarded") {
            Ok(HeaderMode::Forwarded)
        } else {
            Err(ParseHeaderModeError(s.to_owned()))
        }
    }
}

/// Where the client IP came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIpSource {
    /// The TCP peer itself (untrusted peer, or a trusted peer that sent no header elements).
    Peer,
    /// An element of the configured forwarding header.
    Header,
}

impl ClientIpSource {
    /// The label used by `explain` and the logs: `peer`, or the configured header's name.
    pub fn label(self, mode: HeaderMode) -> &'static str {
        match self {
            ClientIpSource::Peer => "peer",
            ClientIpSource::Header => mode.header_name(),
        }
    }
}

/// The outcome of a successful resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub ip: ClientIp,
    pub source: ClientIpSource,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_mode_names() {
        assert_eq!(HeaderMode::XForwardedFor.header_name(), "x-forwarded-for");
        assert_eq!(HeaderMode::Forwarded.header_name(), "forwarded");
        assert_eq!(HeaderMode::default(), HeaderMode::XForwardedFor);
        assert_eq!(HeaderMode::Forwarded.to_string(), "forwarded");
    }

    #[test]
    fn header_mode_from_str_is_case_insensitive_and_exact() {
        for (s, want) in [
            ("x-forwarded-for", HeaderMode::XForwardedFor),
            ("X-Forwarded-For", HeaderMode::XForwardedFor),
            ("X-FORWARDED-FOR", HeaderMode::XForwardedFor),
            ("forwarded", HeaderMode::Forwarded),
            ("Forwarded", HeaderMode::Forwarded),
        ] {
            assert_eq!(s.parse::<HeaderMode>(), Ok(want), "{s}");
        }
        for s in [
            "",
            "x-real-ip",
            " forwarded",
            "forwarded ",
            "x_forwarded_for",
            "xff",
            "proxy-protocol-v1",
        ] {
            let err = s.parse::<HeaderMode>().unwrap_err();
            assert_eq!(err, ParseHeaderModeError(s.to_owned()));
            assert!(
                err.to_string().contains(&format!("{s:?}")),
                "error names the value: {err}"
            );
        }
    }

    #[test]
    fn client_ip_from_trusted_source_is_canonical() {
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let ip = ClientIp::from_trusted_source(mapped);
        assert_eq!(ip.addr(), "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(ip.to_string(), "192.0.2.1");
        let v6: IpAddr = "2001:DB8:0:0::1".parse().unwrap();
        assert_eq!(ClientIp::from_trusted_source(v6).to_string(), "2001:db8::1");
        assert_eq!(IpAddr::from(ClientIp::from_trusted_source(v6)), v6);
    }

    #[test]
    fn source_labels() {
        assert_eq!(ClientIpSource::Peer.label(HeaderMode::Forwarded), "peer");
        assert_eq!(
            ClientIpSource::Header.label(HeaderMode::XForwardedFor),
            "x-forwarded-for"
        );
        assert_eq!(
            ClientIpSource::Header.label(HeaderMode::Forwarded),
            "forwarded"
        );
    }
}
