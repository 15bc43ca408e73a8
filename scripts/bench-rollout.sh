#!/usr/bin/env bash
# Rollout overhead of `docker lifecycle deploy` (docs/benchmarks.md, section 8): a
# 3-replica service behind the router rolls v1 → v2 → v1 … BENCH_ROLLOUT_RUNS times,
# one container at a time; each run's `--progress json` is split into batches and
# per batch we report the time the new container needed (start → healthy), the router
# update (including the drain), the old container's stop, and the overhead: the
# batch's wall time minus the new container's time. Target: overhead <= 150 ms.
#
# It creates its own project (lifecycle-bench-rollout) on a free 127.0.0.1 port and
# images lifecycle-bench-rollout:v1/v2, and removes all of them on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOWORK="${GOWORK:-$(scripts/modulepatch-work.sh)}" # the patched modules, as make builds
runs=${BENCH_ROLLOUT_RUNS:-5}
project=lifecycle-bench-rollout
work=$(mktemp -d "${TMPDIR:-/tmp}/lifecycle-bench-rollout.XXXXXX")
cleanup() {
  docker lifecycle -p "$project" --progress quiet down >/dev/null 2>&1 || true
  docker image rm "$project:v1" "$project:v2" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

go run ./internal/testimage/cmd/build-testapp-image "$project:v1=v1" "$project:v2=v2" >/dev/null
port=$(go run ./internal/benchload/cmd/benchload -free-ports 1)
cat > "$work/compose.yaml" <<YAML
name: $project
services:
  web:
    image: $project:\${V:-v1}
    ports: ["127.0.0.1:$port:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 200ms, retries: 100}
    deploy: {replicas: 3}
YAML
docker lifecycle -f "$work/compose.yaml" --progress quiet deploy >/dev/null
go build -o "$work/benchgen" ./internal/benchgen/cmd/benchgen
: > "$work/samples"
v=v1
for i in $(seq 1 "$runs"); do
  if [ "$v" = v1 ]; then v=v2; else v=v1; fi
  # The old revision is retained after the first two runs, so later runs start it
  # again instead of creating: both paths are measured.
  start=$(date +%s%N)
  V=$v docker lifecycle -f "$work/compose.yaml" --progress json deploy 2> "$work/events.$i" >/dev/null
  end=$(date +%s%N)
  "$work/benchgen" rollout < "$work/events.$i" >> "$work/samples"
  printf 'deploy_total\t%s\n' "$(( (end - start) / 1000000 ))" >> "$work/samples"
done
echo "rollout of 3 replicas, one at a time, $runs deploys (per batch; deploy_total per deploy):"
"$work/benchgen" stats < "$work/samples"
