//! Judging of one range string (`"192.0.2.0/28"`, `"2001:db8:12::/48"`,
//! `"198.51.100.7"`), shared by site ranges and exceptions; the text is read
//! by the client-IP layer's strict network parser. Everything a registration
//! must not be is refused here: loose address forms, host bits, ranges broader
//! than `max_prefix`, and IPv6 ranges that would silently never match because
//! their addresses are IPv4-mapped.

use std::net::Ipv6Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::options::CompileOptions;
use super::quarantine::QuarantineKind;
use crate::client_ip::{canonical_net, parse_net, NetError};

/// `::ffff:0:0/96`: clients here are IPv4 clients (the client-IP layer
/// unmaps them), so they never reach an IPv6 lookup. (A const: the `Err`
/// arm below is evaluated at compile time, never at run time.)
const MAPPED_NET: Ipv6Net = match Ipv6Net::new(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96) {
    Ok(net) => net,
    Err(_) => panic!("96 is a valid IPv6 prefix length"),
};

/// Why a range string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeProblem {
    Empty,
    Whitespace,
    ZoneId,
    BadAddress,
    BadPrefix { max: u8 },
    HostBits { network: IpNet },
    TooBroad { prefix: u8, max: u8 },
    MappedSpace,
}

impl RangeProblem {
    pub(crate) fn kind(&self) -> QuarantineKind {
        match self {
            RangeProblem::Empty
            | RangeProblem::Whitespace
            | RangeProblem::ZoneId
            | RangeProblem::BadAddress
            | RangeProblem::BadPrefix { .. } => QuarantineKind::MalformedRange,
            RangeProblem::HostBits { .. } => QuarantineKind::HostBitsSet,
            RangeProblem::TooBroad { .. } => QuarantineKind::PrefixTooBroad,
            RangeProblem::MappedSpace => QuarantineKind::MappedSpace,
        }
    }

    pub(crate) fn message(&self) -> String {
        match self {
            RangeProblem::Empty => "empty range".to_string(),
            RangeProblem::Whitespace => "range contains whitespace".to_string(),
            RangeProblem::ZoneId => "zone ids (`%...`) are not allowed in a range".to_string(),
            RangeProblem::BadAddress => {
                "not a strict IPv4 or IPv6 address (expected e.g. 192.0.2.0/24 or 2001:db8::/48)"
                    .to_string()
            }
            RangeProblem::BadPrefix { max } => {
                format!("prefix length is not a number from 0 to {max} without leading zeros")
            }
            RangeProblem::HostBits { network } => {
                format!("host bits set (did you mean {network}?)")
            }
            RangeProblem::TooBroad { prefix, max } => {
                format!("prefix /{prefix} is broader than the allowed /{max}")
            }
            // Spelled out: Display would show `::ffff:0.0.0.0/96`.
            RangeProblem::MappedSpace => "overlaps the IPv4-mapped space ::ffff:0:0/96, which is matched as IPv4 and would never match here; list IPv4 ranges as IPv4".to_string(),
        }
    }
}

/// Parse and judge one range. A bare address is a /32 or /128; an
/// IPv4-mapped IPv6 range of /96 or longer becomes the IPv4 range it maps
/// (and is then judged as IPv4).
pub(crate) fn parse_range(text: &str, opts: &CompileOptions) -> Result<IpNet, RangeProblem> {
    if text.is_empty() {
        return Err(RangeProblem::Empty);
    }
    // The address grammar is the client-IP layer's, so a range means what a client
    // address means; the family is the text's, so an IPv4-looking typo is reported
    // against the IPv4 prefix limit and vice versa.
    let judged = match parse_net(text) {
        Ok(net) => match canonical_net(net) {
            IpNet::V4(net) => judge_v4(net, opts),
            IpNet::V6(net) => judge_v6(net, opts),
        },
        Err(NetError::Address) => Err(RangeProblem::BadAddress),
        Err(NetError::Prefix { max }) => Err(RangeProblem::BadPrefix { max }),
    };
    // Whitespace or a zone id never parses, so they are looked for only once parsing
    // failed (at start-up this runs 100k times), and named rather than "bad address".
    judged.map_err(|problem| match problem {
        RangeProblem::BadAddress | RangeProblem::BadPrefix { .. } => {
            if text.chars().any(char::is_whitespace) {
                RangeProblem::Whitespace
            } else if text.contains('%') {
                RangeProblem::ZoneId
            } else {
                problem
            }
        }
        other => other,
    })
}

fn judge_v4(net: Ipv4Net, opts: &CompileOptions) -> Result<IpNet, RangeProblem> {
    let prefix = net.prefix_len();
    // Breadth first: a too-broad range with host bits should not be answered
    // with a suggestion that is itself refused.
    if prefix < opts.max_prefix_v4 {
        return Err(RangeProblem::TooBroad {
            prefix,
            max: opts.max_prefix_v4,
        });
    }
    if net.network() != net.addr() {
        return Err(RangeProblem::HostBits {
            network: IpNet::V4(net.trunc()),
        });
    }
    Ok(IpNet::V4(net))
}

/// An IPv6 range; a mapped one (`::ffff:192.0.2.0/120`) was already made the IPv4 range
/// it maps, as the client-IP layer presents those clients.
fn judge_v6(net: Ipv6Net, opts: &CompileOptions) -> Result<IpNet, RangeProblem> {
    let prefix = net.prefix_len();
    if prefix < opts.max_prefix_v6 {
        return Err(RangeProblem::TooBroad {
            prefix,
            max: opts.max_prefix_v6,
        });
    }
    if net.network() != net.addr() {
        return Err(RangeProblem::HostBits {
            network: IpNet::V6(net.trunc()),
        });
    }
    // Two prefixes are nested or disjoint, so one contains the other exactly when they
    // overlap: compared as integers, without building a second network.
    let (first, last) = (u128::from(net.network()), u128::from(net.broadcast()));
    let (mapped_first, mapped_last) = (
        u128::from(MAPPED_NET.network()),
        u128::from(MAPPED_NET.broadcast()),
    );
    if first <= mapped_last && mapped_first <= last {
        return Err(RangeProblem::MappedSpace);
    }
    Ok(IpNet::V6(net))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        match parse_range(text, &CompileOptions::default()) {
            Ok(net) => net.to_string(),
            Err(p) => panic!("{text:?} refused: {}", p.message()),
        }
    }

    fn problem(text: &str) -> RangeProblem {
        match parse_range(text, &CompileOptions::default()) {
            Ok(net) => panic!("{text:?} accepted as {net}"),
            Err(p) => p,
        }
    }

    /// Whitespace and zone ids are named whatever else is wrong or right with the text:
    /// every text that holds one is refused as such, never accepted and never called a
    /// bad address (they are looked for only after parsing failed, so this checks that
    /// parsing always fails on them).
    #[test]
    fn whitespace_and_zone_ids_are_named_in_any_text() {
        let alphabet = [
            "1",
            "0",
            "9",
            "f",
            ".",
            ":",
            "::",
            "/",
            "24",
            "64",
            "128",
            " ",
            "\t",
            "%",
            "\u{a0}",
            "eth0",
            "ffff",
            "192.0.2.0",
            "2001:db8::",
        ];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut checked = 0;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let text: String = (0..1 + x % 7)
                .map(|i| alphabet[((x >> (8 * i)) % alphabet.len() as u64) as usize])
                .collect();
            let expected = if text.chars().any(char::is_whitespace) {
                RangeProblem::Whitespace
            } else if text.contains('%') {
                RangeProblem::ZoneId
            } else {
                continue;
            };
            checked += 1;
            let got = parse_range(&text, &CompileOptions::default());
            assert_eq!(got, Err(expected), "{text:?}");
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn accepts_cidr_and_bare_addresses() {
        assert_eq!(ok("192.0.2.0/28"), "192.0.2.0/28");
        assert_eq!(ok("198.51.100.7"), "198.51.100.7/32");
        assert_eq!(ok("198.51.100.7/32"), "198.51.100.7/32");
        assert_eq!(ok("2001:db8:12::/48"), "2001:db8:12::/48");
        assert_eq!(ok("2001:db8::1"), "2001:db8::1/128");
        assert_eq!(ok("2001:DB8::/32"), "2001:db8::/32");
        assert_eq!(ok("203.0.0.0/16"), "203.0.0.0/16");
    }

    #[test]
    fn extremes_of_the_space() {
        assert_eq!(ok("0.0.0.0"), "0.0.0.0/32");
        assert_eq!(ok("255.255.255.255"), "255.255.255.255/32");
        assert_eq!(ok("255.255.0.0/16"), "255.255.0.0/16");
        assert_eq!(ok("::"), "::/128");
        assert_eq!(
            ok("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
        );
        assert_eq!(ok("ffff:ffff::/32"), "ffff:ffff::/32");
    }

    #[test]
    fn malformed_forms() {
        for text in [
            "192.0.2",
            "192.0.2.1.5",
            "192.000.2.1",
            "192.0.2.01",
            "0x7f.0.0.1",
            "3221225985",
            "192.0.2.256",
            "192.0.2.0/",
            "192.0.2.0//24",
            "192.0.2.0/24/24",
            "[2001:db8::1]",
            "[2001:db8::]/48",
            "2001:db8:::1",
            "2001:db8::g",
            "example.org",
            "192.0.2.0-192.0.2.9",
            "\"192.0.2.1\"",
            "192.0.2.1:80",
        ] {
            let p = problem(text);
            assert_eq!(p.kind(), QuarantineKind::MalformedRange, "{text:?}: {p:?}");
        }
    }

    #[test]
    fn prefix_must_be_plain_digits() {
        for text in [
            "192.0.2.0/024",
            "192.0.2.0/+24",
            "192.0.2.0/-1",
            "192.0.2.0/33",
            "192.0.2.0/2x",
            "192.0.2.0/0024",
        ] {
            assert_eq!(
                problem(text),
                RangeProblem::BadPrefix { max: 32 },
                "{text:?}"
            );
        }
        for text in ["2001:db8::/129", "2001:db8::/048", "2001:db8::/1000"] {
            assert_eq!(
                problem(text),
                RangeProblem::BadPrefix { max: 128 },
                "{text:?}"
            );
        }
        assert_eq!(ok("192.0.2.1/32"), "192.0.2.1/32");
    }

    #[test]
    fn whitespace_and_zone_ids() {
        for text in [
            " 192.0.2.1",
            "192.0.2.1 ",
            "192.0.2.0 /24",
            "192.0.2.0/ 24",
            "192.0.2.1\n",
            "2001:db8::1\u{a0}",
        ] {
            assert_eq!(problem(text), RangeProblem::Whitespace, "{text:?}");
        }
        assert_eq!(problem("fe80::1%eth0"), RangeProblem::ZoneId);
        assert_eq!(problem("fe80::%1/64"), RangeProblem::ZoneId);
        assert_eq!(problem(""), RangeProblem::Empty);
    }

    #[test]
    fn host_bits_suggest_the_network() {
        let p = problem("192.0.2.5/24");
        assert_eq!(p.kind(), QuarantineKind::HostBitsSet);
        assert_eq!(p.message(), "host bits set (did you mean 192.0.2.0/24?)");
        let p = problem("2001:db8:12::1/48");
        assert_eq!(
            p.message(),
            "host bits set (did you mean 2001:db8:12::/48?)"
        );
        assert_eq!(
            problem("255.255.255.255/31").message(),
            "host bits set (did you mean 255.255.255.254/31?)"
        );
    }

    #[test]
    fn too_broad_is_checked_before_host_bits() {
        assert_eq!(
            problem("0.0.0.0/0"),
            RangeProblem::TooBroad { prefix: 0, max: 16 }
        );
        assert_eq!(
            problem("10.1.2.3/8"),
            RangeProblem::TooBroad { prefix: 8, max: 16 }
        );
        assert_eq!(
            problem("192.0.0.0/15"),
            RangeProblem::TooBroad {
                prefix: 15,
                max: 16
            }
        );
        assert_eq!(
            problem("::/0"),
            RangeProblem::TooBroad { prefix: 0, max: 32 }
        );
        assert_eq!(
            problem("2001:d00::/24"),
            RangeProblem::TooBroad {
                prefix: 24,
                max: 32
            }
        );
        assert_eq!(
            problem("0.0.0.0/0").message(),
            "prefix /0 is broader than the allowed /16"
        );
    }

    #[test]
    fn max_prefix_is_configurable() {
        let opts = CompileOptions {
            max_prefix_v4: 24,
            max_prefix_v6: 48,
        };
        assert!(parse_range("192.0.2.0/24", &opts).is_ok());
        assert_eq!(
            parse_range("192.0.2.0/23", &opts),
            Err(RangeProblem::TooBroad {
                prefix: 23,
                max: 24
            })
        );
        assert_eq!(
            parse_range("2001:db8::/47", &opts),
            Err(RangeProblem::TooBroad {
                prefix: 47,
                max: 48
            })
        );
        let open = CompileOptions {
            max_prefix_v4: 0,
            max_prefix_v6: 0,
        };
        assert!(parse_range("0.0.0.0/0", &open).is_ok());
        // Even with no breadth limit, ::/0 contains the mapped space.
        assert_eq!(parse_range("::/0", &open), Err(RangeProblem::MappedSpace));
    }

    #[test]
    fn mapped_ranges_become_ipv4() {
        assert_eq!(ok("::ffff:192.0.2.0/120"), "192.0.2.0/24");
        assert_eq!(ok("::ffff:192.0.2.7"), "192.0.2.7/32");
        assert_eq!(ok("::ffff:c000:0200/124"), "192.0.2.0/28");
        assert_eq!(ok("::FFFF:255.255.255.255/128"), "255.255.255.255/32");
        // Judged as IPv4 afterwards: host bits and breadth in IPv4 terms.
        assert_eq!(
            problem("::ffff:192.0.2.5/120").message(),
            "host bits set (did you mean 192.0.2.0/24?)"
        );
        assert_eq!(
            problem("::ffff:10.0.0.0/104"),
            RangeProblem::TooBroad { prefix: 8, max: 16 }
        );
        assert_eq!(
            problem("::ffff:0.0.0.0/96"),
            RangeProblem::TooBroad { prefix: 0, max: 16 }
        );
    }

    #[test]
    fn ipv6_ranges_over_mapped_space_are_refused() {
        assert_eq!(problem("::/32"), RangeProblem::MappedSpace);
        assert_eq!(problem("::/80"), RangeProblem::MappedSpace);
        assert_eq!(problem("::ff00:0:0/88"), RangeProblem::MappedSpace);
        // ::/95 ends just below ::ffff:0:0 and is ordinary IPv6.
        assert_eq!(ok("::/95"), "::/95");
        assert!(problem("::/32").message().contains("::ffff:0:0/96"));
        // Neighbours of the mapped space are fine.
        assert_eq!(ok("::fffe:0:0/96"), "::fffe:0:0/96");
        assert_eq!(ok("::1:0:0:0/96"), "::1:0:0:0/96");
        // IPv4-compatible and NAT64 forms are ordinary IPv6.
        assert_eq!(ok("::192.0.2.1"), "::c000:201/128");
        assert_eq!(ok("64:ff9b::192.0.2.0/120"), "64:ff9b::c000:200/120");
    }
}
