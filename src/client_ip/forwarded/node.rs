//! RFC 7239 section 6 `node`: `nodename [ ":" node-port ]`, read from the (unescaped) value of
//! a `for` parameter, down to a canonical IP address.
//!
//! Only an address identifies a client: `unknown` and obfuscated identifiers (`_hidden`) are
//! refused. Unlike X-Forwarded-For, IPv6 must be bracketed, and the port may be obfuscated
//! (`_p1`); the port is validated and dropped. The input is a byte iterator so that a quoted
//! value can be unescaped on the fly; the node name is collected in a small stack buffer.

use std::net::IpAddr;

use crate::client_ip::addr::{canonical, parse_ipv4, parse_ipv6, parse_port};
use crate::client_ip::error::MalformedKind;

/// Longest possible node name: the IPv6 text inside the brackets.
const MAX_NODENAME: usize = 45;

/// Parses a node to its canonical address.
pub(super) fn parse(mut bytes: impl Iterator<Item = u8>) -> Result<IpAddr, MalformedKind> {
    let mut name = NameBuf::new();
    let first = bytes.next().ok_or(MalformedKind::InvalidAddress)?;
    let (ip, has_port) = match first {
        b'_' => return Err(MalformedKind::ObfuscatedNode),
        b'[' => {
            loop {
                match bytes.next() {
                    None => return Err(MalformedKind::InvalidAddress),
                    Some(b']') => break,
                    Some(b) => name.push(b)?,
                }
            }
            let v6 = parse_ipv6(name.as_slice()).ok_or(MalformedKind::InvalidAddress)?;
            let has_port = match bytes.next() {
                None => false,
                Some(b':') => true,
                Some(_) => return Err(MalformedKind::InvalidAddress),
            };
            (IpAddr::V6(v6), has_port)
        }
        _ => {
            name.push(first)?;
            let has_port = loop {
                match bytes.next() {
                    None => break false,
                    Some(b':') => break true,
                    Some(b) => name.push(b)?,
                }
            };
            if name.as_slice().eq_ignore_ascii_case(b"unknown") {
                return Err(MalformedKind::UnknownNode);
            }
            let v4 = parse_ipv4(name.as_slice()).ok_or(MalformedKind::InvalidAddress)?;
            (IpAddr::V4(v4), has_port)
        }
    };
    if has_port {
        node_port(bytes)?;
    }
    Ok(canonical(ip))
}

/// `node-port = port / obfport`: 1 to 5 digits (at most 65535, as for X-Forwarded-For), or
/// `_` followed by at least one of ALPHA, DIGIT, `.`, `_`, `-`.
fn node_port(mut bytes: impl Iterator<Item = u8>) -> Result<(), MalformedKind> {
    let bad = MalformedKind::InvalidAddress;
    match bytes.next() {
        Some(b'_') => {
            let mut any = false;
            for b in bytes {
                if !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
                    return Err(bad);
                }
                any = true;
            }
            if any {
                Ok(())
            } else {
                Err(bad)
            }
        }
        Some(d) if d.is_ascii_digit() => {
            // Same port rule as X-Forwarded-For; the buffer bounds what an endless digit
            // string costs.
            let mut port = NameBuf::new();
            port.push(d)?;
            for b in bytes {
                port.push(b)?;
            }
            parse_port(port.as_slice()).map(drop).ok_or(bad)
        }
        _ => Err(bad),
    }
}

/// Fixed-capacity buffer for a node name or port: anything longer cannot be valid.
struct NameBuf {
    bytes: [u8; MAX_NODENAME],
    len: usize,
}

impl NameBuf {
    fn new() -> Self {
        NameBuf {
            bytes: [0; MAX_NODENAME],
            len: 0,
        }
    }

    fn push(&mut self, b: u8) -> Result<(), MalformedKind> {
        let slot = self
            .bytes
            .get_mut(self.len)
            .ok_or(MalformedKind::InvalidAddress)?;
        *slot = b;
        self.len += 1;
        Ok(())
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MalformedKind::*;

    fn node(s: &str) -> Result<IpAddr, MalformedKind> {
        parse(s.bytes())
    }

    fn ip(s: &str) -> Result<IpAddr, MalformedKind> {
        Ok(s.parse().unwrap())
    }

    #[test]
    fn addresses_and_ports() {
        assert_eq!(node("192.0.2.43"), ip("192.0.2.43"));
        assert_eq!(node("192.0.2.43:0"), ip("192.0.2.43"));
        assert_eq!(node("192.0.2.43:65535"), ip("192.0.2.43"));
        assert_eq!(node("192.0.2.43:_p1"), ip("192.0.2.43"));
        assert_eq!(node("192.0.2.43:_A.b_c-9"), ip("192.0.2.43"));
        assert_eq!(node("[2001:db8:cafe::17]"), ip("2001:db8:cafe::17"));
        assert_eq!(node("[2001:db8:cafe::17]:47"), ip("2001:db8:cafe::17"));
        assert_eq!(node("[2001:db8:cafe::17]:_x"), ip("2001:db8:cafe::17"));
        assert_eq!(
            node("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]"),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert_eq!(node("[::ffff:192.0.2.1]"), ip("192.0.2.1"));
        assert_eq!(node("[::ffff:c000:201]:80"), ip("192.0.2.1"));
        // A long obfuscated port is fine: it is validated streaming, not buffered.
        let long_port = format!("192.0.2.43:_{}", "p".repeat(500));
        assert_eq!(node(&long_port), ip("192.0.2.43"));
    }

    #[test]
    fn refused() {
        for s in [
            "",
            ":80",
            "192.0.2.43:",
            "192.0.2.43:65536",
            "192.0.2.43:123456",
            "192.0.2.43:-1",
            "192.0.2.43:_",
            "192.0.2.43:_a/b",
            "192.0.2.43:80:80",
            "192.0.2.43 ",
            "2001:db8::1",
            "[192.0.2.43]",
            "[2001:db8::1",
            "[2001:db8::1]]",
            "[2001:db8::1]80",
            "[2001:db8::1]:",
            "[fe80::1%eth0]",
            "[0000:0000:0000:0000:0000:0000:0000:0000:0000]",
            "01.2.3.4",
            "192.0.2",
            "localhost",
            "unknownx",
        ] {
            assert_eq!(node(s), Err(InvalidAddress), "{s:?}");
        }
        let long_name = "1".repeat(MAX_NODENAME + 1);
        assert_eq!(node(&long_name), Err(InvalidAddress));
    }

    #[test]
    fn unknown_and_obfuscated() {
        assert_eq!(node("unknown"), Err(UnknownNode));
        assert_eq!(node("Unknown"), Err(UnknownNode));
        assert_eq!(node("unknown:4711"), Err(UnknownNode));
        assert_eq!(node("_hidden"), Err(ObfuscatedNode));
        assert_eq!(node("_gazonk:_p"), Err(ObfuscatedNode));
        assert_eq!(node("_"), Err(ObfuscatedNode));
    }
}
