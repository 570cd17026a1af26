#!/usr/bin/env bash
# Load benchmark: poortwachter next to nginx (realip + geo) doing the same job, on one machine.
#
#   benches/load/run.sh                        # from the repository root, about 7 minutes
#   ROUNDS=5 DURATION=20 benches/load/run.sh   # steadier
#
# Builds the release binary, generates a deterministic allowlist of RANGES ranges, starts on
# loopback an upstream (nginx, 1 worker, `return 200`) and three edges, each pinned to core
# EDGE_CPU while wrk and the upstream share core LOAD_CPU:
#   gate   poortwachter, mode "enforce"
#   off    the same binary, mode "off": the framework's own ceiling
#   nginx  1 worker: set_real_ip_from + real_ip_recursive, geo over the same ranges, `return 403`
#          of the gate's own block page, keep-alive proxy_pass
# and, when CAND_BIN or a CAND_* setting is given, "cand": the gate with that binary/setting,
# to A/B one change. The client address comes in X-Forwarded-For from the trusted peer
# 127.0.0.1: "blocked" is an unregistered address (403 page), "allowed" a registered one.
# ROUNDS rounds of DURATION seconds per (edge, path), the order reversed every other round;
# the edges not measured are paused meanwhile. Prints the table (benches/load/report.py) and
# writes it to RESULTS. Everything started is stopped by PID on exit.
#
# PROTOS lists what is measured, each for every edge and path (plain or over TLS):
#   http      plain HTTP/1.1, wrk keep-alive (the default, PROTOS=http)
#   http-close  plain HTTP/1.1, wrk with `Connection: close`: a TCP connection per request
#   h1        HTTP/1.1 over TLS, wrk keep-alive
#   h2        HTTP/2 over TLS, h2load -c CONNECTIONS -m STREAMS
#   h1-close  HTTP/1.1 over TLS, wrk with `Connection: close`: a TLS handshake per request
#             (wrk resumes the session: TLS 1.3 PSK with X25519, no certificate signature)
#   h2-full   HTTP/2 over TLS, h2load opening RATE new connections a second, one request
#             each: a full handshake per request (certificate signature) at a fixed rate, so
#             its req/s is the offered rate and its CPU µs per request the figure
#   PROTOS="h1 h2 h1-close h2-full" benches/load/run.sh   # about 9 minutes; EDGES "gate nginx"
# A self-signed EC P-256 certificate (SAN DNS:localhost) is generated at run time for the
# gate's `tls_listen` and nginx's `listen ... ssl` (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by
# ALPN on both); the plain listeners stay for the readiness probes and checks.
#
# Settings (defaults): ROUNDS=3 DURATION=10 WARMUP=2 CONNECTIONS=32 READY_STARTS=5
#   EDGE_CPU=0 LOAD_CPU=1 RANGES=100000 SEED=7 RESULTS=benches/load/results.md
#   PORT_BASE= (20 loopback ports from there; default the first free block from 28400)
#   THREADS=1 (gate worker threads) NGINX_WORKERS=1 (the nginx edge's) UP_WORKERS=1 (the
#   upstream's) KEEPALIVE= (upstream pool, default the
#   gate's) LOG=warn (gate log level; at info every access line goes to a file)
#   SKIP_BUILD=1 BIN=path        use an existing binary
#   CAND_BIN CAND_THREADS CAND_KEEPALIVE CAND_LOG CAND_ENV   the candidate edge
#   EDGES="gate off nginx"       which of the three to run (an A/B of one change: EDGES=gate)
#   PROTOS=http STREAMS=4 (h2load streams per connection: 32 x 4 = 128 in flight, the
#   upstream keep-alive pool of both edges) RATE=500 (h2-full connections a second, a multiple
#   of 10) RESULTS=benches/load/results-tls.md over TLS
set -euo pipefail

ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10} WARMUP=${WARMUP:-2} CONNECTIONS=${CONNECTIONS:-32}
READY_STARTS=${READY_STARTS:-5} EDGE_CPU=${EDGE_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
RANGES=${RANGES:-100000} SEED=${SEED:-7}
THREADS=${THREADS:-1} KEEPALIVE=${KEEPALIVE:-} LOG=${LOG:-warn} STREAMS=${STREAMS:-4} RATE=${RATE:-500}
read -r -a PROTOS <<<"${PROTOS:-http}"
TLS=0
for p in "${PROTOS[@]}"; do
    case $p in
    http | http-close) ;;
    h1 | h2 | h1-close | h2-full) TLS=1 ;;
    *) echo "run.sh: PROTOS: unknown protocol $p (http http-close h1 h2 h1-close h2-full)" >&2; exit 2 ;;
    esac
done
if ((TLS)); then
    RESULTS=${RESULTS:-benches/load/results-tls.md} EDGES=${EDGES:-gate nginx}
else
    RESULTS=${RESULTS:-benches/load/results.md}
fi
HERE=benches/load
[[ -f $HERE/run.sh && -f Cargo.toml ]] || { echo "run.sh: run me from the repository root" >&2; exit 2; }
LOG_TAG=load
# shellcheck source=benches/load/lib.sh
source "$HERE/lib.sh"

# ---- tools, build, bookkeeping (every pid we start is stopped on exit) ----
tools=(wrk=wrk /usr/sbin/nginx=nginx curl=curl python3=python3)
((TLS)) && tools+=(openssl=openssl h2load=nghttp2-client)
need_tools "${tools[@]}"
NGINX=/usr/sbin/nginx
build_bin
start_work load

# launch NAME PROBE WANT CMD...: start on the edge core; prints "pid ms-to-ready rss-kib"
launch() {
    local name=$1 probe=$2 want=$3
    shift 3
    python3 "$HERE/launch.py" --log "$WORK/$name.log" --probe "$probe" ${want:+--want "$want"} \
        -- taskset -c "$EDGE_CPU" "$@"
}
workers_of() { # nginx master pid: its NGINX_WORKERS workers' pids, space-separated
    local w
    for _ in $(seq 100); do
        w=$(pgrep -P "$1" | tr '\n' ' ')
        read -r -a w_ <<<"$w"
        ((${#w_[@]} >= ${NGINX_WORKERS:-1})) && { echo "${w% }"; return; }
        sleep 0.02
    done
    return 1
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- allowlist ----
log "generating $RANGES ranges (seed $SEED)"
python3 "$HERE/gen_allowlist.py" "$WORK/gen" "$RANGES" "$SEED" >&2
# shellcheck source=/dev/null # written just above
source "$WORK/gen/addresses.env" # REGISTERED_IP, UNREGISTERED_IP
if ((TLS)); then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>"$WORK/openssl.log"
fi

# ---- upstream ----
# 20 loopback ports from PORT_BASE, checked free by binding each (a busy one would make
# another program's listener look like an edge): the given block, or the first free one.
if [[ -n ${PORT_BASE:-} ]]; then
    PORT_BASE=$(python3 "$HERE/free_ports.py" 20 "$PORT_BASE" --exact)
else
    PORT_BASE=$(python3 "$HERE/free_ports.py" 20 28400)
fi
UP_PORT=$((PORT_BASE + 1))
mkdir -p "$WORK/upstream"
NGINX_WORKERS=${UP_WORKERS:-1} nginx_conf "$WORK/upstream" "$UP_PORT" 'location / { return 200 "ok\n"; }' >"$WORK/upstream/nginx.conf"
read -r pid _ _ < <(python3 "$HERE/launch.py" --log "$WORK/upstream.log" --probe "127.0.0.1:$UP_PORT/" \
    -- taskset -c "$LOAD_CPU" "$NGINX" -p "$WORK/upstream/" -e "$WORK/upstream/error.log" -c "$WORK/upstream/nginx.conf")
PIDS+=("$pid")

# ---- edges ----
declare -A PORT=() TLS_PORT=() PID=() READY=() RSS_READY=() GROUP=()
gate_conf() { # name port admin mode threads keepalive log [tls-port]
    local tls=""
    [[ -z ${8:-} ]] || tls=$'\n'"tls_listen = [\"127.0.0.1:$8\"]
tls_cert_file = \"$WORK/cert.pem\"
tls_key_file = \"$WORK/key.pem\""
    mkdir -p "$WORK/$1"
    cp "$WORK/gen/allowlist.json" "$WORK/$1/allowlist.json"
    cat <<EOF
[proxy]
listen = ["127.0.0.1:$2"]$tls
threads = $5
[upstream]
addrs = ["127.0.0.1:$UP_PORT"]
${6:+keepalive_pool_size = $6}
[client_ip]
trusted_proxies = ["127.0.0.1/32"]
[allowlist]
source = "$WORK/$1/allowlist.json"
[policy]
mode = "$4"
[admin]
listen = "127.0.0.1:$3"
[log]
level = "$7"
EOF
}
start_edge() { # name port probe want cmd...: READY_STARTS starts, the last one stays up
    local name=$1 port=$2 probe=$3 want=$4 pid ms rss times=()
    shift 4
    for ((i = 1; i <= READY_STARTS; i++)); do
        read -r pid ms rss < <(launch "$name" "$probe" "$want" "$@")
        PIDS+=("$pid")
        times+=("$ms")
        ((i == READY_STARTS)) || stop_pid "$pid"
    done
    PORT[$name]=$port PID[$name]=$pid READY[$name]=${times[*]} RSS_READY[$name]=$rss GROUP[$name]=$pid
    log "$name: pid $pid, ready after ${times[*]} ms, RSS $rss KiB"
}
start_gate() { # name n mode threads keepalive log env bin
    local port=$((PORT_BASE + 10 + 2 * $2)) admin=$((PORT_BASE + 11 + 2 * $2)) tls=""
    ((TLS)) && tls=$((PORT_BASE + 16 + $2)) TLS_PORT[$1]=$tls
    gate_conf "$1" "$port" "$admin" "$3" "$4" "$5" "$6" ${tls:+"$tls"} >"$WORK/$1.toml"
    # shellcheck disable=SC2086 # $7 (CAND_ENV) is split into NAME=value words on purpose
    start_edge "$1" "$port" "127.0.0.1:$admin/readyz" 200 env $7 "$8" run --config "$WORK/$1.toml"
}
read -r -a EDGES <<<"${EDGES:-gate off nginx}"
has() { [[ " ${EDGES[*]} " == *" $1 "* ]]; }
has gate || { echo "run.sh: EDGES must include gate" >&2; exit 2; }
start_gate gate 0 enforce "$THREADS" "$KEEPALIVE" "$LOG" "" "$BIN"
if has off; then start_gate off 1 off "$THREADS" "$KEEPALIVE" "$LOG" "" "$BIN"; fi
if [[ -n ${CAND_BIN:-}${CAND_THREADS:-}${CAND_KEEPALIVE:-}${CAND_LOG:-}${CAND_ENV:-} ]]; then
    start_gate cand 2 enforce "${CAND_THREADS:-$THREADS}" "${CAND_KEEPALIVE:-$KEEPALIVE}" \
        "${CAND_LOG:-$LOG}" "${CAND_ENV:-}" "$(realpath "${CAND_BIN:-$BIN}")"
    EDGES+=(cand)
fi

if has nginx; then
    # nginx answers with the gate's own block page (nginx_edge).
    curl -s -H "X-Forwarded-For: $UNREGISTERED_IP" "http://127.0.0.1:${PORT[gate]}/" >"$WORK/page.html"
    NGINX_PORT=$((PORT_BASE + 2))
    mkdir -p "$WORK/nginx"
    cp "$WORK/gen/geo.conf" "$WORK/nginx/geo.conf"
    tls=""
    if ((TLS)); then
        # The session cache and timeout of Mozilla's "intermediate" nginx configuration
        # (tickets off: resumption from the shared cache). HTTP/2: `http2 on;` from 1.25.1.
        TLS_PORT[nginx]=$((PORT_BASE + 3)) h2=" http2" h2_on=""
        v=$("$NGINX" -v 2>&1 | sed 's|.*/||')
        [[ $(printf '%s\n' 1.25.1 "$v" | sort -V | head -1) == 1.25.1 ]] && h2="" h2_on="http2 on;"
        tls="listen 127.0.0.1:${TLS_PORT[nginx]} ssl$h2 backlog=4096;
            $h2_on
            ssl_certificate $WORK/cert.pem;
            ssl_certificate_key $WORK/key.pem;
            ssl_protocols TLSv1.2 TLSv1.3;
            ssl_session_cache shared:SSL:10m;
            ssl_session_timeout 1d;
            ssl_session_tickets off;
            "
    fi
    nginx_conf "$WORK/nginx" "$NGINX_PORT" "${tls}$(nginx_edge "$WORK/page.html")" "set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        geo \$registered { include $WORK/nginx/geo.conf; }
        upstream origin { server 127.0.0.1:$UP_PORT; keepalive 128; }" >"$WORK/nginx/nginx.conf"
    start_edge nginx "$NGINX_PORT" "127.0.0.1:$NGINX_PORT/" "" \
        "$NGINX" -p "$WORK/nginx/" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf"
    master=${PID[nginx]}
    PID[nginx]=$(workers_of "$master") GROUP[nginx]="$master ${PID[nginx]}"
    read -r -a w_ <<<"${PID[nginx]}"
    PIDS+=("${w_[@]}")
fi

url() { # edge proto
    if [[ $2 == http* ]]; then echo "http://127.0.0.1:${PORT[$1]}/"; else echo "https://127.0.0.1:${TLS_PORT[$1]}/"; fi
}
for e in "${EDGES[@]}"; do
    for proto in "${PROTOS[@]}"; do
        version=1.1 flag=--http1.1
        [[ $proto == h2* ]] && version=2 flag=--http2
        for path in blocked allowed; do
            ip=$UNREGISTERED_IP want=403
            [[ $path == allowed ]] && ip=$REGISTERED_IP want=200
            [[ $e == off ]] && want=200
            got=$(curl -sk "$flag" -o /dev/null -w '%{http_code} HTTP/%{http_version}' -H "X-Forwarded-For: $ip" "$(url "$e" "$proto")")
            [[ $got == "$want HTTP/$version" ]] ||
                { echo "run.sh: $e $proto $path: expected $want HTTP/$version, got $got" >&2; exit 1; }
        done
    done
done

# ---- load ----
RUNS=$WORK/runs.jsonl
H2LOG=$WORK/h2load.log
measure() { # edge proto path round seconds
    local e=$1 ip=$UNREGISTERED_IP c0 c1 out o p close=()
    [[ $3 == allowed ]] && ip=$REGISTERED_IP
    [[ $2 == *-close ]] && close=(-H "Connection: close")
    for o in "${EDGES[@]}"; do [[ $o == "$e" ]] || for p in ${GROUP[$o]}; do kill -STOP "$p"; done; done
    # shellcheck disable=SC2086 # PID holds all of nginx's workers
    c0=$(cpu_ticks ${PID[$e]})
    if [[ $2 == h2 ]]; then
        out=$(taskset -c "$LOAD_CPU" timeout $(($5 + 30)) h2load -t1 -c "$CONNECTIONS" -m "$STREAMS" \
            -D "$5" --log-file="$H2LOG" -H "X-Forwarded-For: $ip" "$(url "$e" h2)")
    elif [[ $2 == h2-full ]]; then # RATE * seconds clients, each one connection for one request
        out=$(taskset -c "$LOAD_CPU" timeout $(($5 + 30)) h2load -t1 -c $((RATE * $5)) -n $((RATE * $5)) \
            -r $((RATE / 10)) --rate-period 100ms --log-file="$H2LOG" -H "X-Forwarded-For: $ip" "$(url "$e" h2)")
    else
        out=$(taskset -c "$LOAD_CPU" timeout $(($5 + 30)) wrk -t1 -c "$CONNECTIONS" -d "${5}s" "${close[@]}" \
            --latency -s "$HERE/xff.lua" "$(url "$e" "$2")" -- "$ip")
    fi
    # shellcheck disable=SC2086
    c1=$(cpu_ticks ${PID[$e]})
    for o in "${EDGES[@]}"; do for p in ${GROUP[$o]}; do kill -CONT "$p"; done; done
    if [[ $2 == h2* ]]; then
        out=$(python3 "$HERE/report.py" --h2load "$H2LOG" <<<"$out") && rm -f "$H2LOG"
    else
        out=$(sed -n 's/^RESULT //p' <<<"$out")
    fi
    [[ -n $out ]] || { echo "run.sh: no load result for $e $2 $3" >&2; exit 1; }
    (($4 == 0)) && return
    printf '{"edge":"%s","proto":"%s","path":"%s","round":%d,"ticks":%d,"load":"%s","wrk":%s}\n' \
        "$e" "$2" "$3" "$4" $((c1 - c0)) "$(loadavg)" "$out" | tee -a "$RUNS" | python3 "$HERE/report.py" --line
}
TOOLS="" LOADER="" # the load tools, e.g. "wrk -t1 -c32, h2load -t1 -c32 -m4" and "wrk/h2load"
for p in "${PROTOS[@]}"; do
    t="wrk -t1 -c$CONNECTIONS"
    [[ $p == h2 ]] && t="h2load -t1 -c$CONNECTIONS -m$STREAMS"
    [[ $p == h2-full ]] && t="h2load -t1 -r$RATE/s (one request per connection)"
    [[ $TOOLS == *"$t"* ]] || TOOLS+="${TOOLS:+, }$t"
    [[ $LOADER == *"${t%% *}"* ]] || LOADER+="${LOADER:+/}${t%% *}"
done
LOAD_BEFORE=$(loadavg)
log "load average $LOAD_BEFORE; $ROUNDS rounds of ${DURATION}s, $TOOLS"
ORDER=()
for proto in "${PROTOS[@]}"; do
    for path in blocked allowed; do for e in "${EDGES[@]}"; do ORDER+=("$e $proto $path"); done; done
done
for run in "${ORDER[@]}"; do read -r e proto path <<<"$run" && measure "$e" "$proto" "$path" 0 "$WARMUP"; done
for ((r = 1; r <= ROUNDS; r++)); do
    seq_=("${ORDER[@]}")
    ((r % 2)) || for ((i = 0; i < ${#ORDER[@]}; i++)); do seq_[i]=${ORDER[${#ORDER[@]} - 1 - i]}; done
    for run in "${seq_[@]}"; do read -r e proto path <<<"$run" && measure "$e" "$proto" "$path" "$r" "$DURATION"; done
done

# ---- report ----
tls_params() { # port: what OpenSSL's client (wrk's library, defaults) negotiates there
    openssl s_client -connect "127.0.0.1:$1" -brief </dev/null 2>&1 |
        awk -F'[:,] ' '/^(Protocol version|Ciphersuite|Server Temp Key)/ {printf "%s%s", s, $2; s = " "}'
}
{
    echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "machine=$(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r)"
    echo "versions=poortwachter $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo '+changes'), $("$NGINX" -v 2>&1 | sed 's/.*: //')$([[ $LOADER != *wrk* ]] || echo ", wrk $(wrk -v 2>&1 | awk 'NR == 1 {print $2}')")$([[ $LOADER != *h2load* ]] || echo ", $(h2load --version)")"
    echo "setup=$RANGES ranges (seed $SEED), $ROUNDS rounds x ${DURATION}s A/B alternated, $TOOLS; edge on core $EDGE_CPU ($THREADS gate thread(s), ${NGINX_WORKERS:-1} nginx worker(s)), $LOADER + upstream on core $LOAD_CPU"
    echo "load=$LOAD_BEFORE before, $(loadavg) after"
    if ((TLS)); then
        printf 'tls=self-signed EC P-256 certificate, TLS 1.2 and 1.3 offered; OpenSSL s_client negotiates'
        for e in "${EDGES[@]}"; do printf ' %s: %s;' "$e" "$(tls_params "${TLS_PORT[$e]}")"; done
        echo " nginx ssl_session_cache shared:SSL:10m, ssl_session_timeout 1d, tickets off; the gate: rustls' defaults (in-memory session cache of 256, TLS 1.3 tickets from it)"
    fi
    for e in "${EDGES[@]}"; do
        echo "ready_$e=${READY[$e]}"
        # shellcheck disable=SC2086
        echo "rss_$e=${RSS_READY[$e]} $(rss_kib ${PID[$e]})"
    done
} >"$WORK/meta.txt"
python3 "$HERE/report.py" "$WORK/meta.txt" "$RUNS" | tee "$RESULTS"
log "table written to $RESULTS"
