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

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# A scratch module lets `go mod download` fetch the registry through the module proxy.
(cd "$work" && printf 'module scratch\ngo 1.26\n' > go.mod && go mod download "github.com/distribution/distribution/v3@$version") >&2
src="$(go env GOMODCACHE)/github.com/distribution/distribution/v3@$version"
cp -r "$src" "$work/registry"
chmod -R u+w "$work/registry"
mkdir -p "$(dirname "$bin")"
(cd "$work/registry" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp" ./cmd/registry) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
