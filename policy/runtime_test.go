package policy

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCheckRuntimeSocketSparesOnlyTheProjectsGuard(t *testing.T) {
	socket := []RuntimeMount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	guardLabels := func(project string) map[string]string {
		return map[string]string{"io.lifecycle.role": "guard", "io.lifecycle.managed-by": "docker-lifecycle", "com.docker.compose.project": project}
	}
	cs := []RuntimeContainer{
		{Name: "/demo-guard", Labels: guardLabels("demo"), Mounts: socket}, // the project's own guard
		{Name: "demo-guard", Labels: guardLabels("other"), Mounts: socket}, // another project's labels
		{Name: "demo-tool", Labels: guardLabels("demo"), Mounts: socket},   // the guard's labels, not its name
		{Name: "demo-agent", Labels: map[string]string{}, Mounts: []RuntimeMount{{Type: "bind", Source: "/var/run", Target: "/host-run"}}},
		{Name: "demo-web-1", Labels: map[string]string{}, Mounts: []RuntimeMount{{Type: "volume", Source: "data", Target: "/data"}}},
	}
	f := CheckRuntimeSocket("demo", cs)
	assert.Assert(t, is.Len(f, 3), "%+v", f)
	var names []string
	for _, x := range f {
		names = append(names, x.Service)
		assert.Check(t, is.Equal(x.Rule, "docker-socket"))
		assert.Check(t, is.Equal(x.Level, Warning))
		assert.Check(t, is.Contains(x.Message, "running container, not a service of the compose file"))
	}
	assert.Check(t, is.DeepEqual(names, []string{"demo-guard", "demo-tool", "demo-agent"}))
	assert.Check(t, IsProjectGuard("demo", cs[0]))
	assert.Check(t, !IsProjectGuard("demo", cs[1]))
}
