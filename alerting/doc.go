// Package alerting is x-lifecycle.alerts at run time (docs/observability.md#alerts):
// rule.go the pure state machine of each (rule, subject) — pending, firing, resolved —
// fed with values and their times; window.go the sliding windows of cumulative
// counters the windowed rules read; alert.go the notification (the documented JSON
// body); deliver.go the targets (webhook with retries, exec, stderr). It knows nothing
// of the engine: `monitor` (rollout/alerts.go) feeds it.
package alerting
