//! What changed between two snapshots, for `/status` and the change history:
//! sites added and removed, and per site the ranges and exceptions added and
//! removed. Bounded, because a first load or a big reshuffle can touch
//! 100k ranges and `/status` must stay small; the totals stay exact.
//!
//! Sites are compared by id, ranges and exceptions as sets (order and
//! duplicates in the document do not count). An exception is identified by
//! its range and its window: a moved window shows as one removed and one
//! added exception; a changed `reason` text alone is not a change, since it
//! lets nobody else in. Site names and the document `version` are not
//! compared either.

use std::collections::{BTreeMap, HashMap, HashSet};

use ipnet::IpNet;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::allowlist::{SiteIdx, Snapshot};

/// Most site ids listed in each of `added_sites`, `removed_sites` and
/// `changed_sites`.
pub const MAX_SITES: usize = 50;
/// Most entries listed in each per-site list (added ranges, removed ranges,
/// added exceptions, removed exceptions).
pub const MAX_ENTRIES_PER_SITE: usize = 20;

/// The change from one snapshot to the next. Lists are sorted (site ids
/// lexically, ranges by address with IPv4 first) and capped; `truncated`
/// says whether any list was cut, `totals` has the exact counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnapshotChange {
    /// Ids of sites only in the new snapshot.
    pub added_sites: Vec<String>,
    /// Ids of sites only in the old snapshot.
    pub removed_sites: Vec<String>,
    /// Sites in both snapshots whose ranges or exceptions changed.
    pub changed_sites: Vec<SiteChange>,
    /// Exact counts, whatever was cut from the lists.
    pub totals: ChangeTotals,
    /// Some list above was capped.
    pub truncated: bool,
}

/// Exact counts of a [`SnapshotChange`]. Range and exception counts include
/// those of added and removed sites (a site added with 12 ranges adds 12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ChangeTotals {
    pub added_sites: usize,
    pub removed_sites: usize,
    pub changed_sites: usize,
    pub added_ranges: usize,
    pub removed_ranges: usize,
    pub added_exceptions: usize,
    pub removed_exceptions: usize,
}

/// The change of one site present in both snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SiteChange {
    pub id: String,
    /// Canonical CIDR (`198.51.100.7/32`, `2001:db8:12::/48`).
    pub added_ranges: Vec<String>,
    pub removed_ranges: Vec<String>,
    /// `RANGE from NOT_BEFORE until NOT_AFTER`, times in RFC 3339 UTC.
    pub added_exceptions: Vec<String>,
    pub removed_exceptions: Vec<String>,
}

impl SnapshotChange {
    /// No site, range or exception was added or removed.
    pub fn is_empty(&self) -> bool {
        self.totals == ChangeTotals::default()
    }
}

/// The change from `old` (`None`: nothing was loaded before, so everything
/// is added) to `new`. Linear in the size of both snapshots (hash sets);
/// never panics.
pub fn diff(old: Option<&Snapshot>, new: &Snapshot) -> SnapshotChange {
    let mut names = SiteNames::default();
    let old = Index::of(old, &mut names);
    let new = Index::of(Some(new), &mut names);
    let mut totals = ChangeTotals::default();
    let mut truncated = false;

    let added_sites: Vec<&str> = new
        .sites
        .difference(&old.sites)
        .map(|&n| names.name(n))
        .collect();
    let removed_sites: Vec<&str> = old
        .sites
        .difference(&new.sites)
        .map(|&n| names.name(n))
        .collect();
    totals.added_sites = added_sites.len();
    totals.removed_sites = removed_sites.len();

    // Per-site detail only for sites in both snapshots; for added and
    // removed sites the id says it all and the totals count their entries.
    let in_both = |n: &u32| old.sites.contains(n) && new.sites.contains(n);
    let mut changed: BTreeMap<&str, Delta> = BTreeMap::new();
    for (n, net) in new.ranges.difference(&old.ranges) {
        totals.added_ranges += 1;
        if in_both(n) {
            changed
                .entry(names.name(*n))
                .or_default()
                .added_ranges
                .push(*net);
        }
    }
    for (n, net) in old.ranges.difference(&new.ranges) {
        totals.removed_ranges += 1;
        if in_both(n) {
            changed
                .entry(names.name(*n))
                .or_default()
                .removed_ranges
                .push(*net);
        }
    }
    for (n, key) in new.exceptions.difference(&old.exceptions) {
        totals.added_exceptions += 1;
        if in_both(n) {
            changed
                .entry(names.name(*n))
                .or_default()
                .added_exceptions
                .push(*key);
        }
    }
    for (n, key) in old.exceptions.difference(&new.exceptions) {
        totals.removed_exceptions += 1;
        if in_both(n) {
            changed
                .entry(names.name(*n))
                .or_default()
                .removed_exceptions
                .push(*key);
        }
    }
    totals.changed_sites = changed.len();
    if changed.len() > MAX_SITES {
        truncated = true;
    }

    // BTreeMap: already sorted by id, so the first MAX_SITES are the
    // listed ones and the rest need no formatting at all.
    let changed_sites = changed
        .into_iter()
        .take(MAX_SITES)
        .map(|(id, d)| SiteChange {
            id: id.to_owned(),
            added_ranges: capped(
                d.added_ranges,
                MAX_ENTRIES_PER_SITE,
                &mut truncated,
                IpNet::to_string,
            ),
            removed_ranges: capped(
                d.removed_ranges,
                MAX_ENTRIES_PER_SITE,
                &mut truncated,
                IpNet::to_string,
            ),
            added_exceptions: capped(
                d.added_exceptions,
                MAX_ENTRIES_PER_SITE,
                &mut truncated,
                render_exception,
            ),
            removed_exceptions: capped(
                d.removed_exceptions,
                MAX_ENTRIES_PER_SITE,
                &mut truncated,
                render_exception,
            ),
        })
        .collect();

    SnapshotChange {
        added_sites: capped(added_sites, MAX_SITES, &mut truncated, |s| (*s).to_owned()),
        removed_sites: capped(removed_sites, MAX_SITES, &mut truncated, |s| {
            (*s).to_owned()
        }),
        changed_sites,
        totals,
        truncated,
    }
}

/// An exception as compared: range and window, the window as UTC nanoseconds
/// so that the same instant written with another offset is the same.
type ExceptionKey = (IpNet, i128, i128);

/// Site ids of both snapshots, numbered once. Sites are matched by id, not
/// by index (indices shift whenever a site earlier in the document comes or
/// goes); numbering the ids lets the big sets hash a `u32` instead of a
/// string (about 40% faster at 100k ranges than `(&str, IpNet)` keys).
#[derive(Default)]
struct SiteNames<'a> {
    numbers: HashMap<&'a str, u32>,
    names: Vec<&'a str>,
}

impl<'a> SiteNames<'a> {
    fn number(&mut self, id: &'a str) -> u32 {
        if let Some(&n) = self.numbers.get(id) {
            return n;
        }
        // At most the sites of two snapshots, far below u32::MAX.
        let n = self.names.len() as u32;
        self.names.push(id);
        self.numbers.insert(id, n);
        n
    }

    fn name(&self, n: u32) -> &'a str {
        self.names.get(n as usize).copied().unwrap_or_default()
    }
}

/// One snapshot as sets keyed by site number.
struct Index {
    sites: HashSet<u32>,
    ranges: HashSet<(u32, IpNet)>,
    exceptions: HashSet<(u32, ExceptionKey)>,
}

impl Index {
    fn of<'a>(snapshot: Option<&'a Snapshot>, names: &mut SiteNames<'a>) -> Index {
        let Some(s) = snapshot else {
            return Index {
                sites: HashSet::new(),
                ranges: HashSet::new(),
                exceptions: HashSet::new(),
            };
        };
        // Site index in this snapshot -> site number.
        let numbers: Vec<u32> = s
            .sites()
            .iter()
            .map(|site| names.number(&site.id))
            .collect();
        let number = |idx: SiteIdx| numbers.get(idx as usize).copied();
        Index {
            sites: numbers.iter().copied().collect(),
            ranges: s
                .ranges()
                .filter_map(|(net, idx)| Some((number(idx)?, net)))
                .collect(),
            exceptions: s
                .exceptions()
                .iter()
                .filter_map(|e| {
                    let key = (
                        e.range,
                        e.not_before.unix_timestamp_nanos(),
                        e.not_after.unix_timestamp_nanos(),
                    );
                    Some((number(e.site)?, key))
                })
                .collect(),
        }
    }
}

#[derive(Default)]
struct Delta {
    added_ranges: Vec<IpNet>,
    removed_ranges: Vec<IpNet>,
    added_exceptions: Vec<ExceptionKey>,
    removed_exceptions: Vec<ExceptionKey>,
}

/// Sort, keep the first `cap`, format only those.
fn capped<T: Ord, U>(
    mut items: Vec<T>,
    cap: usize,
    truncated: &mut bool,
    render: impl Fn(&T) -> U,
) -> Vec<U> {
    items.sort_unstable();
    if items.len() > cap {
        *truncated = true;
        items.truncate(cap);
    }
    items.iter().map(render).collect()
}

fn render_exception(&(range, not_before, not_after): &ExceptionKey) -> String {
    format!(
        "{range} from {} until {}",
        render_time(not_before),
        render_time(not_after)
    )
}

fn render_time(nanos: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        // Only for years RFC 3339 cannot write; compile() never yields them.
        .unwrap_or_else(|| format!("@{nanos}ns"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allowlist::{compile, CompileOptions};
    use serde_json::json;

    fn snap(doc: serde_json::Value) -> Snapshot {
        let s = compile(doc.to_string().as_bytes(), &CompileOptions::default()).expect("document");
        assert!(s.quarantined().is_empty(), "{:?}", s.quarantined());
        s
    }

    fn site(id: &str, ranges: &[&str]) -> serde_json::Value {
        json!({"id": id, "ranges": ranges})
    }

    #[test]
    fn first_load_adds_everything() {
        let new = snap(
            json!({"sites": [site("12AB00", &["192.0.2.0/28", "198.51.100.7"]), site("34CD01", &["2001:db8:12::/48"])]}),
        );
        let c = diff(None, &new);
        assert_eq!(c.added_sites, vec!["12AB00", "34CD01"]);
        assert!(c.removed_sites.is_empty() && c.changed_sites.is_empty());
        assert_eq!(c.totals.added_sites, 2);
        assert_eq!(c.totals.added_ranges, 3);
        assert!(!c.truncated);
        assert!(!c.is_empty());
    }

    #[test]
    fn same_content_in_another_order_is_no_change() {
        let a = snap(
            json!({"version": "1", "sites": [site("A1", &["192.0.2.1", "192.0.2.2"]), site("B2", &["198.51.100.0/24"])]}),
        );
        let b = snap(
            json!({"version": "2", "sites": [site("B2", &["198.51.100.0/24"]), site("A1", &["192.0.2.2", "192.0.2.1", "192.0.2.1"])]}),
        );
        let c = diff(Some(&a), &b);
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(c, SnapshotChange::default());
    }

    #[test]
    fn added_removed_and_changed_sites() {
        let old = snap(json!({"sites": [
            site("KEEP00", &["192.0.2.1"]),
            site("GONE00", &["192.0.2.2"]),
            site("EDIT00", &["192.0.2.3", "198.51.100.0/24"]),
        ]}));
        let new = snap(json!({"sites": [
            site("EDIT00", &["198.51.100.0/24", "2001:db8:12::/48", "192.0.2.4/32"]),
            site("KEEP00", &["192.0.2.1"]),
            site("NEW000", &["203.0.113.0/29"]),
        ]}));
        let c = diff(Some(&old), &new);
        assert_eq!(c.added_sites, vec!["NEW000"]);
        assert_eq!(c.removed_sites, vec!["GONE00"]);
        assert_eq!(
            c.changed_sites,
            vec![SiteChange {
                id: "EDIT00".into(),
                added_ranges: vec!["192.0.2.4/32".into(), "2001:db8:12::/48".into()],
                removed_ranges: vec!["192.0.2.3/32".into()],
                ..SiteChange::default()
            }]
        );
        assert_eq!(
            c.totals,
            ChangeTotals {
                added_sites: 1,
                removed_sites: 1,
                changed_sites: 1,
                added_ranges: 3,
                removed_ranges: 2,
                added_exceptions: 0,
                removed_exceptions: 0,
            }
        );
        assert!(!c.truncated);
    }

    #[test]
    fn a_range_moved_between_sites_changes_both() {
        let old = snap(json!({"sites": [site("A1", &["192.0.2.1"]), site("B2", &[])]}));
        let new = snap(json!({"sites": [site("A1", &[]), site("B2", &["192.0.2.1"])]}));
        let c = diff(Some(&old), &new);
        let ids: Vec<&str> = c.changed_sites.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, vec!["A1", "B2"]);
        assert_eq!(c.changed_sites[0].removed_ranges, vec!["192.0.2.1/32"]);
        assert_eq!(c.changed_sites[1].added_ranges, vec!["192.0.2.1/32"]);
    }

    fn exception(range: &str, nb: &str, na: &str, reason: &str) -> serde_json::Value {
        json!({"range": range, "not_before": nb, "not_after": na, "reason": reason})
    }

    #[test]
    fn exceptions_compare_by_range_and_window_not_reason() {
        let old = snap(json!({"sites": [{"id": "A1", "exceptions": [
            exception("203.0.113.9", "2026-12-01T08:00:00+01:00", "2026-12-05T17:00:00+01:00", "test at home"),
            exception("203.0.113.10", "2026-12-01T08:00:00+01:00", "2026-12-05T17:00:00+01:00", "x"),
        ]}]}));
        // Same instants in UTC and another reason: no change for .9;
        // a longer window for .10: one removed, one added.
        let new = snap(json!({"sites": [{"id": "A1", "exceptions": [
            exception("203.0.113.9", "2026-12-01T07:00:00Z", "2026-12-05T16:00:00Z", "other words"),
            exception("203.0.113.10", "2026-12-01T08:00:00+01:00", "2026-12-06T17:00:00+01:00", "x"),
        ]}]}));
        let c = diff(Some(&old), &new);
        assert_eq!(c.changed_sites.len(), 1);
        let s = &c.changed_sites[0];
        assert_eq!(
            s.added_exceptions,
            vec!["203.0.113.10/32 from 2026-12-01T07:00:00Z until 2026-12-06T16:00:00Z"]
        );
        assert_eq!(
            s.removed_exceptions,
            vec!["203.0.113.10/32 from 2026-12-01T07:00:00Z until 2026-12-05T16:00:00Z"]
        );
        assert!(s.added_ranges.is_empty() && s.removed_ranges.is_empty());
        assert_eq!(
            (c.totals.added_exceptions, c.totals.removed_exceptions),
            (1, 1)
        );
    }

    #[test]
    fn long_lists_are_capped_with_exact_totals() {
        let old_sites: Vec<_> = (0..60)
            .map(|i| site(&format!("OLD{i:03}"), &[]))
            .chain([site("BIG000", &[])])
            .collect();
        let many: Vec<String> = (0..30).map(|i| format!("192.0.2.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let new_sites: Vec<_> = (0..55)
            .map(|i| site(&format!("NEW{i:03}"), &[]))
            .chain([site("BIG000", &many)])
            .collect();
        let c = diff(
            Some(&snap(json!({"sites": old_sites}))),
            &snap(json!({"sites": new_sites})),
        );
        assert!(c.truncated);
        assert_eq!(c.added_sites.len(), MAX_SITES);
        assert_eq!(c.added_sites[0], "NEW000");
        assert_eq!(c.removed_sites.len(), MAX_SITES);
        assert_eq!(c.totals.added_sites, 55);
        assert_eq!(c.totals.removed_sites, 60);
        assert_eq!(c.changed_sites.len(), 1);
        assert_eq!(c.changed_sites[0].added_ranges.len(), MAX_ENTRIES_PER_SITE);
        assert_eq!(c.changed_sites[0].added_ranges[0], "192.0.2.0/32");
        assert_eq!(c.totals.added_ranges, 30);
    }

    #[test]
    fn small_change_is_not_marked_truncated() {
        let old = snap(json!({"sites": [site("A1", &["192.0.2.1"])]}));
        let new = snap(json!({"sites": [site("A1", &["192.0.2.2"])]}));
        assert!(!diff(Some(&old), &new).truncated);
    }

    #[test]
    fn serializes_for_status() {
        let old = snap(json!({"sites": [site("A1", &["192.0.2.1"])]}));
        let new = snap(json!({"sites": [site("A1", &["192.0.2.2"])]}));
        let v = serde_json::to_value(diff(Some(&old), &new)).expect("json");
        assert_eq!(
            v,
            json!({
                "added_sites": [], "removed_sites": [],
                "changed_sites": [{"id": "A1", "added_ranges": ["192.0.2.2/32"], "removed_ranges": ["192.0.2.1/32"],
                                   "added_exceptions": [], "removed_exceptions": []}],
                "totals": {"added_sites": 0, "removed_sites": 0, "changed_sites": 1, "added_ranges": 1,
                           "removed_ranges": 1, "added_exceptions": 0, "removed_exceptions": 0},
                "truncated": false
            })
        );
    }

    /// 100k ranges: drop the first range of every 100th site, add one range
    /// to every 1000th site, drop one site. Checks the counts and prints the
    /// time (`cargo test --release -- --nocapture diff_at_100k`).
    #[test]
    fn diff_at_100k_ranges() {
        let text = crate::allowlist::synth::synthetic_document(100_000, 7);
        let old = compile(text.as_bytes(), &CompileOptions::default()).expect("synthetic");
        assert_eq!(old.range_count(), 100_000);

        let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
        let sites = doc["sites"].as_array_mut().expect("sites");
        let gone = sites.remove(5);
        let gone_ranges = gone["ranges"].as_array().map_or(0, Vec::len);
        let (mut removed, mut added) = (0, 0);
        for (i, s) in sites.iter_mut().enumerate() {
            let ranges = s["ranges"].as_array_mut().expect("ranges");
            if i % 100 == 0 {
                ranges.remove(0);
                removed += 1;
            }
            if i % 1000 == 0 {
                ranges.push(json!(format!("198.51.100.{}", i / 1000)));
                added += 1;
            }
        }
        let site_count = sites.len();
        let new = compile(doc.to_string().as_bytes(), &CompileOptions::default()).expect("edited");

        let start = std::time::Instant::now();
        let c = diff(Some(&old), &new);
        let took = start.elapsed();
        eprintln!("diff of two 100k-range snapshots: {took:?}");
        let start = std::time::Instant::now();
        let first = diff(None, &old);
        eprintln!("diff from nothing to 100k ranges: {:?}", start.elapsed());

        assert_eq!(c.totals.removed_sites, 1);
        assert_eq!(c.totals.removed_ranges, removed + gone_ranges);
        assert_eq!(c.totals.added_ranges, added);
        assert_eq!(c.totals.changed_sites, site_count.div_ceil(100));
        assert!(c.truncated);
        assert_eq!(first.totals.added_ranges, 100_000);
        assert_eq!(first.added_sites.len(), MAX_SITES);
    }
}
