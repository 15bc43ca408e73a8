#!/usr/bin/env bash
# Benchmarks of docker lifecycle on the engine of the current Docker context; the results
# and how to read them are in docs/benchmarks.md. `make bench` runs this script.
#
#   1. CLI start-up: `docker lifecycle version` and `--help` against `docker version`
#      (hyperfine, then an interleaved loop so that drift hits every command alike).
#   2. `plan` of a generated 100-service project (read-only on the engine; target
#      <= 250 ms), the Go benchmarks of load and planning, and a CPU profile of the load
#      when the target is missed.
#   3. Deploys of examples/demo: fresh, no-op (identical second deploy) and a one-service
#      change (WEB_VERSION=v2), BENCH_DEPLOY_RUNS times each: wall time against the health
#      waits read from `--progress json`, and where the rest (the overhead) goes; and
#      issue 8's goal: a web service and a worker depending on it updated v1 → v2
#      (scripts/bench-critical-path), wall time against its critical path.
#
# It changes nothing it did not create: the demo runs as its own project
# ($BENCH_PROJECT, default lifecycle-bench-demo) on a free 127.0.0.1 port, the images
# lifecycle-demo:v1/v2 are built only when missing, and an EXIT trap takes down the
# project (with its volumes), removes the images it built and its temp dir.
#
# Knobs: BENCH_CLI_RUNS (30), BENCH_PLAN_RUNS (20), BENCH_DEPLOY_RUNS (7),
# BENCH_GO_COUNT (5), BENCH_PROJECT, BENCH_WEB_PORT (first free from 18080),
# BENCH_PROFILE=1 (profile even when plan meets its target), BENCH_SKIP=cli,plan,go,deploy.
set -euo pipefail

cd "$(dirname "$0")/.."
export GOWORK="${GOWORK:-$(scripts/modulepatch-work.sh)}" # the patched modules, as make builds
root=$PWD
cli_runs=${BENCH_CLI_RUNS:-30}
plan_runs=${BENCH_PLAN_RUNS:-20}
deploy_runs=${BENCH_DEPLOY_RUNS:-7}
go_count=${BENCH_GO_COUNT:-5}
project=${BENCH_PROJECT:-lifecycle-bench-demo}
skip=",${BENCH_SKIP:-},"
plan_target_ms=250
demo_dir=$root/examples/demo
plugin=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-lifecycle

work=$(mktemp -d "${TMPDIR:-/tmp}/lifecycle-bench.XXXXXX")
built_images=()
deployed=0
path_deployed=0

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if [ "$deployed" = 1 ]; then
    (cd "$demo_dir" && docker lifecycle -p "$project" down --volumes >/dev/null 2>&1) ||
      echo "bench: could not take down project $project: run 'docker lifecycle -p $project down --volumes' in examples/demo" >&2
  fi
  if [ "$path_deployed" = 1 ]; then
    (cd "$root/scripts/bench-critical-path" && docker lifecycle -p "$project-path" down --volumes >/dev/null 2>&1) ||
      echo "bench: could not take down project $project-path: run 'docker lifecycle -p $project-path down --volumes' in scripts/bench-critical-path" >&2
  fi
  for img in "${built_images[@]}"; do
    docker image rm "$img" >/dev/null 2>&1 && echo "bench: removed image $img (built by this run)" >&2
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "bench: $*" >&2; }
skipped() { [[ $skip == *",$1,"* ]]; }

# now_us prints microseconds since the epoch without forking (bash 5 EPOCHREALTIME).
now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$t"; }
# median: the median of the numbers on stdin, one per line.
median() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) m = 0; else if (NR % 2) m = v[(NR+1)/2]; else m = (v[NR/2] + v[NR/2+1]) / 2; printf "%.3f\n", m}'; }
ms_of_us() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# interleave FILE RUNS CMD...: runs each command RUNS times, rotating their order every
# round (after one warm-up round), and appends "cmd<TAB>ms" lines to FILE. Commands are
# split on spaces (no quoting), and run without a shell.
interleave() {
  local out=$1 runs=$2 r k n s e c
  shift 2
  local cmds=("$@")
  n=${#cmds[@]}
  for c in "${cmds[@]}"; do
    read -ra argv <<<"$c"
    "${argv[@]}" >/dev/null 2>&1 || { log "failed: $c"; return 1; }
  done
  for ((r = 0; r < runs; r++)); do
    for ((k = 0; k < n; k++)); do
      c=${cmds[$(((r + k) % n))]}
      read -ra argv <<<"$c"
      s=$(now_us)
      "${argv[@]}" >/dev/null 2>&1
      e=$(now_us)
      printf '%s\t%s\n' "$c" "$(ms_of_us $((e - s)))" >>"$out"
    done
  done
}

# hyperfine_table JSON: hyperfine's runs as "cmd<TAB>ms" lines.
hyperfine_samples() {
  jq -r '.results[] | .command as $c | .times[] | "\($c)\t\(. * 1000)"' "$1"
}

free_port() {
  local p
  for p in $(seq 18080 18180); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  return 1
}

summary=$work/summary.md
out() { printf '%s\n' "$*" >>"$summary"; }

# ---------------------------------------------------------------------------------------
log "building and installing the plugin (make install)"
make -s install >/dev/null
go build -o "$work/benchgen" ./internal/benchgen/cmd/benchgen
bg=$work/benchgen

engine_version=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
client_version=$(docker version --format '{{.Client.Version}}')
out "## docker lifecycle benchmarks"
out ""
out "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
out "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
out "- engine: Docker $engine_version; client: docker $client_version; $(go version | cut -d' ' -f3)"
out "- plugin: $(docker lifecycle version)"
out "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
out ""

# ---------------------------------------------------------------------------------------
if ! skipped cli; then
  log "1/3 CLI start-up ($cli_runs runs each)"
  # The last three split `docker lifecycle version` into its three processes: the docker
  # CLI, the metadata probe it runs before every plugin command, and the plugin itself.
  # The first two pairs are the start-up target (<= 1.2x docker version, same run).
  cli_cmds=("docker lifecycle version --short" "docker version --format {{.Client.Version}}"
    "docker lifecycle version" "docker version" "docker lifecycle --help"
    "docker --version" "$plugin docker-cli-plugin-metadata" "$plugin lifecycle version")
  out "### 1. CLI start-up"
  out ""
  if command -v hyperfine >/dev/null; then
    hyperfine --shell=none --warmup 3 --runs "$cli_runs" --style none --export-json "$work/cli.json" "${cli_cmds[@]}" >/dev/null
    out "hyperfine --shell=none --warmup 3 --runs $cli_runs (one invocation, commands one after the other):"
    out ""
    hyperfine_samples "$work/cli.json" | "$bg" stats >>"$summary"
    out ""
  fi
  interleave "$work/cli-loop.tsv" "$cli_runs" "${cli_cmds[@]}"
  out "interleaved loop ($cli_runs rounds, order rotated each round, EPOCHREALTIME around each run):"
  out ""
  "$bg" stats <"$work/cli-loop.tsv" >>"$summary"
  out ""
  cli_med() { awk -F'\t' -v c="$1" '$1 == c {print $2}' "$work/cli-loop.tsv" | median; }
  ratio() { awk -v a="$(cli_med "$1")" -v b="$(cli_med "$2")" 'BEGIN {printf "%.2f", a / b}'; }
  out "start-up target (<= 1.20, interleaved medians): \`version --short\` / \`docker version --format\` $(ratio "${cli_cmds[0]}" "${cli_cmds[1]}");" \
    "\`docker lifecycle version\` / \`docker version\` $(ratio "${cli_cmds[2]}" "${cli_cmds[3]}")"
  out ""
fi

# ---------------------------------------------------------------------------------------
# The images: plan needs lifecycle-demo:v1 on the engine (it inspects it), deploy v1 and v2.
missing=()
for tag in lifecycle-demo:v1 lifecycle-demo:v2; do
  docker image inspect "$tag" >/dev/null 2>&1 || missing+=("$tag=${tag#lifecycle-demo:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "building the missing test images: ${missing[*]}"
  for m in "${missing[@]}"; do built_images+=("${m%%=*}"); done
  go run ./internal/testimage/cmd/build-testapp-image "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------------------------------
if ! skipped plan; then
  log "2/3 plan of a generated 100-service project ($plan_runs runs)"
  mkdir -p "$work/plan100"
  plan_file=$work/plan100/compose.yaml
  "$bg" compose -n 100 -o "$plan_file"
  steps=$(docker lifecycle -f "$plan_file" plan --format json | jq '.steps | length')
  # config --services loads the project like plan but never calls the engine; version
  # loads nothing: their differences split plan's wall time.
  plan_cmds=("docker lifecycle -f $plan_file plan" "docker lifecycle -f $plan_file config --services"
    "docker lifecycle -f $demo_dir/compose.yaml -p $project plan" "docker lifecycle version")
  out "### 2. plan"
  out ""
  out "Generated project: 100 services, $(grep -c '^  data' "$plan_file") named volumes, $(grep -c '127.0.0.1:' "$plan_file") ports on 127.0.0.1, $steps plan steps on an empty engine (\`$plan_file\`, removed afterwards). Target: <= ${plan_target_ms} ms."
  out ""
  if command -v hyperfine >/dev/null; then
    hyperfine --shell=none --warmup 3 --runs "$plan_runs" --style none --export-json "$work/plan.json" "${plan_cmds[@]}" >/dev/null
    out "hyperfine:"
    out ""
    hyperfine_samples "$work/plan.json" | "$bg" stats >>"$summary"
    out ""
  fi
  interleave "$work/plan-loop.tsv" "$plan_runs" "${plan_cmds[@]}"
  out "interleaved loop:"
  out ""
  "$bg" stats <"$work/plan-loop.tsv" >>"$summary"
  out ""
  plan_median=$(awk -F'\t' -v c="${plan_cmds[0]}" '$1 == c {print $2}' "$work/plan-loop.tsv" | median)
  if awk -v m="$plan_median" -v t="$plan_target_ms" 'BEGIN {exit !(m > t)}'; then
    plan_verdict="MISSED: median ${plan_median} ms > ${plan_target_ms} ms"
  else
    plan_verdict="met: median ${plan_median} ms <= ${plan_target_ms} ms"
  fi
  med() { awk -F'\t' -v c="$1" '$1 == c {print $2}' "$work/plan-loop.tsv" | median; }
  m_plan=$(med "${plan_cmds[0]}") m_config=$(med "${plan_cmds[1]}") m_version=$(med "${plan_cmds[3]}")
  out "plan target: $plan_verdict"
  out ""
  out "Split of the plan median (interleaved loop): docker CLI + plugin start (\`version\`) $(printf %.0f "$m_version") ms;" \
    "compose load in a fresh process (\`config --services\` − \`version\`) $(awk -v a="$m_config" -v b="$m_version" 'BEGIN {printf "%.0f", a - b}') ms;" \
    "ping + observe + plan + print (\`plan\` − \`config --services\`) $(awk -v a="$m_plan" -v b="$m_config" 'BEGIN {printf "%.0f", a - b}') ms."
  out ""
fi

if ! skipped go; then
  log "2/3 Go benchmarks (-count $go_count)"
  go test -run '^$' -bench '100Services$' -benchmem -count "$go_count" ./compose ./strategies >"$work/gobench.txt"
  out "Go benchmarks (\`go test -run '^\$' -bench '100Services\$' -benchmem -count $go_count ./compose ./strategies\`), median of $go_count:"
  out ""
  out "| benchmark | median ns/op | median ms/op | B/op | allocs/op |"
  out "|---|---:|---:|---:|---:|"
  for b in $(awk '/^Benchmark/ {sub(/-[0-9]+$/, "", $1); print $1}' "$work/gobench.txt" | awk '!seen[$0]++'); do
    lines=$(awk -v b="$b" '{n = $1; sub(/-[0-9]+$/, "", n)} n == b' "$work/gobench.txt")
    ns=$(awk '{for (i = 3; i < NF; i++) if ($(i+1) == "ns/op") print $i}' <<<"$lines" | median)
    bytes=$(awk '{for (i = 3; i < NF; i++) if ($(i+1) == "B/op") print $i}' <<<"$lines" | median)
    allocs=$(awk '{for (i = 3; i < NF; i++) if ($(i+1) == "allocs/op") print $i}' <<<"$lines" | median)
    printf '| %s | %.0f | %.2f | %.0f | %.0f |\n' "$b" "$ns" "$(awk -v n="$ns" 'BEGIN {print n / 1e6}')" "$bytes" "$allocs" >>"$summary"
  done
  out ""
  if [ "${BENCH_PROFILE:-0}" = 1 ] || [[ ${plan_verdict:-MISSED} == MISSED* ]]; then
    log "2/3 CPU profile of BenchmarkLoad100Services"
    go test -run '^$' -bench 'Load100Services$' -benchtime 20x -cpuprofile "$work/load.cpu" -o "$work/compose.test" ./compose >/dev/null
    out "CPU profile of \`go test -run '^\$' -bench 'Load100Services\$' -benchtime 20x -cpuprofile load.cpu ./compose\` (\`go tool pprof -top -cum\`; % of all samples, GC workers included):"
    out ""
    out '```'
    go tool pprof -top -cum -nodecount 400 "$work/compose.test" "$work/load.cpu" 2>/dev/null |
      grep -E 'Duration:|flat%|compose\.Load$|LoadProject$|loader\.loadYamlFile\.func1$|interpolation\.Interpolate$|getCasterForPath|transform\.Canonical$|tree\.Path\.Matches$|strings\.genSplit$|loader\.ModelToProject$|loader\.Transform$|mapstructure/v2\.\(\*Decoder\)\.Decode$|paths\.ResolveRelativePaths$|schema\.Validate$|validation\.Validate$|yaml/v4\.Unmarshal|compose\.fromTypes$|compose\.newFileLocator$|compose\.checkSupported$|compose\.DecodeServiceSpec$|runtime\.gcBgMarkWorker$|runtime\.mallocgc$' >>"$summary" || true
    out '```'
    out ""
    if command -v perf >/dev/null; then
      # The benchmark is steady state; a real command is a fresh process. An unstripped
      # build of the plugin, called directly, shows what `config --services` (load only)
      # spends its CPU on.
      log "2/3 perf profile of 20 fresh \`config --services\` processes"
      CGO_ENABLED=0 go build -o "$work/docker-lifecycle.debug" ./cmd/docker-lifecycle
      if perf record -q -F 2999 -g -o "$work/perf.data" -- bash -c \
        "for i in \$(seq 20); do $work/docker-lifecycle.debug lifecycle -f $plan_file config --services >/dev/null; done" >/dev/null 2>&1; then
        out "perf profile of 20 fresh processes (\`perf record -F 2999 -g -- docker-lifecycle lifecycle -f FILE config --services\`, unstripped build; \`perf report --children --sort symbol -g none\`; % of the process's samples):"
        out ""
        out '```'
        perf report -i "$work/perf.data" --comm docker-lifecycl --children --sort symbol --stdio -g none 2>/dev/null |
          sed -E 's/ +- +- *$//; s/ +$//' | grep -E 'compose\.Load$|LoadProject$|loadYamlFile\.func1$|interpolation\.Interpolate$|transform\.Canonical$|tree\.Path\.Matches$|strings\.genSplit$|loader\.Transform$|paths\.ResolveRelativePaths$|schema\.Validate$|schema\.compileSchema$|compose\.fromTypes$|runtime\.gcBgMarkWorker$|runtime\.mallocgc$|runtime\.main$|runtime\.schedinit|runtime\.doInit' >>"$summary" || true
        out '```'
        out ""
      fi
    fi
  fi
fi

# ---------------------------------------------------------------------------------------
if ! skipped deploy; then
  web_port=${BENCH_WEB_PORT:-$(free_port)}
  log "3/3 deploys of examples/demo as project $project on 127.0.0.1:$web_port ($deploy_runs runs each)"
  export WEB_PORT=$web_port
  cd "$demo_dir"
  deployed=1
  docker lifecycle -p "$project" down --volumes >/dev/null 2>&1 || true

  # run_deploy SCENARIO RUN CHAIN [ENV=VALUE...]: one timed deploy of the current
  # directory's project ($deploy_project), its metrics appended to deploy.tsv. CHAIN is
  # the critical path's containers (comma-separated), as the deploy names them.
  run_deploy() {
    local scenario=$1 i=$2 chain=$3
    shift 3
    local ev=$work/deploy-$scenario-$i.json s e
    s=$(now_us)
    if ! env "$@" docker lifecycle -p "$deploy_project" --progress json deploy >"$work/deploy.out" 2>"$ev"; then
      log "deploy ($scenario, run $i) failed:"
      cat "$ev" "$work/deploy.out" >&2
      return 1
    fi
    e=$(now_us)
    IFS=, read -ra names <<<"$chain"
    docker inspect "${names[@]}" >"$work/inspect.json" 2>/dev/null || true
    "$bg" deploy -scenario "$scenario" -events "$ev" -start "${s}000" -end "${e}000" -chain "$chain" -inspect "$work/inspect.json" >>"$work/deploy.tsv"
  }
  # Revisions start at 1 for each fresh deploy (down --volumes removes the records), so
  # the names are the same every round: web and worker roll, db and migrate recreate.
  deploy_project=$project
  for ((i = 1; i <= deploy_runs; i++)); do
    run_deploy fresh "$i" "$project-db-1,$project-migrate-1,$project-web-r1-1" WEB_VERSION=v1
    run_deploy no-op "$i" "" WEB_VERSION=v1
    # web's two replicas roll one after the other: each batch's create, start and gate.
    run_deploy "change-web-v2" "$i" "$project-web-r2-1,$project-web-r2-2" WEB_VERSION=v2
    got=$(curl -fsS --max-time 5 "http://127.0.0.1:$web_port/" || true)
    [ "$got" = v2 ] || { log "web answered '$got' after the v2 deploy, want v2"; exit 1; }
    s=$(now_us)
    docker lifecycle -p "$project" down --volumes >/dev/null 2>&1
    e=$(now_us)
    printf 'docker lifecycle down --volumes\t%s\n' "$(ms_of_us $((e - s)))" >>"$work/down.tsv"
  done
  deployed=0

  # 3b. Issue 8's goal: web (1 replica) and a worker depending on it, both v1 → v2.
  path_project=$project-path
  deploy_project=$path_project
  cd "$root/scripts/bench-critical-path"
  path_deployed=1
  docker lifecycle -p "$path_project" down --volumes >/dev/null 2>&1 || true
  for ((i = 1; i <= deploy_runs; i++)); do
    VERSION=v1 docker lifecycle -p "$path_project" deploy >/dev/null 2>&1 || { log "deploy of $path_project v1 failed"; exit 1; }
    run_deploy "web+worker-v2" "$i" "$path_project-web-r2-1,$path_project-worker-r2-1" VERSION=v2
    docker lifecycle -p "$path_project" down --volumes >/dev/null 2>&1
  done
  path_deployed=0
  cd "$root"
  out "### 3. deploy of examples/demo"
  out ""
  out "Project \`$project\` (examples/demo/compose.yaml with -p), WEB_PORT=$web_port, $deploy_runs runs of: fresh deploy → no-op deploy → WEB_VERSION=v2 deploy → down --volumes. Critical path: db (healthy) → migrate (completed) → web (healthy) for the fresh deploy; web's two rolling batches for the change. \`web+worker-v2\`: scripts/bench-critical-path (web 1 replica, worker depending on it), v1 deployed, then the timed v2 deploy; critical path web → worker."
  out ""
  "$bg" deploy-table <"$work/deploy.tsv" >>"$summary"
  out ""
  "$bg" stats <"$work/down.tsv" >>"$summary"
  out ""
fi

# ---------------------------------------------------------------------------------------
out "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project" | wc -l)
out "- containers of $project left: $left (the EXIT trap removes images this run built: ${built_images[*]:-none})"
cat "$summary"
