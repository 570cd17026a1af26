//! The set of trusted proxy networks, and the per-hop membership test.
//!
//! `contains` runs once per hop per request, so the networks are lowered at construction
//! into plain `(network, mask)` integer pairs per address family: the lookup is a short
//! linear scan with no allocation and no branching on prefix encodings.

use std::net::IpAddr;

use ipnet::IpNet;

use super::addr::{canonical, canonical_net};

/// Set of trusted proxy networks.
///
/// IPv4-mapped IPv6 networks (inside `::ffff:0:0/96`, prefix 96 or longer) are canonicalised
/// to the IPv4 network they denote, and [`TrustedProxies::contains`] canonicalises its
/// argument, so `::ffff:10.0.0.1` and `10.0.0.1` are the same hop everywhere. An IPv6 network
/// shorter than /96 that happens to cover the mapped block (`::/0`, `::/64`) stays IPv6-only:
/// it does not make any IPv4 address trusted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    /// Canonical networks (host bits cleared), sorted and deduplicated.
    nets: Vec<IpNet>,
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

impl TrustedProxies {
    /// Builds the set. Host bits are cleared (`10.0.0.1/8` is `10.0.0.0/8`); whether such
    /// input is acceptable is for the configuration layer to judge.
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        let mut nets: Vec<IpNet> = nets
            .into_iter()
            .map(|net| canonical_net(net).trunc())
            .collect();
        nets.sort_unstable();
        nets.dedup();
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in &nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.netmask()))),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.netmask()))),
            }
        }
        TrustedProxies { nets, v4, v6 }
    }

    /// Whether `ip` (canonicalised first) lies inside one of the trusted networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match canonical(ip) {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                self.v4.iter().any(|&(net, mask)| bits & mask == net)
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                self.v6.iter().any(|&(net, mask)| bits & mask == net)
            }
        }
    }

    /// The canonical networks: mapped networks as IPv4, host bits cleared, sorted,
    /// without duplicates.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// True when no proxy is trusted: every peer is then its own client.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv6Net;

    fn mapped_block() -> Ipv6Net {
        "::ffff:0:0/96".parse().unwrap()
    }

    fn tp(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|s| s.parse::<IpNet>().unwrap()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_trusts_nothing() {
        let t = TrustedProxies::new([]);
        assert!(t.is_empty());
        assert!(t.nets().is_empty());
        assert!(!t.contains(ip("127.0.0.1")));
        assert!(!t.contains(ip("::1")));
        assert_eq!(t, TrustedProxies::default());
    }

    #[test]
    fn contains_v4_and_v6() {
        let t = tp(&[
            "10.0.0.0/8",
            "192.0.2.5/32",
            "2001:db8:ffff::/48",
            "::1/128",
        ]);
        assert!(!t.is_empty());
        assert!(t.contains(ip("10.0.0.1")));
        assert!(t.contains(ip("10.255.255.255")));
        assert!(!t.contains(ip("11.0.0.0")));
        assert!(!t.contains(ip("9.255.255.255")));
        assert!(t.contains(ip("192.0.2.5")));
        assert!(!t.contains(ip("192.0.2.4")));
        assert!(!t.contains(ip("192.0.2.6")));
        assert!(t.contains(ip("2001:db8:ffff::2")));
        assert!(t.contains(ip("2001:db8:ffff:ffff::")));
        assert!(!t.contains(ip("2001:db8:fffe::1")));
        assert!(t.contains(ip("::1")));
        assert!(!t.contains(ip("::2")));
    }

    #[test]
    fn contains_canonicalises_its_argument() {
        let t = tp(&["10.0.0.0/8"]);
        assert!(t.contains(ip("::ffff:10.0.0.1")));
        assert!(t.contains(ip("::ffff:a00:1")));
        assert!(!t.contains(ip("::ffff:11.0.0.1")));
        // IPv4-compatible and NAT64 forms are other hosts.
        assert!(!t.contains(ip("::10.0.0.1")));
        assert!(!t.contains(ip("64:ff9b::10.0.0.1")));
    }

    #[test]
    fn mapped_networks_become_ipv4() {
        let t = tp(&["::ffff:10.0.0.0/104", "::ffff:192.0.2.1/128"]);
        assert_eq!(
            t.nets(),
            &[
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.0.2.1/32".parse::<IpNet>().unwrap()
            ]
        );
        assert!(t.contains(ip("10.1.2.3")));
        assert!(t.contains(ip("::ffff:10.1.2.3")));
        assert!(t.contains(ip("192.0.2.1")));
        assert!(!t.contains(ip("192.0.2.2")));

        let all = TrustedProxies::new([IpNet::V6(mapped_block())]);
        assert_eq!(all.nets(), &["0.0.0.0/0".parse::<IpNet>().unwrap()]);
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("2001:db8::1")));
    }

    #[test]
    fn short_v6_networks_do_not_cover_ipv4() {
        // ::/0 covers ::ffff:0:0/96 as IPv6, but an IPv4 peer is not an IPv6 hop.
        let t = tp(&["::/0"]);
        assert!(t.contains(ip("2001:db8::1")));
        assert!(!t.contains(ip("10.0.0.1")));
        assert!(!t.contains(ip("::ffff:10.0.0.1")));
        let t = tp(&["::ffff:0:0/95"]);
        assert!(!t.contains(ip("10.0.0.1")));
        assert!(t.contains(ip("::fffe:a00:1")));
    }

    #[test]
    fn networks_are_truncated_sorted_and_deduplicated() {
        let t = tp(&[
            "10.0.0.1/8",
            "10.0.0.0/8",
            "::1/128",
            "192.0.2.0/24",
            "::ffff:10.0.0.0/104",
        ]);
        assert_eq!(
            t.nets(),
            &[
                "10.0.0.0/8".parse::<IpNet>().unwrap(),
                "192.0.2.0/24".parse::<IpNet>().unwrap(),
                "::1/128".parse::<IpNet>().unwrap(),
            ]
        );
        assert!(t.contains(ip("10.9.9.9")));
    }

    #[test]
    fn zero_prefixes() {
        let t = tp(&["0.0.0.0/0"]);
        assert!(t.contains(ip("203.0.113.9")));
        assert!(t.contains(ip("::ffff:203.0.113.9")));
        assert!(!t.contains(ip("2001:db8::1")));
        let t = tp(&["::/0"]);
        assert!(t.contains(ip("2001:db8::1")));
        assert!(t.contains(ip("::")));
    }

    #[test]
    fn ipv6_net_type_is_the_mapped_block() {
        let block = mapped_block();
        assert_eq!(block.prefix_len(), 96);
        assert_eq!(
            canonical_net(IpNet::V6(block)),
            "0.0.0.0/0".parse::<IpNet>().unwrap()
        );
        let not_mapped: Ipv6Net = "::fffe:0:0/96".parse().unwrap();
        assert_eq!(canonical_net(IpNet::V6(not_mapped)), IpNet::V6(not_mapped));
    }
}
