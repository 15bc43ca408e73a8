#!/usr/bin/env bash
# Writes the Go workspace that builds the plugin against the modules internal/modulepatch
# changes (compose-go, jsonschema), and prints its path. Scripts that build or benchmark
# the plugin outside make use it, so they measure what make builds:
#   export GOWORK="${GOWORK:-$(scripts/modulepatch-work.sh)}"
set -euo pipefail
cd "$(dirname "$0")/.."
GOWORK=off go run ./internal/modulepatch/cmd/modulepatch -out build/modulepatch
