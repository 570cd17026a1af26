//! Deterministic synthetic allowlists for benches and tests: a document of a
//! chosen size that looks like the admin store's (about 60% IPv4, 40% IPv6,
//! ~10 ranges per site, a few exceptions), and sample client addresses that
//! hit or miss a compiled snapshot. Seeded, with a tiny inline PRNG, so a
//! bench or a failing test can be reproduced exactly.
//!
//! Not part of the library: benches and integration tests include this file
//! with `#[path = ".../benches/support/synth.rs"] mod synth;`, the library's
//! unit tests through `allowlist::synth`. It uses only the public API.
// Each including target uses part of it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use poortwachter::allowlist::Snapshot;

/// xorshift64*: small, fast, good enough to spread test data; not for
/// anything that needs unpredictability.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // The state must never be zero.
        let state = seed ^ 0x9E37_79B9_7F4A_7C15;
        XorShift(if state == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            state
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough value in `0..n` (`0` when `n == 0`).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    fn next_u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    fn below_u128(&mut self, n: u128) -> u128 {
        if n == 0 {
            0
        } else {
            self.next_u128() % n
        }
    }
}

/// Synthetic IPv4 ranges live in 1.0.0.0 up to (not including) 224.0.0.0:
/// the unicast part of the space, so lookups exercise a realistic spread.
const V4_FIRST: u64 = 0x0100_0000;
const V4_END: u64 = 0xE000_0000;
/// Synthetic IPv6 ranges live in the documentation prefix 2001:db8::/32.
const V6_BASE: u128 = 0x2001_0db8 << 96;
const V6_HOST_BITS: u32 = 96;

/// A valid allowlist document with exactly `ranges` accepted ranges under
/// the default [`CompileOptions`](poortwachter::allowlist::CompileOptions) (no range broader
/// than IPv4 /22 or IPv6 /48), none overlapping, about 60% IPv4 and 40%
/// IPv6, grouped 5 to 15 per site; every tenth site also has one exception.
/// The same `(ranges, seed)` always gives the same text. Meant for counts up
/// to a few million.
pub fn synthetic_document(ranges: usize, seed: u64) -> String {
    let mut rng = XorShift::new(seed);
    let is_v4: Vec<bool> = (0..ranges).map(|_| rng.below(10) < 6).collect();
    let n4 = is_v4.iter().filter(|&&v4| v4).count() as u64;
    let n6 = ranges as u64 - n4;

    // Each range gets its own slot, the slots spread evenly over the space
    // (so misses land between ranges, not mostly above the last one); a
    // range is an aligned block inside its slot, which keeps them disjoint.
    let v4_slot = u128::from((V4_END - V4_FIRST) / n4.max(1)).max(1);
    let v6_slot = ((1u128 << V6_HOST_BITS) / u128::from(n6.max(1))).max(1);

    let mut out = String::with_capacity(ranges * 32 + 64);
    out.push_str(&format!(
        "{{\"version\":\"synthetic-{ranges}-{seed}\",\"generated_by\":\"poortwachter synth\",\"sites\":["
    ));
    let (mut next4, mut next6) = (0u64, 0u64);
    let mut i = 0;
    let mut site = 0usize;
    while i < ranges {
        let take = (5 + rng.below(11) as usize).min(ranges - i);
        if site > 0 {
            out.push(',');
        }
        let id = site_id(site);
        out.push_str(&format!(
            "{{\"id\":\"{id}\",\"name\":\"Synthetic school {site}\",\"ranges\":["
        ));
        for k in 0..take {
            if k > 0 {
                out.push(',');
            }
            let net = if is_v4[i + k] {
                let net = v4_range(&mut rng, next4, v4_slot);
                next4 += 1;
                net
            } else {
                let net = v6_range(&mut rng, next6, v6_slot);
                next6 += 1;
                net
            };
            out.push_str(&format!("\"{}\"", range_text(net)));
        }
        out.push(']');
        if site.is_multiple_of(10) {
            // Documentation addresses; may overlap other exceptions, which
            // is legal and exercises the exception table.
            out.push_str(&format!(
                ",\"exceptions\":[{{\"range\":\"203.0.113.{}\",\"reason\":\"test at home\",\"not_before\":\"2026-12-01T08:00:00+01:00\",\"not_after\":\"2026-12-05T17:00:00+01:00\"}}]",
                site % 256
            ));
        }
        out.push('}');
        i += take;
        site += 1;
    }
    out.push_str("]}");
    out
}

/// A single address is written bare, as admins register it ("add this
/// address"); blocks in CIDR notation.
fn range_text(net: IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// BRIN-like ids (`00AA00`, `00AA01`, ...), unique for the first 6.76
/// million sites.
pub fn site_id(n: usize) -> String {
    let letter = |k: usize| char::from(b'A' + (k % 26) as u8);
    format!(
        "{:02}{}{}{:02}",
        (n / 67_600) % 100,
        letter(n / 2_600),
        letter(n / 100),
        n % 100
    )
}

fn v4_range(rng: &mut XorShift, slot: u64, slot_len: u128) -> IpNet {
    // Mostly single addresses and small blocks, like real registrations.
    let host_bits = match rng.below(10) {
        0..=3 => 0,
        4..=6 => 2 + rng.below(3) as u32,
        7 | 8 => 8,
        _ => 9 + rng.below(2) as u32,
    };
    let (start, host_bits) = place(rng, u128::from(V4_FIRST), slot, slot_len, host_bits);
    let addr = Ipv4Addr::from(start as u32);
    // The prefix is at most 32 and the start aligned, so this cannot fail;
    // fall back to the single address rather than panic.
    ipnet::Ipv4Net::new(addr, (32 - host_bits) as u8)
        .map(IpNet::V4)
        .unwrap_or(IpNet::V4(ipnet::Ipv4Net::from(addr)))
}

fn v6_range(rng: &mut XorShift, slot: u64, slot_len: u128) -> IpNet {
    let host_bits = match rng.below(10) {
        0..=3 => 80, // /48
        4..=6 => 72, // /56
        7 | 8 => 64, // /64
        _ => 0,      // /128
    };
    let (start, host_bits) = place(rng, V6_BASE, slot, slot_len, host_bits);
    let addr = Ipv6Addr::from(start);
    ipnet::Ipv6Net::new(addr, (128 - host_bits) as u8)
        .map(IpNet::V6)
        .unwrap_or(IpNet::V6(ipnet::Ipv6Net::from(addr)))
}

/// A random aligned block of `2^host_bits` addresses inside slot number
/// `slot` (of `slot_len` addresses, counted from `first`). The block is
/// shrunk to at most half the slot, which guarantees an aligned position
/// inside it. Returns the block's start and the host bits actually used.
fn place(
    rng: &mut XorShift,
    first: u128,
    slot: u64,
    slot_len: u128,
    host_bits: u32,
) -> (u128, u32) {
    let host_bits = host_bits.min(floor_log2_u128(slot_len).saturating_sub(1));
    let block = 1u128 << host_bits;
    let slot_start = first + u128::from(slot) * slot_len;
    let slot_end = slot_start + slot_len;
    let aligned = slot_start.div_ceil(block) * block;
    let positions = slot_end.saturating_sub(aligned) / block;
    (aligned + rng.below_u128(positions) * block, host_bits)
}

fn floor_log2_u128(n: u128) -> u32 {
    127u32.saturating_sub(n.max(1).leading_zeros())
}

/// Which sample addresses to draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// IPv4 addresses inside some accepted range.
    V4Hit,
    /// IPv4 addresses (1.0.0.0 - 223.255.255.255) inside no range.
    V4Miss,
    /// IPv6 addresses inside some accepted range.
    V6Hit,
    /// IPv6 addresses in 2001:db8::/32 inside no range.
    V6Miss,
}

/// Up to `count` addresses of `kind` for `snapshot`, deterministic for a
/// seed. Hits are uniform over the snapshot's listed ranges (then uniform
/// inside the range); misses are rejection-sampled with a bounded number of
/// tries, so fewer than `count` come back only for a snapshot that covers
/// (nearly) all of the sampled space, and none for hits of a family without
/// ranges.
pub fn sample_addresses(
    snapshot: &Snapshot,
    kind: AddressKind,
    count: usize,
    seed: u64,
) -> Vec<IpAddr> {
    let mut rng = XorShift::new(seed);
    let mut out = Vec::with_capacity(count);
    match kind {
        AddressKind::V4Hit | AddressKind::V6Hit => {
            let want_v4 = kind == AddressKind::V4Hit;
            let nets: Vec<IpNet> = snapshot
                .ranges()
                .map(|(net, _)| net)
                .filter(|net| matches!(net, IpNet::V4(_)) == want_v4)
                .collect();
            if nets.is_empty() {
                return out;
            }
            for _ in 0..count {
                let net = nets[rng.below(nets.len() as u64) as usize];
                out.push(random_inside(&mut rng, net));
            }
        }
        AddressKind::V4Miss | AddressKind::V6Miss => {
            let mut tries = count.saturating_mul(100);
            while out.len() < count && tries > 0 {
                tries -= 1;
                let ip = if kind == AddressKind::V4Miss {
                    IpAddr::V4(Ipv4Addr::from(
                        (V4_FIRST + rng.below(V4_END - V4_FIRST)) as u32,
                    ))
                } else {
                    IpAddr::V6(Ipv6Addr::from(
                        V6_BASE + rng.below_u128(1u128 << V6_HOST_BITS),
                    ))
                };
                if snapshot.sites_for(ip).is_empty() {
                    out.push(ip);
                }
            }
        }
    }
    out
}

fn random_inside(rng: &mut XorShift, net: IpNet) -> IpAddr {
    match net {
        IpNet::V4(n) => {
            let host_bits = 32 - u32::from(n.prefix_len());
            let size = 1u64 << host_bits;
            IpAddr::V4(Ipv4Addr::from(
                (u64::from(u32::from(n.network())) + rng.below(size)) as u32,
            ))
        }
        IpNet::V6(n) => {
            let host_bits = 128 - u32::from(n.prefix_len());
            let offset = if host_bits >= 128 {
                rng.next_u128()
            } else {
                rng.below_u128(1u128 << host_bits)
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) | offset))
        }
    }
}
