//! Address text: the one parser of IP addresses and networks in the crate, and the
//! canonicalisation of IPv4-mapped IPv6. The client-IP walk (header elements), the allowlist
//! (ranges) and the configuration (trusted proxies) all read addresses here.
//!
//! The address grammar is std's (`Ipv4Addr` and `Ipv6Addr` `from_str`): strict dotted quads
//! without leading zeros, octal, hex or shortened forms; RFC 4291 IPv6 without zone ids. What
//! is written out here is only what std lacks, each piece saying why: the forms of a header
//! element (brackets, ports), a prefix length, and a fast path for the common spellings that
//! only ever answers as std would (tested) and leaves everything else to std.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Canonicalise: IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address; every other
/// address is returned unchanged. IPv4-compatible (`::a.b.c.d`), 6to4 and NAT64 addresses are
/// distinct hosts in their own right and are deliberately *not* unmapped.
#[inline]
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// Canonicalise a network: `::ffff:a.b.c.d/96+n` (inside the mapped block `::ffff:0:0/96`)
/// is the IPv4 network `a.b.c.d/n`; every other network is returned unchanged. Host bits are
/// kept, so a caller can still judge them. An IPv6 network shorter than /96 that covers the
/// mapped block (`::/0`) stays IPv6: it is not an IPv4 network.
pub fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(len)) = (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96))
        {
            if let Ok(v4net) = Ipv4Net::new(v4, len) {
                return IpNet::V4(v4net);
            }
        }
    }
    net
}

/// Strict parse of a bare address: an IPv4 dotted quad or an IPv6 address, no port, no
/// brackets. The result is canonicalised. Useful wherever an address is typed by a person or
/// read from a document (allowlist, `explain --peer`).
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
/// Accepted: `a.b.c.d`, an IPv6 address, `a.b.c.d:port`, `[v6]`, `[v6]:port`. The port must
/// be 1 to 5 decimal digits with a value of at most 65535, and is dropped. Everything else is
/// `None`: zone ids, bracketed IPv4, host names, CIDR suffixes, quotes, inner spaces, empty
/// input. The result is canonicalised (IPv4-mapped IPv6 becomes IPv4).
///
/// Written out because std has no such form: `SocketAddr` requires a port, and accepts
/// numeric zone ids and ports with any number of leading zeros.
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

/// Why a network text ([`parse_net`]) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("not a strict IPv4 or IPv6 address")]
    Address,
    #[error("prefix length is not a number from 0 to {max} without leading zeros")]
    Prefix { max: u8 },
}

/// Strict parse of a network: `address` or `address/prefix` (`192.0.2.0/24`,
/// `2001:db8::/32`, `192.0.2.1`). A bare address is a /32 or /128. The family is the one the
/// text spells (`::ffff:192.0.2.0/120` is IPv6 here; see [`canonical_net`]), and host bits are
/// kept: whether they are acceptable is for the caller to judge. The address is judged first,
/// then the prefix against the family's maximum.
pub fn parse_net(text: &str) -> Result<IpNet, NetError> {
    let bytes = text.as_bytes();
    let (addr, prefix) = match bytes.iter().position(|&b| b == b'/') {
        Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
        None => (bytes, None),
    };
    // The family by the presence of `:`, as in `parse_ip`.
    if addr.contains(&b':') {
        let addr = parse_ipv6(addr).ok_or(NetError::Address)?;
        let len = parse_prefix(prefix, 128).ok_or(NetError::Prefix { max: 128 })?;
        Ipv6Net::new(addr, len)
            .map(IpNet::V6)
            .map_err(|_| NetError::Prefix { max: 128 })
    } else {
        let addr = parse_ipv4(addr).ok_or(NetError::Address)?;
        let len = parse_prefix(prefix, 32).ok_or(NetError::Prefix { max: 32 })?;
        Ipv4Net::new(addr, len)
            .map(IpNet::V4)
            .map_err(|_| NetError::Prefix { max: 32 })
    }
}

/// A prefix length of at most `max`: absent means `max` (a single address). Written out
/// because std's integer parse accepts a `+` sign and leading zeros (`/+24`, `/024`).
fn parse_prefix(text: Option<&[u8]>, max: u8) -> Option<u8> {
    let Some(text) = text else {
        return Some(max);
    };
    let plain = matches!(text, [b'0'] | [b'1'..=b'9', ..])
        && text.len() <= 3
        && text.iter().all(u8::is_ascii_digit);
    plain
        .then(|| std_parse::<u8>(text))
        .flatten()
        .filter(|&n| n <= max)
}

/// A port: 1 to 5 ASCII digits, value 0 to 65535. Written out because std's `u16` parse
/// accepts a `+` sign and any number of leading zeros; one pass reads the value as well.
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

/// A strict IPv4 dotted quad: exactly std's grammar.
#[inline]
pub(crate) fn parse_ipv4(bytes: &[u8]) -> Option<Ipv4Addr> {
    fast_ipv4(bytes).or_else(|| std_parse(bytes))
}

/// A strict IPv6 address: exactly std's grammar.
#[inline]
pub(crate) fn parse_ipv6(bytes: &[u8]) -> Option<Ipv6Addr> {
    fast_ipv6(bytes).or_else(|| std_parse(bytes))
}

/// std parses `&str` only (its byte parser, `parse_ascii`, is unstable); bytes that are not
/// UTF-8 are no address anyway.
fn std_parse<T: FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Fast path for a dotted quad, per hop per request and per allowlist range, where std's
/// general parser costs about twice as much. `None` leaves the text to std; the tests check
/// that every `Some` is std's answer.
fn fast_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut i = 0;
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if text.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let (value, used) = decimal(text.get(i..)?)?;
        *octet = u8::try_from(value).ok()?;
        i += used;
    }
    (i == text.len()).then(|| Ipv4Addr::from(octets))
}

/// The decimal number at the start of `text`: 1 to 3 ASCII digits, no leading zero (a lone
/// `0` is fine). Returns the value and how many bytes it took.
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

/// Fast path for the common IPv6 forms, where std's general parser costs about twice as
/// much: hex groups of 1 to 4 digits, either all eight or at most six around one `::`, the
/// last 32 bits optionally a dotted quad. Seven groups around `::` and anything malformed
/// return `None`, leaving the text to std; the tests check that every `Some` is std's answer.
fn fast_ipv6(text: &[u8]) -> Option<Ipv6Addr> {
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
        let start = i;
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
        if text.get(i) == Some(&b'.') {
            // An embedded dotted quad: the rest of the text, as the last two groups.
            let [a, b, c, d] = fast_ipv4(text.get(start..)?)?.octets();
            *groups.get_mut(*n)? = u16::from_be_bytes([a, b]);
            *groups.get_mut(*n + 1)? = u16::from_be_bytes([c, d]);
            *n += 2;
            break;
        }
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

    /// A deterministic xorshift stream for the differential tests.
    fn stream(mut x: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        }
    }

    #[test]
    fn address_grammar_is_std_s() {
        let fixed = [
            "",
            ".",
            "1.2.3",
            "1.2.3.4",
            "1.2.3.4.",
            ".1.2.3.4",
            "01.2.3.4",
            "0.0.0.0",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3.04",
            "1.2.3.999",
            "0x1.2.3.4",
            "1.2.3.4 ",
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6::7",
            "1::2::3",
            "12345::",
            "::ffff:1.2.3.4",
            "::ffff:01.2.3.4",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "fe80::1%1",
            "fe80::1%eth0",
            "[::1]",
        ];
        let mut next = stream(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"0123456789abcdefABCDEFx.:%/[] +-";
        let tokens = [
            ":", "::", ".", "0", "1", "ff", "ffff", "255", "256", "01", "1.2.3.4",
        ];
        let random = (0..200_000).map(|round| {
            let mut text = String::new();
            if round % 2 == 0 {
                for _ in 0..next(40) {
                    text.push(char::from(alphabet[next(alphabet.len() as u64) as usize]));
                }
            } else {
                for _ in 0..next(14) {
                    text.push_str(tokens[next(tokens.len() as u64) as usize]);
                }
            }
            text
        });
        let (mut v4, mut v6) = (0, 0);
        for text in fixed.iter().map(|s| s.to_string()).chain(random) {
            let b = text.as_bytes();
            let std4 = text.parse::<Ipv4Addr>().ok();
            let std6 = text.parse::<Ipv6Addr>().ok();
            assert_eq!(parse_ipv4(b), std4, "{text:?}");
            assert_eq!(parse_ipv6(b), std6, "{text:?}");
            // The fast paths may decline, never disagree.
            assert!(fast_ipv4(b).is_none() || fast_ipv4(b) == std4, "{text:?}");
            assert!(fast_ipv6(b).is_none() || fast_ipv6(b) == std6, "{text:?}");
            v4 += usize::from(std4.is_some());
            v6 += usize::from(std6.is_some());
        }
        // The random texts reach valid addresses often enough to mean something.
        assert!(v4 > 500 && v6 > 1_000, "{v4} IPv4, {v6} IPv6");
    }

    #[test]
    fn fast_paths_answer_the_common_forms() {
        for s in ["192.0.2.1", "0.0.0.0", "255.255.255.255"] {
            assert_eq!(fast_ipv4(s.as_bytes()), s.parse().ok(), "{s}");
        }
        for s in [
            "2001:db8::1",
            "::",
            "::1",
            "fd00::7",
            "2001:0db8:0:0:0:0:0:1",
        ] {
            assert_eq!(fast_ipv6(s.as_bytes()), s.parse().ok(), "{s}");
        }
        for s in [
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "1:2:3:4:5:6:192.0.2.1",
            "64:ff9b::1.2.3.4",
        ] {
            assert_eq!(fast_ipv6(s.as_bytes()), s.parse().ok(), "{s}");
        }
        // Left to std: seven groups around `::`.
        assert_eq!(fast_ipv6(b"1:2:3::4:5:6:7"), None);
        assert_eq!(parse_ipv6(b"1:2:3::4:5:6:7"), "1:2:3::4:5:6:7".parse().ok());
    }

    /// Every place where what this module accepts differs from std (or, for networks, from
    /// ipnet's parser), one assertion each way.
    #[test]
    fn differences_from_std_are_pinned() {
        use std::net::SocketAddr;
        let std_ip = |s: &str| s.parse::<IpAddr>().ok();
        let std_sock = |s: &str| s.parse::<SocketAddr>().ok();
        // A header element may carry a port and brackets; a bare std address may not.
        assert_eq!(parse_element(b"192.0.2.1:80"), std_ip("192.0.2.1"));
        assert_eq!(std_ip("192.0.2.1:80"), None);
        assert_eq!(parse_element(b"[2001:db8::1]"), std_ip("2001:db8::1"));
        assert_eq!(std_sock("[2001:db8::1]"), None);
        // Ports: at most five digits; std takes any number of leading zeros, and `u16` a sign.
        assert_eq!(parse_element(b"192.0.2.1:000080"), None);
        assert!(std_sock("192.0.2.1:000080").is_some());
        assert_eq!(parse_port(b"+80"), None);
        assert_eq!("+80".parse::<u16>().ok(), Some(80));
        // Zone ids: std's socket address takes a numeric one, we take none.
        assert_eq!(parse_element(b"[fe80::1%1]:80"), None);
        assert!(std_sock("[fe80::1%1]:80").is_some());
        // Mapped IPv6 is canonicalised to IPv4; std keeps it IPv6.
        assert_eq!(parse_ip(b"::ffff:192.0.2.1"), std_ip("192.0.2.1"));
        assert!(std_ip("::ffff:192.0.2.1").is_some_and(|ip| ip.is_ipv6()));
        // Networks: ipnet's parser takes leading zeros in the address and the prefix.
        for text in ["010.0.0.0/8", "10.0.0.0/08"] {
            assert!(parse_net(text).is_err(), "{text}");
            assert!(text.parse::<IpNet>().is_ok(), "{text}");
        }
        // A bare address is a network here (/32, /128); ipnet wants a prefix.
        assert_eq!(parse_net("192.0.2.1"), Ok("192.0.2.1/32".parse().unwrap()));
        assert!("192.0.2.1".parse::<IpNet>().is_err());
    }

    #[test]
    fn networks() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        for (text, want) in [
            ("192.0.2.0/24", "192.0.2.0/24"),
            ("192.0.2.1", "192.0.2.1/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("10.0.0.1/8", "10.0.0.1/8"),
            ("2001:db8::/32", "2001:db8::/32"),
            ("2001:DB8::1", "2001:db8::1/128"),
            ("::/0", "::/0"),
            // The family is the text's: mapped stays IPv6 until `canonical_net`.
            ("::ffff:192.0.2.0/120", "::ffff:192.0.2.0/120"),
        ] {
            assert_eq!(parse_net(text), Ok(net(want)), "{text}");
        }
        for (text, want) in [
            ("", NetError::Address),
            ("192.0.2", NetError::Address),
            ("01.0.0.0/8", NetError::Address),
            ("[2001:db8::]/32", NetError::Address),
            ("fe80::1%1/64", NetError::Address),
            (" 192.0.2.0/24", NetError::Address),
            ("192.0.2.0/", NetError::Prefix { max: 32 }),
            ("192.0.2.0/33", NetError::Prefix { max: 32 }),
            ("192.0.2.0/024", NetError::Prefix { max: 32 }),
            ("192.0.2.0/+24", NetError::Prefix { max: 32 }),
            ("192.0.2.0/24/24", NetError::Prefix { max: 32 }),
            ("192.0.2.0/24 ", NetError::Prefix { max: 32 }),
            ("2001:db8::/129", NetError::Prefix { max: 128 }),
            ("2001:db8::/048", NetError::Prefix { max: 128 }),
            // The address is judged before the prefix.
            ("192.0.2/99", NetError::Address),
        ] {
            assert_eq!(parse_net(text), Err(want), "{text:?}");
        }
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
                    parse_prefix(Some(text.as_bytes()), max),
                    reference(text, max),
                    "{text:?} max {max}"
                );
            }
        }
        assert_eq!(parse_prefix(None, 32), Some(32));
    }

    #[test]
    fn canonical_net_unmaps_only_the_mapped_block() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        for (text, want) in [
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:192.0.2.1/128", "192.0.2.1/32"),
            // Host bits are kept.
            ("::ffff:192.0.2.5/120", "192.0.2.5/24"),
            ("10.0.0.0/8", "10.0.0.0/8"),
        ] {
            assert_eq!(canonical_net(net(text)), net(want), "{text}");
        }
        // Shorter than /96, or outside the mapped block: unchanged.
        for text in [
            "::/0",
            "::ffff:0:0/95",
            "::fffe:0:0/96",
            "::/96",
            "64:ff9b::/96",
        ] {
            assert_eq!(canonical_net(net(text)), net(text), "{text}");
        }
    }
}
