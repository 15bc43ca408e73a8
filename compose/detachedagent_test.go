package compose

import (
	"testing"

	"gotest.tools/v3/assert"
)

func TestIsDetachedAgent(t *testing.T) {
	labels := func(project, role string) map[string]string {
		return map[string]string{LabelRole: role, LabelManagedBy: ManagedByValue, LabelProject: project}
	}
	assert.Check(t, IsDetachedAgent("demo", "/demo-guard", labels("demo", RoleGuard)))
	assert.Check(t, IsDetachedAgent("demo", "demo-guard", labels("demo", RoleGuard)))
	assert.Check(t, IsDetachedAgent("demo", "/demo-monitor", labels("demo", RoleMonitor)))
	assert.Check(t, !IsDetachedAgent("demo", "demo-guard", labels("other", RoleGuard)), "another project's labels")
	assert.Check(t, !IsDetachedAgent("demo", "demo-tool", labels("demo", RoleGuard)), "the guard's labels, not its name")
	assert.Check(t, !IsDetachedAgent("demo", "demo-guard", labels("demo", RoleMonitor)), "the monitor's labels, the guard's name")
	assert.Check(t, !IsDetachedAgent("demo", "demo-router", labels("demo", RoleRouter)), "not a detached role")
	assert.Check(t, !IsDetachedAgent("demo", "demo-guard", map[string]string{LabelProject: "demo"}), "its name, not its labels")
}
