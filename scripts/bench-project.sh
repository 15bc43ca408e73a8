# Sourced by the benchmarks that watch a project of N testapp containers (bench-stats.sh,
# bench-guard.sh): builds the agent, the plugin (into a temporary CLI config, so the
# installed one is not touched) and the testapp image, deploys N replicas of one service
# with no published port, and removes all of it on exit.
#
# The caller sets n, project, image and, optionally, healthcheck (a compose healthcheck
# mapping), bench_env (more environment entries, "KEY: value, …"), bench_logging (a
# compose logging mapping) and bench_cleanup (a
# function run first on exit); it gets tmp, plugin, hz,
# running (the count of running containers) and ticks PID (CPU clock ticks of a process).

export GOWORK="${GOWORK:-$(scripts/modulepatch-work.sh)}" # the patched modules, as make builds
tmp=$(mktemp -d)
plugin=$tmp/cli-plugins/docker-lifecycle
hz=$(getconf CLK_TCK)

bench_project_cleanup() {
	if declare -F bench_cleanup >/dev/null; then bench_cleanup || true; fi
	DOCKER_CONFIG=$tmp docker lifecycle -p "$project" down --volumes >/dev/null 2>&1 || true
	docker image rm -f "$image" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap bench_project_cleanup EXIT

ticks() { # utime+stime of a pid, in clock ticks
	awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

make -s agent
mkdir -p "$tmp/cli-plugins"
CGO_ENABLED=0 go build -trimpath -o "$plugin" ./cmd/docker-lifecycle
go run ./internal/testimage/cmd/build-testapp-image "$image=v1" >/dev/null
cat >"$tmp/compose.yaml" <<YAML
services:
  app:
    image: $image
    environment: {QUIET: "1"${bench_env:+, $bench_env}}
${healthcheck:+    healthcheck: $healthcheck}
${bench_logging:+    logging: $bench_logging}
    deploy:
      replicas: $n
YAML
export DOCKER_CONFIG=$tmp
docker lifecycle -f "$tmp/compose.yaml" -p "$project" --progress quiet deploy
running=$(docker ps -q --filter "label=com.docker.compose.project=$project" | wc -l)
