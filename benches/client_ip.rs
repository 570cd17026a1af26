//! Client-IP resolution cost per request: no header, 1 hop and 10 hops, both header modes.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use poortwachter::client_ip::{resolve, HeaderMode, PeerAddr, TrustedProxies};

fn trusted() -> TrustedProxies {
    TrustedProxies::new(
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fd00::/8"]
            .iter()
            .map(|s| s.parse().expect("valid network")),
    )
}

/// A header of `hops` elements: the client, then `hops - 1` trusted proxies.
fn xff(hops: usize) -> String {
    let mut parts = vec!["203.0.113.50".to_string()];
    parts.extend((1..hops).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)));
    parts.join(", ")
}

fn forwarded(hops: usize) -> String {
    let mut parts = vec!["for=\"[2001:db8:12::7]:4711\";proto=https".to_string()];
    parts.extend((1..hops).map(|i| format!("for=10.0.{}.{}", i / 250, i % 250 + 1)));
    parts.join(", ")
}

fn bench(c: &mut Criterion) {
    let t = trusted();
    let peer = PeerAddr(Some("10.1.1.1".parse().expect("valid address")));
    let mut g = c.benchmark_group("client_ip");
    g.bench_function("no_header", |b| {
        b.iter(|| {
            resolve(
                black_box(peer),
                std::iter::empty(),
                HeaderMode::XForwardedFor,
                &t,
            )
        })
    });
    for hops in [1, 10] {
        let h = xff(hops);
        g.bench_function(format!("xff_{hops}_hops"), |b| {
            b.iter(|| {
                resolve(
                    black_box(peer),
                    std::iter::once(black_box(h.as_bytes())),
                    HeaderMode::XForwardedFor,
                    &t,
                )
            })
        });
        let h = forwarded(hops);
        g.bench_function(format!("forwarded_{hops}_hops"), |b| {
            b.iter(|| {
                resolve(
                    black_box(peer),
                    std::iter::once(black_box(h.as_bytes())),
                    HeaderMode::Forwarded,
                    &t,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
