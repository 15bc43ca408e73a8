// Package plugin is the command tree of docker lifecycle (cobra), one file per
// command: an options struct, a constructor that declares the flags, and a RunE that
// validates them and calls one function of the runtime (package rollout), then renders
// the result (tables, JSON, templates through docker/cli's formatter, SARIF). Commands
// never call the engine themselves: they connect (engine.Connect) and hand the engine
// to the runtime. Exit codes are decided here only (exitError, cli.StatusError).
//
// It may import everything below it (rollout, compose, strategies, engine, policy,
// progress, scan, segments) and docker/cli; nothing imports it but the plugin's main.
package plugin
