//! The lookup structure: possibly overlapping inclusive ranges over a key
//! space (u32 for IPv4, u128 for IPv6), compiled into sorted, disjoint
//! segments that each carry the sorted list of values (site or exception
//! indices) of every input range covering them.
//!
//! Built once per allowlist by a sort (and a sweep when ranges overlap), then
//! read per request with one binary search and no allocation: all value lists
//! live in one flat `Vec<u32>`, each segment holds an (offset, len) into it.

use std::collections::BTreeMap;

/// A key space: IPv4 addresses as u32, IPv6 as u128.
pub(crate) trait Key: Copy + Ord {
    /// What the search compares: the part of a key that orders the segment
    /// starts in practice, half the size of an IPv6 key.
    type Probe: Copy + Ord;

    /// IPv4: the whole address. IPv6: its upper 64 bits, the network half.
    /// Ordering is kept (`a <= b` implies `a.probe() <= b.probe()`), so a
    /// search on probes finds the right segment unless several starts share
    /// the key's probe; [`IntervalTable::get`] settles that rare case.
    fn probe(self) -> Self::Probe;

    /// The next key, or `None` at the top of the space (so a range ending at
    /// 255.255.255.255 or ffff:...:ffff never overflows).
    fn successor(self) -> Option<Self>;

    /// The previous key, or `None` at the bottom of the space.
    fn predecessor(self) -> Option<Self>;

    /// The top of the space.
    const MAX: Self;
}

impl Key for u32 {
    type Probe = u32;
    const MAX: Self = u32::MAX;

    #[inline]
    fn probe(self) -> u32 {
        self
    }

    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn predecessor(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

impl Key for u128 {
    type Probe = u64;
    const MAX: Self = u128::MAX;

    #[inline]
    fn probe(self) -> u64 {
        (self >> 64) as u64
    }

    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }

    fn predecessor(self) -> Option<Self> {
        self.checked_sub(1)
    }
}

/// A segment: where it starts and ends and its slice of the value list.
/// Kept apart from the probes so the search scans only those, and a lookup
/// touches this once, at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment<K> {
    /// First key inside the segment.
    start: K,
    /// Last key inside the segment (inclusive).
    last: K,
    offset: u32,
    len: u32,
    /// The segment's first value, kept here too: most segments have one, and
    /// answering from here saves the lookup a second cache miss in `values`.
    first: u32,
}

/// The flat value list would not fit u32 offsets (only reachable with
/// absurdly many mutually overlapping ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableOverflow {
    pub entries: usize,
}

/// Sorted disjoint covered segments `[start, last]`, each mapping to a
/// non-empty slice of `values`. Uncovered space has no segment,
/// so the arrays hold only what is registered (half the size of a table that
/// also stored the gaps). Touching segments with the same list are merged.
///
/// The search is one binary search over `probes` (every segment's
/// `start.probe()`): for IPv6 an array of u64, half the size of the starts,
/// which keeps more of the search in the CPU cache (benches/README.md has
/// the layouts compared).
#[derive(Debug, Clone)]
pub(crate) struct IntervalTable<K: Key> {
    probes: Box<[K::Probe]>,
    segments: Box<[Segment<K>]>,
    values: Box<[u32]>,
}

impl<K: Key> Default for IntervalTable<K> {
    fn default() -> Self {
        IntervalTable {
            probes: Box::new([]),
            segments: Box::new([]),
            values: Box::new([]),
        }
    }
}

impl<K: Key> IntervalTable<K> {
    /// Build from inclusive ranges `(first, last, value)`; `first > last` is
    /// ignored. Values come out sorted and deduplicated per segment.
    pub(crate) fn build(ranges: &[(K, K, u32)]) -> Result<Self, TableOverflow> {
        match Self::build_disjoint(ranges) {
            Some(table) => Ok(table),
            None => Self::build_sweep(ranges),
        }
    }

    /// The common case, without the sweep: no two ranges overlap, so each range is a
    /// segment of one value (touching ranges of the same value merged, as the sweep
    /// does). `None` as soon as two ranges overlap. At 100k ranges this halves the
    /// table's share of the start-up time.
    fn build_disjoint(ranges: &[(K, K, u32)]) -> Option<Self> {
        let mut sorted: Vec<(K, K, u32)> = ranges
            .iter()
            .copied()
            .filter(|&(first, last, _)| first <= last)
            .collect();
        sorted.sort_unstable();
        let values_fit = u32::try_from(sorted.len()).is_ok();
        let mut segments: Vec<Segment<K>> = Vec::with_capacity(sorted.len());
        let mut values: Vec<u32> = Vec::with_capacity(sorted.len());
        for (first, last, value) in sorted {
            if let Some(prev) = segments.last_mut() {
                if first <= prev.last || !values_fit {
                    return None;
                }
                if prev.last.successor() == Some(first) && values.last() == Some(&value) {
                    prev.last = last;
                    continue;
                }
            }
            segments.push(Segment {
                start: first,
                last,
                offset: values.len() as u32,
                len: 1,
                first: value,
            });
            values.push(value);
        }
        Some(Self::from_parts(segments, values))
    }

    /// The general case: ranges may overlap, segments may carry several values.
    fn build_sweep(ranges: &[(K, K, u32)]) -> Result<Self, TableOverflow> {
        // A sweep over boundary events: +value where a range starts, -value
        // just past where it ends. Between two consecutive boundaries the set
        // of covering values is constant, so that is one segment (or a gap).
        let mut events: Vec<(K, bool, u32)> = Vec::with_capacity(ranges.len() * 2);
        for &(first, last, value) in ranges {
            if first > last {
                continue;
            }
            events.push((first, true, value));
            if let Some(after) = last.successor() {
                events.push((after, false, value));
            }
        }
        events.sort_unstable();

        let mut segments: Vec<Segment<K>> = Vec::new();
        let mut values: Vec<u32> = Vec::new();
        // value -> how many currently open ranges carry it (the same site may
        // list overlapping ranges).
        let mut active: BTreeMap<u32, u32> = BTreeMap::new();
        // Is the last segment still open (running up to the current boundary)?
        let mut open = false;
        let mut i = 0;
        while i < events.len() {
            let at = events[i].0;
            while let Some(&(pos, is_start, value)) = events.get(i) {
                if pos != at {
                    break;
                }
                if is_start {
                    *active.entry(value).or_insert(0) += 1;
                } else if let Some(count) = active.get_mut(&value) {
                    *count -= 1;
                    if *count == 0 {
                        active.remove(&value);
                    }
                }
                i += 1;
            }
            if open {
                if let Some(seg) = segments.last_mut() {
                    let from = seg.offset as usize;
                    let same = values
                        .get(from..from + seg.len as usize)
                        .is_some_and(|prev| prev.iter().copied().eq(active.keys().copied()));
                    if same {
                        // Only a count changed (adjacent or nested ranges of
                        // the same sites): the segment simply continues.
                        continue;
                    }
                    // `at` is above the segment's start, so it has a predecessor.
                    seg.last = at.predecessor().unwrap_or(at);
                }
                open = false;
            }
            if active.is_empty() {
                continue;
            }
            let offset = values.len();
            values.extend(active.keys().copied());
            let (Ok(offset), Ok(len), Ok(_)) = (
                u32::try_from(offset),
                u32::try_from(active.len()),
                u32::try_from(values.len()),
            ) else {
                return Err(TableOverflow {
                    entries: values.len(),
                });
            };
            // Provisional: runs to the top of the space unless a later
            // boundary closes it.
            segments.push(Segment {
                start: at,
                last: K::MAX,
                offset,
                len,
                first: values.get(offset as usize).copied().unwrap_or_default(),
            });
            open = true;
        }
        Ok(Self::from_parts(segments, values))
    }

    fn from_parts(segments: Vec<Segment<K>>, values: Vec<u32>) -> Self {
        IntervalTable {
            probes: segments.iter().map(|s| s.start.probe()).collect(),
            segments: segments.into_boxed_slice(),
            values: values.into_boxed_slice(),
        }
    }

    /// The values of every range containing `key` (sorted, deduplicated).
    #[inline]
    pub(crate) fn get(&self, key: K) -> &[u32] {
        // `after` = number of segments whose probe is <= the key's; all later
        // segments start above `key`.
        let mut after = count_at_most(&self.probes, key.probe());
        let Some(mut seg) = after.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return &[];
        };
        if seg.start > key {
            // Never for IPv4. For IPv6: `seg` starts in the key's /64 but
            // above the key, so the segment holding `key`, if any, is an
            // earlier one: settle it on full keys, among those segments only.
            after = self.segments[..after].partition_point(|s| s.start <= key);
            let Some(earlier) = after.checked_sub(1).and_then(|i| self.segments.get(i)) else {
                return &[];
            };
            seg = earlier;
        }
        if key > seg.last {
            return &[];
        }
        if seg.len == 1 {
            return std::slice::from_ref(&seg.first);
        }
        let from = seg.offset as usize;
        self.values
            .get(from..from + seg.len as usize)
            .unwrap_or(&[])
    }

    /// Number of covered segments (for tests and sizing).
    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// How many of the sorted `xs` are `<= key`: a binary search whose step is a
/// conditional move, not a branch. With random addresses a branch is
/// mispredicted half the time; std's `partition_point` compiled to branches
/// for the u128 keys here and took twice as long (benches/README.md).
#[inline]
fn count_at_most<K: Copy + Ord>(xs: &[K], key: K) -> usize {
    if xs.is_empty() {
        return 0;
    }
    let mut base = 0usize;
    let mut size = xs.len();
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        base = std::hint::select_unpredictable(xs[mid] <= key, mid, base);
        size -= half;
    }
    // `base` is the last index whose element is <= key, or 0 when none is.
    base + usize::from(xs[base] <= key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_at_most_is_partition_point() {
        for n in 0..40u32 {
            let xs: Vec<u32> = (0..n).map(|i| i * 2 + 1).collect();
            for key in 0..(2 * n + 3) {
                assert_eq!(count_at_most(&xs, key), xs.partition_point(|&x| x <= key));
            }
        }
    }

    /// The disjoint fast path builds exactly what the sweep builds, whenever it builds.
    #[test]
    fn disjoint_fast_path_matches_the_sweep() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut fast_built = 0;
        for case in 0..2_000 {
            let count = next(12) as usize;
            let ranges: Vec<(u32, u32, u32)> = (0..count)
                .map(|_| {
                    let first = next(64) as u32;
                    let first = if case % 7 == 0 {
                        u32::MAX - first
                    } else {
                        first
                    };
                    (first, first.saturating_add(next(4) as u32), next(3) as u32)
                })
                .collect();
            let sweep = IntervalTable::build_sweep(&ranges).expect("fits");
            if let Some(fast) = IntervalTable::build_disjoint(&ranges) {
                fast_built += 1;
                assert_eq!(fast.probes, sweep.probes, "{ranges:?}");
                assert_eq!(fast.segments, sweep.segments, "{ranges:?}");
                assert_eq!(fast.values, sweep.values, "{ranges:?}");
            }
        }
        assert!(fast_built > 200, "only {fast_built} disjoint cases");
    }

    fn table32(ranges: &[(u32, u32, u32)]) -> IntervalTable<u32> {
        IntervalTable::build(ranges).expect("fits")
    }

    #[test]
    fn empty_table_finds_nothing() {
        let t = IntervalTable::<u32>::default();
        assert_eq!(t.get(0), &[] as &[u32]);
        assert_eq!(t.get(u32::MAX), &[] as &[u32]);
        let t = table32(&[]);
        assert_eq!(t.segment_count(), 0);
        assert_eq!(t.get(7), &[] as &[u32]);
    }

    #[test]
    fn single_range_edges() {
        let t = table32(&[(10, 19, 4)]);
        assert_eq!(t.get(9), &[] as &[u32]);
        assert_eq!(t.get(10), &[4]);
        assert_eq!(t.get(19), &[4]);
        assert_eq!(t.get(20), &[] as &[u32]);
        assert_eq!(t.segment_count(), 1);
    }

    #[test]
    fn overlapping_ranges_are_split() {
        // 0..=99 site 1, 50..=149 site 2, 60..=69 site 1 again (nested).
        let t = table32(&[(0, 99, 1), (50, 149, 2), (60, 69, 1)]);
        assert_eq!(t.get(0), &[1]);
        assert_eq!(t.get(49), &[1]);
        assert_eq!(t.get(50), &[1, 2]);
        assert_eq!(t.get(65), &[1, 2]);
        assert_eq!(t.get(70), &[1, 2]);
        assert_eq!(t.get(99), &[1, 2]);
        assert_eq!(t.get(100), &[2]);
        assert_eq!(t.get(149), &[2]);
        assert_eq!(t.get(150), &[] as &[u32]);
        // 60 and 70 change only the count of site 1, not the set: merged.
        assert_eq!(t.segment_count(), 3);
    }

    #[test]
    fn adjacent_ranges_of_one_value_merge() {
        let t = table32(&[(0, 9, 5), (10, 19, 5), (20, 29, 6)]);
        assert_eq!(t.get(9), &[5]);
        assert_eq!(t.get(10), &[5]);
        assert_eq!(t.get(20), &[6]);
        assert_eq!(t.get(30), &[] as &[u32]);
        assert_eq!(t.segment_count(), 2);
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let t = table32(&[(5, 5, 9), (5, 5, 2), (5, 5, 9), (0, 10, 2)]);
        assert_eq!(t.get(5), &[2, 9]);
        assert_eq!(t.get(4), &[2]);
        assert_eq!(t.get(6), &[2]);
    }

    #[test]
    fn top_of_the_space_does_not_overflow() {
        let t = table32(&[(u32::MAX, u32::MAX, 1), (u32::MAX - 255, u32::MAX, 2)]);
        assert_eq!(t.get(u32::MAX), &[1, 2]);
        assert_eq!(t.get(u32::MAX - 1), &[2]);
        assert_eq!(t.get(u32::MAX - 256), &[] as &[u32]);
        let t = IntervalTable::<u128>::build(&[(u128::MAX, u128::MAX, 3)]).expect("fits");
        assert_eq!(t.get(u128::MAX), &[3]);
        assert_eq!(t.get(u128::MAX - 1), &[] as &[u32]);
        assert_eq!(t.get(0), &[] as &[u32]);
    }

    #[test]
    fn bottom_of_the_space() {
        let t = table32(&[(0, 0, 1)]);
        assert_eq!(t.get(0), &[1]);
        assert_eq!(t.get(1), &[] as &[u32]);
        let t = IntervalTable::<u128>::build(&[(0, 255, 1)]).expect("fits");
        assert_eq!(t.get(0), &[1]);
        assert_eq!(t.get(255), &[1]);
        assert_eq!(t.get(256), &[] as &[u32]);
    }

    #[test]
    fn whole_space() {
        let t = table32(&[(0, u32::MAX, 1)]);
        assert_eq!(t.get(0), &[1]);
        assert_eq!(t.get(u32::MAX), &[1]);
        assert_eq!(t.segment_count(), 1);
    }

    #[test]
    fn inverted_ranges_are_ignored() {
        let t = table32(&[(10, 5, 1)]);
        assert_eq!(t.get(7), &[] as &[u32]);
        assert_eq!(t.segment_count(), 0);
    }

    #[test]
    fn many_intervals_across_blocks() {
        // 1000 disjoint ranges with gaps; check every
        // boundary and the gaps around it against the definition.
        let ranges: Vec<(u32, u32, u32)> = (0..1000u32).map(|i| (i * 10, i * 10 + 4, i)).collect();
        let t = table32(&ranges);
        assert_eq!(t.segment_count(), 1000);
        for i in 0..1000u32 {
            assert_eq!(t.get(i * 10), &[i]);
            assert_eq!(t.get(i * 10 + 4), &[i]);
            assert_eq!(t.get(i * 10 + 5), &[] as &[u32]);
            assert_eq!(t.get(i * 10 + 9), &[] as &[u32]);
        }
        assert_eq!(t.get(u32::MAX), &[] as &[u32]);
        let ranges6: Vec<(u128, u128, u32)> = ranges
            .iter()
            .map(|&(a, b, v)| (u128::from(a) << 64, u128::from(b) << 64, v))
            .collect();
        let t = IntervalTable::<u128>::build(&ranges6).expect("fits");
        for i in 0..1000u32 {
            let base = u128::from(i * 10) << 64;
            assert_eq!(t.get(base), &[i]);
            if let Some(below) = base.checked_sub(1) {
                assert_eq!(t.get(below), &[] as &[u32], "just below {i}");
            }
            assert_eq!(t.get((u128::from(i * 10 + 4) << 64) + 1), &[] as &[u32]);
        }
    }

    /// IPv6 ranges that share their upper 64 bits (single addresses and
    /// small blocks inside one /64, next to ranges in other /64s): the search
    /// on the upper half must be refined on the whole address.
    #[test]
    fn ipv6_ranges_inside_one_slash_64() {
        let net = |hi: u128, lo: u128| (hi << 64) | lo;
        let mut ranges: Vec<(u128, u128, u32)> = (0..200u32)
            .map(|i| {
                let lo = u128::from(i) * 10 + 3;
                (net(7, lo), net(7, lo + 4), i)
            })
            .collect();
        ranges.push((net(6, 0), net(6, u128::from(u64::MAX)), 1000));
        ranges.push((net(9, 5), net(9, 5), 1001));
        let t = IntervalTable::<u128>::build(&ranges).expect("fits");
        for key in (0..2100u128).map(|lo| net(7, lo)).chain([
            net(6, 9),
            net(8, 0),
            net(9, 4),
            net(9, 5),
            net(9, 6),
        ]) {
            let expected: Vec<u32> = ranges
                .iter()
                .filter(|&&(first, last, _)| first <= key && key <= last)
                .map(|&(_, _, v)| v)
                .collect();
            assert_eq!(t.get(key), expected.as_slice(), "{key:x}");
        }
    }

    /// A key in the same /64 as the table's first start but below it: the
    /// refinement finds no earlier segment.
    #[test]
    fn ipv6_key_below_the_first_start_in_its_slash_64() {
        let net = |lo: u128| (7u128 << 64) | lo;
        let t = IntervalTable::<u128>::build(&[(net(10), net(20), 1), (net(30), net(30), 2)])
            .expect("fits");
        assert_eq!(t.get(net(0)), &[] as &[u32]);
        assert_eq!(t.get(net(9)), &[] as &[u32]);
        assert_eq!(t.get(net(10)), &[1]);
        assert_eq!(t.get(net(25)), &[] as &[u32]);
        assert_eq!(t.get(net(30)), &[2]);
        assert_eq!(t.get(net(31)), &[] as &[u32]);
        assert_eq!(t.get(7u128 << 64 | u128::from(u64::MAX)), &[] as &[u32]);
    }
}
