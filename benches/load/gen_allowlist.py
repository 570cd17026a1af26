#!/usr/bin/env python3
"""Deterministic synthetic allowlist for the load benchmark.

A line-by-line port of `synthetic_document(ranges, seed)` in `benches/support/synth.rs`
(same xorshift64* generator, same slots, same text), so the load benchmark and the criterion
benches look at the same kind of data: about 60% IPv4 and 40% IPv6 ranges, none overlapping,
5 to 15 per site, every tenth site with one (inactive: December 2026) exception.

Writes:
  OUT_DIR/allowlist.json   the gate's allowlist document
  OUT_DIR/geo.conf         the same ranges as the body of an nginx `geo` block
                           (`default 0;` plus `<range> 1;` per range)
  OUT_DIR/addresses.env    REGISTERED_IP / UNREGISTERED_IP (shell syntax) for the load

usage: gen_allowlist.py OUT_DIR [RANGES] [SEED]      (defaults: 100000 7)

The registered address is taken from an IPv4 range in the middle of the document; the
unregistered one is an IPv4 address in a gap between ranges (checked against every range).
Both are chosen from the seed, so the same arguments always give the same files.
"""

import ipaddress
import json
import os
import sys

MASK64 = (1 << 64) - 1
V4_FIRST = 0x0100_0000
V4_END = 0xE000_0000
V6_BASE = 0x2001_0DB8 << 96
V6_HOST_BITS = 96


class XorShift:
    def __init__(self, seed):
        state = (seed ^ 0x9E37_79B9_7F4A_7C15) & MASK64
        self.s = state if state else 0x2545_F491_4F6C_DD1D

    def next(self):
        x = self.s
        x ^= x >> 12
        x = (x ^ (x << 25)) & MASK64
        x ^= x >> 27
        self.s = x
        return (x * 0x2545_F491_4F6C_DD1D) & MASK64

    def below(self, n):
        return 0 if n == 0 else self.next() % n

    def next_u128(self):
        hi = self.next()
        lo = self.next()
        return (hi << 64) | lo

    def below_u128(self, n):
        return 0 if n == 0 else self.next_u128() % n


def floor_log2(n):
    return max(n, 1).bit_length() - 1


def place(rng, first, slot, slot_len, host_bits):
    host_bits = min(host_bits, max(floor_log2(slot_len) - 1, 0))
    block = 1 << host_bits
    slot_start = first + slot * slot_len
    slot_end = slot_start + slot_len
    aligned = -(-slot_start // block) * block
    positions = max(slot_end - aligned, 0) // block
    return aligned + rng.below_u128(positions) * block, host_bits


def v4_range(rng, slot, slot_len):
    r = rng.below(10)
    if r <= 3:
        host_bits = 0
    elif r <= 6:
        host_bits = 2 + rng.below(3)
    elif r <= 8:
        host_bits = 8
    else:
        host_bits = 9 + rng.below(2)
    start, host_bits = place(rng, V4_FIRST, slot, slot_len, host_bits)
    return ipaddress.IPv4Network((start, 32 - host_bits))


def v6_range(rng, slot, slot_len):
    r = rng.below(10)
    host_bits = 80 if r <= 3 else 72 if r <= 6 else 64 if r <= 8 else 0
    start, host_bits = place(rng, V6_BASE, slot, slot_len, host_bits)
    return ipaddress.IPv6Network((start, 128 - host_bits))


def range_text(net):
    # A single address is written bare, blocks in CIDR notation (as the Rust generator).
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def site_id(n):
    letter = lambda k: chr(ord("A") + k % 26)
    return "%02d%s%s%02d" % ((n // 67_600) % 100, letter(n // 2_600), letter(n // 100), n % 100)


def synthetic(ranges, seed):
    """(document text, list of networks in document order)."""
    rng = XorShift(seed)
    is_v4 = [rng.below(10) < 6 for _ in range(ranges)]
    n4 = sum(is_v4)
    n6 = ranges - n4
    v4_slot = max((V4_END - V4_FIRST) // max(n4, 1), 1)
    v6_slot = max((1 << V6_HOST_BITS) // max(n6, 1), 1)
    parts = ['{"version":"synthetic-%d-%d","generated_by":"poortwachter synth","sites":[' % (ranges, seed)]
    nets = []
    next4 = next6 = 0
    i = site = 0
    while i < ranges:
        take = min(5 + rng.below(11), ranges - i)
        if site > 0:
            parts.append(",")
        parts.append('{"id":"%s","name":"Synthetic school %d","ranges":[' % (site_id(site), site))
        for k in range(take):
            if k > 0:
                parts.append(",")
            if is_v4[i + k]:
                net = v4_range(rng, next4, v4_slot)
                next4 += 1
            else:
                net = v6_range(rng, next6, v6_slot)
                next6 += 1
            nets.append(net)
            parts.append('"%s"' % range_text(net))
        parts.append("]")
        if site % 10 == 0:
            parts.append(
                ',"exceptions":[{"range":"203.0.113.%d","reason":"test at home",'
                '"not_before":"2026-12-01T08:00:00+01:00","not_after":"2026-12-05T17:00:00+01:00"}]'
                % (site % 256)
            )
        parts.append("}")
        i += take
        site += 1
    parts.append("]}")
    return "".join(parts), nets


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    ranges = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    doc, nets = synthetic(ranges, seed)
    json.loads(doc)  # well-formed, or fail loudly

    # Disjointness (the Rust generator guarantees it; check the port does too).
    for fam in (4, 6):
        spans = sorted(
            (int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == fam
        )
        for (a0, a1), (b0, b1) in zip(spans, spans[1:]):
            if b0 <= a1:
                sys.exit("generator bug: overlapping ranges")

    v4 = sorted((int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == 4)
    if not v4:
        sys.exit("need at least one IPv4 range")
    # Registered: an address inside the middle IPv4 range of the document.
    mid = [n for n in nets if n.version == 4][len(v4) // 2]
    registered = ipaddress.IPv4Address(int(mid.network_address) + (mid.num_addresses - 1) // 2)
    # Unregistered: the middle of the widest gap near the middle of the sorted IPv4 ranges.
    k = len(v4) // 2
    best = max(range(max(k - 50, 0), min(k + 50, len(v4) - 1)), key=lambda j: v4[j + 1][0] - v4[j][1], default=0)
    gap_lo, gap_hi = v4[best][1] + 1, (v4[best + 1][0] - 1) if best + 1 < len(v4) else V4_END - 1
    unregistered = ipaddress.IPv4Address((gap_lo + gap_hi) // 2)
    if any(a <= int(unregistered) <= b for a, b in v4) or unregistered in ipaddress.ip_network("203.0.113.0/24"):
        sys.exit("generator bug: unregistered address is registered")

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "allowlist.json"), "w") as f:
        f.write(doc)
    with open(os.path.join(out, "geo.conf"), "w") as f:
        f.write("default 0;\n")
        for n in nets:
            f.write("%s 1;\n" % n)
    with open(os.path.join(out, "addresses.env"), "w") as f:
        f.write("REGISTERED_IP=%s\nUNREGISTERED_IP=%s\n" % (registered, unregistered))
    n4 = len(v4)
    print(
        "allowlist: %d ranges (%d IPv4, %d IPv6), seed %d, %d bytes; registered %s, unregistered %s"
        % (len(nets), n4, len(nets) - n4, seed, len(doc), registered, unregistered)
    )


if __name__ == "__main__":
    main()
