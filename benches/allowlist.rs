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
#[path = "support/synth.rs"]
mod synth;
use poortwachter::allowlist::{compile, CompileOptions, Snapshot};
use synth::{sample_addresses, synthetic_document, AddressKind};

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
        for (name, kind) in KINDS {
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

/// Every layout compared, over the same 100k ranges: the snapshot's own table first.
struct Layouts {
    snap: Snapshot,
    flat: (Flat<u32>, Flat<u128>),
    two_level: (TwoLevel<u32>, TwoLevel<u128>),
    eytzinger: (Eytzinger<u32>, Eytzinger<u128>),
}

impl Layouts {
    const NAMES: [&'static str; 4] = ["table", "binary_search", "two_level", "eytzinger"];

    fn new() -> Self {
        let snap = snapshot(100_000);
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (net, site) in snap.ranges() {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()), site)),
                IpNet::V6(n) => v6.push((u128::from(n.network()), u128::from(n.broadcast()), site)),
            }
        }
        Layouts {
            flat: (Flat::new(v4.clone()), Flat::new(v6.clone())),
            two_level: (TwoLevel::new(v4.clone()), TwoLevel::new(v6.clone())),
            eytzinger: (Eytzinger::new(v4), Eytzinger::new(v6)),
            snap,
        }
    }

    /// The first value for `a` in layout number `which` (an index into `NAMES`).
    #[inline]
    fn get(&self, which: usize, a: IpAddr) -> Option<u32> {
        macro_rules! by_family {
            ($pair:expr) => {
                match a {
                    IpAddr::V4(ip) => $pair.0.get(u32::from(ip)),
                    IpAddr::V6(ip) => $pair.1.get(u128::from(ip)),
                }
            };
        }
        match which {
            0 => self.snap.sites_for(a).first().copied(),
            1 => by_family!(self.flat),
            2 => by_family!(self.two_level),
            _ => by_family!(self.eytzinger),
        }
    }

    /// Sample addresses of `kind`, after checking that every layout finds the same.
    fn addresses(&self, kind: AddressKind) -> Vec<IpAddr> {
        let addrs: Vec<IpAddr> = sample_addresses(&self.snap, kind, SAMPLES, 2);
        assert_eq!(addrs.len(), SAMPLES, "not enough sample addresses");
        for &a in &addrs {
            let found: Vec<Option<u32>> = (0..Self::NAMES.len()).map(|w| self.get(w, a)).collect();
            assert!(
                found.iter().all(|f| *f == found[0]),
                "{a}: the layouts disagree: {found:?}"
            );
        }
        addrs
    }
}

const KINDS: [(&str, AddressKind); 4] = [
    ("v4_hit", AddressKind::V4Hit),
    ("v4_miss", AddressKind::V4Miss),
    ("v6_hit", AddressKind::V6Hit),
    ("v6_miss", AddressKind::V6Miss),
];

fn lookup_structures(c: &mut Criterion) {
    let layouts = Layouts::new();
    let mut group = c.benchmark_group("lookup_structures");
    group.throughput(Throughput::Elements(1));
    for (name, kind) in KINDS {
        let addrs = layouts.addresses(kind);
        for (which, layout) in Layouts::NAMES.iter().enumerate() {
            let mut i = 0usize;
            group.bench_with_input(BenchmarkId::new(*layout, name), &addrs, |b, addrs| {
                b.iter(|| {
                    i = (i + 1) & (SAMPLES - 1);
                    black_box(layouts.get(which, black_box(addrs[i])))
                })
            });
        }
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
    let layouts = Layouts::new();
    let n = Layouts::NAMES.len();
    println!("lookup_alternated: median ns per lookup at 100k ranges, 41 alternated rounds");
    println!(
        "{:<10} {:>8} {:>14} {:>10} {:>10}",
        "addresses", "table", "binary_search", "two_level", "eytzinger"
    );
    for (name, kind) in KINDS {
        let addrs = layouts.addresses(kind);
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); n];
        for round in 0..41 {
            for k in 0..n {
                let which = (k + round) % n;
                let started = std::time::Instant::now();
                let mut found = 0u32;
                for &a in &addrs {
                    found = found.wrapping_add(layouts.get(which, black_box(a)).unwrap_or(0));
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
