//! Tests of the synthetic allowlist generator (`benches/support/synth.rs`), run
//! once, with the library's unit tests, rather than in every target that
//! includes it.

use ipnet::IpNet;

use super::synth::*;
use super::{compile, CompileOptions, Snapshot};

#[test]
fn deterministic_for_a_seed() {
    assert_eq!(synthetic_document(500, 7), synthetic_document(500, 7));
    assert_ne!(synthetic_document(500, 7), synthetic_document(500, 8));
}

#[test]
fn compiles_cleanly_with_exact_range_count() {
    for n in [0, 1, 9, 1_000, 20_000] {
        let doc = synthetic_document(n, 42);
        let s = compile(doc.as_bytes(), &CompileOptions::default()).expect("valid");
        assert!(
            s.quarantined().is_empty(),
            "{n}: {:?}",
            &s.quarantined()[..1]
        );
        assert_eq!(s.range_count(), n);
        assert_eq!(s.unknown_fields(), &[("(top).generated_by".to_string(), 1)]);
        if n > 0 {
            assert!(s.exception_count() >= 1);
        }
    }
}

#[test]
fn mix_and_grouping() {
    let doc = synthetic_document(10_000, 1);
    let s = compile(doc.as_bytes(), &CompileOptions::default()).expect("valid");
    let v4 = s
        .ranges()
        .filter(|(n, _)| matches!(n, IpNet::V4(_)))
        .count();
    assert!((5_500..=6_500).contains(&v4), "{v4} IPv4 ranges of 10000");
    assert!(
        (700..=1_500).contains(&s.site_count()),
        "{} sites",
        s.site_count()
    );
    assert!(s.ranges().all(|(net, _)| match net {
        IpNet::V6(n) => "2001:db8::/32"
            .parse::<IpNet>()
            .is_ok_and(|doc| doc.contains(&IpNet::V6(n))),
        IpNet::V4(_) => true,
    }));
}

#[test]
fn ranges_do_not_overlap() {
    let doc = synthetic_document(5_000, 3);
    let s = compile(doc.as_bytes(), &CompileOptions::default()).expect("valid");
    let mut nets: Vec<IpNet> = s.ranges().map(|(n, _)| n).collect();
    nets.sort();
    for pair in nets.windows(2) {
        assert!(
            !pair[0].contains(&pair[1]) && !pair[1].contains(&pair[0]),
            "{} overlaps {}",
            pair[0],
            pair[1]
        );
    }
    // Every range is owned by exactly one site.
    for (net, site) in s.ranges() {
        assert_eq!(s.sites_for(net.network()), &[site]);
        assert_eq!(s.sites_for(net.broadcast()), &[site]);
    }
}

#[test]
fn samples_hit_and_miss() {
    let doc = synthetic_document(2_000, 5);
    let s = compile(doc.as_bytes(), &CompileOptions::default()).expect("valid");
    for kind in [AddressKind::V4Hit, AddressKind::V6Hit] {
        let hits = sample_addresses(&s, kind, 500, 9);
        assert_eq!(hits.len(), 500);
        assert!(hits.iter().all(|&ip| !s.sites_for(ip).is_empty()));
        assert!(hits
            .iter()
            .all(|ip| ip.is_ipv4() == (kind == AddressKind::V4Hit)));
    }
    for kind in [AddressKind::V4Miss, AddressKind::V6Miss] {
        let misses = sample_addresses(&s, kind, 500, 9);
        assert_eq!(misses.len(), 500);
        assert!(misses.iter().all(|&ip| s.sites_for(ip).is_empty()));
        assert!(misses
            .iter()
            .all(|ip| ip.is_ipv4() == (kind == AddressKind::V4Miss)));
    }
    assert_eq!(
        sample_addresses(&s, AddressKind::V4Hit, 5, 1),
        sample_addresses(&s, AddressKind::V4Hit, 5, 1)
    );
    assert!(sample_addresses(&Snapshot::empty(), AddressKind::V6Hit, 5, 1).is_empty());
}

#[test]
fn site_ids_are_valid_and_unique() {
    let ids: std::collections::HashSet<String> = (0..100_000).map(site_id).collect();
    assert_eq!(ids.len(), 100_000);
    assert_eq!(site_id(0), "00AA00");
    assert_eq!(site_id(12_345), "00ET45");
}
