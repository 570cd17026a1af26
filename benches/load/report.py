#!/usr/bin/env python3
"""The load benchmark's table, from run.sh's raw runs.

usage: report.py META RUNS_JSONL     prints the markdown table
       report.py --line < RUN_JSON   one line for one run (progress)

META holds key=value lines (date, machine, versions, setup, load, ready_EDGE = start-to-ready
ms per start, rss_EDGE = "KiB at ready, KiB after load"). Each run: edge, path, round, ticks
(utime+stime of the edge process during the run, in clock ticks), load (load average at its
end) and wrk (the RESULT object of xff.lua).
"""

import json
import os
import statistics
import sys

HZ = os.sysconf("SC_CLK_TCK")
NAMES = {"gate": "gate (enforce)", "off": "gate, mode off", "nginx": "nginx realip+geo", "cand": "candidate"}
TARGETS = [  # (label, numerator, denominator, path, wanted ratio)
    ("blocked: gate / nginx", "gate", "nginx", "blocked", 1.0),
    ("allowed: gate / nginx", "gate", "nginx", "allowed", 0.8),
    ("blocked: gate / off", "gate", "off", "blocked", 0.97),
    ("allowed: gate / off", "gate", "off", "allowed", 0.97),
]


def derive(run):
    w = run["wrk"]
    n = max(w["requests"], 1)
    return {
        "rps": w["requests"] * 1e6 / w["duration_us"],
        "p50": w["p50_us"] / 1000,
        "p99": w["p99_us"] / 1000,
        "cpu": run["ticks"] * 1e6 / HZ / n,
        "bad": w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"],
    }


def spread(xs, fmt):
    if len(xs) == 1:
        return fmt % xs[0]
    return (fmt + " (" + fmt + "–" + fmt + ")") % (statistics.median(xs), min(xs), max(xs))


def line():
    run = json.loads(sys.stdin.read())
    d = derive(run)
    print("    %-6s %-7s round %d: %8.0f req/s  p50 %.3f ms  p99 %.3f ms  %5.1f µs CPU/req  load %s"
          % (run["edge"], run["path"], run["round"], d["rps"], d["p50"], d["p99"], d["cpu"], run["load"]),
          file=sys.stderr)


def main():
    meta = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
    runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    edges = [e for e in NAMES if any(r["edge"] == e for r in runs)]
    by = {}
    for r in runs:
        by.setdefault((r["edge"], r["path"]), {})[r["round"]] = derive(r)

    def ratios(a, b, path, key="rps"):
        ra, rb = by.get((a, path), {}), by.get((b, path), {})
        return [ra[k][key] / rb[k][key] for k in sorted(ra) if k in rb and rb[k][key]]

    out = ["# poortwachter load benchmark", ""]
    out.append("%s · %s · load average %s" % (meta["date"], meta["machine"], meta["load"]))
    out.append("")
    out.append("%s · %s" % (meta["versions"], meta["setup"]))
    out.append("")
    out.append("Medians over the rounds, (min–max); CPU µs/req is the edge process's utime+stime per request.")
    out.append("")
    out.append("| edge | path | req/s | p50 ms | p99 ms | edge CPU µs/req | RSS ready / after load MB | start→ready ms |")
    out.append("|---|---|---|---|---|---|---|---|")
    for e in edges:
        ready = [float(x) for x in meta["ready_" + e].split()]
        rss = [int(x) / 1024 for x in meta["rss_" + e].split()]
        for i, path in enumerate(["blocked", "allowed"]):
            ds = list(by.get((e, path), {}).values())
            if not ds:
                continue
            col = lambda k, f: spread([d[k] for d in ds], f)
            tail = ("%.1f / %.1f" % tuple(rss), spread(ready, "%.0f")) if i == 0 else ("″", "″")
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                NAMES[e], path, col("rps", "%.0f"), col("p50", "%.3f"), col("p99", "%.3f"),
                col("cpu", "%.1f"), *tail))
    bad = sum(d["bad"] for v in by.values() for d in v.values())
    if bad:
        out.append("")
        out.append("**%d socket errors or timeouts** (see the raw runs)." % bad)

    out.append("")
    out.append("| target | wanted | measured req/s ratio, per round: median (min–max) | CPU µs/req ratio | |")
    out.append("|---|---|---|---|---|")
    rows = list(TARGETS)
    if "cand" in edges:
        rows += [("blocked: candidate / gate", "cand", "gate", "blocked", None),
                 ("allowed: candidate / gate", "cand", "gate", "allowed", None)]
    for label, a, b, path, want in rows:
        rs = ratios(a, b, path)
        if not rs:
            continue
        m = statistics.median(rs)
        verdict = "" if want is None else ("met" if m >= want else "**missed by %.0f%%**" % (100 * (want - m) / want))
        out.append("| %s | %s | %s | %s | %s |" % (
            label, "–" if want is None else "≥ %.2f×" % want, spread(rs, "%.2f×"),
            spread(ratios(a, b, path, "cpu"), "%.2f×"), verdict))
    rss_after = int(meta["rss_gate"].split()[1]) / 1024
    ready = statistics.median(float(x) for x in meta["ready_gate"].split())
    out.append("| gate RSS after load | ≤ 40 MB | %.1f MB | | %s |" % (
        rss_after, "met" if rss_after <= 40 else "**missed by %.1f MB**" % (rss_after - 40)))
    out.append("| gate start→ready | ≤ 50 ms | %.0f ms | | %s |" % (
        ready, "met" if ready <= 50 else "**missed by %.0f ms**" % (ready - 50)))
    print("\n".join(out))


if __name__ == "__main__":
    line() if sys.argv[1:] == ["--line"] else main()
