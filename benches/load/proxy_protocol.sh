#!/usr/bin/env bash
# The cost of the PROXY protocol: one gate process with a plain listener and a
# `proxy_protocol = "v1"` listener, both behind the same HAProxy (TCP mode; `send-proxy` to
# the second), so the only difference between the two paths is the header and its check.
#
#   benches/load/proxy_protocol.sh                      # from the repository root, ~3 minutes
#   ROUNDS=5 DURATION=20 benches/load/proxy_protocol.sh
#
# The gate is pinned to core EDGE_CPU; wrk, HAProxy and the upstream (nginx, `return 200`)
# share core LOAD_CPU. Per path (blocked: the gate answers 403; allowed: proxied) and
# listener ("off", "v1"), ROUNDS rounds of DURATION seconds, the order reversed every other
# round. Reported: requests/s and the gate's CPU µs per request (utime+stime), and the
# ratio v1/off of each. wrk keeps CONNECTIONS keep-alive connections, as browsers behind a
# balancer do, so the header is read once per connection.
#
# Settings (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNECTIONS=32 RANGES=100000 SEED=7
#   EDGE_CPU=0 LOAD_CPU=1 SKIP_BUILD=1 BIN=path
set -euo pipefail

ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNECTIONS=${CONNECTIONS:-32}
RANGES=${RANGES:-100000} SEED=${SEED:-7} EDGE_CPU=${EDGE_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
HERE=benches/load
[[ -f $HERE/run.sh && -f Cargo.toml ]] || { echo "proxy_protocol.sh: run me from the repository root" >&2; exit 2; }
LOG_TAG=pp
# shellcheck source=benches/load/lib.sh
source "$HERE/lib.sh"

need_tools wrk=wrk /usr/sbin/nginx=nginx /usr/sbin/haproxy=haproxy curl=curl
build_bin
start_work pp
start() { # name probe want cpu cmd...: its pid in STARTED (and PIDS: not in a subshell)
    local name=$1 probe=$2 want=$3 cpu=$4 pid
    shift 4
    read -r pid _ _ < <(python3 "$HERE/launch.py" --log "$WORK/$name.log" --probe "$probe" \
        ${want:+--want "$want"} -- taskset -c "$cpu" "$@")
    PIDS+=("$pid")
    STARTED=$pid
}

log "generating $RANGES ranges (seed $SEED)"
python3 "$HERE/gen_allowlist.py" "$WORK/gen" "$RANGES" "$SEED" >&2
source "$WORK/gen/addresses.env"
BASE=$(python3 "$HERE/free_ports.py" 8 28600)
UP=$BASE GATE=$((BASE + 1)) GATE_PP=$((BASE + 2)) ADMIN=$((BASE + 3)) LB=$((BASE + 4)) LB_PP=$((BASE + 5))

mkdir -p "$WORK/upstream"
nginx_conf "$WORK/upstream" "$UP" 'location / { return 200 "ok\n"; }' >"$WORK/upstream/nginx.conf"
start upstream "127.0.0.1:$UP/" "" "$LOAD_CPU" /usr/sbin/nginx -p "$WORK/upstream/" \
    -e "$WORK/upstream/error.log" -c "$WORK/upstream/nginx.conf"

cat >"$WORK/gate.toml" <<EOF
[proxy]
listen = ["127.0.0.1:$GATE"]
threads = 1
[upstream]
addrs = ["127.0.0.1:$UP"]
[client_ip]
trusted_proxies = ["127.0.0.1/32"]
[allowlist]
source = "$WORK/gen/allowlist.json"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
level = "warn"
[[proxy.listener]]
addr = "127.0.0.1:$GATE_PP"
proxy_protocol = "v1"
proxy_protocol_from = ["127.0.0.1/32"]
EOF
start gate "127.0.0.1:$ADMIN/readyz" 200 "$EDGE_CPU" "$BIN" run --config "$WORK/gate.toml"
GATE_PID=$STARTED

cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
frontend off
  bind 127.0.0.1:$LB
  default_backend gate_off
backend gate_off
  server gate 127.0.0.1:$GATE
frontend v1
  bind 127.0.0.1:$LB_PP
  default_backend gate_v1
backend gate_v1
  server gate 127.0.0.1:$GATE_PP send-proxy
EOF
start haproxy "127.0.0.1:$LB/" "" "$LOAD_CPU" /usr/sbin/haproxy -db -f "$WORK/haproxy.cfg"
declare -A PORT=([off]=$LB [v1]=$LB_PP)

# Both paths through both listeners answer as they should before anything is measured.
for l in off v1; do
    for path in blocked allowed; do
        ip=$UNREGISTERED_IP want=403
        [[ $path == allowed ]] && ip=$REGISTERED_IP want=200
        got=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Forwarded-For: $ip" "http://127.0.0.1:${PORT[$l]}/")
        [[ $got == "$want" ]] || { echo "proxy_protocol.sh: $l $path: expected $want, got $got" >&2; exit 1; }
    done
done

RUNS=$WORK/runs.txt
measure() { # listener path round seconds
    local ip=$UNREGISTERED_IP c0 c1 out
    [[ $2 == allowed ]] && ip=$REGISTERED_IP
    c0=$(cpu_ticks "$GATE_PID")
    out=$(taskset -c "$LOAD_CPU" timeout $(($4 + 30)) wrk -t1 -c "$CONNECTIONS" -d "${4}s" \
        -s "$HERE/xff.lua" "http://127.0.0.1:${PORT[$1]}/" -- "$ip" | sed -n 's/^RESULT //p')
    c1=$(cpu_ticks "$GATE_PID")
    ((${3} == 0)) && return
    python3 -c '
import json, os, sys
l, path, rnd, ticks, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
hz = os.sysconf("SC_CLK_TCK")
errors = w["connect_errors"] + w["read_errors"] + w["write_errors"] + w["timeouts"]
rps = w["requests"] / (w["duration_us"] / 1e6)
cpu = ticks / hz * 1e6 / max(w["requests"], 1)
print(f"{l} {path} {rnd} {rps:.0f} {cpu:.2f} {errors}")
' "$1" "$2" "$3" $((c1 - c0)) "$out" | tee -a "$RUNS" >&2
}

log "load average $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds of ${DURATION}s, wrk -t1 -c$CONNECTIONS"
for path in blocked allowed; do for l in off v1; do measure "$l" "$path" 0 "$WARMUP"; done; done
for ((r = 1; r <= ROUNDS; r++)); do
    order=(off v1)
    ((r % 2 == 0)) && order=(v1 off)
    for path in blocked allowed; do for l in "${order[@]}"; do measure "$l" "$path" "$r" "$DURATION"; done; done
done

python3 - "$RUNS" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
print("| path | listener | req/s (median) | gate CPU µs/req (median) | socket errors |")
print("|---|---|---|---|---|")
med = {}
for path in ("blocked", "allowed"):
    for l in ("off", "v1"):
        rs = [r for r in rows if r[0] == l and r[1] == path]
        rps = statistics.median(float(r[3]) for r in rs)
        cpu = statistics.median(float(r[4]) for r in rs)
        med[path, l] = (rps, cpu)
        print(f"| {path} | {l} | {rps:.0f} | {cpu:.2f} | {sum(int(r[5]) for r in rs)} |")
for path in ("blocked", "allowed"):
    (r0, c0), (r1, c1) = med[path, "off"], med[path, "v1"]
    print(f"{path}: v1/off req/s {r1 / r0:.3f}, CPU per request v1/off {c1 / c0:.3f}")
EOF
