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
}
