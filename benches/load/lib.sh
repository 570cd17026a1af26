# shellcheck shell=bash
# Shared by the load scripts in benches/load (sourced, not run): tools, the binary, the
# work directory and every process started, nginx configurations.
#
#   LOG_TAG=load; source benches/load/lib.sh
#
# Defines log, need_tools, build_bin, start_work (WORK, PIDS, the exit trap), stop_pid,
# nginx_conf, nginx_edge, rss_kib, cpu_ticks.

log() { printf '[%s %s] %s\n' "${LOG_TAG:-load}" "$(date +%H:%M:%S)" "$*" >&2; }

# need_tools CHECK=PACKAGE...: installs with apt-get the packages whose CHECK is missing; a
# CHECK with a slash is an executable path, otherwise a command on PATH.
need_tools() {
    local pkgs=() t check sudo=""
    for t in "$@"; do
        check=${t%%=*}
        if [[ $check == */* ]]; then [[ -x $check ]] && continue; else command -v "$check" >/dev/null && continue; fi
        pkgs+=("${t#*=}")
    done
    ((${#pkgs[@]})) || return 0
    ((EUID == 0)) || sudo=sudo
    log "installing ${pkgs[*]} with apt-get"
    $sudo apt-get update -qq
    # RUNLEVEL=1: a package must not start a system-wide nginx on port 80.
    $sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
        apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
}

# build_bin: BIN (default the release binary of CARGO_TARGET_DIR), built unless SKIP_BUILD=1,
# as an absolute path.
build_bin() {
    BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/poortwachter}
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "cargo build --release"
        cargo build --release --locked --quiet
    fi
    BIN=$(realpath "$BIN")
}

# stop_pid PID: TERM (after CONT, for a paused edge), KILL after 5 s.
stop_pid() {
    kill -0 "$1" 2>/dev/null || return 0
    kill -CONT "$1" 2>/dev/null || true
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$1" 2>/dev/null || true
}
_lib_cleanup() {
    local rc=$? i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
    rm -rf "$WORK"
    exit "$rc"
}
# start_work NAME: a fresh WORK directory; every pid added to PIDS is stopped, in reverse
# order, and WORK removed when the script exits.
start_work() {
    WORK=$(mktemp -d "/tmp/poortwachter-$1.XXXXXX")
    chmod 755 "$WORK" # nginx workers run as nobody under root
    PIDS=()
    trap _lib_cleanup EXIT
    trap 'exit 130' INT TERM
}

# nginx_conf DIR PORT SERVER-BLOCK-BODY [HTTP-LINES]: NGINX_WORKERS worker processes
# (default 1), NGINX_NOFILE connections a worker (default 4096; above it, also its open-file
# limit).
nginx_conf() {
    local nofile=${NGINX_NOFILE:-4096} rlimit=""
    ((nofile <= 4096)) || rlimit="worker_rlimit_nofile $nofile;"
    cat <<EOF
worker_processes ${NGINX_WORKERS:-1};
$rlimit
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $nofile; }
http {
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    keepalive_requests 1000000;
    ${4:-}
    server {
        listen 127.0.0.1:$2 backlog=4096;
        $3
    }
}
EOF
}

# nginx_edge PAGE-FILE: the location block of the nginx edge. The gate's own block page (the
# same bytes; a `$` would start a variable) where geo's `$registered` is 0, else keep-alive
# proxy_pass to `upstream origin`; a request id on both.
nginx_edge() {
    local page
    page=$(python3 -c 'import sys; t = open(sys.argv[1]).read(); print(t.replace("\\", "\\\\").replace("\"", "\\\"").replace("$", "S"), end="")' "$1")
    cat <<EOF
location / {
                default_type "text/html; charset=utf-8";
                if (\$registered = 0) {
                    add_header Cache-Control "no-store, private" always;
                    add_header X-Request-Id \$request_id always;
                    return 403 "$page";
                }
                add_header X-Request-Id \$request_id always;
                proxy_pass http://origin;
                proxy_http_version 1.1;
                proxy_set_header Connection "";
                proxy_set_header X-Forwarded-For \$remote_addr;
                proxy_set_header X-Request-Id \$request_id;
            }
EOF
}

# rss_kib PID...: resident memory, summed; cpu_ticks PID...: user + system clock ticks, summed.
rss_kib() { for p in "$@"; do awk '/^VmRSS:/ {print $2}' "/proc/$p/status"; done | awk '{s += $1} END {print s + 0}'; }
cpu_ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s + 0}'; }
