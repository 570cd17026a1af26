//! How client addresses appear in logs (`[log] client_ip`). Pupils are minors and their
//! addresses are personal data, so by default logs keep only the network (IPv4 /24, IPv6
//! /48): enough to see which school's line it was, not which device. `hashed` gives support
//! a per-day pseudonym to correlate requests without the address itself. Pages and
//! `explain` still show the full address to the person asking.

use hmac::{Hmac, Mac};
use ipnet::{Ipv4Net, Ipv6Net};
use sha2::Sha256;
use std::fmt::Write;
use std::net::IpAddr;
use time::Date;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone, PartialEq, Eq)]
pub enum LogAddress {
    Full,
    Truncated,
    /// HMAC-SHA256 of the address under a key derived from the secret and the UTC date, so
    /// every replica writes the same pseudonym on the same day and a new one the next day.
    Hashed {
        secret: Vec<u8>,
    },
}

impl std::fmt::Debug for LogAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogAddress::Full => f.write_str("Full"),
            LogAddress::Truncated => f.write_str("Truncated"),
            LogAddress::Hashed { .. } => f.write_str("Hashed { secret: <hidden> }"),
        }
    }
}

fn mac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(msg);
    m.finalize().into_bytes().into()
}

impl LogAddress {
    /// The address as the logs show it on `date` (UTC).
    pub fn render(&self, ip: IpAddr, date: Date) -> String {
        match self {
            LogAddress::Full => ip.to_string(),
            LogAddress::Truncated => {
                match ip {
                    IpAddr::V4(v4) => Ipv4Net::new(v4, 24)
                        .map_or_else(|_| String::new(), |n| n.trunc().to_string()),
                    IpAddr::V6(v6) => Ipv6Net::new(v6, 48)
                        .map_or_else(|_| String::new(), |n| n.trunc().to_string()),
                }
            }
            LogAddress::Hashed { secret } => {
                let day_key = mac(secret, date.to_string().as_bytes());
                let octets = match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                };
                let digest = mac(&day_key, &octets);
                let mut out = String::with_capacity(18);
                out.push_str("h:");
                for b in &digest[..8] {
                    let _ = write!(out, "{b:02x}");
                }
                out
            }
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            LogAddress::Full => "full",
            LogAddress::Truncated => "truncated",
            LogAddress::Hashed { .. } => "hashed",
        }
    }
}

/// Could `c` be part of an address as text (IPv4 dotted quad, IPv6 groups)?
fn address_char(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b'.' || c == b':'
}

/// Could `c` continue a word (`proxy::h1`, `fd_31`), so that a run of address characters
/// next to it is part of a name, not an address?
fn word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The address a run of address characters spells: the whole run, or an IPv4 address
/// followed by `:port`. The unspecified `::` (a Rust path separator on its own) is none.
fn address_in(run: &str) -> Option<IpAddr> {
    let ip = run.parse::<IpAddr>().ok().or_else(|| {
        let (host, port) = run.rsplit_once(':')?;
        port.parse::<u16>().ok()?;
        host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
    })?;
    (!ip.is_unspecified()).then_some(ip.to_canonical())
}

/// `text` with every IP address in it (`192.0.2.7`, `192.0.2.7:5123`, `2001:db8::7`,
/// `[2001:db8::7]:443`, `::ffff:192.0.2.7`) replaced by `form` on `date`; a port after an
/// IPv4 address goes with it. Lines the gate does not write itself (Pingora's, at any
/// level: raw request heads, peer addresses) pass through this before they are logged, so
/// they keep no more of a client address than the access log does. With [`LogAddress::Full`]
/// the text is returned as it is.
pub fn redact<'a>(text: &'a str, form: &LogAddress, date: Date) -> std::borrow::Cow<'a, str> {
    if *form == LogAddress::Full {
        return text.into();
    }
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !address_char(bytes[i]) || (i > 0 && word_char(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && address_char(bytes[i]) {
            i += 1;
        }
        // A sentence may end right after an address: `from 192.0.2.7.`
        let mut end = i;
        while end > start && bytes[end - 1] == b'.' {
            end -= 1;
        }
        let next = bytes.get(i).copied();
        if next.is_some_and(word_char) {
            continue;
        }
        // Only ASCII was stepped over, so these are char boundaries.
        if let Some(ip) = address_in(&text[start..end]) {
            out.push_str(&text[copied..start]);
            out.push_str(&form.render(ip, date));
            copied = end;
        }
    }
    if copied == 0 {
        return text.into();
    }
    out.push_str(&text[copied..]);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const DAY: Date = date!(2026 - 12 - 01);

    #[test]
    fn full_and_truncated() {
        let v4: IpAddr = "192.0.2.77".parse().unwrap();
        let v6: IpAddr = "2001:db8:12:34::abcd".parse().unwrap();
        assert_eq!(LogAddress::Full.render(v4, DAY), "192.0.2.77");
        assert_eq!(LogAddress::Truncated.render(v4, DAY), "192.0.2.0/24");
        assert_eq!(LogAddress::Truncated.render(v6, DAY), "2001:db8:12::/48");
    }

    #[test]
    fn hashed_is_stable_within_a_day_and_changes_across_days_and_secrets() {
        let h = LogAddress::Hashed {
            secret: b"0123456789abcdef".to_vec(),
        };
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        let a = h.render(ip, DAY);
        assert_eq!(a, h.render(ip, DAY), "replicas agree on the same day");
        assert!(a.starts_with("h:") && a.len() == 18, "{a}");
        assert!(!a.contains("192"), "{a}");
        assert_ne!(
            a,
            h.render(ip, date!(2026 - 12 - 02)),
            "a new pseudonym each day"
        );
        assert_ne!(a, h.render("192.0.2.78".parse().unwrap(), DAY));
        let other = LogAddress::Hashed {
            secret: b"another secret!!".to_vec(),
        };
        assert_ne!(a, other.render(ip, DAY));
        assert_eq!(format!("{h:?}"), "Hashed { secret: <hidden> }");
    }

    #[test]
    fn redact_replaces_every_address_form_and_nothing_else() {
        let t = LogAddress::Truncated;
        let cases = [
            (
                "x-forwarded-for: 192.0.2.77\r\n",
                "x-forwarded-for: 192.0.2.0/24\r\n",
            ),
            (
                "peer: 192.0.2.77:40405, fd: 31",
                "peer: 192.0.2.0/24, fd: 31",
            ),
            (
                "for=\"[2001:db8:12:34::abcd]:443\"",
                "for=\"[2001:db8:12::/48]:443\"",
            ),
            ("2001:db8:12:34::abcd", "2001:db8:12::/48"),
            ("::ffff:192.0.2.77 mapped", "192.0.2.0/24 mapped"),
            ("from 192.0.2.77.", "from 192.0.2.0/24."),
            (
                "a, 198.51.100.9,192.0.2.77",
                "a, 198.51.100.0/24,192.0.2.0/24",
            ),
        ];
        for (line, want) in cases {
            assert_eq!(redact(line, &t, DAY), want, "{line}");
        }
        // Not addresses: Rust paths, times, versions, hex words, numbers, host names.
        for line in [
            "pingora_proxy::proxy_h1: Sending header",
            "2026-12-07T02:02:22.767855Z DEBUG",
            "HTTP/1.1 after 5.989µs",
            "fd: 31, id: ccdcacecec7b1144, cafe",
            "v1.2.3 and 1.2.3",
            "host a192.0.2.7b and 192.0.2.7x",
            "Ünïcode … 192.0.2 ::",
        ] {
            assert!(
                matches!(redact(line, &t, DAY), std::borrow::Cow::Borrowed(_)),
                "{line}"
            );
        }
        let h = LogAddress::Hashed {
            secret: b"0123456789abcdef".to_vec(),
        };
        let ip: IpAddr = "192.0.2.77".parse().unwrap();
        assert_eq!(
            redact("peer 192.0.2.77:1", &h, DAY),
            format!("peer {}", h.render(ip, DAY))
        );
        let full = "peer 192.0.2.77:1";
        assert_eq!(redact(full, &LogAddress::Full, DAY), full);
    }
}
