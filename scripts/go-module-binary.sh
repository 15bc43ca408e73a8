# Sourced by scripts/build-compose.sh and scripts/build-registry.sh: builds one command of
# a Go module fetched through the module proxy, and caches the binary.
#
#   go_module_binary MODULE VERSION PACKAGE BIN [LDFLAGS]
#
# builds MODULE@VERSION's PACKAGE (e.g. ./cmd) statically into BIN (written whole or not
# at all) and prints BIN on stdout; the go tool's output goes to stderr.
go_module_binary() {
  local module=$1 version=$2 pkg=$3 bin=$4 ldflags=${5:-"-s -w"} work src
  # Another module's build: never the plugin's workspace (the Makefile exports GOWORK).
  export GOWORK=off
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand $work now: the trap runs after this function returns
  trap "chmod -R u+w '$work' 2>/dev/null; rm -rf '$work'" EXIT
  # A scratch module lets `go mod download` fetch the module through the module proxy.
  (cd "$work" && printf 'module scratch\ngo 1.26\n' >go.mod && go mod download "$module@$version") >&2
  src="$(go env GOMODCACHE)/$module@$version"
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  mkdir -p "$(dirname "$bin")"
  (cd "$work/src" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" "$pkg") >&2
  mv "$bin.tmp" "$bin"
  echo "$bin"
}
