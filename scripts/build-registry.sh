#!/usr/bin/env bash
# Builds the CNCF distribution registry (for the pull e2e tests: no registry is reachable
# here, so the tests run this one on 127.0.0.1) from its Go module and caches the binary.
# Prints the binary's path on stdout. A few minutes the first time, instant afterwards.
set -euo pipefail

version="${REGISTRY_VERSION:-v3.1.2}"
cache="${DOCKER_LIFECYCLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/docker-lifecycle}"
bin="$cache/registry-$version/registry"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

# shellcheck source=scripts/go-module-binary.sh
. "$(dirname "$0")/go-module-binary.sh"
go_module_binary github.com/distribution/distribution/v3 "$version" ./cmd/registry "$bin"
