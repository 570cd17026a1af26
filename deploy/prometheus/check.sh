#!/usr/bin/env bash
# Proves the Prometheus kit against a real Prometheus:
#   1. promtool check rules / check config / test rules (every alert, firing and not firing);
#   2. two gates on loopback (A: enforce, in front of its demo origin; B: report-only, started
#      from a seeded last-known-good while its source is missing, with an upstream that refuses
#      connections), scraped every second by a real Prometheus that also loads alerts.yml;
#   3. curl plays schools (allowed, blocked, unresolvable, a bypass route, the self-check page)
#      in bounded rounds, while the HTTP API is polled until every dashboard query returns
#      data, every metric the alert rules select exists, and every rule evaluates without
#      error — or the deadline passes.
#
# Run from the repository root after `cargo build`: bash deploy/prometheus/check.sh
# Uses ${CARGO_TARGET_DIR:-target}/debug/poortwachter. Installs Debian's `prometheus` package
# when prometheus/promtool are missing (as root); prints SKIP and exits 0 only when that is
# impossible. Loopback only; the live part fails after DEADLINE seconds (default 120).
set -euo pipefail

ORIG_PWD=$PWD
cd "$(dirname "$0")/../.."
ROOT=$PWD
KIT=$ROOT/deploy/prometheus
DASHBOARD=$ROOT/deploy/grafana/poortwachter.json
DEADLINE=${DEADLINE:-120}
# Metrics the kit references for capabilities that are planned but not built yet: their
# absence is reported, not a failure. Everything else must exist. None at the moment.
PLANNED_METRICS=""

target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$ORIG_PWD/$target_dir ;; esac
BIN=$target_dir/debug/poortwachter

say() { printf 'prometheus check: %s\n' "$*"; }
fail() { printf 'prometheus check: FAIL: %s\n' "$*" >&2; exit 1; }

[ -x "$BIN" ] || fail "$BIN not found: run cargo build first"
command -v python3 >/dev/null || fail "python3 is needed"
command -v curl >/dev/null || fail "curl is needed"
command -v openssl >/dev/null || fail "openssl is needed (the gates' TLS listeners get a test certificate)"

# ---------------------------------------------------------------- prometheus + promtool
install_prometheus() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    return 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package's maintainer scripts must not start a Prometheus daemon on port 9090 here.
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard=/usr/sbin/policy-rc.d
  fi
  local rc=0
  timeout 600 apt-get update -qq >/dev/null 2>&1 &&
    timeout 900 apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || rc=1
  [ -z "$guard" ] || rm -f "$guard"
  return $rc
}

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  say "prometheus/promtool missing: installing Debian's prometheus package"
  if ! install_prometheus || ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    echo "SKIP: deploy/prometheus/check.sh: Debian's prometheus package cannot be installed here (needs root, apt-get and a package mirror); nothing was checked"
    exit 0
  fi
fi
PROM_VERSION=$(prometheus --version 2>&1 | head -n1)
say "using $PROM_VERSION"

# ---------------------------------------------------------------- static checks
promtool check rules "$KIT/alerts.yml"
promtool check config "$KIT/prometheus.yml"
( cd "$KIT" && promtool test rules alerts_test.yml )
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$DASHBOARD" || fail "$DASHBOARD is not valid JSON"

# ---------------------------------------------------------------- processes, cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/poortwachter-promcheck.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
START=$SECONDS
time_left() { [ $((SECONDS - START)) -lt "$DEADLINE" ]; }

# Free loopback ports, chosen now (a collision later is retried with new ones).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Wait until URL answers 200, or the process PID dies (returns 2), or the deadline (1).
wait_http() {
  local url=$1 pid=$2
  while time_left; do
    kill -0 "$pid" 2>/dev/null || return 2
    if [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" || true)" = 200 ]; then return 0; fi
    sleep 0.2
  done
  return 1
}

cp "$ROOT/config/allowlist.json" "$TMP/allowlist.json"
cp "$ROOT/config/allowlist.json" "$TMP/seed-last-good.json"
echo "0123456789abcdef0123456789abcdef" >"$TMP/admin-token"
# A certificate for the gates' TLS listeners, so the TLS metrics exist (expiry in 30 days).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$TMP/tls.key" -out "$TMP/tls.pem" 2>/dev/null || fail "openssl could not make a test certificate"

write_gate_config() { # name proxy admin origin upstream mode source last_good tls
  cat >"$TMP/$1.toml" <<EOF
[proxy]
listen = ["127.0.0.1:$2"]
tls_listen = ["127.0.0.1:$9"]
tls_cert_file = "$TMP/tls.pem"
tls_key_file = "$TMP/tls.key"
threads = 1
grace_period = "1s"
shutdown_timeout = "1s"

[upstream]
addrs = ["127.0.0.1:$5"]
connect_timeout = "1s"
read_timeout = "5s"

[client_ip]
trusted_proxies = ["127.0.0.1/32"]
header = "x-forwarded-for"

[allowlist]
source = "$7"
poll_interval = "2s"
last_good = "$8"

[policy]
mode = "$6"

[admin]
listen = "127.0.0.1:$3"
token_file = "$TMP/admin-token"

[log]
format = "json"
level = "warn"

[demo_origin]
listen = "127.0.0.1:$4"

[[route]]
name = "static"
path_prefix = "/static/"
action = "bypass"
EOF
}

# Gate A: enforce, upstream = its own demo origin, allowlist file present.
# Gate B: report-only, allowlist source missing but a seeded last-known-good, upstream = a port
#         nobody listens on (so the upstream "error" class is real).
start_gates() {
  local attempt
  for attempt in 1 2 3 4 5; do
    read -r A_PROXY A_ADMIN A_ORIGIN B_PROXY B_ADMIN B_ORIGIN B_DEAD A_TLS B_TLS < <(free_ports 9)
    write_gate_config gate-a "$A_PROXY" "$A_ADMIN" "$A_ORIGIN" "$A_ORIGIN" enforce \
      "$TMP/allowlist.json" "$TMP/gate-a-last-good.json" "$A_TLS"
    cp "$TMP/seed-last-good.json" "$TMP/gate-b-last-good.json"
    write_gate_config gate-b "$B_PROXY" "$B_ADMIN" "$B_ORIGIN" "$B_DEAD" report-only \
      "$TMP/missing-allowlist.json" "$TMP/gate-b-last-good.json" "$B_TLS"
    "$BIN" run --config "$TMP/gate-a.toml" >"$TMP/gate-a.log" 2>&1 &
    A_PID=$!; PIDS+=("$A_PID")
    "$BIN" run --config "$TMP/gate-b.toml" >"$TMP/gate-b.log" 2>&1 &
    B_PID=$!; PIDS+=("$B_PID")
    local ra=0 rb=0
    wait_http "http://127.0.0.1:$A_ADMIN/readyz" "$A_PID" || ra=$?
    wait_http "http://127.0.0.1:$B_ADMIN/readyz" "$B_PID" || rb=$?
    if [ $ra -eq 0 ] && [ $rb -eq 0 ]; then return 0; fi
    kill -TERM "$A_PID" "$B_PID" 2>/dev/null || true
    wait "$A_PID" "$B_PID" 2>/dev/null || true
    if grep -qi 'in use' "$TMP/gate-a.log" "$TMP/gate-b.log"; then
      say "port collision (attempt $attempt), retrying with other ports"
      continue
    fi
    tail -n 20 "$TMP/gate-a.log" "$TMP/gate-b.log" >&2 || true
    fail "the gates did not become ready"
  done
  fail "no free ports for the gates after 5 attempts"
}

start_prometheus() {
  local attempt rc
  for attempt in 1 2 3 4 5; do
    read -r PROM_PORT < <(free_ports 1)
    cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $KIT/alerts.yml
scrape_configs:
  - job_name: poortwachter
    static_configs:
      - targets: ["127.0.0.1:$A_ADMIN", "127.0.0.1:$B_ADMIN"]
EOF
    rm -rf "$TMP/tsdb"
    prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
      --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
    PROM_PID=$!; PIDS+=("$PROM_PID")
    rc=0
    wait_http "http://127.0.0.1:$PROM_PORT/-/ready" "$PROM_PID" || rc=$?
    [ $rc -eq 0 ] && return 0
    kill -TERM "$PROM_PID" 2>/dev/null || true
    wait "$PROM_PID" 2>/dev/null || true
    if grep -qi 'address already in use' "$TMP/prometheus.log"; then
      say "port collision for Prometheus (attempt $attempt), retrying"
      continue
    fi
    tail -n 20 "$TMP/prometheus.log" >&2 || true
    fail "Prometheus did not become ready"
  done
  fail "no free port for Prometheus after 5 attempts"
}

REQUESTS=0
STATUSES=""
# One bounded round of school traffic against both gates.
drive_traffic() {
  local port xff code
  for port in "$A_PROXY" "$B_PROXY"; do
    for xff in 192.0.2.10 198.51.100.70 203.0.113.50 2001:db8:99::7 not-an-address; do
      code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H "X-Forwarded-For: $xff" \
        "http://127.0.0.1:$port/toets" || true)
      REQUESTS=$((REQUESTS + 1))
      STATUSES="$STATUSES $port/$xff=$code"
    done
    curl -s -o /dev/null -m 5 -H 'X-Forwarded-For: 203.0.113.50' -H 'Accept: application/json' \
      "http://127.0.0.1:$port/toets" || true
    # A bypass route (static assets) and the self-check page, both for an unregistered school.
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'X-Forwarded-For: 203.0.113.50' \
      "http://127.0.0.1:$port/static/app.css" || true)
    STATUSES="$STATUSES $port/static=$code"
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'X-Forwarded-For: 203.0.113.50' \
      "http://127.0.0.1:$port/.well-known/poortwachter/check" || true)
    STATUSES="$STATUSES $port/self-check=$code"
    REQUESTS=$((REQUESTS + 3))
  done
  # The school's request over TLS (HTTP/2), to gate A.
  code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' --http2 --cacert "$TMP/tls.pem" \
    --resolve "localhost:$A_TLS:127.0.0.1" -H 'X-Forwarded-For: 192.0.2.10' \
    "https://localhost:$A_TLS/toets" || true)
  STATUSES="$STATUSES tls/192.0.2.10=$code"
  REQUESTS=$((REQUESTS + 1))
}

start_gates
say "gate A (enforce) proxy 127.0.0.1:$A_PROXY admin :$A_ADMIN; gate B (report-only, from seeded last_good) proxy :$B_PROXY admin :$B_ADMIN"
start_prometheus
say "Prometheus on 127.0.0.1:$PROM_PORT scraping both admin listeners every second"

# The gates must answer as the README says before their metrics mean anything.
drive_traffic
for want in "$A_PROXY/192.0.2.10=200" "$A_PROXY/203.0.113.50=403" "$A_PROXY/not-an-address=403" \
  "$A_PROXY/static=200" "$A_PROXY/self-check=200" "$B_PROXY/203.0.113.50=502" "tls/192.0.2.10=200"; do
  case " $STATUSES " in *" $want "*) ;; *) fail "expected $want, got:$STATUSES" ;; esac
done
say "traffic answers as expected (A: 200 allowed, 403 blocked, 200 bypass route and self-check, 200 over TLS; B: report-only lets through, dead upstream gives 502)"

# Both reload paths, so the reload counters exist: POST /reload with the token on A, SIGHUP on B.
code=$(curl -s -o "$TMP/reload.json" -m 30 -w '%{http_code}' -X POST \
  -H "Authorization: Bearer $(cat "$TMP/admin-token")" "http://127.0.0.1:$A_ADMIN/reload" || true)
[ "$code" = 200 ] || fail "POST /reload on gate A answered $code: $(cat "$TMP/reload.json" 2>/dev/null)"
code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST "http://127.0.0.1:$A_ADMIN/reload" || true)
[ "$code" = 401 ] || fail "POST /reload without a token answered $code, expected 401"
kill -HUP "$B_PID"
say "reloads: POST /reload with token 200, without token 401; SIGHUP sent to gate B"

cat >"$TMP/verify.py" <<'EOF'
"""One verification pass against the Prometheus HTTP API. Exit 0 when everything is there,
3 when something is still missing (the caller retries until its deadline). Prints a report."""
import json, re, sys, urllib.parse, urllib.request

prom, dashboard_path, alerts_path, planned, final = sys.argv[1:6]
planned = set(planned.split())
final = final == "1"

def api(path, **params):
    url = f"{prom}/api/v1/{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body}")
    return body["data"]

def has_value(result):
    for s in result:
        vals = [s["value"]] if "value" in s else s.get("values", [])
        for _, v in vals:
            if v.lower() not in ("nan",):
                return True
    return False

# Dashboard queries, with Grafana's variables as the dashboard's defaults would set them.
SUBST = [("$__rate_interval", "1m"), ("$__interval", "15s"), ("$__range", "5m"),
         ("${job}", "poortwachter"), ("$job", "poortwachter"),
         ("${instance}", ".*"), ("$instance", ".*")]
def panels(items):
    for p in items:
        yield p
        yield from panels(p.get("panels", []))
dash = json.load(open(dashboard_path))
queries = []
for p in panels(dash.get("panels", [])):
    for t in p.get("targets", []):
        if t.get("expr"):
            queries.append((p.get("title", "?"), t["expr"]))
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    if v.get("type") == "query":
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", q or "")
        if m:
            queries.append((f"variable {v['name']}", f"count by ({m.group(2)}) ({m.group(1)})"))

missing_dash = []
for title, expr in queries:
    q = expr
    for k, val in SUBST:
        q = q.replace(k, val)
    try:
        data = api("query", query=q)
        ok = has_value(data["result"])
    except Exception as e:  # a query error is a failure too
        ok, data = False, {"error": str(e)}
    if not ok:
        missing_dash.append(f"[{title}] {q}")

# Metric names selected by the alert rules, from the rules Prometheus actually loaded.
rules = [r for g in api("rules")["groups"] for r in g["rules"] if r["type"] == "alerting"]
expected_alerts = len(re.findall(r"^\s*- alert:", open(alerts_path).read(), re.M))
KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan"}
def metric_names(expr):
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)", e):
        name = m.group(1)
        rest = e[m.end():].lstrip()
        if name.lower() in KEYWORDS or rest.startswith("("):
            continue
        names.add(name)
    return names
names = set()
for r in rules:
    names |= metric_names(r["query"])
missing_names, planned_absent, present = [], [], []
for n in sorted(names):
    res = api("query", query=f'count({{__name__="{n}"}})')["result"]
    if res:
        present.append(n)
    elif n in planned:
        planned_absent.append(n)
    else:
        missing_names.append(n)
unhealthy = [f"{r['name']}: {r.get('health')} {r.get('lastError', '')}" for r in rules
             if r.get("health") != "ok"]

complete = (not missing_dash and not missing_names and not unhealthy
            and len(rules) == expected_alerts)
if complete or final:
    print(f"dashboard queries returning data: {len(queries) - len(missing_dash)}/{len(queries)}")
    for m in missing_dash:
        print(f"  NO DATA {m}")
    print(f"alert rules loaded by Prometheus: {len(rules)}/{expected_alerts}, "
          f"evaluating without error: {len(rules) - len(unhealthy)}")
    for u in unhealthy:
        print(f"  UNHEALTHY {u}")
    print(f"metrics selected by the alert rules: {len(present)} present"
          + (f", {len(missing_names)} MISSING: {' '.join(missing_names)}" if missing_names else ""))
    print("  " + " ".join(present))
    for n in planned_absent:
        print(f"  planned, not exposed yet (not a failure): {n}")
    firing = [a for a in api("alerts")["alerts"] if a["state"] == "firing"]
    print("alerts firing in this short run (informational): "
          + (", ".join(sorted({a['labels']['alertname'] for a in firing})) or "none"))
sys.exit(0 if complete else 3)
EOF

# Poll until everything is there; keep some traffic flowing so rates stay above zero.
PROM_URL=http://127.0.0.1:$PROM_PORT
rounds=0
result=3
while :; do
  drive_traffic
  rounds=$((rounds + 1))
  final=0
  time_left || final=1
  result=0
  python3 "$TMP/verify.py" "$PROM_URL" "$DASHBOARD" "$KIT/alerts.yml" "$PLANNED_METRICS" "$final" \
    >"$TMP/verify.out" 2>&1 || result=$?
  if [ $result -ne 3 ] || [ $final -eq 1 ]; then break; fi
  sleep 1
done
cat "$TMP/verify.out"
say "$REQUESTS requests in $rounds traffic rounds, $((SECONDS - START))s of live checking"
[ $result -eq 0 ] || fail "Prometheus did not show everything the dashboard and the alerts need (see above)"
say "OK: rules valid and unit-tested, every dashboard query returns data, every alerted metric exists ($PROM_VERSION)"
