// Package e2e holds the end-to-end tests: they build the plugin, install it into a
// temporary DOCKER_CONFIG, and run it through the real docker CLI against the engine of
// the current context, on images built from ./internal/testapp. `go test -short` skips them.
package e2e
