//! Allowlist benches: per-request lookup cost (1k and 100k ranges, IPv4 and
//! IPv6, hit and miss) and the cost of compiling a 100k-range document off
//! the hot path. Data comes from the deterministic synthetic generator, so
//! runs are comparable.
//!
//! `lookup_structures` compares the snapshot's table (sorted disjoint
//! segments, one binary search) with other layouts of the same ranges: a
//! bare binary search over parallel arrays, a two-level search (an index of
//! every 64th start, then one block), and the Eytzinger (BFS) order with a
//! branchless descent. benches/README.md has the numbers that chose the table.

use std::hint::black_box;
use std::net::IpAddr;

use ipnet::IpNet;

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

/// The other layouts work on disjoint ranges (the synthetic documents have no
/// overlaps), each range with one value.
struct Flat<K> {
    starts: Vec<K>,
    ends: Vec<K>,
    values: Vec<u32>,
}

impl<K: Copy + Ord> Flat<K> {
    fn new(mut ranges: Vec<(K, K, u32)>) -> Self {
        ranges.sort_unstable();
        Flat {
            starts: ranges.iter().map(|r| r.0).collect(),
            ends: ranges.iter().map(|r| r.1).collect(),
            values: ranges.iter().map(|r| r.2).collect(),
        }
    }

    fn get(&self, key: K) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= key).checked_sub(1)?;
        (key <= self.ends[i]).then(|| self.values[i])
    }
}

/// An index of every `BLOCK`-th start, small enough to stay in cache, then a
/// search inside one block: the table's layout before it was measured.
struct TwoLevel<K> {
    index: Vec<K>,
    flat: Flat<K>,
}

const BLOCK: usize = 64;

impl<K: Copy + Ord> TwoLevel<K> {
    fn new(ranges: Vec<(K, K, u32)>) -> Self {
        let flat = Flat::new(ranges);
        let index = flat.starts.iter().step_by(BLOCK).copied().collect();
        TwoLevel { index, flat }
    }

    fn get(&self, key: K) -> Option<u32> {
        let block = self.index.partition_point(|&s| s <= key).checked_sub(1)?;
        let from = block * BLOCK;
        let to = (from + BLOCK).min(self.flat.starts.len());
        let i =
            (from + self.flat.starts[from..to].partition_point(|&s| s <= key)).checked_sub(1)?;
        (key <= self.flat.ends[i]).then(|| self.flat.values[i])
    }
}

/// Starts in Eytzinger order (node k has children 2k and 2k+1, 1-based), so the
/// first levels of every search share cache lines; the descent has no branch
/// on the comparison.
struct Eytzinger<K> {
    tree: Vec<K>,
    /// Sorted position of each tree node, to find its end and value.
    rank: Vec<u32>,
    flat: Flat<K>,
}

impl<K: Copy + Ord + Default> Eytzinger<K> {
    fn new(ranges: Vec<(K, K, u32)>) -> Self {
        let flat = Flat::new(ranges);
        let n = flat.starts.len();
        let mut tree = vec![K::default(); n + 1];
        let mut rank = vec![0u32; n + 1];
        fn fill<K: Copy>(s: &[K], t: &mut [K], r: &mut [u32], i: &mut usize, k: usize) {
            if k < t.len() {
                fill(s, t, r, i, 2 * k);
                t[k] = s[*i];
                r[k] = *i as u32;
                *i += 1;
                fill(s, t, r, i, 2 * k + 1);
            }
        }
        fill(&flat.starts, &mut tree, &mut rank, &mut 0, 1);
        Eytzinger { tree, rank, flat }
    }

    fn get(&self, key: K) -> Option<u32> {
        // Find the first start > key, then step back to the last start <= key.
        let mut k = 1usize;
        while k < self.tree.len() {
            k = 2 * k + usize::from(self.tree[k] <= key);
        }
        k >>= k.trailing_ones() + 1;
        let i = if k == 0 {
            self.flat.starts.len()
        } else {
            self.rank[k] as usize
        };
        let i = i.checked_sub(1)?;
        (key <= self.flat.ends[i]).then(|| self.flat.values[i])
    }
}

fn lookup_structures(c: &mut Criterion) {
    let snap = snapshot(100_000);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (net, site) in snap.ranges() {
        match net {
            IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), site)),
            IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), site)),
        }
    }
    let (flat4, flat6) = (Flat::new(v4.clone()), Flat::new(v6.clone()));
    let (two4, two6) = (TwoLevel::new(v4.clone()), TwoLevel::new(v6.clone()));
    let (eytz4, eytz6) = (Eytzinger::new(v4), Eytzinger::new(v6));
    let mut group = c.benchmark_group("lookup_structures");
    group.throughput(Throughput::Elements(1));
    for (name, kind) in [
        ("v4_hit", AddressKind::V4Hit),
        ("v4_miss", AddressKind::V4Miss),
        ("v6_hit", AddressKind::V6Hit),
        ("v6_miss", AddressKind::V6Miss),
    ] {
        let addrs: Vec<IpAddr> = sample_addresses(&snap, kind, SAMPLES, 2);
        for a in &addrs {
            let expected = snap.sites_for(*a).first().copied();
            let got = match a {
                IpAddr::V4(ip) => {
                    let k = u32::from(*ip);
                    [flat4.get(k), two4.get(k), eytz4.get(k)]
                }
                IpAddr::V6(ip) => {
                    let k = u128::from(*ip);
                    [flat6.get(k), two6.get(k), eytz6.get(k)]
                }
            };
            assert_eq!(got, [expected; 3], "{a}: the layouts disagree");
        }
        let mut i = 0usize;
        group.bench_with_input(BenchmarkId::new("table", name), &addrs, |b, addrs| {
            b.iter(|| {
                i = (i + 1) & (SAMPLES - 1);
                black_box(snap.sites_for(black_box(addrs[i])).first().copied())
            })
        });
        group.bench_with_input(
            BenchmarkId::new("binary_search", name),
            &addrs,
            |b, addrs| {
                b.iter(|| {
                    i = (i + 1) & (SAMPLES - 1);
                    black_box(match black_box(addrs[i]) {
                        IpAddr::V4(ip) => flat4.get(u32::from(ip)),
                        IpAddr::V6(ip) => flat6.get(u128::from(ip)),
                    })
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("two_level", name), &addrs, |b, addrs| {
            b.iter(|| {
                i = (i + 1) & (SAMPLES - 1);
                black_box(match black_box(addrs[i]) {
                    IpAddr::V4(ip) => two4.get(u32::from(ip)),
                    IpAddr::V6(ip) => two6.get(u128::from(ip)),
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("eytzinger", name), &addrs, |b, addrs| {
            b.iter(|| {
                i = (i + 1) & (SAMPLES - 1);
                black_box(match black_box(addrs[i]) {
                    IpAddr::V4(ip) => eytz4.get(u32::from(ip)),
                    IpAddr::V6(ip) => eytz6.get(u128::from(ip)),
                })
            })
        });
    }
    group.finish();
}

/// The same comparison as `lookup_structures`, robust against a busy machine:
/// the layouts take turns in short slices (4096 lookups), the order rotated
/// every round, so whatever else runs on the machine hits each layout alike;
/// prints the median ns per lookup over 41 rounds. Runs when the filter names
/// `lookup_alternated` (or there is no filter).
fn lookup_alternated(_: &mut Criterion) {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| f.contains("lookup_alternated")) {
        return;
    }
    let snap = snapshot(100_000);
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for (net, site) in snap.ranges() {
        match net {
            IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), site)),
            IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), site)),
        }
    }
    let (flat4, flat6) = (Flat::new(v4.clone()), Flat::new(v6.clone()));
    let (two4, two6) = (TwoLevel::new(v4.clone()), TwoLevel::new(v6.clone()));
    let (eytz4, eytz6) = (Eytzinger::new(v4), Eytzinger::new(v6));
    type Layout<'a> = (&'static str, &'a dyn Fn(IpAddr) -> Option<u32>);
    let layouts: [Layout<'_>; 4] = [
        ("table", &|a| snap.sites_for(a).first().copied()),
        ("binary_search", &|a| match a {
            IpAddr::V4(ip) => flat4.get(u32::from(ip)),
            IpAddr::V6(ip) => flat6.get(u128::from(ip)),
        }),
        ("two_level", &|a| match a {
            IpAddr::V4(ip) => two4.get(u32::from(ip)),
            IpAddr::V6(ip) => two6.get(u128::from(ip)),
        }),
        ("eytzinger", &|a| match a {
            IpAddr::V4(ip) => eytz4.get(u32::from(ip)),
            IpAddr::V6(ip) => eytz6.get(u128::from(ip)),
        }),
    ];
    println!("lookup_alternated: median ns per lookup at 100k ranges, 41 alternated rounds");
    println!(
        "{:<10} {:>8} {:>14} {:>10} {:>10}",
        "addresses", "table", "binary_search", "two_level", "eytzinger"
    );
    for (name, kind) in [
        ("v4_hit", AddressKind::V4Hit),
        ("v4_miss", AddressKind::V4Miss),
        ("v6_hit", AddressKind::V6Hit),
        ("v6_miss", AddressKind::V6Miss),
    ] {
        let addrs: Vec<IpAddr> = sample_addresses(&snap, kind, SAMPLES, 2);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); layouts.len()];
        for round in 0..41 {
            for k in 0..layouts.len() {
                let which = (k + round) % layouts.len();
                let get = layouts[which].1;
                let started = std::time::Instant::now();
                let mut found = 0u32;
                for &a in &addrs {
                    found = found.wrapping_add(get(black_box(a)).unwrap_or(0));
                }
                black_box(found);
                times[which].push(started.elapsed().as_nanos() as f64 / addrs.len() as f64);
            }
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let m: Vec<f64> = times.iter_mut().map(median).collect();
        println!(
            "{name:<10} {:>8.1} {:>14.1} {:>10.1} {:>10.1}",
            m[0], m[1], m[2], m[3]
        );
    }
}

criterion_group!(
    benches,
    lookup,
    lookup_structures,
    lookup_alternated,
    compile_100k
);
criterion_main!(benches);
