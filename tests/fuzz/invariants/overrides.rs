// What must hold for any overrides file; shared by the fuzz target `overrides` and the
// corpus replay on stable (`tests/fuzz_corpus.rs`).
//
// Input: the file's bytes, loaded at 2026-12-01T09:00:00Z with the default limits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use poortwachter::allowlist::{
    compile_overrides, OverrideAction, OverrideOptions, Overrides, OverridesError,
};
use poortwachter::client_ip::{canonical, canonical_net};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// 2026-12-01T09:00:00Z, the load moment.
const LOADED_AT: i64 = 1_796_115_600;

/// Compiling is deterministic; an error names where the file is wrong; every entry is either
/// accepted or recorded once with its index; an accepted entry is what the file wrote, within
/// the limits, and only ever matches addresses inside its own range.
pub fn check(data: &[u8]) {
    let opts = OverrideOptions::default();
    let now = OffsetDateTime::from_unix_timestamp(LOADED_AT).expect("time");
    let got = match compile_overrides(data, &opts, now) {
        Ok(got) => got,
        Err(e) => return check_error(data, &e),
    };
    assert_eq!(
        compile_overrides(data, &opts, now).as_ref(),
        Ok(&got),
        "compiled twice"
    );
    let doc: Option<Value> = serde_json::from_slice(data).ok();
    let written = doc
        .as_ref()
        .and_then(|d| d.get("entries"))
        .and_then(Value::as_array);

    // Every entry accounted for exactly once, in file order.
    let mut seen: Vec<usize> = got
        .entries()
        .iter()
        .map(|e| e.index)
        .chain(got.quarantined().iter().map(|q| q.entry))
        .collect();
    assert!(got.entries().windows(2).all(|w| w[0].index < w[1].index));
    assert!(got
        .quarantined()
        .windows(2)
        .all(|w| w[0].entry < w[1].entry));
    seen.sort_unstable();
    assert!(seen.iter().enumerate().all(|(i, &e)| i == e), "{seen:?}");
    if let Some(written) = written {
        assert_eq!(
            seen.len(),
            written.len(),
            "every entry accepted or quarantined"
        );
    }
    for q in got.quarantined() {
        let shown = q.to_string();
        let at = if q.field.is_empty() {
            format!("entries[{}] = ", q.entry)
        } else {
            format!("entries[{}].{} = ", q.entry, q.field)
        };
        assert!(shown.starts_with(&at), "{shown:?} names its entry");
        assert!(!q.problem.is_empty());
        assert!(q.value.chars().count() <= 100, "{}", q.value);
    }

    for e in got.entries() {
        assert_eq!(e.range, canonical_net(e.range), "{e:?} canonical");
        assert_eq!(e.range, e.range.trunc(), "{e:?} without host bits");
        let max = match e.range {
            IpNet::V4(_) => opts.compile.max_prefix_v4,
            IpNet::V6(_) => opts.compile.max_prefix_v6,
        };
        assert!(e.range.prefix_len() >= max, "{e:?} broader than /{max}");
        assert!(
            e.expires - now <= Duration::days(i64::from(opts.max_days)),
            "{e:?} beyond the cap"
        );
        assert!(!e.reason.trim().is_empty(), "{e:?} has a reason");
        if let Some(written) = written {
            let w = &written[e.index];
            let text = |name: &str| w.get(name).and_then(Value::as_str);
            assert_eq!(text("action"), Some(e.action.as_str()), "{e:?}");
            let range = text("range").expect("a range string");
            assert!(meanings(range).contains(&e.range), "{e:?} from {range:?}");
            assert_eq!(text("site"), e.site.as_deref(), "{e:?}");
            assert_eq!(text("reason"), Some(e.reason.as_str()), "{e:?}");
            let expires = text("expires").and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
            assert_eq!(expires, Some(e.expires), "{e:?}");
        }
    }
    check_lookups(&got, now);
}

fn check_error(data: &[u8], e: &OverridesError) {
    let shown = e.to_string();
    assert!(shown.starts_with("overrides file"), "{shown}");
    match e {
        OverridesError::Truncated { line, .. } | OverridesError::NotJson { line, .. } => {
            assert!(*line >= 1, "{shown}");
            assert!(shown.contains("line"), "{shown} names the line");
        }
        OverridesError::EntriesMissing | OverridesError::EntriesNotArray { .. } => {
            assert!(shown.contains("`entries`"), "{shown} names the key");
        }
        OverridesError::Empty => assert!(data.iter().all(u8::is_ascii_whitespace)),
        OverridesError::NotAnObject { .. } => {}
    }
}

/// The networks a range string can mean, read by `ipnet` and the standard library.
fn meanings(text: &str) -> Vec<IpNet> {
    let mut out = Vec::new();
    if let Ok(net) = IpNet::from_str(text) {
        out.push(canonical_net(net));
    }
    if let Ok(ip) = IpAddr::from_str(text) {
        out.push(canonical_net(IpNet::from(ip)));
    }
    out
}

/// At each range's boundaries (±1, and their IPv4-mapped spelling), at the load moment and
/// around each expiry: the lookups return exactly the entries that cover the address and are
/// in force, deny entries for `deny_for`, allow entries for `allows_for`.
fn check_lookups(got: &Overrides, now: OffsetDateTime) {
    let mut probes = Vec::new();
    for e in got.entries() {
        match e.range {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                for a in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    probes.push(IpAddr::V4(Ipv4Addr::from(a)));
                    probes.push(IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()));
                }
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                for a in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    probes.push(IpAddr::V6(Ipv6Addr::from(a)));
                }
            }
        }
    }
    let mut moments = vec![now];
    for e in got.entries().iter().take(8) {
        moments.extend([e.expires, e.expires - Duration::NANOSECOND]);
    }
    for ip in probes {
        let canon = canonical(ip);
        let covering: Vec<usize> = got.covering(ip).map(|e| e.index).collect();
        let want: Vec<usize> = got
            .entries()
            .iter()
            .filter(|e| e.range.contains(&canon))
            .map(|e| e.index)
            .collect();
        assert_eq!(covering, want, "covering {ip}");
        for &at in &moments {
            let active = |action| -> Vec<usize> {
                got.entries()
                    .iter()
                    .filter(|e| e.action == action && e.is_active_at(at))
                    .filter(|e| e.range.contains(&canon))
                    .map(|e| e.index)
                    .collect()
            };
            assert_eq!(
                got.deny_for(ip, at).map(|e| e.index),
                active(OverrideAction::Deny).first().copied(),
                "deny for {ip} at {at}"
            );
            assert_eq!(
                got.allows_for(ip, at).map(|e| e.index).collect::<Vec<_>>(),
                active(OverrideAction::Allow),
                "allows for {ip} at {at}"
            );
        }
    }
    let expired = got.expired_count(now);
    assert_eq!(got.active_count(now) + expired, got.entries().len());
}
