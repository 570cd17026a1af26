//! Strict parsing of IP address text, and canonicalisation of IPv4-mapped IPv6.
//!
//! Hand-written rather than delegated to a general-purpose parser on purpose: what counts
//! as an address is part of the security rule (no leading zeros, octal, hex or shortened
//! IPv4, no zone ids), so it is spelled out here, byte by byte, and tested exhaustively,
//! instead of depending on what some library version happens to accept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest IPv6 text form: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`. Longer input is
/// refused before any work is done.
const MAX_IPV6_LEN: usize = 45;

/// Canonicalise: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address; every other
/// address is returned unchanged. IPv4-compatible (`::a.b.c.d`), 6to4 and NAT64 addresses are
/// distinct hosts in their own right and are deliberately *not* unmapped.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Strict parse of a bare address: an IPv4 dotted quad or an IPv6 address per RFC 4291, no
/// port, no brackets. The result is canonicalised. Useful wherever an address is typed by a
/// person or read from a document (allowlist, `explain --peer`).
pub fn parse_ip(bytes: &[u8]) -> Option<IpAddr> {
    let ip = if bytes.contains(&b':') {
        IpAddr::V6(parse_ipv6(bytes)?)
    } else {
        IpAddr::V4(parse_ipv4(bytes)?)
    };
    Some(canonical(ip))
}

/// Strict parse of one X-Forwarded-For element (already trimmed of spaces and tabs).
///
/// Accepted: `a.b.c.d`, an RFC 4291 IPv6 address, `a.b.c.d:port`, `[v6]`, `[v6]:port`. The
/// port must be 1 to 5 decimal digits with a value of at most 65535, and is dropped.
/// Everything else is `None`: zone ids, bracketed IPv4, host names, CIDR suffixes, quotes,
/// inner spaces, empty input. The result is canonicalised (IPv4-mapped IPv6 becomes IPv4).
pub fn parse_element(bytes: &[u8]) -> Option<IpAddr> {
    let ip = match bytes.first()? {
        b'[' => {
            let close = bytes.iter().position(|&b| b == b']')?;
            let v6 = parse_ipv6(bytes.get(1..close)?)?;
            match bytes.get(close + 1..)? {
                [] => {}
                [b':', port @ ..] => {
                    parse_port(port)?;
                }
                _ => return None,
            }
            IpAddr::V6(v6)
        }
        _ => match bytes.iter().filter(|&&b| b == b':').count() {
            0 => IpAddr::V4(parse_ipv4(bytes)?),
            // A valid IPv6 address has at least two colons, so exactly one means `v4:port`.
            1 => {
                let colon = bytes.iter().position(|&b| b == b':')?;
                parse_port(bytes.get(colon + 1..)?)?;
                IpAddr::V4(parse_ipv4(bytes.get(..colon)?)?)
            }
            _ => IpAddr::V6(parse_ipv6(bytes)?),
        },
    };
    Some(canonical(ip))
}

/// Strict IPv4 dotted quad: exactly four decimal parts of 1 to 3 digits, each at most 255,
/// without leading zeros (so `010` is refused instead of being read as octal 8 or decimal 10:
/// different parsers disagree, and an attacker gets to pick the one that helps).
pub(crate) fn parse_ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = bytes.split(|&b| b == b'.');
    for octet in &mut octets {
        *octet = parse_octet(parts.next()?)?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

fn parse_octet(part: &[u8]) -> Option<u8> {
    match part {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ if part.len() > 3 => None,
        _ => {
            let mut value: u16 = 0;
            for &b in part {
                if !b.is_ascii_digit() {
                    return None;
                }
                value = value * 10 + u16::from(b - b'0');
            }
            u8::try_from(value).ok()
        }
    }
}

/// Strict IPv6 per RFC 4291 section 2.2: eight groups of 1 to 4 hex digits (either case),
/// at most one `::` standing for one or more zero groups, and optionally a strict dotted quad
/// as the last 32 bits. No zone id, no brackets, no prefix length.
pub(crate) fn parse_ipv6(bytes: &[u8]) -> Option<Ipv6Addr> {
    if bytes.len() > MAX_IPV6_LEN {
        return None;
    }
    let mut segs = [0u16; 8];
    let mut n = 0;
    // Index in `segs` where `::` stands, if any.
    let mut gap: Option<usize> = None;
    let mut i = 0;
    if bytes.starts_with(b"::") {
        gap = Some(0);
        i = 2;
        if bytes.len() == 2 {
            return Some(Ipv6Addr::UNSPECIFIED);
        }
    }
    loop {
        let rest = bytes.get(i..)?;
        let end = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        let group = rest.get(..end)?;
        if group.contains(&b'.') {
            // An embedded IPv4 address may only be the last 32 bits.
            if end != rest.len() || n > 6 {
                return None;
            }
            let [a, b, c, d] = parse_ipv4(group)?.octets();
            segs[n] = u16::from_be_bytes([a, b]);
            segs[n + 1] = u16::from_be_bytes([c, d]);
            n += 2;
            break;
        }
        if n == 8 {
            return None;
        }
        segs[n] = parse_hex_group(group)?;
        n += 1;
        if end == rest.len() {
            break;
        }
        i += end + 1;
        match bytes.get(i) {
            Some(b':') => {
                if gap.is_some() {
                    return None;
                }
                gap = Some(n);
                i += 1;
                if i == bytes.len() {
                    break;
                }
            }
            Some(_) => {}
            // A single trailing colon.
            None => return None,
        }
    }
    match gap {
        None if n == 8 => {}
        None => return None,
        // `::` must stand for at least one group.
        Some(at) if n <= 7 => {
            let tail = n - at;
            segs.copy_within(at..n, 8 - tail);
            segs[at..8 - tail].fill(0);
        }
        Some(_) => return None,
    }
    Some(Ipv6Addr::from(segs))
}

fn parse_hex_group(group: &[u8]) -> Option<u16> {
    if group.is_empty() || group.len() > 4 {
        return None;
    }
    let mut value: u16 = 0;
    for &b in group {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u16::from(digit);
    }
    Some(value)
}

/// A port number: 1 to 5 decimal digits, value 0 to 65535. Digits only: no sign, no spaces.
pub(crate) fn parse_port(bytes: &[u8]) -> Option<u16> {
    if bytes.is_empty() || bytes.len() > 5 {
        return None;
    }
    let mut value: u32 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(b - b'0');
    }
    u16::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn canonical_unmaps_only_ipv4_mapped() {
        assert_eq!(canonical(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(canonical(ip("::ffff:c000:201")), ip("192.0.2.1"));
        assert_eq!(canonical(ip("::ffff:0:0")), ip("0.0.0.0"));
        assert_eq!(canonical(ip("192.0.2.1")), ip("192.0.2.1"));
        // Not unmapped: IPv4-compatible, 6to4, NAT64, IPv4-translated, loopback, plain v6.
        for s in [
            "::192.0.2.1",
            "2002:c000:201::1",
            "64:ff9b::192.0.2.1",
            "::ffff:0:192.0.2.1",
            "::1",
            "::",
            "2001:db8::1",
            "::fffe:c000:201",
            "1::ffff:c000:201",
        ] {
            assert_eq!(canonical(ip(s)), ip(s), "{s}");
        }
    }

    #[test]
    fn ipv4_accepted() {
        for (s, want) in [
            ("0.0.0.0", "0.0.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("192.0.2.1", "192.0.2.1"),
            ("255.255.255.255", "255.255.255.255"),
            ("10.0.0.0", "10.0.0.0"),
            ("100.20.3.0", "100.20.3.0"),
            ("203.0.113.50", "203.0.113.50"),
        ] {
            assert_eq!(parse_element(s.as_bytes()), Some(ip(want)), "{s}");
            assert_eq!(parse_ip(s.as_bytes()), Some(ip(want)), "{s}");
        }
    }

    #[test]
    fn ipv4_rejected() {
        for s in [
            "01.2.3.4",
            "1.02.3.4",
            "1.2.3.04",
            "00.0.0.0",
            "0.0.0.00",
            "1.2.3.010",
            "1.2.3",
            "1.2",
            "127.1",
            "203.0.113",
            "2130706433",
            "0x7f.0.0.1",
            "0x7f000001",
            "0177.0.0.1",
            "1.2.3.4.5",
            "1.2.3.",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4.",
            "256.0.0.1",
            "1.2.3.256",
            "10.0.0.350",
            "1000.1.1.1",
            "1.2.3.-4",
            "+1.2.3.4",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.4 5",
            "1. 2.3.4",
            "1.2.3.4/24",
            "1.2.3.4/32",
            "\"1.2.3.4\"",
            "'1.2.3.4'",
            "[1.2.3.4]",
            "[1.2.3.4]:80",
            "1.2.3.4%eth0",
            "１.2.3.4",
            "localhost",
            "myrouter",
            "unknown",
            "example.com",
            "a.b.c.d",
            "1.2.3.4a",
            "",
            ".",
            "...",
        ] {
            assert_eq!(parse_element(s.as_bytes()), None, "{s:?}");
            assert_eq!(parse_ip(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn ipv4_with_port() {
        for s in [
            "203.0.113.7:0",
            "203.0.113.7:1",
            "203.0.113.7:80",
            "203.0.113.7:5678",
            "203.0.113.7:65535",
            "203.0.113.7:00080",
        ] {
            assert_eq!(parse_element(s.as_bytes()), Some(ip("203.0.113.7")), "{s}");
            // A port is an element form, not part of a bare address.
            assert_eq!(parse_ip(s.as_bytes()), None, "{s}");
        }
        for s in [
            "203.0.113.7:",
            "203.0.113.7:65536",
            "203.0.113.7:99999",
            "203.0.113.7:100000",
            "203.0.113.7:000080",
            "203.0.113.7:nope",
            "203.0.113.7:8a",
            "203.0.113.7:-1",
            "203.0.113.7:+80",
            "203.0.113.7: 80",
            "203.0.113.7 :80",
            "203.0.113.7:80 ",
            "203.0.113.7:_p1",
            "01.0.113.7:80",
            "203.0.113:80",
            ":80",
            "localhost:80",
        ] {
            assert_eq!(parse_element(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn ipv6_accepted() {
        for (s, want) in [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:DB8::1", "2001:db8::1"),
            ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
            ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
            ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
            ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
            ("1::8", "1::8"),
            ("1:2::7:8", "1:2::7:8"),
            ("fe80::202:b3ff:fe1e:8329", "fe80::202:b3ff:fe1e:8329"),
            (
                "fe80:0000:0000:0000:0202:b3ff:fe1e:8329",
                "fe80::202:b3ff:fe1e:8329",
            ),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
            ("::192.0.2.1", "::192.0.2.1"),
            ("1:2:3:4:5:6:192.0.2.1", "1:2:3:4:5:6:c000:201"),
            ("1::192.0.2.1", "1::c000:201"),
            ("64:ff9b::192.0.2.1", "64:ff9b::c000:201"),
            (
                "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
            // IPv4-mapped forms are canonicalised to IPv4.
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("::FFFF:192.0.2.1", "192.0.2.1"),
            ("::ffff:c000:201", "192.0.2.1"),
            ("0:0:0:0:0:ffff:bc15:0006", "188.21.0.6"),
            ("0:0:0:0:0:ffff:188.21.0.6", "188.21.0.6"),
            ("::ffff:a00:1", "10.0.0.1"),
        ] {
            assert_eq!(parse_element(s.as_bytes()), Some(ip(want)), "{s}");
            assert_eq!(parse_ip(s.as_bytes()), Some(ip(want)), "{s}");
        }
    }

    #[test]
    fn ipv6_rejected() {
        for s in [
            ":",
            ":::",
            "::::",
            ":1",
            "1:",
            "1::2::3",
            "::1::",
            "1:::2",
            "fe:::80",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "::8:8:8:8:8:8:8:8:8",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "1:2:3:4::5:6:7:8",
            "12345::1",
            "g::1",
            "2001:db8::1/64",
            "fe80::1%eth0",
            "fe80::1%25eth0",
            "fe80::1%1",
            "::ffff:1.2.3",
            "::ffff:01.2.3.4",
            "::ffff:1.2.3.4.5",
            "::ffff:256.2.3.4",
            "1.2.3.4::",
            "::1.2.3.4:1",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1:2:3:4:5:6:1.2.3.4:8",
            "::1 ",
            " ::1",
            ":: 1",
            "2001:db8::1]",
            "[2001:db8::1",
            "\"::1\"",
            "0x1::1",
            "-1::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(parse_element(s.as_bytes()), None, "{s:?}");
            assert_eq!(parse_ip(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn bracketed_ipv6_and_ports() {
        for (s, want) in [
            ("[::1]", "::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("[2001:db8::1]:0", "2001:db8::1"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]:65535", "2001:db8::1"),
            ("[::ffff:192.0.2.1]", "192.0.2.1"),
            ("[::ffff:188.0.2.128]:49428", "188.0.2.128"),
        ] {
            assert_eq!(parse_element(s.as_bytes()), Some(ip(want)), "{s}");
            assert_eq!(parse_ip(s.as_bytes()), None, "bare parse refuses {s}");
        }
        for s in [
            "[]",
            "[]:80",
            "[::1]:",
            "[::1]:99999",
            "[::1]:65536",
            "[::1]:abc",
            "[::1]x",
            "[::1] ",
            "[::1]]",
            "[[::1]]",
            "[::1]:80:80",
            "[ ::1]",
            "[::1 ]",
            "[1.2.3.4]",
            "[203.0.113.7]",
            "[1.2.3.4]:80",
            "[fe80::1%eth0]",
            "[fe80::1%25eth0]:80",
            "[::1/128]",
            "::1]",
            "[::1",
            "[",
            "]",
            "[localhost]",
        ] {
            assert_eq!(parse_element(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_port(b"0"), Some(0));
        assert_eq!(parse_port(b"65535"), Some(65535));
        assert_eq!(parse_port(b"00000"), Some(0));
        assert_eq!(parse_port(b"65536"), None);
        assert_eq!(parse_port(b"99999"), None);
        assert_eq!(parse_port(b"000000"), None);
        assert_eq!(parse_port(b""), None);
        assert_eq!(parse_port(b"1 "), None);
        assert_eq!(parse_port(b"-1"), None);
    }

    #[test]
    fn non_ascii_and_control_bytes_are_rejected() {
        for bytes in [
            &b"1.2.3.4\0"[..],
            b"\x001.2.3.4",
            b"1.2.3.4\r",
            b"1.2.3.4\n",
            b"1.2.3.\xff",
            b"\xc2\xa01.2.3.4",
            b"::1\t",
        ] {
            assert_eq!(parse_element(bytes), None, "{bytes:?}");
        }
    }
}
