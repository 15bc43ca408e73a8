package policy

import (
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCheckRuntimeSocketSparesOnlyTheProjectsGuard(t *testing.T) {
	socket := []RuntimeMount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	cs := []RuntimeContainer{
		{Name: "/demo-guard", Mounts: socket, DetachedAgent: true}, // the project's own guard
		{Name: "demo-guard", Mounts: socket},                       // its name, not recognised as it
		{Name: "demo-agent", Mounts: []RuntimeMount{{Type: "bind", Source: "/var/run", Target: "/host-run"}}},
		{Name: "demo-web-1", Mounts: []RuntimeMount{{Type: "volume", Source: "data", Target: "/data"}}},
	}
	f := CheckRuntimeSocket(cs)
	assert.Assert(t, is.Len(f, 2), "%+v", f)
	var names []string
	for _, x := range f {
		names = append(names, x.Service)
		assert.Check(t, is.Equal(x.Rule, "docker-socket"))
		assert.Check(t, is.Equal(x.Level, Warning))
		assert.Check(t, is.Contains(x.Message, "running container, not a service of the compose file"))
	}
	assert.Check(t, is.DeepEqual(names, []string{"demo-guard", "demo-agent"}))
}
