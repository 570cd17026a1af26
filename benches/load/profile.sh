#!/usr/bin/env bash
# Where the gate spends its instructions, independent of how busy the machine is.
#
#   benches/load/profile.sh [BIN]      # from the repository root; BIN: a release binary
#
# Starts the gate (mode MODE=enforce, log level LOG=warn) with the 100k-range allowlist
# under `valgrind --tool=callgrind` (collection on only while wrk runs), loads it for
# SECS=10 s on each path, and prints instructions per request, syscalls per request
# (strace -c, a separate run) and the top functions. Then instructions of `check` (parse +
# compile of the 100k ranges, as at start). Needs valgrind and strace (apt-get install).
set -euo pipefail
HERE=benches/load
BIN=$(realpath "${1:-${CARGO_TARGET_DIR:-target}/release/poortwachter}")
MODE=${MODE:-enforce} LOG=${LOG:-warn} SECS=${SECS:-10} TOP=${TOP:-25}
# Three loopback ports from PORT, checked free (default: the first free block from 28500).
if [[ -n ${PORT:-} ]]; then
    PORT=$(python3 "$HERE/free_ports.py" 3 "$PORT" --exact)
else
    PORT=$(python3 "$HERE/free_ports.py" 3 28500)
fi
WORK=$(mktemp -d /tmp/poortwachter-profile.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$WORK"
}
trap cleanup EXIT

# The allowlist in a directory of its own: the gate watches it, and a log written next to
# it would wake the watcher on every line.
python3 "$HERE/gen_allowlist.py" "$WORK/al" 100000 7 >/dev/null
source "$WORK/al/addresses.env"
mkdir -p "$WORK/up"
cat >"$WORK/up/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/up/nginx.pid; error_log $WORK/up/error.log warn;
events {}
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$((PORT + 1)); location / { return 200 "ok\n"; } } }
EOF
/usr/sbin/nginx -p "$WORK/up/" -e "$WORK/up/error.log" -c "$WORK/up/nginx.conf" &
PIDS+=($!)
cat >"$WORK/gate.toml" <<EOF
[proxy]
listen = ["127.0.0.1:$PORT"]
threads = 1
[upstream]
addrs = ["127.0.0.1:$((PORT + 1))"]
[client_ip]
trusted_proxies = ["127.0.0.1/32"]
[allowlist]
source = "$WORK/al/allowlist.json"
[policy]
mode = "$MODE"
[admin]
listen = "127.0.0.1:$((PORT + 2))"
[log]
level = "$LOG"
EOF

wait_ready() { for _ in $(seq 600); do curl -sf "127.0.0.1:$((PORT + 2))/readyz" >/dev/null && return; sleep 0.1; done; exit 1; }
load() { # path seconds -> requests
    local ip=$UNREGISTERED_IP
    [[ $1 == allowed ]] && ip=$REGISTERED_IP
    wrk -t1 -c8 -d "${2}s" -s "$HERE/xff.lua" "http://127.0.0.1:$PORT/" -- "$ip" |
        sed -n 's/^RESULT //p' | python3 -c 'import json, sys; print(json.load(sys.stdin)["requests"])'
}

for path in blocked allowed; do
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/cg.out" \
        "$BIN" run --config "$WORK/gate.toml" 2>"$WORK/gate.log" &
    gate=$!
    PIDS+=("$gate")
    wait_ready
    load "$path" 2 >/dev/null
    callgrind_control -i on "$gate" >/dev/null
    n=$(load "$path" "$SECS")
    callgrind_control -d "$gate" >/dev/null
    kill -INT "$gate"
    wait "$gate" || true
    total=$(callgrind_annotate "$WORK/cg.out.1" | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
    echo "## $path path, mode $MODE, log $LOG: $n requests, $((total / n)) instructions per request"
    "$BIN" run --config "$WORK/gate.toml" 2>"$WORK/gate.log" &
    gate=$!
    PIDS+=("$gate")
    wait_ready
    load "$path" 1 >/dev/null
    timeout 5 strace -c -f -p "$gate" -o "$WORK/strace.txt" &
    sleep 0.5
    n=$(load "$path" 3)
    wait $! || true
    kill -INT "$gate"
    echo "syscalls per request: $(awk -v n="$n" '/^[ 0-9.]+[0-9]+ +[a-z_0-9]+$/ {c[$NF] = $4} / total$/ {t = $4}
        END {printf "%.2f (", t / n; for (k in c) if (c[k] / n >= 0.05) printf "%s %.2f ", k, c[k] / n; printf ")"}' "$WORK/strace.txt")"
    echo '### self'
    callgrind_annotate "$WORK/cg.out.1" | sed -n '/file:function/,$p' | sed -n "3,$((TOP + 2))p"
    echo '### inclusive'
    callgrind_annotate --inclusive=yes "$WORK/cg.out.1" | sed -n '/file:function/,$p' | sed -n "3,$((TOP + 2))p"
    rm -f "$WORK"/cg.out*
done
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg-check.out" "$BIN" check --config "$WORK/gate.toml" >/dev/null 2>&1
echo "## check (parse + compile of 100k ranges): $(callgrind_annotate "$WORK/cg-check.out" | awk '/PROGRAM TOTALS/ && !t {t = $1} END {print t}') instructions"
callgrind_annotate --inclusive=yes "$WORK/cg-check.out" | sed -n '/file:function/,$p' | sed -n "3,$((TOP + 2))p"
