#!/usr/bin/env bash
# Zero-downtime upgrade under load: the gate on the shipped example config (in front of its
# demo origin), wrk sending allowed requests over CONNECTIONS keep-alive connections for
# DURATION seconds, and UPGRADES upgrades (SIGUSR2: the gate starts the new process itself
# and hands it the sockets) spread over the run. Reported: requests sent, failed (socket
# errors of every kind plus non-2xx answers; must be 0), and the pids that served.
#
#   benches/load/upgrade.sh                         # from the repository root, ~40 s
#   UPGRADES=4 DURATION=60 CONNECTIONS=100 benches/load/upgrade.sh
#
# Exit 1 when a request failed or an upgrade did not happen.
# Settings (defaults): DURATION=30 CONNECTIONS=50 THREADS=2 UPGRADES=2 SKIP_BUILD=0 BIN=path
set -euo pipefail

DURATION=${DURATION:-30} CONNECTIONS=${CONNECTIONS:-50} THREADS=${THREADS:-2}
UPGRADES=${UPGRADES:-2}
[[ -f benches/load/run.sh && -f Cargo.toml ]] || { echo "upgrade.sh: run me from the repository root" >&2; exit 2; }
LOG_TAG=upgrade
# shellcheck source=benches/load/lib.sh
source benches/load/lib.sh

need_tools wrk=wrk
build_bin

TMP=$(mktemp -d "${TMPDIR:-/tmp}/poortwachter-upgrade.XXXXXX")
pids=()
cleanup() {
    # Every gate process of the run: the first and those the upgrades started.
    for p in "${pids[@]}" $(cat "$TMP/served" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# Free ports for the proxy, admin and demo origin listeners.
base=$(python3 benches/load/free_ports.py 3 21080)
PROXY=$base ADMIN=$((base + 1)) ORIGIN=$((base + 2))
sed -e "s#127.0.0.1:8080#127.0.0.1:$PROXY#; s#127.0.0.1:9090#127.0.0.1:$ADMIN#; s#127.0.0.1:8081#127.0.0.1:$ORIGIN#g" \
    -e "s#\"config/#\"$PWD/config/#g" \
    -e "s#^\[proxy\]#[proxy]\nupgrade_socket = \"$TMP/upgrade.sock\"#" \
    config/poortwachter.toml >"$TMP/gate.toml"

"$BIN" run --config "$TMP/gate.toml" >"$TMP/gate.log" 2>&1 &
pids+=($!)
pid_now() { curl -s "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null 2>&1 && break
    sleep 0.05
done
curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null || { log "the gate did not get ready"; cat "$TMP/gate.log" >&2; exit 1; }
pid_now >"$TMP/served"

log "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, $UPGRADES upgrade(s) during it"
# 192.0.2.10 is a registered school in config/allowlist.json: every request is proxied.
wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -H 'X-Forwarded-For: 192.0.2.10' \
    "http://127.0.0.1:$PROXY/" >"$TMP/wrk.out" 2>&1 &
wrk_pid=$!
# An upgrade takes about 5 s of both processes accepting plus the old one's grace period
# (5 s in the example): one after the other, each under load.
for i in $(seq "$UPGRADES"); do
    sleep 2
    old=$(tail -n1 "$TMP/served")
    log "upgrade $i: SIGUSR2 to $old"
    kill -USR2 "$old"
    # The old process exits after the hand-over and its grace period.
    for _ in $(seq 600); do kill -0 "$old" 2>/dev/null || break; sleep 0.05; done
    kill -0 "$old" 2>/dev/null && { log "process $old did not exit"; exit 1; }
    new=$(pid_now)
    [[ $new != "$old" ]] || { log "upgrade $i did not happen"; exit 1; }
    echo "$new" >>"$TMP/served"
    log "upgrade $i: $old -> $new"
done
kill -0 "$wrk_pid" 2>/dev/null || { log "wrk ended before the last upgrade: raise DURATION"; exit 1; }
wait "$wrk_pid"
cat "$TMP/wrk.out"

sent=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP/wrk.out")
socket=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' "$TMP/wrk.out")
non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' "$TMP/wrk.out")
failed=${non2xx:-0}
for n in $socket; do failed=$((failed + n)); done
echo "upgrades: $UPGRADES  processes: $(tr '\n' ' ' <"$TMP/served")"
echo "requests sent: $sent  failed: $failed"
((failed == 0)) || exit 1
