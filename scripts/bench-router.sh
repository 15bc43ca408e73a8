#!/usr/bin/env bash
# Benchmark of the traffic router (package router, run as `agent router`) against a
# direct connection, nginx (Debian, plain reverse proxy with upstream keepalive) and
# kamal-proxy v0.9.2 (built from the Go module proxy), all on 127.0.0.1, interleaved in
# one run. Results and how to read them: docs/benchmarks.md, section 7.
# `make bench-router` runs this script.
#
# Per round, in an order that rotates every round:
#   - saturation: wrk -t2 -c64 for BENCH_SAT_SECONDS; req/s, and the proxy's CPU per
#     request: utime+stime of its processes from /proc/PID/stat before and after,
#     divided by the requests wrk completed (nginx: master and workers summed);
#   - latency: an open-loop load at BENCH_RATE req/s for BENCH_LAT_SECONDS with
#     internal/benchload (Debian has no wrk2), latency counted from each request's due
#     time; p50 and p99.
# RSS (VmRSS) of each proxy idle (after start and one request) and after all rounds.
# Then the router alone: 2 × 10 rollouts (config swaps b1 <-> b2 through `agent ctl
# put-config` on the control socket) under wrk load, RSS and open fds before, after 10
# and after 20, and the errors wrk saw during the swaps.
#
# Needs: go, curl, wrk, nginx (installed with apt-get when missing, as root). The
# kamal-proxy binary is cached in ~/.cache/docker-lifecycle/kamal-proxy-v0.9.2/.
# Nothing listens outside 127.0.0.1 except the test app and kamal-proxy (they bind all
# interfaces), and all traffic goes to 127.0.0.1. Every process it starts is stopped
# by an EXIT trap, and its temp dir removed.
#
# Knobs: BENCH_ROUNDS (3), BENCH_SAT_SECONDS (10), BENCH_LAT_SECONDS (10),
# BENCH_RATE (1000), BENCH_SKIP (comma list of nginx,kamal,gogc100,rollouts),
# BENCH_ROUTER_ENV (extra environment for the router, e.g. "GOGC=100"),
# BENCH_KEEP=1 (keep the temp dir with the raw data).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
rounds=${BENCH_ROUNDS:-3}
sat_s=${BENCH_SAT_SECONDS:-10}
lat_s=${BENCH_LAT_SECONDS:-10}
rate=${BENCH_RATE:-1000}
skip=",${BENCH_SKIP:-},"
router_env=${BENCH_ROUTER_ENV:-}
kp_version=v0.9.2
kp_dir=${XDG_CACHE_HOME:-$HOME/.cache}/docker-lifecycle/kamal-proxy-$kp_version
kp_bin=$kp_dir/kamal-proxy

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-router.XXXXXX")
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
pids=()

log() { printf '%s\n' "bench-router: $*" >&2; }
skipped() { [[ $skip == *",$1,"* ]]; }

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  if [ "${BENCH_KEEP:-}" = 1 ]; then log "raw data kept in $work"; else rm -rf "$work"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
if ! skipped nginx && ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then need_apt+=(nginx-light); fi
command -v curl >/dev/null || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} with apt-get"
  if [ "$(id -u)" != 0 ]; then log "not root: install ${need_apt[*]} first"; exit 1; fi
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

if ! skipped kamal && [ ! -x "$kp_bin" ]; then
  log "building kamal-proxy $kp_version into $kp_dir (go mod download, then go build in a copy)"
  (
    set -e
    scratch=$work/kp-scratch
    mkdir -p "$scratch" && cd "$scratch"
    go mod init scratch >/dev/null 2>&1
    dir=$(GOWORK=off go mod download -json "github.com/basecamp/kamal-proxy@$kp_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || { echo "go mod download gave no module directory" >&2; exit 1; }
    cp -r "$dir" "$scratch/src" && chmod -R u+w "$scratch/src" && cd "$scratch/src"
    mkdir -p "$kp_dir"
    GOWORK=off CGO_ENABLED=0 go build -trimpath -o "$kp_bin.tmp" ./cmd/kamal-proxy
    mv "$kp_bin.tmp" "$kp_bin"
  ) || { log "kamal-proxy build failed: skipping it"; skip+="kamal,"; }
fi

log "building agent, testapp and benchload"
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/agent" ./cmd/lifecycle-agent
CGO_ENABLED=0 go build -trimpath -o "$work/testapp" ./internal/testapp
go build -o "$work/benchload" ./internal/benchload/cmd/benchload

mapfile -t ports < <("$work/benchload" -free-ports 7)
p_b1=${ports[0]} p_b2=${ports[1]} p_router=${ports[2]} p_nginx=${ports[3]} p_kamal=${ports[4]} p_kamal_tls=${ports[5]} p_router_gc=${ports[6]}

# --- helpers -------------------------------------------------------------------------
# cpu_ticks PID...: utime+stime (clock ticks) summed over the processes.
cpu_ticks() {
  local t=0 pid s
  for pid in "$@"; do
    s=$(<"/proc/$pid/stat")
    s=${s##*) } # fields after "(comm) ": state is field 3, utime 14, stime 15
    read -r -a f <<<"$s"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
# rss_kb PID...: VmRSS summed over the processes.
rss_kb() {
  local t=0 pid
  for pid in "$@"; do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"))); done
  echo "$t"
}
nfds() { ls "/proc/$1/fd" | wc -l; }
tck=$(getconf CLK_TCK)

wait_http() { # wait_http URL: until it answers 200, 10 s at most
  for _ in $(seq 100); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  log "no answer from $1"
  return 1
}

# --- backends, router, nginx, kamal-proxy ---------------------------------------------
PORT=$p_b1 VERSION=v1 QUIET=1 "$work/testapp" >"$work/b1.log" 2>&1 &
pids+=($!)
PORT=$p_b2 VERSION=v2 QUIET=1 "$work/testapp" >"$work/b2.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$p_b1/"
wait_http "http://127.0.0.1:$p_b2/"

router_cfg() { # router_cfg ID PORT [LISTEN_PORT]
  printf '{"version":1,"routes":[{"name":"web","listen":"127.0.0.1:%s","drain_timeout":"3s","backends":[{"id":"%s","address":"127.0.0.1:%s","weight":1}]}]}\n' \
    "${3:-$p_router}" "$1" "$2"
}
# `agent router` is a supervisor running the router as its child process (`agent
# router-worker`, docs/rollouts.md): router_pids is both, for CPU and RSS; router_pid
# is the router process, for its fds and threads.
start_router() { # start_router NAME LISTEN_PORT [VAR=value...]: sets router_pid, router_pids
  local name=$1 port=$2 supervisor
  shift 2
  router_cfg b1 "$p_b1" "$port" >"$work/$name.json"
  env "$@" "$work/agent" router -config "$work/$name.json" -control "$work/$name.sock" >"$work/$name.log" 2>&1 &
  supervisor=$!
  pids+=($supervisor)
  wait_http "http://127.0.0.1:$port/"
  router_pid=$(pgrep -P "$supervisor" | head -1)
  router_pids="$supervisor $router_pid"
}
targets=(direct ours)
declare -A url pidsof
url[direct]=http://127.0.0.1:$p_b1/
url[ours]=http://127.0.0.1:$p_router/
# The router as it ran before its GC tuning (GOGC=100, the Go default), unless
# BENCH_SKIP has gogc100: the same binary, so the rows differ only by the GC setting.
if ! skipped gogc100; then
  start_router router-gogc100 "$p_router_gc" GOGC=100
  targets+=(ours_gogc100)
  url[ours_gogc100]=http://127.0.0.1:$p_router_gc/
  pidsof[ours_gogc100]=$router_pids
fi
# shellcheck disable=SC2086 # BENCH_ROUTER_ENV is a list of VAR=value words
start_router router "$p_router" $router_env
pidsof[ours]=$router_pids

if ! skipped nginx; then
  mkdir -p "$work/nginx/logs"
  cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  upstream app {
    server 127.0.0.1:$p_b1;
    keepalive 128;
  }
  server {
    listen 127.0.0.1:$p_nginx;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
EOF
  "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx/out.log" 2>&1 &
  nginx_pid=$!
  pids+=($nginx_pid)
  wait_http "http://127.0.0.1:$p_nginx/"
  targets+=(nginx)
  url[nginx]=http://127.0.0.1:$p_nginx/
fi

if ! skipped kamal; then
  mkdir -p "$work/kp/home" "$work/kp/run"
  kp() { env HOME="$work/kp/home" XDG_RUNTIME_DIR="$work/kp/run" "$kp_bin" "$@"; }
  # kamal-proxy logs every request as JSON on stdout (it has no switch for that in
  # v0.9.2): to /dev/null, but the logging is part of its cost.
  # Started with env directly (no shell function), so that $! is kamal-proxy itself.
  env HOME="$work/kp/home" XDG_RUNTIME_DIR="$work/kp/run" "$kp_bin" run --http-port "$p_kamal" --https-port "$p_kamal_tls" >/dev/null 2>"$work/kp/err.log" &
  kamal_pid=$!
  pids+=($kamal_pid)
  for _ in $(seq 50); do [ -S "$work/kp/run/kamal-proxy.sock" ] && break; sleep 0.1; done
  if kp deploy bench --target "127.0.0.1:$p_b1" --health-check-path /healthz --deploy-timeout 10s >"$work/kp/deploy.log" 2>&1 &&
    wait_http "http://127.0.0.1:$p_kamal/"; then
    targets+=(kamal)
    url[kamal]=http://127.0.0.1:$p_kamal/
    pidsof[kamal]=$kamal_pid
  else
    log "kamal-proxy deploy failed: $(cat "$work/kp/deploy.log" "$work/kp/err.log")"
  fi
fi
# nginx's workers are known only now that they answered.
if [ -n "${nginx_pid:-}" ]; then
  pidsof[nginx]="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
fi

# Idle RSS: started, configured, one request answered.
declare -A rss_idle rss_load
for t in "${targets[@]}"; do
  [ "$t" = direct ] && continue
  # shellcheck disable=SC2086
  rss_idle[$t]=$(rss_kb ${pidsof[$t]})
done
log "targets: ${targets[*]}; idle RSS (kB): $(for t in "${!rss_idle[@]}"; do printf '%s=%s ' "$t" "${rss_idle[$t]}"; done)"

# --- measurements ----------------------------------------------------------------------
# Warm-up: 2 s of wrk on every target (connections, heaps, page cache).
for t in "${targets[@]}"; do wrk -t2 -c64 -d2s "${url[$t]}" >/dev/null; done

results=$work/results.tsv # target round rps requests cpu_us_per_req p50_ms p99_ms
: >"$results"
n=${#targets[@]}
for ((r = 0; r < rounds; r++)); do
  order=()
  for ((k = 0; k < n; k++)); do order+=("${targets[$(((r + k) % n))]}"); done
  log "round $((r + 1))/$rounds: ${order[*]}"
  declare -A rps reqs cpu p50 p99
  for t in "${order[@]}"; do
    before=0
    # shellcheck disable=SC2086
    [ "$t" != direct ] && before=$(cpu_ticks ${pidsof[$t]})
    out=$(wrk -t2 -c64 -d"${sat_s}s" "${url[$t]}")
    after=0
    # shellcheck disable=SC2086
    [ "$t" != direct ] && after=$(cpu_ticks ${pidsof[$t]})
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then log "$t: wrk saw errors:"; grep 'Non-2xx\|Socket errors' <<<"$out" >&2; fi
    rps[$t]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    reqs[$t]=$(awk '/requests in/ {print $1}' <<<"$out")
    if [ "$t" = direct ]; then cpu[$t]=NA; else
      cpu[$t]=$(awk -v d=$((after - before)) -v n="${reqs[$t]}" -v hz="$tck" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
    fi
    sleep 1
  done
  for t in "${order[@]}"; do
    out=$("$work/benchload" -url "${url[$t]}" -rate "$rate" -duration "${lat_s}s" -warmup 2s -json) ||
      log "$t: benchload reported errors: $out"
    p50[$t]=$(sed -n 's/.*"p50_ms":\([0-9.e+-]*\).*/\1/p' <<<"$out" | awk '{printf "%.3f", $1}')
    p99[$t]=$(sed -n 's/.*"p99_ms":\([0-9.e+-]*\).*/\1/p' <<<"$out" | awk '{printf "%.3f", $1}')
    sleep 1
  done
  for t in "${targets[@]}"; do
    printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\n' "$t" "$((r + 1))" "${rps[$t]}" "${reqs[$t]}" "${cpu[$t]}" "${p50[$t]}" "${p99[$t]}" >>"$results"
  done
  unset rps reqs cpu p50 p99
done
for t in "${targets[@]}"; do
  [ "$t" = direct ] && continue
  # shellcheck disable=SC2086
  rss_load[$t]=$(rss_kb ${pidsof[$t]})
done

# --- rollouts under load (router only) ----------------------------------------------------
rollout_rows=()
if ! skipped rollouts; then
  ctl() { "$work/agent" ctl -control "$work/router.sock" "$@"; }
  rollouts() { # rollouts BATCH: 10 swaps b1 <-> b2 under wrk load, then the drains end
    local i out
    wrk -t2 -c64 -d13s "${url[ours]}" >"$work/rollout-wrk-$1.txt" &
    local wrk_pid=$!
    sleep 1
    for i in $(seq 10); do
      if ((i % 2)); then router_cfg b2 "$p_b2"; else router_cfg b1 "$p_b1"; fi | ctl put-config >/dev/null
      sleep 1
    done
    wait "$wrk_pid"
    out=$(<"$work/rollout-wrk-$1.txt")
    errs=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ';' || true)
    sleep 4 # drain_timeout is 3s
    rollout_rows+=("| after $(($1 * 10)) rollouts | $(awk '{printf "%.1f", $1/1024}' <<<"$(rss_kb ${pidsof[ours]})") | $(nfds "$router_pid") | $(awk '/^Threads:/ {print $2}' "/proc/$router_pid/status") | $(awk '/requests in/ {print $1}' <<<"$out") | ${errs:-none} |")
  }
  rollout_rows+=("| before (after the rounds) | $(awk '{printf "%.1f", $1/1024}' <<<"$(rss_kb ${pidsof[ours]})") | $(nfds "$router_pid") | $(awk '/^Threads:/ {print $2}' "/proc/$router_pid/status") | | |")
  log "rollouts: 2 x 10 config swaps under wrk -c64"
  rollouts 1
  rollouts 2
fi

# --- report ------------------------------------------------------------------------------
median_of() { # median_of TARGET COLUMN
  awk -F'\t' -v t="$1" -v c="$2" '$1 == t && $c != "NA" && $c != "" {print $c}' "$results" | sort -g |
    awk '{v[NR] = $1} END {if (NR == 0) print "NA"; else if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2}'
}
declare -A m_rps m_cpu m_p50 m_p99
for t in "${targets[@]}"; do
  m_rps[$t]=$(median_of "$t" 3)
  m_cpu[$t]=$(median_of "$t" 5)
  m_p50[$t]=$(median_of "$t" 6)
  m_p99[$t]=$(median_of "$t" 7)
done
name() {
  case $1 in
  direct) echo "direct (wrk → testapp)" ;;
  ours) echo "**router** (\`agent router\`)" ;;
  ours_gogc100) echo "router with GOGC=100 (before the GC tuning)" ;;
  nginx) echo "nginx $("$nginx_bin" -v 2>&1 | sed 's,.*/,,') (keepalive)" ;;
  kamal) echo "kamal-proxy $kp_version" ;;
  esac
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "NA" || b == "NA" || b == 0) print "—"; else printf "%.2f", a / b}'; }
mb() { [ -n "${1:-}" ] && awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}' || echo "—"; }

echo
echo "Router benchmark: $(nproc) cores, $(go env GOVERSION), $rounds rounds interleaved, wrk -t2 -c64 -d${sat_s}s, open loop ${rate} req/s for ${lat_s}s; medians of the rounds. Load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| target | req/s | × direct | × nginx | proxy CPU µs/req | p50 ms @${rate} | p99 ms @${rate} | p50 added ms | RSS idle MB | RSS after load MB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in "${targets[@]}"; do
  added=$(awk -v a="${m_p50[$t]}" -v d="${m_p50[direct]}" 'BEGIN {printf "%.3f", a - d}')
  [ "$t" = direct ] && added="—"
  printf '| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$(name "$t")" "${m_rps[$t]}" \
    "$(ratio "${m_rps[$t]}" "${m_rps[direct]}")" "$(ratio "${m_rps[$t]}" "${m_rps[nginx]:-NA}")" \
    "$(if [ "$t" = direct ]; then echo —; else echo "${m_cpu[$t]}"; fi)" "${m_p50[$t]}" "${m_p99[$t]}" "$added" \
    "$(mb "${rss_idle[$t]:-}")" "$(mb "${rss_load[$t]:-}")"
done
echo
echo "Per round:"
echo
echo "| target | round | req/s | requests | CPU µs/req | p50 ms | p99 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
sort -k1,1 -k2,2n "$results" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}'
if [ ${#rollout_rows[@]} -gt 0 ]; then
  echo
  echo "Router during rollouts (10 swaps b1 ↔ b2 per batch under wrk -t2 -c64, drain 3s):"
  echo
  echo "| when | RSS MB | open fds | threads | wrk requests | wrk errors |"
  echo "|---|---:|---:|---:|---:|---|"
  printf '%s\n' "${rollout_rows[@]}"
fi
echo
echo "Targets:"
verdict() { if awk "BEGIN {exit !($1)}"; then echo met; else echo MISSED; fi; }
if [ -n "${m_cpu[kamal]:-}" ] && [ "${m_cpu[kamal]}" != NA ]; then
  echo "- CPU/request ≤ ½ kamal-proxy's: ${m_cpu[ours]} vs ${m_cpu[kamal]} µs ($(ratio "${m_cpu[ours]}" "${m_cpu[kamal]}")×): $(verdict "${m_cpu[ours]} <= ${m_cpu[kamal]} / 2")"
fi
if [ -n "${m_rps[nginx]:-}" ]; then
  echo "- req/s ≥ 0.8 × nginx's: $(ratio "${m_rps[ours]}" "${m_rps[nginx]}")×: $(verdict "${m_rps[ours]} >= 0.8 * ${m_rps[nginx]}")"
fi
echo "- p50 added over direct ≤ 0.5 ms at ${rate} req/s: $(awk -v a="${m_p50[ours]}" -v d="${m_p50[direct]}" 'BEGIN {printf "%.3f", a - d}') ms: $(verdict "${m_p50[ours]} - ${m_p50[direct]} <= 0.5")"
echo "- idle RSS ≤ 20 MB: $(mb "${rss_idle[ours]}") MB: $(verdict "${rss_idle[ours]} <= 20 * 1024")"
