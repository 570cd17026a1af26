#!/usr/bin/env bash
# Static checks of the systemd kit (no systemd runs as PID 1 here, so the unit is verified,
# not started):
#   - `systemd-analyze verify` of poortwachter.service (ExecStart pointed at the built binary);
#   - `systemd-analyze security --offline` exposure score, informational;
#   - TimeoutStopSec covers grace_period + shutdown_timeout of poortwachter.toml;
#   - `poortwachter check` accepts poortwachter.toml (credential and state paths mapped to a
#     temp dir holding dummy tokens and a last-known-good copy of config/allowlist.json).
# Run from the repository root after `cargo build`: bash deploy/systemd/check.sh
set -euo pipefail

ORIG_PWD=$PWD
cd "$(dirname "$0")/../.."
ROOT=$PWD
KIT=$ROOT/deploy/systemd
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$ORIG_PWD/$target_dir ;; esac
BIN=$target_dir/debug/poortwachter
[ -x "$BIN" ] || { echo "systemd check: FAIL: $BIN not found: run cargo build first" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/poortwachter-systemd.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0
ok() { printf 'systemd check: ok   %s\n' "$*"; }
bad() { printf 'systemd check: FAIL %s\n' "$*" >&2; failures=$((failures + 1)); }

# 1. The unit, as systemd reads it.
if command -v systemd-analyze >/dev/null; then
  sed "s#/usr/local/bin/poortwachter#$BIN#g" "$KIT/poortwachter.service" >"$TMP/poortwachter.service"
  if out=$(systemd-analyze verify "$TMP/poortwachter.service" 2>&1) && [ -z "$out" ]; then
    ok "systemd-analyze verify poortwachter.service: no findings"
  else
    bad "systemd-analyze verify: $out"
  fi
  score=$(systemd-analyze security --offline=yes "$TMP/poortwachter.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for [^:]*: //p' || true)
  ok "systemd-analyze security --offline: exposure ${score:-unavailable} (informational)"
else
  echo "systemd check: systemd-analyze not installed: unit not verified (install the systemd package)"
fi

# 2. Stop timeout vs. the gate's own shutdown budget.
secs() { sed -n "s/^$1 *= *\"\([0-9]*\)s\".*/\1/p" "$KIT/poortwachter.toml"; }
grace=$(secs grace_period); shut=$(secs shutdown_timeout)
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$KIT/poortwachter.service")
if [ -n "$grace" ] && [ -n "$shut" ] && [ -n "$stop" ] && [ "$stop" -ge $((grace + shut)) ]; then
  ok "TimeoutStopSec=${stop}s >= grace_period ${grace}s + shutdown_timeout ${shut}s"
else
  bad "TimeoutStopSec (${stop:-?}s) must be at least grace_period (${grace:-?}s) + shutdown_timeout (${shut:-?}s)"
fi

# 3. The example config, judged by the gate itself.
mkdir -p "$TMP/credentials" "$TMP/state"
echo "dummy-admin-token-0123456789" >"$TMP/credentials/admin-token"
echo "dummy-admin-store-token-0123456789" >"$TMP/credentials/admin-store-token"
cp "$ROOT/config/allowlist.json" "$TMP/state/allowlist.json"
sed -e "s#/run/credentials/poortwachter.service#$TMP/credentials#g" \
    -e "s#/var/lib/poortwachter#$TMP/state#g" "$KIT/poortwachter.toml" >"$TMP/poortwachter.toml"
if out=$("$BIN" check --config "$TMP/poortwachter.toml" 2>&1); then
  ok "poortwachter check accepts poortwachter.toml"
else
  bad "poortwachter check rejects poortwachter.toml: $out"
fi

if [ "$failures" -ne 0 ]; then
  echo "systemd check: $failures problem(s)" >&2
  exit 1
fi
echo "systemd check: OK"
