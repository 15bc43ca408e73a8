package plugin

import (
	"bytes"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

func TestWriteMonitorStatus(t *testing.T) {
	now := time.Date(2026, 12, 3, 8, 5, 0, 0, time.UTC)
	r := rollout.MonitorStatusReport{
		Project: "demo", Running: true, URL: "http://127.0.0.1:9464/metrics",
		Container: rollout.DetachedContainerStatus{Name: "demo-monitor", State: "running", Since: now.Add(-5 * time.Minute), Image: "docker-lifecycle-detached:abc"},
		Alerts:    &rollout.MonitorAlertsStatus{Interval: compose.Duration(5 * time.Second), Rules: map[string]int{"web": 2, "db": 1}, Targets: []string{"stderr"}},
	}
	var b bytes.Buffer
	assert.NilError(t, writeMonitorStatus(&b, r, now))
	assert.Check(t, is.Equal(b.String(), `MONITOR    demo
CONTAINER  demo-monitor
STATE      running
SINCE      2026-12-03T08:00:00Z (5m0s ago)
RESTARTS   0
IMAGE      docker-lifecycle-detached:abc
METRICS    http://127.0.0.1:9464/metrics
ALERTS     3 rules on db, web, every 5s, to stderr
`))
	r.Alerts = nil
	b.Reset()
	assert.NilError(t, writeMonitorStatus(&b, r, now))
	assert.Check(t, is.Contains(b.String(), "ALERTS     none (metrics only)"))
}
