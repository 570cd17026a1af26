#!/usr/bin/env python3
"""The load benchmark's table, from run.sh's raw runs.

usage: report.py META RUNS_JSONL            prints the markdown table
       report.py --line < RUN_JSON          one line for one run (progress)
       report.py --h2load LOG < OUTPUT      h2load's summary and --log-file as a RESULT object

META holds key=value lines (date, machine, versions, setup, load, ready_EDGE = start-to-ready
ms per start, rss_EDGE = "KiB at ready, KiB after load", tls when over TLS). Each run: edge,
proto (run.sh's PROTOS: http, http-close, or h1, h2, h1-close, h2-full over TLS), path, round, ticks (utime+stime
of the edge process during the run, in clock ticks), load (load average at its end) and wrk
(the RESULT object of xff.lua, or the same fields from h2load). With only plain HTTP runs the
table is the plain benchmark's; over TLS it has a protocol column and the ratios per protocol.
"""

import json
import os
import statistics
import sys

HZ = os.sysconf("SC_CLK_TCK")
NAMES = {"gate": "gate (enforce)", "off": "gate, mode off", "nginx": "nginx realip+geo", "cand": "candidate"}
PROTOS = {"http": "HTTP/1.1", "http-close": "HTTP/1.1, close", "h1": "HTTP/1.1 TLS", "h2": "HTTP/2 TLS", "h1-close": "HTTP/1.1 TLS, close",
          "h2-full": "HTTP/2 TLS, full handshake"}
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


def h2load(log_path):
    """The fields of xff.lua's RESULT from h2load's summary (stdin) and its per-request log
    (start µs, status, µs to the end of the response), whose durations give the percentiles."""
    out = sys.stdin.read()
    req = {}
    secs = None
    for l in out.splitlines():
        if l.startswith("finished in "):  # "finished in 10.00s," or "917.30ms,"
            t = l.split()[2].rstrip(",")
            secs = float(t[:-2]) / 1e3 if t.endswith("ms") else float(t.rstrip("s"))
        elif l.startswith("requests: "):
            req = {w: int(n) for n, w in (p.split() for p in l[len("requests: "):].split(", "))}
    us = []
    status_errors = 0
    with open(log_path) as f:
        for l in f:
            _, status, took = l.split("\t")
            us.append(int(took))
            status_errors += not 200 <= int(status) < 400
    if secs is None or not req.get("done") or not us:
        sys.exit("report.py: no h2load result:\n" + out)
    us.sort()
    pct = lambda q: us[min(int(q / 100 * len(us)), len(us) - 1)]
    print(json.dumps({
        "requests": req["done"], "duration_us": int(secs * 1e6), "connect_errors": 0,
        "read_errors": req["errored"], "write_errors": 0, "status_errors": status_errors,
        "timeouts": req["timeout"], "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
        "mean_us": sum(us) / len(us), "max_us": us[-1]}))


def spread(xs, fmt):
    if len(xs) == 1:
        return fmt % xs[0]
    return (fmt + " (" + fmt + "–" + fmt + ")") % (statistics.median(xs), min(xs), max(xs))


def line():
    run = json.loads(sys.stdin.read())
    d = derive(run)
    path = run["path"] if run.get("proto", "http") == "http" else "%-8s %s" % (run["proto"], run["path"])
    print("    %-6s %-7s round %d: %8.0f req/s  p50 %.3f ms  p99 %.3f ms  %5.1f µs CPU/req  load %s"
          % (run["edge"], path, run["round"], d["rps"], d["p50"], d["p99"], d["cpu"], run["load"]),
          file=sys.stderr)


def main():
    meta = dict(l.rstrip("\n").split("=", 1) for l in open(sys.argv[1]) if "=" in l)
    runs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
    edges = [e for e in NAMES if any(r["edge"] == e for r in runs)]
    protos = [p for p in PROTOS if any(r.get("proto", "http") == p for r in runs)]
    plain = protos == ["http"]
    by = {}
    for r in runs:
        by.setdefault((r["edge"], r.get("proto", "http"), r["path"]), {})[r["round"]] = derive(r)

    def ratios(a, b, proto, path, key="rps"):
        ra, rb = by.get((a, proto, path), {}), by.get((b, proto, path), {})
        return [ra[k][key] / rb[k][key] for k in sorted(ra) if k in rb and rb[k][key]]

    tls = any(not p.startswith("http") for p in protos)
    out = ["# poortwachter load benchmark" + (" over TLS" if tls else ""), ""]
    out.append("%s · %s · load average %s" % (meta["date"], meta["machine"], meta["load"]))
    out.append("")
    out.append("%s · %s" % (meta["versions"], meta["setup"]))
    out.append("")
    if "tls" in meta:
        out.append("TLS: %s" % meta["tls"])
        out.append("")
    out.append("Medians over the rounds, (min–max); CPU µs/req is the edge process's utime+stime per request.")
    if "h2" in protos or "h2-full" in protos:
        out.append("HTTP/2 latencies are h2load's per-request times (--log-file), from the request to the end"
                   " of its response (without the connection's set-up and handshake), with every stream of"
                   " every connection in flight: compare them between edges, not with the HTTP/1.1 rows.")
    out.append("")
    proto_col = ("", "") if plain else (" protocol |", "---|")
    out.append("| edge |%s path | req/s | p50 ms | p99 ms | edge CPU µs/req | RSS ready / after load MB | start→ready ms |"
               % proto_col[0])
    out.append("|---|---|%s---|---|---|---|---|---|" % proto_col[1])
    for e in edges:
        ready = [float(x) for x in meta["ready_" + e].split()]
        rss = [int(x) / 1024 for x in meta["rss_" + e].split()]
        first = True
        for proto in protos:
            for path in ["blocked", "allowed"]:
                ds = list(by.get((e, proto, path), {}).values())
                if not ds:
                    continue
                col = lambda k, f: spread([d[k] for d in ds], f)
                tail = ("%.1f / %.1f" % tuple(rss), spread(ready, "%.0f")) if first else ("″", "″")
                first = False
                out.append("| %s |%s %s | %s | %s | %s | %s | %s | %s |" % (
                    NAMES[e], "" if plain else " %s |" % PROTOS[proto], path, col("rps", "%.0f"),
                    col("p50", "%.3f"), col("p99", "%.3f"), col("cpu", "%.1f"), *tail))
    bad = sum(d["bad"] for v in by.values() for d in v.values())
    if bad:
        out.append("")
        out.append("**%d socket errors or timeouts** (see the raw runs)." % bad)

    out.append("")
    out.append("| target | wanted | measured req/s ratio, per round: median (min–max) | CPU µs/req ratio | |")
    out.append("|---|---|---|---|---|")
    rows = [(label, a, b, "http", path, want) for label, a, b, path, want in TARGETS]
    if "cand" in edges:
        rows += [("blocked: candidate / gate", "cand", "gate", "http", "blocked", None),
                 ("allowed: candidate / gate", "cand", "gate", "http", "allowed", None)]
    for proto in protos[protos[0] == "http":]:  # over TLS: no targets, the ratios themselves
        for a, b, name in [("gate", "nginx", "gate / nginx"), ("gate", "off", "gate / off"),
                           ("cand", "gate", "candidate / gate")]:
            for path in ["blocked", "allowed"]:
                rows.append(("%s, %s: %s" % (PROTOS[proto], path, name), a, b, proto, path, None))
    for label, a, b, proto, path, want in rows:
        rs = ratios(a, b, proto, path)
        if not rs:
            continue
        m = statistics.median(rs)
        verdict = "" if want is None else ("met" if m >= want else "**missed by %.0f%%**" % (100 * (want - m) / want))
        out.append("| %s | %s | %s | %s | %s |" % (
            label, "–" if want is None else "≥ %.2f×" % want, spread(rs, "%.2f×"),
            spread(ratios(a, b, proto, path, "cpu"), "%.2f×"), verdict))
    rss_after = int(meta["rss_gate"].split()[1]) / 1024
    ready = statistics.median(float(x) for x in meta["ready_gate"].split())
    out.append("| gate RSS after load | ≤ 40 MB | %.1f MB | | %s |" % (
        rss_after, "met" if rss_after <= 40 else "**missed by %.1f MB**" % (rss_after - 40)))
    out.append("| gate start→ready | ≤ 50 ms | %.0f ms | | %s |" % (
        ready, "met" if ready <= 50 else "**missed by %.0f ms**" % (ready - 50)))
    print("\n".join(out))


if __name__ == "__main__":
    if sys.argv[1:] == ["--line"]:
        line()
    elif sys.argv[1:2] == ["--h2load"]:
        h2load(sys.argv[2])
    else:
        main()
