// Package compose loads compose projects with their x-lifecycle settings
// (compose-go/v2, strict decoding of x-lifecycle), validates them, converts services
// into engine create options, and derives the desired state once (desired.go: names,
// hashes, router and network layout) as the value the planner and the runtime read.
// Everything here is pure: every error is raised before any engine call.
//
// It may import compose-go, the engine API's types and segments; never engine,
// strategies, rollout or plugin.
package compose
