//! Block-page rendering cost: HTML (pre-rendered segments plus dynamic parts) and JSON.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use poortwachter::page::{BlockPageConfig, PageKind, PageRequest, Pages};
use poortwachter::request_id::RequestId;
use std::collections::BTreeMap;

fn bench(c: &mut Criterion) {
    let pages = Pages::new(&BlockPageConfig {
        support_contact: BTreeMap::new(),
        admin_store_name: "Basispoort".into(),
    })
    .expect("shipped pages are valid");
    let id = RequestId::from_u64(42);
    let mut g = c.benchmark_group("page");
    for (name, ip, accept) in [
        ("html_v4", "203.0.113.50", None),
        ("html_v6", "2001:db8:99::7", None),
        ("json_v4", "203.0.113.50", Some(&b"application/json"[..])),
    ] {
        let ip = ip.parse().expect("valid address");
        g.bench_function(name, |b| {
            b.iter(|| {
                pages.render(black_box(&PageRequest {
                    kind: PageKind::Location,
                    status: 403,
                    reason: "not_registered",
                    client_ip: Some(ip),
                    request_id: &id,
                    accept,
                    accept_language: Some(b"nl-NL,nl;q=0.9,en;q=0.8"),
                    registered: None,
                }))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
