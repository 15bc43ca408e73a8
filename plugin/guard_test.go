package plugin

import (
	"bytes"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

func TestWriteGuardStatusGolden(t *testing.T) {
	now := time.Date(2026, 12, 2, 19, 0, 0, 0, time.UTC)
	failing := now.Add(-90 * time.Second)
	began := failing.Add(1077 * time.Millisecond)
	r := rollout.GuardStatusReport{
		Project: "demo", Running: true,
		Container: rollout.DetachedContainerStatus{Name: "demo-guard", ID: "abc", Image: "docker-lifecycle-detached:f0ab65a638df915c", State: "running", Since: now.Add(-5 * time.Minute), Restarts: 1},
		Services: []rollout.GuardServiceStatus{
			{Service: "db", Policy: compose.GuardSpec{After: compose.Duration(30 * time.Second), Backoff: compose.GuardBackoff{Start: compose.Duration(10 * time.Second), Cap: compose.Duration(5 * time.Minute), ResetAfter: compose.Duration(10 * time.Minute)}, Budget: 3, Window: compose.Duration(10 * time.Minute)},
				Containers: []rollout.GuardedContainerStatus{}},
			{Service: "web", Routed: true, Policy: compose.GuardSpec{Backoff: compose.GuardBackoff{Start: compose.Duration(2 * time.Second), Cap: compose.Duration(5 * time.Minute), ResetAfter: compose.Duration(10 * time.Minute)}, Budget: 1, Window: compose.Duration(time.Minute)},
				Containers: []rollout.GuardedContainerStatus{{Name: "demo-web-r1-1", Health: "healthy"}, {Name: "demo-web-r1-2", Health: "unhealthy"}, {Name: "demo-web-r1-3"}}},
		},
		Actions: []rollout.GuardAlert{
			{Time: now.Add(-time.Minute), Project: "demo", Kind: rollout.AlertGuard, Action: rollout.ActionReconnected, Reason: "event stream re-opened"},
			{Time: began.Add(3 * time.Second), Project: "demo", Service: "web", Container: "demo-web-r1-2", Kind: rollout.AlertUnhealthy, Action: rollout.ActionRestarted,
				Reason: "failing its health check since …, restart begun 1.077s later", FailingSince: &failing, RestartBegan: &began, Restarts: 1, Budget: 1},
		},
	}
	var out bytes.Buffer
	assert.NilError(t, writeGuardStatus(&out, r, now))
	golden.Assert(t, out.String(), "guard-status.golden")
}
