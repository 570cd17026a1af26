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

    /// Add a report in its JSON form ([`WouldBlockReport::json`], e.g. another replica's
    /// `/would-block`): counts add up, first and last seen widen, within the same bounds as
    /// [`WouldBlockReport::record`] (an entry beyond them is counted as dropped). Nothing is
    /// added when the document is not such a report; the error names the part and value.
    pub fn merge_json(&self, doc: &serde_json::Value) -> Result<(), String> {
        let parsed = parse_report(doc)?;
        let (max_schools, max_unattributed) = self.limits();
        let mut inner = self.lock();
        if let Some(since) = parsed.since {
            inner.since = Some(inner.since.map_or(since, |s| s.min(since)));
        }
        inner.dropped += parsed.dropped;
        inner.dropped_unattributed += parsed.dropped_unattributed;
        for (key, seen) in parsed.entries {
            if let Some(have) = inner.entries.get_mut(&key) {
                have.add(&seen);
                continue;
            }
            let attributed = inner.entries.len() - inner.unattributed;
            if key.site.is_none() {
                if inner.unattributed >= max_unattributed {
                    inner.dropped_unattributed += seen.count;
                    continue;
                }
                inner.unattributed += 1;
            } else if attributed >= max_schools {
                inner.dropped += seen.count;
                continue;
            }
            inner.entries.insert(key, seen);
        }
        Ok(())
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

/// A report's JSON form read back.
struct Parsed {
    since: Option<OffsetDateTime>,
    dropped: u64,
    dropped_unattributed: u64,
    entries: Vec<(Key, Seen)>,
}

fn parse_report(doc: &serde_json::Value) -> Result<Parsed, String> {
    use serde_json::Value;
    let time = |v: &Value, at: &str| -> Result<OffsetDateTime, String> {
        let s = v
            .as_str()
            .ok_or_else(|| format!("{at}: expected an RFC 3339 time, got {v}"))?;
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| format!("{at}: {s:?}: {e}"))
    };
    let count = |v: &Value, at: &str| -> Result<u64, String> {
        v.as_u64()
            .ok_or_else(|| format!("{at}: expected a count, got {v}"))
    };
    let sites = doc["sites"]
        .as_array()
        .ok_or_else(|| "sites: expected a list (is this a /would-block answer?)".to_string())?;
    let since = match &doc["since"] {
        Value::Null => None,
        v => Some(time(v, "since")?),
    };
    let mut entries = Vec::new();
    for (i, site) in sites.iter().enumerate() {
        let name = match &site["site"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            v => return Err(format!("sites[{i}].site: expected an id or null, got {v}")),
        };
        let reasons = site["reasons"]
            .as_array()
            .ok_or_else(|| format!("sites[{i}].reasons: expected a list"))?;
        for (j, r) in reasons.iter().enumerate() {
            let at = format!("sites[{i}].reasons[{j}]");
            let reason = r["reason"]
                .as_str()
                .and_then(|name| Reason::ALL.into_iter().find(|x| x.as_str() == name))
                .ok_or_else(|| format!("{at}.reason: not a reason: {}", r["reason"]))?;
            let address = match &r["address"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                v => return Err(format!("{at}.address: expected text or null, got {v}")),
            };
            let seen = Seen {
                count: count(&r["count"], &format!("{at}.count"))?,
                first: time(&r["first_seen"], &format!("{at}.first_seen"))?,
                last: time(&r["last_seen"], &format!("{at}.last_seen"))?,
            };
            let key = Key {
                site: name.clone(),
                reason,
                address,
            };
            entries.push((key, seen));
        }
    }
    Ok(Parsed {
        since,
        dropped: count(&doc["dropped"], "dropped")?,
        dropped_unattributed: count(&doc["dropped_unattributed"], "dropped_unattributed")?,
        entries,
    })
}

/// Another gate's report: `GET url` (its `/would-block`) with the admin token, as JSON.
/// For `report --merge` and the hand-over of an upgrade; blocks the calling thread (neither
/// runs inside a runtime).
pub fn fetch(
    url: &str,
    token: &str,
    timeout: std::time::Duration,
) -> Result<serde_json::Value, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let resp = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered {}", resp.status()));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| format!("not JSON: {e}"))
    })
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
    fn replicas_merge_into_one_report() {
        let (a, b) = (WouldBlockReport::default(), WouldBlockReport::default());
        let t0 = datetime!(2026-12-01 08:00 UTC);
        let t1 = datetime!(2026-12-01 09:00 UTC);
        let t2 = datetime!(2026-12-01 10:00 UTC);
        a.record(Some("12AB00"), Reason::OtherSite, Some("192.0.2.0/24"), t1);
        a.record(None, Reason::NotRegistered, Some("203.0.113.0/24"), t1);
        b.record(Some("12AB00"), Reason::OtherSite, Some("192.0.2.0/24"), t0);
        b.record(Some("12AB00"), Reason::OtherSite, Some("192.0.2.0/24"), t2);
        b.record(Some("34CD01"), Reason::ClaimMissing, None, t2);
        let merged = WouldBlockReport::default();
        merged.merge_json(&a.json()).unwrap();
        merged.merge_json(&b.json()).unwrap();
        let j = merged.json();
        assert_eq!(j["entries"], 3);
        assert_eq!(j["since"], "2026-12-01T08:00:00Z");
        let first = &j["sites"][0];
        assert_eq!(first["site"], "12AB00");
        assert_eq!(first["count"], 3);
        assert_eq!(first["reasons"][0]["first_seen"], "2026-12-01T08:00:00Z");
        assert_eq!(first["reasons"][0]["last_seen"], "2026-12-01T10:00:00Z");
        // One request each: no school first, then by id.
        assert_eq!(j["sites"][1]["site"], serde_json::Value::Null);
        assert_eq!(j["sites"][2]["site"], "34CD01");
        assert_eq!(
            j["sites"][2]["reasons"][0]["address"],
            serde_json::Value::Null
        );
        // One report merged into an empty one reads back as itself.
        let copy = WouldBlockReport::default();
        copy.merge_json(&b.json()).unwrap();
        assert_eq!(copy.json(), b.json());
    }

    #[test]
    fn a_merge_keeps_the_bounds_and_adds_what_was_dropped() {
        let full = WouldBlockReport::with_limits(1, 1);
        let t = datetime!(2026-12-01 08:00 UTC);
        full.record(Some("A"), Reason::OtherSite, None, t);
        full.record(Some("B"), Reason::OtherSite, None, t); // dropped there
        let other = WouldBlockReport::default();
        for _ in 0..4 {
            other.record(Some("C"), Reason::OtherSite, None, t);
        }
        other.record(None, Reason::NotRegistered, Some("203.0.113.0/24"), t);
        other.record(None, Reason::NotRegistered, Some("198.51.100.0/24"), t);
        let merged = WouldBlockReport::with_limits(1, 1);
        merged.merge_json(&full.json()).unwrap();
        merged.merge_json(&other.json()).unwrap();
        let j = merged.json();
        assert_eq!(j["entries"], 2);
        // B's one request, C's four.
        assert_eq!(j["dropped"], 5);
        assert_eq!(j["dropped_unattributed"], 1);
    }

    #[test]
    fn a_document_that_is_no_report_is_refused_whole() {
        let r = WouldBlockReport::default();
        let t = datetime!(2026-12-01 08:00 UTC);
        r.record(Some("A"), Reason::OtherSite, None, t);
        let mut doc = r.json();
        doc["sites"][0]["reasons"][0]["reason"] = "gone_fishing".into();
        let before = WouldBlockReport::default();
        before.merge_json(&r.json()).unwrap();
        let e = before.merge_json(&doc).unwrap_err();
        assert!(
            e.contains("sites[0].reasons[0].reason") && e.contains("gone_fishing"),
            "{e}"
        );
        assert_eq!(
            before.json(),
            r.json(),
            "nothing of the refused document was added"
        );
        let mut doc = r.json();
        doc["sites"][0]["reasons"][0]["last_seen"] = "yesterday".into();
        let e = before.merge_json(&doc).unwrap_err();
        assert!(e.contains("last_seen") && e.contains("yesterday"), "{e}");
        let e = before
            .merge_json(&serde_json::json!({"error": "unauthorized"}))
            .unwrap_err();
        assert!(e.contains("sites"), "{e}");
        let mut doc = r.json();
        doc["dropped"] = (-1).into();
        assert!(before.merge_json(&doc).unwrap_err().contains("dropped"));
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
