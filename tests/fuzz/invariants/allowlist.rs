// What must hold for any allowlist document the admin store can serve; shared by the fuzz
// target `allowlist` and the corpus replay on stable (`tests/fuzz_corpus.rs`).
//
// Input: the document bytes, compiled with the default limits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use poortwachter::allowlist::{compile, CompileOptions, DocumentError, Snapshot};
use poortwachter::client_ip::{canonical, canonical_net};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Compiling is deterministic and never panics; the snapshot answers exactly what its ranges
/// say, every accepted range and exception is written in the document (under the site it is
/// attributed to), every range entry of an accepted site is either accepted or quarantined,
/// stricter limits only remove ranges, and the same document written out again by a JSON
/// printer compiles to the same snapshot.
pub fn check(data: &[u8]) {
    let opts = CompileOptions::default();
    let snap = match compile(data, &opts) {
        Ok(snap) => snap,
        Err(e) => return check_error(data, &e),
    };
    let again = compile(data, &opts).expect("compiles twice");
    assert_same(&snap, &again, "compiled twice");
    assert_eq!(
        data.iter().find(|b| !b.is_ascii_whitespace()),
        Some(&b'{'),
        "only an object compiles"
    );
    check_limits(&snap, &opts);
    check_lookups(&snap, data);

    let strict = CompileOptions {
        max_prefix_v4: 24,
        max_prefix_v6: 48,
    };
    if let Ok(narrow) = compile(data, &strict) {
        assert_eq!(
            narrow.sites(),
            snap.sites(),
            "the limits do not change sites"
        );
        let mut wide = snap.ranges();
        for range in narrow.ranges() {
            assert!(
                wide.any(|r| r == range),
                "{range:?} accepted only under stricter limits"
            );
        }
    }

    // Documents serde_json cannot read as a whole (a number out of f64 range in an ignored
    // field, say) are only checked above.
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check_against_document(&snap, &doc);
    let printed = serde_json::to_vec_pretty(&doc).expect("print");
    let reread = compile(&printed, &opts).expect("the printed document compiles");
    assert_same(&snap, &reread, "printed and compiled again");
}

fn check_error(data: &[u8], e: &DocumentError) {
    assert!(!e.to_string().is_empty());
    match e {
        DocumentError::Truncated { line, .. } | DocumentError::NotJson { line, .. } => {
            assert!(*line >= 1, "{e}");
        }
        DocumentError::Empty => assert!(data.iter().all(u8::is_ascii_whitespace)),
        _ => {}
    }
    assert_eq!(
        compile(data, &CompileOptions::default()).err().as_ref(),
        Some(e),
        "refused twice the same way"
    );
}

fn assert_same(a: &Snapshot, b: &Snapshot, what: &str) {
    assert_eq!(a.version(), b.version(), "{what}: version");
    assert_eq!(a.sites(), b.sites(), "{what}: sites");
    assert!(a.ranges().eq(b.ranges()), "{what}: ranges");
    assert_eq!(a.exceptions(), b.exceptions(), "{what}: exceptions");
    assert_eq!(a.quarantined(), b.quarantined(), "{what}: quarantined");
    assert_eq!(
        a.unknown_fields(),
        b.unknown_fields(),
        "{what}: unknown fields"
    );
}

/// Accepted ranges and exceptions are canonical networks within the limits.
fn check_limits(snap: &Snapshot, opts: &CompileOptions) {
    let nets = snap
        .ranges()
        .map(|(net, site)| (net, site as usize))
        .chain(snap.exceptions().iter().map(|e| (e.range, e.site as usize)));
    for (net, site) in nets {
        assert!(site < snap.site_count(), "{net} of site {site}");
        assert_eq!(net, canonical_net(net), "{net} is canonical");
        assert_eq!(net, net.trunc(), "{net} has no host bits");
        let max = match net {
            IpNet::V4(_) => opts.max_prefix_v4,
            IpNet::V6(_) => opts.max_prefix_v6,
        };
        assert!(net.prefix_len() >= max, "{net} broader than /{max}");
    }
    for (i, site) in snap.sites().iter().enumerate() {
        assert_eq!(snap.site_index(&site.id), Some(i as u32), "{}", site.id);
    }
    for e in snap.exceptions() {
        assert!(e.not_before < e.not_after, "{e:?}");
    }
}

/// The boundaries of every range (±1), their IPv4-mapped spellings, and a few addresses
/// taken from the input bytes.
fn probes(snap: &Snapshot, data: &[u8]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let nets = snap
        .ranges()
        .map(|(net, _)| net)
        .chain(snap.exceptions().iter().map(|e| e.range));
    for net in nets {
        match net {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                for a in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    out.push(IpAddr::V4(Ipv4Addr::from(a)));
                    out.push(IpAddr::V6(Ipv4Addr::from(a).to_ipv6_mapped()));
                }
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                for a in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                    out.push(IpAddr::V6(Ipv6Addr::from(a)));
                }
            }
        }
    }
    for chunk in data.chunks(16).take(8) {
        let mut v6 = [0u8; 16];
        v6[..chunk.len()].copy_from_slice(chunk);
        out.push(IpAddr::V6(Ipv6Addr::from(v6)));
        let v4 = [v6[0], v6[1], v6[2], v6[3]];
        out.push(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    out
}

/// `sites_for` and `exceptions_for` answer exactly what the accepted ranges and exceptions
/// contain, no more and no less.
fn check_lookups(snap: &Snapshot, data: &[u8]) {
    let base = snap.exceptions().as_ptr();
    for ip in probes(snap, data) {
        let canon = canonical(ip);
        let got = snap.sites_for(ip);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{ip}: sorted, unique");
        let mut want: Vec<u32> = snap
            .ranges()
            .filter(|(net, _)| net.contains(&canon))
            .map(|(_, site)| site)
            .collect();
        want.sort_unstable();
        want.dedup();
        assert_eq!(got, &want[..], "sites for {ip}");
        assert_eq!(snap.sites_for(canon), got, "{ip} and {canon}");

        let mut moments: Vec<OffsetDateTime> = snap
            .exceptions()
            .iter()
            .filter(|e| e.range.contains(&canon))
            .flat_map(|e| {
                [
                    e.not_before,
                    e.not_after,
                    e.not_after - time::Duration::NANOSECOND,
                ]
            })
            .take(12)
            .collect();
        moments.push(OffsetDateTime::UNIX_EPOCH);
        for at in moments {
            let mut got: Vec<usize> = snap
                .exceptions_for(ip, at)
                .map(|e| (e as *const _ as usize - base as usize) / std::mem::size_of_val(e))
                .collect();
            got.sort_unstable();
            let want: Vec<usize> = snap
                .exceptions()
                .iter()
                .enumerate()
                .filter(|(_, e)| e.range.contains(&canon) && e.is_valid_at(at))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(got, want, "exceptions for {ip} at {at}");
        }
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

/// Everything accepted is written in the document, under the site it is attributed to (the
/// first site with that id), and every range entry of an accepted site is accounted for.
fn check_against_document(snap: &Snapshot, doc: &Value) {
    let sites = doc
        .get("sites")
        .and_then(Value::as_array)
        .expect("a compiled document has a sites array");
    let version = doc.get("version").and_then(Value::as_str);
    assert_eq!(snap.version(), version, "version");
    let written = |id: &str| {
        sites
            .iter()
            .find(|s| s.get("id").and_then(Value::as_str) == Some(id))
            .unwrap_or_else(|| panic!("site {id} is not in the document"))
    };
    for (idx, site) in snap.sites().iter().enumerate() {
        let entry = written(&site.id);
        assert_eq!(
            site.name.as_deref(),
            entry.get("name").and_then(Value::as_str),
            "name of {}",
            site.id
        );
        let texts: Vec<&str> = entry
            .get("ranges")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let accepted: Vec<IpNet> = snap
            .ranges()
            .filter(|&(_, s)| s as usize == idx)
            .map(|(net, _)| net)
            .collect();
        for net in &accepted {
            assert!(
                texts.iter().any(|t| meanings(t).contains(net)),
                "{net} of {} is not written in its ranges {texts:?}",
                site.id
            );
        }
        let quarantined = snap
            .quarantined()
            .iter()
            .filter(|q| q.site == site.id && q.field.starts_with("ranges["))
            .count();
        let listed = entry
            .get("ranges")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        assert_eq!(
            accepted.len() + quarantined,
            listed,
            "every range entry of {} accepted or quarantined once",
            site.id
        );
        let written_exceptions = entry
            .get("exceptions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for e in snap.exceptions().iter().filter(|e| e.site as usize == idx) {
            let time = |v: &Value, name: &str| {
                v.get(name)
                    .and_then(Value::as_str)
                    .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            };
            assert!(
                written_exceptions.iter().any(|w| {
                    w.get("range")
                        .and_then(Value::as_str)
                        .is_some_and(|t| meanings(t).contains(&e.range))
                        && time(w, "not_before") == Some(e.not_before)
                        && time(w, "not_after") == Some(e.not_after)
                        && w.get("reason").and_then(Value::as_str) == e.reason.as_deref()
                }),
                "exception {e:?} of {} is not written in the document",
                site.id
            );
        }
    }
}
