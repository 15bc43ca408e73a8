package rollout

import (
	"strconv"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func app(name, service string, revision int, state, health string) engine.Container {
	return engine.Container{Name: name, State: state, Health: health, Labels: map[string]string{
		compose.LabelRole: compose.RoleApp, compose.LabelService: service, compose.LabelRevision: strconv.Itoa(revision),
	}}
}

var reconcileTarget = GuardTargetRouter{
	Ports: []compose.RoutedPort{{Route: "web:8080", Service: "web", Published: 8080, Target: 80}},
	Routes: router.Config{Version: router.ConfigVersion, Routes: []router.Route{
		{Name: "web:8080", Listen: ":8080", Protocol: router.HTTP, Backends: []router.Backend{}},
	}},
}

func backendIDs(r router.Route) []string {
	var out []string
	for _, b := range r.Backends {
		out = append(out, b.ID+"/"+b.Group+"/"+strconv.Itoa(b.Weight)+"@"+b.Address)
	}
	return out
}

// TestReconcileRoutesDropsAndAdds: a backend whose container is gone is dropped, a
// healthy running container of the routed revision is added at its revision's weight;
// unhealthy containers, other revisions and the route's settings are left alone.
func TestReconcileRoutesDropsAndAdds(t *testing.T) {
	current := router.Config{Version: router.ConfigVersion, Routes: []router.Route{
		{Name: "web:8080", Listen: ":8080", Protocol: router.HTTP, DrainTimeout: router.Duration(5 * time.Second), Backends: []router.Backend{
			{ID: "demo-web-r2-1", Address: "demo-web-r2-1:80", Weight: 3, Group: "r2"},
			{ID: "demo-web-r2-2", Address: "demo-web-r2-2:80", Weight: 3, Group: "r2"},
		}},
	}}
	cs := []engine.Container{
		app("demo-web-r2-1", "web", 2, "running", "healthy"),
		app("demo-web-r2-3", "web", 2, "running", "healthy"),   // added
		app("demo-web-r2-4", "web", 2, "running", "unhealthy"), // not added
		app("demo-web-r1-1", "web", 1, "running", "healthy"),   // another revision: not added
		app("demo-web-r2-2", "web", 2, "exited", ""),           // dropped
	}
	want, changes := reconcileRoutes(reconcileTarget, current, cs, nil)
	assert.Check(t, is.DeepEqual(changes, []string{"web: dropped demo-web-r2-2 (no longer running)", "web: added demo-web-r2-3"}))
	assert.Check(t, is.DeepEqual(backendIDs(want.Routes[0]), []string{"demo-web-r2-1/r2/3@demo-web-r2-1:80", "demo-web-r2-3/r2/3@demo-web-r2-3:80"}))
	assert.Check(t, is.Equal(want.Routes[0].DrainTimeout, router.Duration(5*time.Second)), "the router's own route settings are kept")
	assert.Check(t, is.Len(current.Routes[0].Backends, 2), "the current config is not changed in place")

	// As it should be: no change, the same config.
	same, changes := reconcileRoutes(reconcileTarget, want, cs, nil)
	assert.Check(t, is.Len(changes, 0))
	assert.Check(t, is.DeepEqual(same, want))
}

// TestReconcileRoutesRecreatedRouter: a router without routes (created again) gets the
// compose file's routes with the running healthy containers of the revision the
// history says is current.
func TestReconcileRoutesRecreatedRouter(t *testing.T) {
	cs := []engine.Container{
		app("demo-web-r1-1", "web", 1, "running", "healthy"),
		app("demo-web-r2-1", "web", 2, "running", ""),
		app("demo-web-r2-2", "web", 2, "running", "healthy"),
	}
	records := []Record{
		{Service: "web", Revision: 1, Result: ResultDeployed},
		{Service: "web", Revision: 2, Result: ResultDeployed},
		{Service: "web", Revision: 3, Result: ResultRolledBack}, // failed: no containers
	}
	want, changes := reconcileRoutes(reconcileTarget, router.Config{Version: router.ConfigVersion}, cs, records)
	assert.Check(t, is.DeepEqual(changes, []string{"web: added demo-web-r2-1, demo-web-r2-2", "routes written from the compose file (the router had none)"}))
	assert.Check(t, is.DeepEqual(backendIDs(want.Routes[0]), []string{"demo-web-r2-1/r2/1@demo-web-r2-1:80", "demo-web-r2-2/r2/1@demo-web-r2-2:80"}))

	// A rollback made revision 1 current again.
	records = append(records, Record{Service: "web", Revision: 1, Result: ResultRollback})
	want, _ = reconcileRoutes(reconcileTarget, router.Config{Version: router.ConfigVersion}, cs, records)
	assert.Check(t, is.DeepEqual(backendIDs(want.Routes[0]), []string{"demo-web-r1-1/r1/1@demo-web-r1-1:80"}))

	// No history (containers from before it): the newest running revision.
	want, _ = reconcileRoutes(reconcileTarget, router.Config{Version: router.ConfigVersion}, cs, nil)
	assert.Check(t, is.Len(want.Routes[0].Backends, 2))
}

// TestReconcileRoutesPreviewOnlyDrops: a blue-green preview route loses its gone
// backends but gains none (which colour it shows is the deploy's to say).
func TestReconcileRoutesPreviewOnlyDrops(t *testing.T) {
	target := reconcileTarget
	target.Ports = append(target.Ports, compose.RoutedPort{Route: "web#preview:9090", Service: "web", Published: 9090, Target: 80, Preview: true})
	current := router.Config{Version: router.ConfigVersion, Routes: []router.Route{
		{Name: "web#preview:9090", Listen: ":9090", Protocol: router.HTTP, Backends: []router.Backend{
			{ID: "demo-web-r2-1", Address: "demo-web-r2-1:80", Weight: 1, Group: "r2"},
		}},
		{Name: "web:8080", Listen: ":8080", Protocol: router.HTTP, Backends: []router.Backend{
			{ID: "demo-web-r1-1", Address: "demo-web-r1-1:80", Weight: 1, Group: "r1"},
		}},
	}}
	cs := []engine.Container{app("demo-web-r1-1", "web", 1, "running", "healthy"), app("demo-web-r1-2", "web", 1, "running", "healthy")}
	want, changes := reconcileRoutes(target, current, cs, nil)
	assert.Check(t, is.Len(changes, 2), "%v", changes)
	assert.Check(t, is.Len(want.Routes[0].Backends, 0), "preview")
	assert.Check(t, is.DeepEqual(backendIDs(want.Routes[1]), []string{"demo-web-r1-1/r1/1@demo-web-r1-1:80", "demo-web-r1-2/r1/1@demo-web-r1-2:80"}))
}
