#!/usr/bin/env bash
# "Monday 08:30": every pupil of the country opens the test at once.
#
#   benches/load/monday.sh                       # from the repository root, about 3 minutes
#   CLIENTS=19000 benches/load/monday.sh         # where the open-file limit is 20000
#
# CLIENTS keep-alive clients (default 50,000), each from its own loopback address in
# 127.10.0.0/16 (benches/load/monday.py), connect evenly over RAMP seconds, open the test at
# once and then send a request every INTERVAL seconds (0.5-1.5 x) for DURATION seconds;
# 30% of the addresses are not registered and must get the block page (403), the others the
# upstream's 200. Each edge in EDGES ("gate nginx") is measured alone, pinned to core
# EDGE_CPU, the clients and the upstream on core LOAD_CPU:
#   gate   poortwachter, mode "enforce", the client address is the TCP peer (no trusted
#          proxy), max_connections above CLIENTS
#   nginx  1 worker, geo over the same ranges, the same block page, keep-alive proxy_pass
# Prints per edge: clients connected, requests and p50/p99/max latency per path (as the
# clients see it), errors by kind (connect, closed, timeout, wrong status), the edge's RSS
# before and at its peak, its CPU seconds and its open connections at the peak; writes the
# table to RESULTS. Everything started is stopped by PID on exit.
#
# Settings (defaults): CLIENTS=50000 RAMP=10 DURATION=60 INTERVAL=10 EDGES="gate nginx"
#   EDGE_CPU=0 LOAD_CPU=1 THREADS=1 RESULTS=benches/load/results-monday.md
#   SKIP_BUILD=1 BIN=path   use an existing binary
# Needs an open-file limit of CLIENTS plus a margin for the edge (the script raises the soft
# limit to the hard one); each client process holds at most the limit, so the clients are
# spread over as many processes as that takes.
set -euo pipefail

CLIENTS=${CLIENTS:-50000} RAMP=${RAMP:-10} DURATION=${DURATION:-60} INTERVAL=${INTERVAL:-10}
EDGE_CPU=${EDGE_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} THREADS=${THREADS:-1}
RESULTS=${RESULTS:-benches/load/results-monday.md}
read -r -a EDGES <<<"${EDGES:-gate nginx}"
HERE=benches/load
[[ -f $HERE/monday.sh && -f Cargo.toml ]] || { echo "monday.sh: run me from the repository root" >&2; exit 2; }
LOG_TAG=monday
# shellcheck source=benches/load/lib.sh
source "$HERE/lib.sh"

# ---- open files: the edge holds every client's connection ----
hard=$(ulimit -Hn)
[[ $hard == unlimited ]] && hard=1048576
ulimit -n "$hard"
need=$((CLIENTS + 500))
if ((hard < need)); then
    echo "monday.sh: CLIENTS=$CLIENTS needs an open-file limit of at least $need, the hard limit here is $hard;" \
        "raise it (as root: ulimit -Hn $need; a container: --ulimit nofile=$need) or run with CLIENTS=$((hard - 500))" >&2
    exit 2
fi
PER_PROC=$((hard - 100))
PROCS=$(((CLIENTS + PER_PROC - 1) / PER_PROC))

need_tools /usr/sbin/nginx=nginx curl=curl
NGINX=/usr/sbin/nginx
build_bin
start_work monday

python3 "$HERE/monday.py" allowlist "$CLIENTS" "$WORK"
PORT_BASE=$(python3 "$HERE/free_ports.py" 5 28800)
UP_PORT=$((PORT_BASE + 1)) GATE_PORT=$((PORT_BASE + 2)) ADMIN_PORT=$((PORT_BASE + 3)) NGINX_PORT=$((PORT_BASE + 4))

NGINX_NOFILE=$need
mkdir -p "$WORK/upstream" "$WORK/nginx" "$WORK/gate"
nginx_conf "$WORK/upstream" "$UP_PORT" 'location / { return 200 "ok\n"; }' >"$WORK/upstream/nginx.conf"
read -r pid _ _ < <(python3 "$HERE/launch.py" --log "$WORK/upstream.log" --probe "127.0.0.1:$UP_PORT/" \
    -- taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK/upstream/" -e "$WORK/upstream/error.log" -c "$WORK/upstream/nginx.conf")
PIDS+=("$pid")

cat >"$WORK/gate.toml" <<EOF
[proxy]
listen = ["127.0.0.1:$GATE_PORT"]
threads = $THREADS
max_connections = $((CLIENTS + 200))
[upstream]
addrs = ["127.0.0.1:$UP_PORT"]
[allowlist]
source = "$WORK/gate/allowlist.json"
[policy]
mode = "enforce"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
[log]
level = "warn"
EOF
cp "$WORK/allowlist.json" "$WORK/gate/allowlist.json"

open_fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

declare -A PID=() PORT=()
start_gate() {
    read -r pid _ _ < <(python3 "$HERE/launch.py" --log "$WORK/gate.log" --probe "127.0.0.1:$ADMIN_PORT/readyz" --want 200 \
        -- taskset -c "$EDGE_CPU" "$BIN" run --config "$WORK/gate.toml")
    PIDS+=("$pid")
    PID[gate]=$pid PORT[gate]=$GATE_PORT
}
start_nginx() {
    # The gate's own block page for the same unregistered address (nginx_edge).
    curl -s --interface "$(python3 -c "import sys; sys.path.insert(0, '$HERE'); import monday; print(monday.address(7, $CLIENTS))")" \
        "http://127.0.0.1:$GATE_PORT/" >"$WORK/page.html"
    nginx_conf "$WORK/nginx" "$NGINX_PORT" "$(nginx_edge "$WORK/page.html")" "geo \$registered { include $WORK/geo.conf; }
        upstream origin { server 127.0.0.1:$UP_PORT; keepalive 128; }" >"$WORK/nginx/nginx.conf"
    read -r master _ _ < <(python3 "$HERE/launch.py" --log "$WORK/nginx.log" --probe "127.0.0.1:$NGINX_PORT/" \
        -- taskset -c "$EDGE_CPU" "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf")
    PIDS+=("$master")
    PID[nginx]=$(pgrep -P "$master" | head -1) PORT[nginx]=$NGINX_PORT
}

# The gate is started first in any case: nginx answers with its page.
start_gate
for e in "${EDGES[@]}"; do [[ $e == nginx ]] && start_nginx; done

ROWS=$WORK/rows.jsonl
for e in "${EDGES[@]}"; do
    [[ -n ${PID[$e]:-} ]] || { echo "monday.sh: EDGES: unknown edge $e (gate nginx)" >&2; exit 2; }
    for o in "${EDGES[@]}"; do [[ $o == "$e" ]] || kill -STOP "${PID[$o]}"; done
    pid=${PID[$e]} rss0=$(rss_kib "${PID[$e]}") c0=$(cpu_ticks "${PID[$e]}")
    log "$e: $CLIENTS clients in $PROCS process(es), ramp ${RAMP}s, ${DURATION}s, a request every ~${INTERVAL}s each"
    loaders=()
    for ((p = 0; p < PROCS; p++)); do
        first=$((p * PER_PROC)) count=$PER_PROC
        ((first + count > CLIENTS)) && count=$((CLIENTS - first))
        taskset -c "$LOAD_CPU" python3 "$HERE/monday.py" run "127.0.0.1:${PORT[$e]}" "$first" "$count" \
            "$CLIENTS" "$RAMP" "$DURATION" "$INTERVAL" "$WORK/$e-$p.json" &
        loaders+=($!)
        PIDS+=($!)
    done
    # The edge's peak memory and connections, sampled once a second while the clients run.
    peak_rss=$rss0 peak_fds=0
    while kill -0 "${loaders[0]}" 2>/dev/null; do
        r=$(rss_kib "$pid") f=$(open_fds "$pid")
        ((r > peak_rss)) && peak_rss=$r
        ((f > peak_fds)) && peak_fds=$f
        sleep 1
    done
    for l in "${loaders[@]}"; do wait "$l"; done
    c1=$(cpu_ticks "$pid")
    python3 "$HERE/monday.py" report "$WORK/$e"-*.json |
        python3 -c 'import json, sys; d = json.load(sys.stdin); d.update(edge=sys.argv[1], rss0=int(sys.argv[2]), rss=int(sys.argv[3]), fds=int(sys.argv[4]), cpu_s=int(sys.argv[5]) / 100); print(json.dumps(d))' \
            "$e" "$rss0" "$peak_rss" "$peak_fds" $((c1 - c0)) >>"$ROWS"
    for o in "${EDGES[@]}"; do [[ $o == "$e" ]] || kill -CONT "${PID[$o]}"; done
done

python3 - "$ROWS" "$CLIENTS" "$RAMP" "$DURATION" "$INTERVAL" <<'EOF' | tee "$RESULTS"
import json, subprocess, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
clients, ramp, duration, interval = sys.argv[2:6]
rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
print("Monday 08:30: %s keep-alive clients from 127.10.0.0/16 (30%% unregistered), connected over %ss, "
      "a request every ~%ss each for %ss; poortwachter %s, one edge core, clients and upstream on the other.\n"
      % (clients, ramp, interval, duration, rev))
print("| edge | connected | requests allowed / blocked | p50 / p99 / max ms allowed | p50 / p99 / max ms blocked | errors | RSS before / peak MB | edge CPU s | open fds peak |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    a, b = r["allowed"], r["blocked"]
    f = lambda x: "%.2f / %.2f / %.1f" % (x["p50_ms"], x["p99_ms"], x["max_ms"]) if x["requests"] else "-"
    errs = ", ".join("%s %d" % kv for kv in r["errors"].items() if kv[1]) or "none"
    print("| %s | %d of %d | %d / %d | %s | %s | %s | %.1f / %.1f | %.1f | %d |" % (
        r["edge"], r["connected"], r["clients"], a["requests"], b["requests"], f(a), f(b), errs,
        r["rss0"] / 1024, r["rss"] / 1024, r["cpu_s"], r["fds"]))
EOF
log "table written to $RESULTS"
