#!/usr/bin/env bash
# CPU and memory of `docker lifecycle guard` watching N containers whose health checks
# run every BENCH_GUARD_INTERVAL (each probe is an exec: two engine events the guard
# reads and tells apart from a user's `docker exec`), over BENCH_GUARD_SECONDS.
# The results and how to read them are in docs/benchmarks.md (section "guard").
#
# Knobs: BENCH_GUARD_N (100 containers), BENCH_GUARD_SECONDS (60), BENCH_GUARD_INTERVAL
# (5s), BENCH_GUARD_PROJECT (lifecycle-bench-guard). The project has no published port;
# an EXIT trap removes it, the image it built and the temporary plugin config.
set -euo pipefail

cd "$(dirname "$0")/.."
n=${BENCH_GUARD_N:-100}
seconds=${BENCH_GUARD_SECONDS:-60}
interval=${BENCH_GUARD_INTERVAL:-5s}
project=${BENCH_GUARD_PROJECT:-lifecycle-bench-guard}
image=lifecycle-bench-guard:v1
healthcheck="{test: [\"CMD\", \"/testapp\", \"healthcheck\"], interval: $interval, retries: 3}"
bench_cleanup() { [ -n "${guard:-}" ] && kill "$guard" 2>/dev/null; }
# shellcheck source=scripts/bench-project.sh
. scripts/bench-project.sh
echo "containers: $running running; health check every $interval; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"

"$plugin" lifecycle -f "$tmp/compose.yaml" -p "$project" guard --format json >"$tmp/alerts.json" 2>"$tmp/guard.err" &
guard=$!
sleep 5 # past the first listing and inspections
t0=$(ticks "$guard")
peak=0
end=$((SECONDS + seconds))
while [ $SECONDS -lt $end ]; do
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$guard/status")
	[ "$rss" -gt "$peak" ] && peak=$rss
	sleep 1
done
t1=$(ticks "$guard")
kill -INT "$guard"; wait "$guard" || true; guard=
cpu=$(echo "$t0 $t1 $hz $seconds" | awk '{printf "%.2f", 100*($2-$1)/$3/$4}')
echo
echo "| containers | health checks | watched for | guard CPU, % of one core | guard peak RSS | alerts |"
echo "|---|---|---|---|---|---|"
printf '| %s | every %s | %ss | %s %% | %.1f MB | %s |\n' "$running" "$interval" "$seconds" "$cpu" "$(echo "$peak" | awk '{print $1/1024}')" "$(wc -l <"$tmp/alerts.json")"
