#!/usr/bin/env bash
# Builds real Docker Compose v2 (for the interoperability e2e tests) from its Go module and
# caches the binary, because /usr/bin/docker-compose on Debian is the old Python v1.
# Prints the binary's path on stdout. About 5 minutes the first time, instant afterwards.
set -euo pipefail

version="${COMPOSE_VERSION:-v2.40.3}"
cache="${DOCKER_LIFECYCLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/docker-lifecycle}"
bin="$cache/compose-$version/docker-compose"

if [ -x "$bin" ] && "$bin" version --short >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

# shellcheck source=scripts/go-module-binary.sh
. "$(dirname "$0")/go-module-binary.sh"
go_module_binary github.com/docker/compose/v2 "$version" ./cmd "$bin" \
  "-s -w -X github.com/docker/compose/v2/internal.Version=$version"
