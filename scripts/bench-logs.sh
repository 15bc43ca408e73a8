#!/usr/bin/env bash
# `docker lifecycle logs --follow` on N containers each writing a sequence-numbered line
# every BENCH_LOGS_EVERY (1 ms: 1,000 lines/s), against `docker logs -f` (one per
# container, as a user without the plugin runs them) and, when LIFECYCLE_COMPOSE_BIN
# names a Compose v2 binary, `docker compose logs -f`, one after the other in the same
# run: lines read, lost and duplicated sequence numbers per container, the latency from
# the engine's timestamp of a line to its arrival at the reader, the follower's CPU
# (its rusage; the plugin binary is run directly, without the docker CLI in front) and
# dockerd's CPU in the same window. Every follower starts at --tail 0 and is stopped
# with SIGINT. The results and how to read them are in docs/benchmarks.md.
#
# Knobs: BENCH_LOGS_N (20 containers), BENCH_LOGS_SECONDS (30 per follower),
# BENCH_LOGS_EVERY (1ms), BENCH_LOGS_PROJECT (lifecycle-bench-logs). The project has no
# published port and rotates its logs at the default 10 MiB × 3; an EXIT trap removes
# it, the image it built and the temporary plugin config.
set -euo pipefail

cd "$(dirname "$0")/.."
n=${BENCH_LOGS_N:-20}
seconds=${BENCH_LOGS_SECONDS:-30}
every=${BENCH_LOGS_EVERY:-1ms}
project=${BENCH_LOGS_PROJECT:-lifecycle-bench-logs}
image=lifecycle-bench-logs:v1
bench_env="LOG_SEQ_EVERY: \"$every\""
# shellcheck source=scripts/bench-project.sh
. scripts/bench-project.sh
names=$(docker ps --filter "label=com.docker.compose.project=$project" --format '{{.Names}}' | sort | paste -sd, -)
echo "containers: $running running, a line every $every each; nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
go build -o "$tmp/benchgen" ./internal/benchgen/cmd/benchgen

dockerd_pid=$(pgrep -o -x dockerd || true) # the oldest: a test may run a second one
engine_rows=()
follow() { # label, then benchgen follow's flags and command
	local label=$1 d0 d1
	shift
	d0=$(ticks "${dockerd_pid:-0}")
	"$tmp/benchgen" follow -label "$label" -seconds "$seconds" "$@"
	d1=$(ticks "${dockerd_pid:-0}")
	if [ -n "$dockerd_pid" ]; then
		engine_rows+=("| $label | $(echo "$((d1 - d0)) $hz $seconds" | awk '{printf "%.1f", 100*$1/$2/$3}') % |")
	fi
}

echo
follow "\`docker lifecycle logs --follow\`" -header -- \
	"$plugin" lifecycle -p "$project" logs --follow --timestamps --no-color --tail 0
follow "\`docker logs -f\` × $n" -each "$names" -- \
	docker logs -f --timestamps --tail 0 {}
if [ -n "${LIFECYCLE_COMPOSE_BIN:-}" ]; then
	follow "\`docker compose logs -f\`" -- \
		"$LIFECYCLE_COMPOSE_BIN" -p "$project" logs -f --timestamps --no-color --tail 0
fi
if [ ${#engine_rows[@]} -gt 0 ]; then
	echo
	echo "| follower | dockerd, % of one core (the containers' writes included) |"
	echo "|---|---:|"
	printf '%s\n' "${engine_rows[@]}"
fi
