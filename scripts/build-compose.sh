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

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# A scratch module lets `go mod download` fetch compose through the module proxy.
(cd "$work" && printf 'module scratch\ngo 1.26\n' > go.mod && go mod download "github.com/docker/compose/v2@$version") >&2
src="$(go env GOMODCACHE)/github.com/docker/compose/v2@$version"
cp -r "$src" "$work/compose"
chmod -R u+w "$work/compose"
mkdir -p "$(dirname "$bin")"
(cd "$work/compose" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$version" \
  -o "$bin.tmp" ./cmd) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
