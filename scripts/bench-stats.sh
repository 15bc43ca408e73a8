#!/usr/bin/env bash
# CPU cost of `docker lifecycle stats` (one stats stream per container, kept open) on N
# containers at 1 Hz, against a `docker stats --no-stream` loop over the same containers,
# in the same run; and the engine's (dockerd's) CPU during each, when dockerd runs here.
# The results and how to read them are in docs/benchmarks.md (section "stats").
#
# Knobs: BENCH_STATS_N (20 containers), BENCH_STATS_SECONDS (60 per phase),
# BENCH_STATS_PROJECT (lifecycle-bench-stats). The project has no published port; an
# EXIT trap removes it, the image it built and the temporary plugin config.
set -euo pipefail

cd "$(dirname "$0")/.."
n=${BENCH_STATS_N:-20}
seconds=${BENCH_STATS_SECONDS:-60}
project=${BENCH_STATS_PROJECT:-lifecycle-bench-stats}
image=lifecycle-bench-stats:v1
# shellcheck source=scripts/bench-project.sh
. scripts/bench-project.sh
names=$(docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Names}}' | sort)
echo "containers: $running running; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"

dockerd_pid=$(pidof dockerd || true)

report() { # name user sys wall dockerd_ticks iterations
	local cpu engine
	cpu=$(echo "$2 $3 $4" | awk '{printf "%.2f", 100*($1+$2)/$3}')
	engine=-
	if [ -n "$dockerd_pid" ]; then engine=$(echo "$5 $hz $4" | awk '{printf "%.2f", 100*$1/$2/$3}'); fi
	printf '| %s | %s | %s | %ss + %ss in %ss | %s %% | %s %% |\n' "$1" "$n" "$6" "$2" "$3" "$4" "$cpu" "$engine"
}

echo
echo "| command | containers | reports | client CPU (user + sys in wall) | client, % of one core | dockerd, % of one core |"
echo "|---|---|---|---|---|---|"

# docker lifecycle stats at 1 Hz for $seconds, stopped with SIGINT as Ctrl-C would.
d0=$(ticks "${dockerd_pid:-0}")
/usr/bin/time -f '%U %S %e' -o "$tmp/lifecycle.time" \
	timeout -s INT "$seconds" "$plugin" lifecycle -p "$project" stats --format json --interval 1s >"$tmp/lifecycle.out" || true
d1=$(ticks "${dockerd_pid:-0}")
read -r u s e < <(tail -n 1 "$tmp/lifecycle.time")
report "\`docker lifecycle stats --interval 1s\`" "$u" "$s" "$e" $((d1 - d0)) "$(wc -l <"$tmp/lifecycle.out")"

# docker stats --no-stream in a loop over the same containers for $seconds (each call
# waits for two samples, about 2 s, so this is about 0.5 Hz).
d0=$(ticks "${dockerd_pid:-0}")
/usr/bin/time -f '%U %S %e' -o "$tmp/docker.time" bash -c '
	end=$((SECONDS + '"$seconds"')); i=0
	while [ $SECONDS -lt $end ]; do docker stats --no-stream --format "{{json .}}" '"$(echo $names)"' >/dev/null; i=$((i+1)); done
	echo $i >'"$tmp/docker.count"
d1=$(ticks "${dockerd_pid:-0}")
read -r u s e < <(tail -n 1 "$tmp/docker.time")
report "\`docker stats --no-stream\` loop" "$u" "$s" "$e" $((d1 - d0)) "$(cat "$tmp/docker.count")"
