#!/bin/sh
# Fuzz each target (or the ones named) for MINUTES minutes (default 5), one after the other,
# then minimise its corpus, and print per target: minutes, executions, executions per
# second, corpus files and size after minimising, and crash artifacts found.
#
#   tests/fuzz/run.sh                        every target, 5 minutes each
#   MINUTES=1 tests/fuzz/run.sh allowlist    one target, one minute
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`). Runs
# under `nice`, so a shared machine stays usable. Crash inputs land in
# tests/fuzz/artifacts/<target>/ (not committed); see tests/fuzz/README.md for what next.

set -eu

here=$(cd "$(dirname "$0")" && pwd)
minutes=${MINUTES:-5}
# libFuzzer reads -max_total_time=0 as "no limit", so 0 is refused too.
case $minutes in
'' | *[!0-9]* | 0 | 00*)
	echo "MINUTES must be a whole number of minutes from 1, got '$minutes'" >&2
	exit 2
	;;
esac

fuzz() {
	nice -n 10 cargo +nightly fuzz "$@"
}

if [ "$#" -eq 0 ]; then
	list=$(fuzz list --fuzz-dir "$here")
	for target in $list; do
		set -- "$@" "$target"
	done
fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
summary="$logs/summary"
printf '%-22s %7s %12s %8s %7s %9s %7s\n' target minutes execs exec/s files size_kb crashes >"$summary"

for target in "$@"; do
	corpus="$here/corpus/$target"
	artifacts="$here/artifacts/$target"
	mkdir -p "$corpus" "$artifacts"
	before=$(find "$artifacts" -type f | wc -l)
	log="$logs/$target.log"
	echo "== $target: fuzzing for $minutes min (log: $log)" >&2
	status=0
	fuzz run --fuzz-dir "$here" "$target" "$corpus" -- \
		-max_total_time=$((minutes * 60)) -print_final_stats=1 >"$log" 2>&1 || status=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	after=$(find "$artifacts" -type f | wc -l)
	crashes=$((after - before))
	if [ "$status" -ne 0 ]; then
		echo "== $target: the fuzzer stopped with status $status; last lines of its log:" >&2
		tail -n 30 "$log" >&2
	fi
	# Minimised on edge coverage alone (no hit counts): hit-count buckets would keep
	# several times as many files for little extra reach.
	echo "== $target: minimising the corpus" >&2
	fuzz cmin --fuzz-dir "$here" "$target" "$corpus" -- -use_counters=0 \
		>"$logs/$target.cmin.log" 2>&1 ||
		echo "== $target: cmin failed, see $logs/$target.cmin.log" >&2
	files=$(find "$corpus" -type f | wc -l)
	size=$(find "$corpus" -type f -exec cat {} + | wc -c)
	size=$(((size + 1023) / 1024))
	printf '%-22s %7s %12s %8s %7s %9s %7s\n' "$target" "$minutes" "${execs:-?}" "${rate:-?}" \
		"$files" "$size" "$crashes" >>"$summary"
done

cat "$summary"
