#!/usr/bin/env bash
# Writes the Go workspace that builds the plugin against compose-go with
# internal/composegopatch's change, and prints its path. Scripts that build or benchmark
# the plugin outside make use it, so they measure what make builds:
#   export GOWORK="${GOWORK:-$(scripts/compose-go-work.sh)}"
set -euo pipefail
cd "$(dirname "$0")/.."
GOWORK=off go run ./internal/composegopatch/cmd/composegopatch -out build/compose-go
