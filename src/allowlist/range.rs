//! Strict parsing and judging of one range string (`"192.0.2.0/28"`,
//! `"2001:db8:12::/48"`, `"198.51.100.7"`), shared by site ranges and
//! exceptions. Everything a registration must not be is refused here: loose
//! address forms, host bits, ranges broader than `max_prefix`, and IPv6 ranges
//! that would silently never match because their addresses are IPv4-mapped.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::quarantine::QuarantineKind;
use super::CompileOptions;

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
    // A byte search (`/` is ASCII, so both sides stay valid UTF-8): `split_once`'s
    // char searcher cost a third as much as the parsing itself.
    let (addr_text, prefix_text) = match text.bytes().position(|b| b == b'/') {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    // Decide the family by the presence of `:`, so an IPv4-looking typo is
    // reported against the IPv4 prefix limit and vice versa.
    let judged = if addr_text.as_bytes().contains(&b':') {
        match parse_v6_common(addr_text.as_bytes()) {
            Some(addr) => Ok(addr),
            None => addr_text.parse().map_err(|_| RangeProblem::BadAddress),
        }
        .and_then(|addr| judge_v6(addr, parse_prefix(prefix_text, 128)?, opts))
    } else {
        parse_v4(addr_text.as_bytes())
            .ok_or(RangeProblem::BadAddress)
            .and_then(|addr| judge_v4(addr, parse_prefix(prefix_text, 32)?, opts))
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

/// The common IPv6 forms, or `None` to leave the text to std's parser: hex
/// groups of 1 to 4 digits, either all eight or at most six around one `::`
/// (a form std reads the same way; tested against it). Embedded IPv4, seven
/// groups around `::` and anything malformed go to std, which decides.
fn parse_v6_common(text: &[u8]) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let mut tail = [0u16; 8];
    let (mut nh, mut nt) = (0usize, 0usize);
    let mut gap = false;
    let mut i = 0;
    if text.starts_with(b"::") {
        gap = true;
        i = 2;
    }
    while i < text.len() {
        let mut value: u16 = 0;
        let mut digits = 0;
        while let Some(d) = text.get(i).and_then(|&b| char::from(b).to_digit(16)) {
            if digits == 4 {
                return None;
            }
            value = (value << 4) | d as u16;
            digits += 1;
            i += 1;
        }
        if digits == 0 {
            return None;
        }
        let groups = if gap { &mut tail[..] } else { &mut head[..] };
        let n = if gap { &mut nt } else { &mut nh };
        *groups.get_mut(*n)? = value;
        *n += 1;
        match text.get(i) {
            None => break,
            Some(b':') if text.get(i + 1) == Some(&b':') => {
                if gap || text.get(i + 2) == Some(&b':') {
                    return None;
                }
                gap = true;
                i += 2;
            }
            Some(b':') if i + 1 < text.len() => i += 1,
            _ => return None,
        }
    }
    let mut groups = [0u16; 8];
    if gap {
        if nh + nt > 6 {
            return None;
        }
        groups[..nh].copy_from_slice(&head[..nh]);
        groups[8 - nt..].copy_from_slice(&tail[..nt]);
    } else {
        if nh != 8 {
            return None;
        }
        groups = head;
    }
    Some(Ipv6Addr::from(groups))
}

/// A strict dotted quad, exactly what std's parser accepts (tested against it): four
/// decimal octets of at most 255, no leading zeros, no octal, hex or shortened forms.
/// Written out because std's general parser costs several times as much per address.
fn parse_v4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if text.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let (value, used) = decimal(&text[i.min(text.len())..])?;
        *octet = u8::try_from(value).ok()?;
        i += used;
    }
    (i == text.len()).then(|| Ipv4Addr::from(octets))
}

/// The decimal number at the start of `text`: 1 to 3 ASCII digits, no leading zero (a
/// lone `0` is fine). Returns the value and how many bytes it took; `None` when `text`
/// does not start with a digit, or the number has a leading zero or a fourth digit.
fn decimal(text: &[u8]) -> Option<(u16, usize)> {
    let mut value: u16 = 0;
    let mut used = 0;
    while let Some(&b) = text.get(used) {
        if !b.is_ascii_digit() {
            break;
        }
        if used == 3 || (used == 1 && value == 0) {
            return None;
        }
        value = value * 10 + u16::from(b - b'0');
        used += 1;
    }
    (used > 0).then_some((value, used))
}

/// A prefix length: ASCII digits only (no sign), no leading zeros, at most
/// `max`. Absent means a single address.
fn parse_prefix(text: Option<&str>, max: u8) -> Result<u8, RangeProblem> {
    let Some(text) = text else {
        return Ok(max);
    };
    match decimal(text.as_bytes()) {
        Some((n, used)) if used == text.len() && n <= u16::from(max) => Ok(n as u8),
        _ => Err(RangeProblem::BadPrefix { max }),
    }
}

fn judge_v4(addr: Ipv4Addr, prefix: u8, opts: &CompileOptions) -> Result<IpNet, RangeProblem> {
    let net = Ipv4Net::new(addr, prefix).map_err(|_| RangeProblem::BadPrefix { max: 32 })?;
    // Breadth first: a too-broad range with host bits should not be answered
    // with a suggestion that is itself refused.
    if prefix < opts.max_prefix_v4 {
        return Err(RangeProblem::TooBroad {
            prefix,
            max: opts.max_prefix_v4,
        });
    }
    if net.network() != addr {
        return Err(RangeProblem::HostBits {
            network: IpNet::V4(net.trunc()),
        });
    }
    Ok(IpNet::V4(net))
}

fn judge_v6(addr: Ipv6Addr, prefix: u8, opts: &CompileOptions) -> Result<IpNet, RangeProblem> {
    if prefix >= 96 {
        if let Some(v4) = addr.to_ipv4_mapped() {
            // `::ffff:192.0.2.0/120` is `192.0.2.0/24`: the same clients, as
            // the client-IP layer will present them.
            return judge_v4(v4, prefix - 96, opts);
        }
    }
    let net = Ipv6Net::new(addr, prefix).map_err(|_| RangeProblem::BadPrefix { max: 128 })?;
    if prefix < opts.max_prefix_v6 {
        return Err(RangeProblem::TooBroad {
            prefix,
            max: opts.max_prefix_v6,
        });
    }
    if net.network() != addr {
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

    #[test]
    fn ipv4_parser_agrees_with_std() {
        let fixed = [
            "",
            ".",
            "1.2.3",
            "1.2.3.4",
            "1.2.3.4.",
            ".1.2.3.4",
            "1.2.3.4.5",
            "01.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3.04",
            "1..2.3",
            "1.2.3.-4",
            "+1.2.3.4",
            "1.2.3.999",
            "1.2.3.0x1",
            "0x1.2.3.4",
            "1.2.3.4 ",
            "1000.1.1.1",
        ];
        for text in fixed {
            assert_eq!(parse_v4(text.as_bytes()), text.parse().ok(), "{text:?}");
        }
        // Random strings over the characters that matter, deterministic.
        let alphabet = b"0123456789.x+-";
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 17) as usize;
            let text: String = (0..len)
                .map(|i| alphabet[((x >> (i * 3 % 60)) % alphabet.len() as u64) as usize] as char)
                .collect();
            assert_eq!(parse_v4(text.as_bytes()), text.parse().ok(), "{text:?}");
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

    /// The prefix parser against its definition (plain digits, no sign, no leading zero,
    /// at most `max`), over every string of up to four characters that matter.
    #[test]
    fn prefix_parser_agrees_with_its_definition() {
        let alphabet = ['0', '1', '2', '3', '9', '+', '-', ' ', 'x'];
        let reference = |text: &str, max: u8| -> Option<u8> {
            let plain = !text.is_empty()
                && text.bytes().all(|b| b.is_ascii_digit())
                && !(text.len() > 1 && text.starts_with('0'));
            plain
                .then(|| text.parse::<u32>().ok())
                .flatten()
                .filter(|&n| n <= u32::from(max))
                .map(|n| n as u8)
        };
        let mut texts = vec![String::new()];
        for len in 1..=4 {
            let mut next = Vec::new();
            for t in texts.iter().filter(|t| t.chars().count() == len - 1) {
                for c in alphabet {
                    next.push(format!("{t}{c}"));
                }
            }
            texts.extend(next);
        }
        for text in &texts {
            for max in [32, 128] {
                assert_eq!(
                    parse_prefix(Some(text), max).ok(),
                    reference(text, max),
                    "{text:?} max {max}"
                );
            }
        }
        assert_eq!(parse_prefix(None, 32), Ok(32));
    }

    #[test]
    fn ipv6_fast_path_agrees_with_std() {
        let fixed = [
            "::",
            "::1",
            "1::",
            "1::2",
            "2001:db8::",
            "2001:db8:0:0:0:0:0:1",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6::7",
            "1:2:3::4:5:6:7",
            ":1::",
            "1:::2",
            "1::2::3",
            "::1:",
            "1:",
            ":1",
            "12345::",
            "0fff::",
            "FFFF::ffff",
            "::ffff:1.2.3.4",
            "g::",
            "1:2:3:4:5:6:7:",
            "",
        ];
        for text in fixed {
            let fast = parse_v6_common(text.as_bytes());
            let std = text.parse::<Ipv6Addr>().ok();
            assert!(
                fast.is_none() || fast == std,
                "{text:?}: {fast:?} vs {std:?}"
            );
        }
        assert_eq!(
            parse_v6_common(b"2001:db8:12::"),
            "2001:db8:12::".parse().ok()
        );
        // Random texts of groups and separators, deterministic: the fast path
        // never answers differently from std, and answers most of the time.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut answered = 0;
        for _ in 0..100_000 {
            let mut text = String::new();
            for g in 0..(1 + next(9)) {
                if g > 0 {
                    text.push_str([":", ":", ":", "::", ":::"][next(5) as usize]);
                }
                for _ in 0..next(6) {
                    text.push(b"0123456789abcdefABCDEFx"[next(23) as usize] as char);
                }
            }
            let fast = parse_v6_common(text.as_bytes());
            let std = text.parse::<Ipv6Addr>().ok();
            assert!(
                fast.is_none() || fast == std,
                "{text:?}: {fast:?} vs {std:?}"
            );
            answered += usize::from(fast.is_some());
        }
        assert!(answered > 1_000, "{answered}");
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
