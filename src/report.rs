//! The "would be blocked" report: during report-only (or before `enforce_from`), which
//! schools would enforcement block, why, from which address, how often and since when — so
//! operations can contact them before the date.
//!
//! Bounded: at most [`MAX_ENTRIES`] (school, reason, address) entries are kept; requests for
//! a new entry beyond that are counted as dropped, never grow memory. Entries of no known
//! school (scanners, homes) have a budget of their own ([`MAX_UNATTRIBUTED`]), so weeks of
//! internet noise can never crowd out the schools operations must contact. Addresses are
//! kept in the privacy form the logs use, never more.

use crate::decision::Reason;
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;

/// The most (school, reason, address) entries kept for known schools.
pub const MAX_ENTRIES: usize = 10_000;
/// The most entries kept for addresses of no known school.
pub const MAX_UNATTRIBUTED: usize = 1_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    site: Option<String>,
    reason: Reason,
    address: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    count: u64,
    first: OffsetDateTime,
    last: OffsetDateTime,
}

impl Seen {
    fn new(at: OffsetDateTime) -> Seen {
        Seen {
            count: 0,
            first: at,
            last: at,
        }
    }

    fn add(&mut self, other: &Seen) {
        self.count += other.count;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
    }
}

/// One school's total and its entries, while building the JSON.
type SiteGroup<'a> = (Seen, Vec<(&'a Key, &'a Seen)>);

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Seen>,
    /// How many of `entries` have no school.
    unattributed: usize,
    dropped: u64,
    dropped_unattributed: u64,
    since: Option<OffsetDateTime>,
}

/// The report; shared by all requests behind one lock, touched only by would-block requests.
#[derive(Default)]
pub struct WouldBlockReport {
    inner: Mutex<Inner>,
    /// (schools, unattributed) bounds; the constants when `None`.
    limits: Option<(usize, usize)>,
}

impl WouldBlockReport {
    /// A report with other bounds for school and unattributed entries (tests use small ones).
    pub fn with_limits(schools: usize, unattributed: usize) -> WouldBlockReport {
        WouldBlockReport {
            inner: Mutex::default(),
            limits: Some((schools, unattributed)),
        }
    }

    fn limits(&self) -> (usize, usize) {
        self.limits.unwrap_or((MAX_ENTRIES, MAX_UNATTRIBUTED))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Count one request that enforcement would have blocked. False when the report is full
    /// for its kind of entry and the request was only counted as dropped.
    pub fn record(
        &self,
        site: Option<&str>,
        reason: Reason,
        address: Option<&str>,
        at: OffsetDateTime,
    ) -> bool {
        let key = Key {
            site: site.map(str::to_string),
            reason,
            address: address.map(str::to_string),
        };
        let (max_schools, max_unattributed) = self.limits();
        let mut inner = self.lock();
        inner.since.get_or_insert(at);
        if let Some(seen) = inner.entries.get_mut(&key) {
            seen.count += 1;
            seen.first = seen.first.min(at);
            seen.last = seen.last.max(at);
            return true;
        }
        let attributed = inner.entries.len() - inner.unattributed;
        if key.site.is_none() {
            if inner.unattributed >= max_unattributed {
                inner.dropped_unattributed += 1;
                return false;
            }
            inner.unattributed += 1;
        } else if attributed >= max_schools {
            inner.dropped += 1;
            return false;
        }
        let mut seen = Seen::new(at);
        seen.count = 1;
        inner.entries.insert(key, seen);
        true
    }

    /// Forget everything (after the schools were contacted); returns how many entries there were.
    pub fn reset(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.entries.len();
        *inner = Inner::default();
        n
    }

    /// The report as JSON: per school (most requests first; `null` for addresses of no
    /// known school), the total and, per reason and address, count, first and last seen.
    pub fn json(&self) -> serde_json::Value {
        let inner = self.lock();
        let mut by_site: HashMap<Option<&str>, SiteGroup<'_>> = HashMap::new();
        for (key, seen) in &inner.entries {
            let e = by_site
                .entry(key.site.as_deref())
                .or_insert_with(|| (Seen::new(seen.first), Vec::new()));
            e.0.add(seen);
            e.1.push((key, seen));
        }
        let mut sites: Vec<_> = by_site.into_iter().collect();
        sites.sort_by(|a, b| b.1 .0.count.cmp(&a.1 .0.count).then(a.0.cmp(&b.0)));
        let sites: Vec<serde_json::Value> = sites
            .into_iter()
            .map(|(site, (total, mut entries))| {
                entries.sort_by(|a, b| {
                    b.1.count
                        .cmp(&a.1.count)
                        .then(a.0.reason.as_str().cmp(b.0.reason.as_str()))
                        .then(a.0.address.cmp(&b.0.address))
                });
                serde_json::json!({
                    "site": site,
                    "count": total.count,
                    "first_seen": rfc3339(total.first),
                    "last_seen": rfc3339(total.last),
                    "reasons": entries.iter().map(|(k, s)| serde_json::json!({
                        "reason": k.reason.as_str(),
                        "address": k.address,
                        "count": s.count,
                        "first_seen": rfc3339(s.first),
                        "last_seen": rfc3339(s.last),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let (max_schools, max_unattributed) = self.limits();
        serde_json::json!({
            "since": inner.since.map(rfc3339),
            "entries": inner.entries.len(),
            "max_entries": max_schools,
            "max_unattributed_entries": max_unattributed,
            "dropped": inner.dropped,
            "dropped_unattributed": inner.dropped_unattributed,
            "sites": sites,
        })
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn groups_by_school_then_reason_and_address() {
        let r = WouldBlockReport::default();
        let t0 = datetime!(2026-12-01 08:00 UTC);
        let t1 = datetime!(2026-12-01 09:30 UTC);
        r.record(Some("12AB00"), Reason::OtherSite, Some("192.0.2.0/24"), t1);
        r.record(Some("12AB00"), Reason::OtherSite, Some("192.0.2.0/24"), t0);
        r.record(
            Some("12AB00"),
            Reason::ClaimMissing,
            Some("192.0.2.0/24"),
            t1,
        );
        r.record(None, Reason::NotRegistered, Some("203.0.113.0/24"), t1);
        let j = r.json();
        assert_eq!(j["entries"], 3);
        assert_eq!(j["dropped"], 0);
        assert_eq!(j["since"], "2026-12-01T09:30:00Z");
        let first = &j["sites"][0];
        assert_eq!(first["site"], "12AB00");
        assert_eq!(first["count"], 3);
        assert_eq!(first["first_seen"], "2026-12-01T08:00:00Z");
        assert_eq!(first["last_seen"], "2026-12-01T09:30:00Z");
        assert_eq!(first["reasons"][0]["reason"], "other_site");
        assert_eq!(first["reasons"][0]["count"], 2);
        assert_eq!(first["reasons"][0]["address"], "192.0.2.0/24");
        assert_eq!(first["reasons"][1]["reason"], "claim_missing");
        let second = &j["sites"][1];
        assert_eq!(second["site"], serde_json::Value::Null);
        assert_eq!(second["reasons"][0]["reason"], "not_registered");
    }

    #[test]
    fn is_bounded_and_counts_what_it_drops() {
        let r = WouldBlockReport::with_limits(2, 2);
        let t = datetime!(2026-12-01 08:00 UTC);
        for i in 0..5 {
            let recorded = r.record(
                None,
                Reason::NotRegistered,
                Some(&format!("203.0.113.{i}")),
                t,
            );
            assert_eq!(recorded, i < 2);
        }
        // A known entry still counts when the report is full.
        assert!(r.record(None, Reason::NotRegistered, Some("203.0.113.0"), t));
        for site in ["A", "B", "C"] {
            r.record(Some(site), Reason::OtherSite, Some("192.0.2.0/24"), t);
        }
        let j = r.json();
        assert_eq!(j["entries"], 4);
        assert_eq!(j["dropped_unattributed"], 3);
        assert_eq!(j["dropped"], 1);
        assert_eq!(r.reset(), 4);
        assert_eq!(r.json()["entries"], 0);
        assert_eq!(r.json()["dropped"], 0);
    }

    #[test]
    fn unattributed_noise_does_not_crowd_out_schools() {
        let r = WouldBlockReport::with_limits(3, 3);
        let t = datetime!(2026-12-01 08:00 UTC);
        for i in 0..100 {
            r.record(
                None,
                Reason::NotRegistered,
                Some(&format!("203.0.{i}.0/24")),
                t,
            );
        }
        assert!(r.record(
            Some("12AB00"),
            Reason::ClaimMissing,
            Some("192.0.2.0/24"),
            t
        ));
        let j = r.json();
        assert!(
            j["sites"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["site"] == "12AB00"),
            "school dropped: {j}"
        );
        assert_eq!(j["dropped_unattributed"], 97);
    }
}
