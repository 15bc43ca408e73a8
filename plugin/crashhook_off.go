//go:build !crashhook

package plugin

import "github.com/docker-lifecycle/docker-lifecycle/strategies"

// crashCheckpoint is the shipped binary's: no crash hook (see crashhook.go, built only
// with -tags crashhook for the e2e suite).
func crashCheckpoint() func(strategies.Step) { return nil }
