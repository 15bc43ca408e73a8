// Package e2e holds the end-to-end tests: they build the plugin, install it into a
// temporary DOCKER_CONFIG, and run it through the real docker CLI against the engine of
// the current context, on images built from ./internal/testapp. `go test -short` skips them.
//
// Tests that put load on a service or measure time run one at a time: a neighbour's CPU
// would change what they measure. Tests that only deploy, refuse or inspect (each in its
// own project, on its own free ports) call t.Parallel(): Go runs them after the serial
// ones, -parallel at a time (3 in `make test`: they mostly wait on the engine's health
// checks), which keeps the suite inside CI's time budget.
package e2e
