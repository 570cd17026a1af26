//! Client IP resolution: which address a request really comes from (security-critical).
//!
//! The rule (DESIGN.md, "Client IP rules"): the TCP peer is the client unless it is a trusted
//! proxy. A trusted peer's forwarding header (exactly one, by configuration) is walked from
//! the right, skipping trusted hops; the first untrusted address is the client, the leftmost
//! one if all are trusted, the peer if the header has no elements. An element the walk cannot
//! read makes the client unresolvable: it fails closed, never falling back to another value.
//!
//! Pure: no IO, no Pingora types, no allocation per request. Files, one job each:
//! - `types`: `PeerAddr`, `ClientIp`, `Resolved`, `HeaderMode`.
//! - `error`: `Unresolvable` and `MalformedKind` (positions and kinds, never header text).
//! - `addr`: strict address text parsing and IPv4-mapped canonicalisation.
//! - `trusted`: the trusted proxy networks.
//! - `walk`: the right-to-left trust walk shared by both header syntaxes.
//! - `xff`, `forwarded`: the two header syntaxes.

mod addr;
mod config;
mod error;
mod forwarded;
mod trusted;
mod types;
mod walk;
mod xff;

pub use addr::{canonical, canonical_net, parse_element, parse_ip, parse_net, NetError};
pub use config::{trusted_nets, ClientIpConfig, ClientIpFile};
pub use error::{MalformedKind, Unresolvable, UNRESOLVABLE_REASON};
pub use trusted::TrustedProxies;
pub use types::{ClientIp, ClientIpSource, HeaderMode, ParseHeaderModeError, PeerAddr, Resolved};

/// Resolves the client address of one request.
///
/// `field_lines` are every field line of the configured header (`mode`), in the order
/// received; the caller selects them by name, and never passes lines of other headers. They
/// are read only when the peer is trusted.
pub fn resolve<'a, I>(
    peer: PeerAddr,
    field_lines: I,
    mode: HeaderMode,
    trusted: &TrustedProxies,
) -> Result<Resolved, Unresolvable>
where
    I: DoubleEndedIterator<Item = &'a [u8]>,
{
    let peer = canonical(peer.0.ok_or(Unresolvable::NoPeerAddress)?);
    if !trusted.contains(peer) {
        return Ok(Resolved {
            ip: ClientIp::from_canonical(peer),
            source: ClientIpSource::Peer,
        });
    }
    let from_header = match mode {
        HeaderMode::XForwardedFor => xff::walk(field_lines, trusted)?,
        HeaderMode::Forwarded => forwarded::walk(field_lines, trusted)?,
    };
    Ok(match from_header {
        Some(ip) => Resolved {
            ip: ClientIp::from_canonical(ip),
            source: ClientIpSource::Header,
        },
        None => Resolved {
            ip: ClientIp::from_canonical(peer),
            source: ClientIpSource::Peer,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|s| s.parse().unwrap()))
    }

    fn peer(s: &str) -> PeerAddr {
        PeerAddr(Some(ip(s)))
    }

    fn res(
        peer: PeerAddr,
        lines: &[&str],
        mode: HeaderMode,
        nets: &[&str],
    ) -> Result<Resolved, Unresolvable> {
        resolve(
            peer,
            lines.iter().map(|l| l.as_bytes()),
            mode,
            &trusted(nets),
        )
    }

    fn from_peer(s: &str) -> Result<Resolved, Unresolvable> {
        Ok(Resolved {
            ip: ClientIp::from_trusted_source(ip(s)),
            source: ClientIpSource::Peer,
        })
    }

    fn from_header(s: &str) -> Result<Resolved, Unresolvable> {
        Ok(Resolved {
            ip: ClientIp::from_trusted_source(ip(s)),
            source: ClientIpSource::Header,
        })
    }

    const XFF: HeaderMode = HeaderMode::XForwardedFor;
    const FWD: HeaderMode = HeaderMode::Forwarded;
    const T: &[&str] = &["10.0.0.0/8", "2001:db8:ffff::/48"];

    #[test]
    fn untrusted_peer_is_the_client_and_the_header_is_not_read() {
        for mode in [XFF, FWD] {
            assert_eq!(
                res(peer("203.0.113.9"), &["198.51.100.10"], mode, T),
                from_peer("203.0.113.9")
            );
            // Even garbage is not looked at.
            assert_eq!(
                res(peer("203.0.113.9"), &["\"unterminated, ;;=="], mode, T),
                from_peer("203.0.113.9")
            );
            assert_eq!(
                res(peer("2001:db8::9"), &["for=10.0.0.1"], mode, T),
                from_peer("2001:db8::9")
            );
            // No trusted proxies at all.
            assert_eq!(
                res(peer("10.0.0.1"), &["198.51.100.10"], mode, &[]),
                from_peer("10.0.0.1")
            );
        }
    }

    #[test]
    fn header_lines_are_not_iterated_for_untrusted_peers() {
        struct Panics;
        impl Iterator for Panics {
            type Item = &'static [u8];
            fn next(&mut self) -> Option<Self::Item> {
                panic!("header read for an untrusted peer")
            }
        }
        impl DoubleEndedIterator for Panics {
            fn next_back(&mut self) -> Option<Self::Item> {
                panic!("header read for an untrusted peer")
            }
        }
        let t = trusted(T);
        for mode in [XFF, FWD] {
            assert_eq!(
                resolve(peer("203.0.113.9"), Panics, mode, &t),
                from_peer("203.0.113.9")
            );
            assert_eq!(
                resolve(PeerAddr(None), Panics, mode, &t),
                Err(Unresolvable::NoPeerAddress)
            );
        }
    }

    #[test]
    fn address_less_peer_is_unresolvable() {
        for mode in [XFF, FWD] {
            assert_eq!(
                res(PeerAddr(None), &[], mode, T),
                Err(Unresolvable::NoPeerAddress)
            );
            // Even a perfectly good header does not help: nobody vouches for it.
            assert_eq!(
                res(PeerAddr(None), &["192.0.2.1"], mode, T),
                Err(Unresolvable::NoPeerAddress)
            );
        }
    }

    #[test]
    fn trusted_peer_without_elements_is_the_client() {
        for mode in [XFF, FWD] {
            assert_eq!(res(peer("10.0.0.1"), &[], mode, T), from_peer("10.0.0.1"));
            assert_eq!(
                res(peer("10.0.0.1"), &["", " , ,, "], mode, T),
                from_peer("10.0.0.1")
            );
        }
    }

    #[test]
    fn mapped_peer_is_its_ipv4_address() {
        // Untrusted mapped peer: reported as IPv4.
        assert_eq!(
            res(peer("::ffff:203.0.113.9"), &["10.0.0.2"], XFF, T),
            from_peer("203.0.113.9")
        );
        let r = res(peer("::ffff:203.0.113.9"), &[], XFF, T).unwrap();
        assert!(r.ip.addr().is_ipv4());
        // Trusted mapped peer: trusted as its IPv4 address, and the header is walked.
        assert_eq!(
            res(peer("::ffff:10.0.0.1"), &["192.0.2.1, 10.0.0.2"], XFF, T),
            from_header("192.0.2.1")
        );
        // Trusted mapped peer without header: reported as IPv4.
        assert_eq!(
            res(peer("::ffff:a00:1"), &[], FWD, T),
            from_peer("10.0.0.1")
        );
        // A mapped trusted network matches a plain IPv4 peer.
        assert_eq!(
            res(
                peer("10.0.0.1"),
                &["192.0.2.1"],
                XFF,
                &["::ffff:10.0.0.0/104"]
            ),
            from_header("192.0.2.1")
        );
        // IPv4-compatible is not mapped: ::10.0.0.1 is an untrusted IPv6 peer.
        assert_eq!(
            res(peer("::10.0.0.1"), &["192.0.2.1"], XFF, T),
            from_peer("::10.0.0.1")
        );
    }

    #[test]
    fn header_walk_in_both_modes() {
        assert_eq!(
            res(peer("10.0.0.1"), &["198.51.100.10, 203.0.113.50"], XFF, T),
            from_header("203.0.113.50")
        );
        assert_eq!(
            res(
                peer("10.0.0.1"),
                &["for=198.51.100.10, for=203.0.113.50"],
                FWD,
                T
            ),
            from_header("203.0.113.50")
        );
        // All trusted: the leftmost, reported as from the header.
        assert_eq!(
            res(peer("10.0.0.1"), &["10.0.0.3, 10.0.0.2"], XFF, T),
            from_header("10.0.0.3")
        );
        assert_eq!(
            res(peer("10.0.0.1"), &["for=10.0.0.3, for=10.0.0.2"], FWD, T),
            from_header("10.0.0.3")
        );
        // IPv6 trusted peer.
        assert_eq!(
            res(
                peer("2001:db8:ffff::1"),
                &["2001:db8:1::7, 2001:DB8:FFFF::2"],
                XFF,
                T
            ),
            from_header("2001:db8:1::7")
        );
    }

    #[test]
    fn the_other_syntax_is_not_accepted() {
        // An XFF-style value under Forwarded, and the reverse, fail closed.
        assert_eq!(
            res(peer("10.0.0.1"), &["192.0.2.1"], FWD, T),
            Err(Unresolvable::MalformedElement {
                position: 0,
                kind: MalformedKind::Syntax
            })
        );
        assert_eq!(
            res(peer("10.0.0.1"), &["for=192.0.2.1"], XFF, T),
            Err(Unresolvable::MalformedElement {
                position: 0,
                kind: MalformedKind::InvalidAddress
            })
        );
    }

    #[test]
    fn malformed_never_falls_back() {
        for (lines, mode) in [
            (&["203.0.113.7, garbage"][..], XFF),
            (&["203.0.113.7", "garbage"][..], XFF),
            (&["for=203.0.113.7, for=unknown"][..], FWD),
            (&["for=203.0.113.7", "for=_x"][..], FWD),
        ] {
            let got = res(peer("10.0.0.1"), lines, mode, T);
            assert!(
                matches!(got, Err(Unresolvable::MalformedElement { position: 0, .. })),
                "{lines:?}: {got:?}"
            );
        }
    }
}
