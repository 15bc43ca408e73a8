#!/usr/bin/env bash
# Builds real trivy (for the scan gate's e2e tests and benchmark) from its Go module and
# caches the binary, stamped with its version so the plugin's version check sees it.
# Prints the binary's path on stdout. About 10 minutes and 3 GB the first time, instant
# afterwards.
set -euo pipefail

version="${TRIVY_VERSION:-v0.74.0}"
cache="${DOCKER_LIFECYCLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/docker-lifecycle}"
dir="$cache/trivy-$version"
bin="$dir/trivy"

if [ -x "$bin" ] && "$bin" version --format json 2>/dev/null | grep -q "\"Version\":\"${version#v}\""; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
# trivy v0.74.0 needs encoding/json/v2 (GOEXPERIMENT=jsonv2). Without the -X its
# version reads "dev".
(cd "$(mktemp -d)" && GOBIN="$dir" GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go install \
  -ldflags "-s -w -X github.com/aquasecurity/trivy/pkg/version/app.ver=${version#v}" \
  "github.com/aquasecurity/trivy/cmd/trivy@$version") >&2
"$bin" version --format json >/dev/null
echo "$bin"
