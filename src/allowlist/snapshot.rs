//! The compiled, immutable allowlist and its per-request questions: which
//! sites contain this address, which exceptions apply now. One snapshot is
//! built off the hot path and swapped in whole; readers never see a half
//! update and never lock.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use time::OffsetDateTime;

use super::exception::Exception;
use super::quarantine::Quarantined;
use super::site::{Site, SiteIdx};
use super::table::IntervalTable;
use crate::client_ip::canonical;

/// A compiled allowlist. Immutable once built; `Send + Sync`, meant to sit
/// behind one `ArcSwap`.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub(crate) version: Option<String>,
    pub(crate) sites: Vec<Site>,
    pub(crate) site_index: HashMap<String, SiteIdx>,
    /// Accepted ranges as listed (mapped ranges already converted to IPv4).
    pub(crate) ranges: Vec<(IpNet, SiteIdx)>,
    pub(crate) v4: IntervalTable<u32>,
    pub(crate) v6: IntervalTable<u128>,
    pub(crate) exceptions: Vec<Exception>,
    /// Interval tables over exception indices; the time window is checked
    /// at lookup, since it depends on the moment of the decision.
    pub(crate) exceptions_v4: IntervalTable<u32>,
    pub(crate) exceptions_v6: IntervalTable<u128>,
    pub(crate) quarantined: Vec<Quarantined>,
    pub(crate) unknown_fields: Vec<(String, u64)>,
}

impl Snapshot {
    /// A snapshot without any sites: every lookup misses.
    pub fn empty() -> Snapshot {
        Snapshot::default()
    }

    /// The document's `version`, if it had one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Number of accepted sites.
    pub fn site_count(&self) -> usize {
        self.sites.len()
    }

    /// Number of accepted ranges as listed (before merging overlaps);
    /// exceptions are not included.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Number of accepted exceptions (whatever their window).
    pub fn exception_count(&self) -> usize {
        self.exceptions.len()
    }

    /// Accepted sites; a [`SiteIdx`] indexes this slice.
    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// The site at `idx`, if any.
    pub fn site(&self, idx: SiteIdx) -> Option<&Site> {
        self.sites.get(idx as usize)
    }

    /// The index of the accepted site with this id (site binding compares a
    /// token's site claim against the sites an address belongs to).
    pub fn site_index(&self, id: &str) -> Option<SiteIdx> {
        self.site_index.get(id).copied()
    }

    /// Accepted exceptions, in document order.
    pub fn exceptions(&self) -> &[Exception] {
        &self.exceptions
    }

    /// Entries skipped while compiling, in document order.
    pub fn quarantined(&self) -> &[Quarantined] {
        &self.quarantined
    }

    /// Unknown fields seen, by path (`(top).generated_by`, `sites[].contact`,
    /// `sites[].exceptions[].ticket`) with how often each occurred, sorted
    /// by path.
    pub fn unknown_fields(&self) -> &[(String, u64)] {
        &self.unknown_fields
    }

    /// Site indices (sorted, deduplicated) whose ranges contain `ip`.
    ///
    /// `ip` should already be canonical; an IPv4-mapped IPv6 address is
    /// unmapped here as well, so a caller that forgot cannot get a different
    /// answer than the design says. No allocation.
    #[inline]
    pub fn sites_for(&self, ip: IpAddr) -> &[SiteIdx] {
        match canonical(ip) {
            IpAddr::V4(v4) => self.v4.get(u32::from(v4)),
            IpAddr::V6(v6) => self.v6.get(u128::from(v6)),
        }
    }

    /// Exceptions whose range contains `ip` and whose window
    /// `[not_before, not_after)` contains `at`. No allocation.
    pub fn exceptions_for(
        &self,
        ip: IpAddr,
        at: OffsetDateTime,
    ) -> impl Iterator<Item = &Exception> + '_ {
        let indices = match canonical(ip) {
            IpAddr::V4(v4) => self.exceptions_v4.get(u32::from(v4)),
            IpAddr::V6(v6) => self.exceptions_v6.get(u128::from(v6)),
        };
        indices
            .iter()
            .filter_map(move |&i| self.exceptions.get(i as usize))
            .filter(move |e| e.is_valid_at(at))
    }

    /// All accepted ranges with their site, as listed (for `check`'s overlap
    /// warning against trusted proxies).
    pub fn ranges(&self) -> impl Iterator<Item = (IpNet, SiteIdx)> + '_ {
        self.ranges.iter().copied()
    }
}

impl fmt::Debug for Snapshot {
    // A summary: a full dump of 100k ranges in a log line helps nobody.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("version", &self.version)
            .field("sites", &self.sites.len())
            .field("ranges", &self.ranges.len())
            .field("exceptions", &self.exceptions.len())
            .field("quarantined", &self.quarantined.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn snapshot_is_send_and_sync() {
        assert_send_sync::<Snapshot>();
    }

    #[test]
    fn empty_snapshot() {
        let s = Snapshot::empty();
        assert_eq!(s.version(), None);
        assert_eq!(s.site_count(), 0);
        assert_eq!(s.range_count(), 0);
        assert_eq!(s.exception_count(), 0);
        assert!(s.sites().is_empty());
        assert!(s.quarantined().is_empty());
        assert!(s.unknown_fields().is_empty());
        assert!(s.sites_for("192.0.2.1".parse().expect("ip")).is_empty());
        assert!(s.sites_for("2001:db8::1".parse().expect("ip")).is_empty());
        assert_eq!(
            s.exceptions_for("192.0.2.1".parse().expect("ip"), OffsetDateTime::UNIX_EPOCH)
                .count(),
            0
        );
        assert_eq!(s.ranges().count(), 0);
        assert_eq!(s.site(0), None);
        assert_eq!(s.site_index("12AB00"), None);
    }

    #[test]
    fn debug_is_a_summary() {
        let text = format!("{:?}", Snapshot::empty());
        assert!(
            text.starts_with("Snapshot { version: None, sites: 0"),
            "{text}"
        );
    }
}

#[cfg(test)]
mod lookup_properties {
    //! `sites_for` and `exceptions_for` against a naive linear scan over
    //! random, heavily overlapping ranges near the edges of both spaces.

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use ipnet::{IpNet, Ipv4Net, Ipv6Net};
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::super::{compile, CompileOptions};

    /// Ranges and probes share one small window so that they overlap a lot;
    /// the window sits at the bottom, in the middle or at the top of the space.
    const V4_BASES: [u32; 3] = [0, 0xC000_0200, u32::MAX - 0xFFF];
    const V6_BASES: [u128; 3] = [0, 0x2001_0db8 << 96, u128::MAX - 0xFFF];

    fn v4_net(base: u32, offset: u32, prefix: u8) -> IpNet {
        let addr = Ipv4Addr::from(base.wrapping_add(offset));
        let net = Ipv4Net::new(addr, prefix)
            .map(|n| n.trunc())
            .unwrap_or(Ipv4Net::from(addr));
        IpNet::V4(net)
    }

    fn v6_net(base: u128, offset: u128, prefix: u8) -> IpNet {
        let addr = Ipv6Addr::from(base.wrapping_add(offset));
        let net = Ipv6Net::new(addr, prefix)
            .map(|n| n.trunc())
            .unwrap_or(Ipv6Net::from(addr));
        IpNet::V6(net)
    }

    /// (site, range) pairs: v4 prefixes /20-/32, v6 /116-/128, in a 4096
    /// address window.
    fn ranges() -> impl Strategy<Value = Vec<(usize, IpNet)>> {
        (0..3usize, 0..3usize).prop_flat_map(|(b4, b6)| {
            let v4 = (0..6usize, 0u32..0x1000, 20u8..=32)
                .prop_map(move |(site, off, p)| (site, v4_net(V4_BASES[b4], off, p)));
            let v6 = (0..6usize, 0u128..0x1000, 116u8..=128)
                .prop_map(move |(site, off, p)| (site, v6_net(V6_BASES[b6], off, p)));
            proptest::collection::vec(prop_oneof![v4, v6], 0..40)
        })
    }

    fn document(ranges: &[(usize, IpNet)]) -> String {
        let sites: Vec<serde_json::Value> = (0..6)
            .map(|site| {
                let own: Vec<String> = ranges
                    .iter()
                    .filter(|(s, _)| *s == site)
                    .map(|(_, n)| n.to_string())
                    .collect();
                serde_json::json!({"id": format!("S{site}"), "ranges": own})
            })
            .collect();
        serde_json::json!({"sites": sites}).to_string()
    }

    fn probes_for(ranges: &[(usize, IpNet)]) -> Vec<IpAddr> {
        // Every edge and its neighbours, plus the window's bounds.
        let mut probes = Vec::new();
        for (_, net) in ranges {
            match net {
                IpNet::V4(n) => {
                    for x in [u32::from(n.network()), u32::from(n.broadcast())] {
                        for y in [x.wrapping_sub(1), x, x.wrapping_add(1)] {
                            probes.push(IpAddr::V4(Ipv4Addr::from(y)));
                        }
                    }
                }
                IpNet::V6(n) => {
                    for x in [u128::from(n.network()), u128::from(n.broadcast())] {
                        for y in [x.wrapping_sub(1), x, x.wrapping_add(1)] {
                            probes.push(IpAddr::V6(Ipv6Addr::from(y)));
                        }
                    }
                }
            }
        }
        for b in V4_BASES {
            probes.push(IpAddr::V4(Ipv4Addr::from(b)));
        }
        probes.push(IpAddr::V4(Ipv4Addr::BROADCAST));
        probes.push(IpAddr::V6(Ipv6Addr::from(u128::MAX)));
        probes.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        probes
    }

    fn open() -> CompileOptions {
        CompileOptions {
            max_prefix_v4: 0,
            max_prefix_v6: 0,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn sites_for_matches_linear_scan(
            list in ranges(),
            extra4 in proptest::collection::vec(0u32..0x1000, 0..20),
            extra6 in proptest::collection::vec(0u128..0x1000, 0..20),
        ) {
            let snapshot = compile(document(&list).as_bytes(), &open()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // The window at 0 for v6 would hit ::/96-ish only, never mapped space.
            prop_assert!(snapshot.quarantined().is_empty(), "{:?}", snapshot.quarantined());
            prop_assert_eq!(snapshot.range_count(), list.len());
            let mut probes = probes_for(&list);
            for base in V4_BASES {
                probes.extend(extra4.iter().map(|o| IpAddr::V4(Ipv4Addr::from(base.wrapping_add(*o)))));
            }
            for base in V6_BASES {
                probes.extend(extra6.iter().map(|o| IpAddr::V6(Ipv6Addr::from(base.wrapping_add(*o)))));
            }
            for ip in probes {
                // Site index == site number here: all six sites are accepted in order.
                let mut expected: Vec<u32> = snapshot
                    .ranges()
                    .filter(|(net, _)| net.contains(&ip))
                    .map(|(_, site)| site)
                    .collect();
                expected.sort_unstable();
                expected.dedup();
                prop_assert_eq!(snapshot.sites_for(ip), expected.as_slice(), "ip {}", ip);
            }
        }

        #[test]
        fn exceptions_for_matches_linear_scan(
            list in ranges(),
            windows in proptest::collection::vec((0i64..10, 1i64..10), 40),
            at in 0i64..20,
        ) {
            let t0 = datetime!(2026-12-01 00:00:00 UTC);

            let exceptions: Vec<serde_json::Value> = list.iter().zip(&windows).map(|((_, net), (start, len))| {
                let nb = t0 + time::Duration::hours(*start);
                let na = nb + time::Duration::hours(*len);
                let fmt = &time::format_description::well_known::Rfc3339;
                serde_json::json!({
                    "range": net.to_string(),
                    "not_before": nb.format(fmt).unwrap_or_default(),
                    "not_after": na.format(fmt).unwrap_or_default(),
                })
            }).collect();
            let doc = serde_json::json!({"sites": [{"id": "A", "exceptions": exceptions}]}).to_string();
            let snapshot = compile(doc.as_bytes(), &open()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(snapshot.quarantined().is_empty(), "{:?}", snapshot.quarantined());
            let now = t0 + time::Duration::hours(at);
            for ip in probes_for(&list) {
                let got: Vec<*const _> = snapshot.exceptions_for(ip, now).map(|e| e as *const _).collect();
                let expected: Vec<*const _> = snapshot
                    .exceptions()
                    .iter()
                    .filter(|e| e.range.contains(&ip) && e.not_before <= now && now < e.not_after)
                    .map(|e| e as *const _)
                    .collect();
                prop_assert_eq!(got, expected, "ip {}", ip);
            }
        }
    }
}
