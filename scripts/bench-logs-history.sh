#!/usr/bin/env bash
# `docker lifecycle logs` of a long history (issue 10: "logs of 1 GB of history vs
# docker logs in the same run"): N containers (BENCH_HISTORY_N, 2) of one service write
# BENCH_HISTORY_MIB (1024) MiB of sequence-numbered JSON lines between them at start
# (json-file, rotation off for the run), then, one after the other, each reader prints
# the whole history to a pipe that counts it:
#   - `docker lifecycle logs` (the plugin binary run directly: its own CPU and memory),
#     and, with BENCH_HISTORY_BEFORE=PLUGIN-BINARY, an older build the same way;
#   - `docker logs` of each container, one after the other (what a user has without
#     the plugin; its output is not merged);
#   - `docker compose logs` when LIFECYCLE_COMPOSE_BIN names Compose v2.
# For each: wall time, time to the first line, lines and bytes read, user+system CPU
# and peak RSS (GNU time). The results and how to read them: docs/benchmarks.md.
set -euo pipefail

cd "$(dirname "$0")/.."
n=${BENCH_HISTORY_N:-2}
mib=${BENCH_HISTORY_MIB:-1024}
project=${BENCH_HISTORY_PROJECT:-lifecycle-bench-history}
image=lifecycle-bench-history:v1
bench_env="LOG_HISTORY_MIB: \"$((mib / n))\""
bench_logging='{driver: json-file, options: {max-size: "8g", max-file: "1"}}' # no rotation within the run: the whole history
# shellcheck source=scripts/bench-project.sh
. scripts/bench-project.sh

# The history is written when each container starts: wait until every one said it is done.
ids=$(docker ps -q --filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=app")
start=$(date +%s)
for id in $ids; do
	until docker logs --tail 20 "$id" 2>/dev/null | grep -q history_lines; do
		if [ $(($(date +%s) - start)) -gt 900 ]; then echo "the history was not written within 15 minutes" >&2; exit 1; fi
		sleep 2
	done
done
echo "history written in $(($(date +%s) - start)) s by $running containers; log files:"
for id in $ids; do
	du -h "$(docker inspect --format "{{.LogPath}}" "$id")" 2>/dev/null || docker inspect --format "{{.Name}} {{.LogPath}}" "$id"
done
echo "nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"

# measure LABEL COMMAND…: runs the command with its stdout into a counter; prints a row.
measure() {
	local label=$1
	shift
	/usr/bin/time -f '%e %U %S %M' -o "$tmp/time" "$@" 2>"$tmp/stderr" |
		python3 -c '
import sys, time
t0 = time.monotonic(); first = None; lines = 0; size = 0
for chunk in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
    if first is None: first = time.monotonic() - t0
    lines += chunk.count(b"\n"); size += len(chunk)
print(f"{lines} {size} {first or 0:.3f}")' >"$tmp/count"
	read -r wall user sys rss <"$tmp/time"
	read -r lines bytes first <"$tmp/count"
	awk -v l="$label" -v w="$wall" -v f="$first" -v n="$lines" -v b="$bytes" -v u="$user" -v s="$sys" -v r="$rss" \
		'BEGIN { printf "| %s | %.1f | %.2f | %d | %.0f | %.1f + %.1f | %.0f |\n", l, w, f, n, b/1048576, u, s, r/1024 }'
}

echo
echo "| reader | wall s | first line s | lines | MiB | CPU s (user + sys) | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
measure "\`docker lifecycle logs\`" "$plugin" lifecycle -p "$project" logs --no-color --timestamps
if [ -n "${BENCH_HISTORY_BEFORE:-}" ]; then
	measure "\`docker lifecycle logs\`, before" "$BENCH_HISTORY_BEFORE" lifecycle -p "$project" logs --no-color --timestamps
fi
# shellcheck disable=SC2016 # expanded by the inner shell
measure "\`docker logs\` × $running, one after the other" sh -c 'for id in "$@"; do docker logs --timestamps "$id" 2>&1; done' sh $ids
if [ -n "${LIFECYCLE_COMPOSE_BIN:-}" ]; then
	measure "\`docker compose logs\`" "$LIFECYCLE_COMPOSE_BIN" -p "$project" logs --no-color --timestamps
fi
