//! Allowlist benches: per-request lookup cost (1k and 100k ranges, IPv4 and
//! IPv6, hit and miss) and the cost of compiling a 100k-range document off
//! the hot path. Data comes from the deterministic synthetic generator, so
//! runs are comparable.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use poortwachter::allowlist::synth::{sample_addresses, synthetic_document, AddressKind};
use poortwachter::allowlist::{compile, CompileOptions, Snapshot};

/// Addresses cycled through per case: enough to defeat branch prediction
/// on a single address, few enough to stay out of the measurement. A power
/// of two, so stepping through them is a mask, not a division.
const SAMPLES: usize = 4096;

fn snapshot(ranges: usize) -> Snapshot {
    let doc = synthetic_document(ranges, 1);
    match compile(doc.as_bytes(), &CompileOptions::default()) {
        Ok(s) => s,
        Err(e) => panic!("synthetic document rejected: {e}"),
    }
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("sites_for");
    group.throughput(Throughput::Elements(1));
    for ranges in [1_000, 100_000] {
        let snap = snapshot(ranges);
        for (name, kind) in [
            ("v4_hit", AddressKind::V4Hit),
            ("v4_miss", AddressKind::V4Miss),
            ("v6_hit", AddressKind::V6Hit),
            ("v6_miss", AddressKind::V6Miss),
        ] {
            let addrs: Vec<IpAddr> = sample_addresses(&snap, kind, SAMPLES, 2);
            assert_eq!(addrs.len(), SAMPLES, "{name}: not enough sample addresses");
            let mut i = 0usize;
            group.bench_with_input(BenchmarkId::new(name, ranges), &addrs, |b, addrs| {
                b.iter(|| {
                    i = (i + 1) & (SAMPLES - 1);
                    black_box(snap.sites_for(black_box(addrs[i])).len())
                })
            });
        }
    }
    group.finish();
}

fn compile_100k(c: &mut Criterion) {
    let doc = synthetic_document(100_000, 1);
    let opts = CompileOptions::default();
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("100k_ranges", |b| {
        b.iter(|| compile(black_box(doc.as_bytes()), &opts).map(|s| s.range_count()))
    });
    group.finish();
}

criterion_group!(benches, lookup, compile_100k);
criterion_main!(benches);
