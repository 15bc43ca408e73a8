package rollout

import (
	"context"
	"encoding/json"
	"runtime"
	"strconv"
	"strings"
	"sync"
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

// fakeRouterAgents answers the routers' `agent ctl` commands the guard's
// reconciliation sends (by `docker exec`; there is no control session), from config and
// to put, both called under mu.
func fakeRouterAgents(t *testing.T, f *engine.Fake, mu *sync.Mutex, config func(id string) router.Config, put func(id string, cfg router.Config)) {
	f.ExecSessionFn = func(ctx context.Context, id string, cmd []string) (*engine.Session, error) {
		return nil, engine.ErrNotFound
	}
	f.ExecFn = func(ctx context.Context, id string, cmd []string, stdin []byte) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		switch strings.Join(cmd, " ") {
		case "/agent ctl healthz":
			return nil, nil
		case "/agent ctl get-config":
			return json.Marshal(config(id))
		case "/agent ctl put-config":
			cfg, err := router.DecodeConfig(stdin)
			assert.Check(t, err)
			put(id, cfg)
			return nil, nil
		}
		t.Errorf("unexpected exec %v", cmd)
		return nil, nil
	}
	f.ListVolumesFn = func(ctx context.Context, labels map[string]string) ([]engine.Volume, error) { return nil, nil }
	f.ArchFn = func(ctx context.Context) (string, error) { return runtime.GOARCH, nil }
	f.InspectImageFn = func(ctx context.Context, ref string) (engine.Image, error) {
		return engine.Image{ID: "sha256:agent"}, nil
	}
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

// TestGuardKeepsRouter drives the guard's router keeping on a fake engine: a router
// found exited at the guard's start (the engine did not restart it) is started and its
// saved routes lose the backend that is gone; once removed, it is created again (the
// deploy's container: name, labels, ports) and given the routes of the running
// replicas; each change under the project lock, released after.
func TestGuardKeepsRouter(t *testing.T) {
	p := loadProject(t, `
name: demo
services:
  web:
    image: app
    ports: ["127.0.0.1:8080:80"]
    x-lifecycle: {strategy: rolling}
`)
	target := encodedTarget(t, p)
	assert.Assert(t, target.Router != nil)
	assert.Check(t, is.DeepEqual(target.Router.Ports, []compose.RoutedPort{{Route: "web:8080", Service: "web", HostIP: "127.0.0.1", Published: 8080, Target: 80}}))

	w, f := newGuardWorld()
	var mu sync.Mutex
	routerState, routerID := "exited", "r1"
	saved := router.Config{Version: router.ConfigVersion, Routes: []router.Route{{Name: "web:8080", Listen: ":8080", Protocol: router.HTTP, Backends: []router.Backend{
		{ID: "demo-web-r1-1", Address: "demo-web-r1-1:80", Weight: 1, Group: "r1"},
		{ID: "demo-web-r1-2", Address: "demo-web-r1-2:80", Weight: 1, Group: "r1"},
	}}}}
	var created []engine.ContainerSpec
	f.ListContainersFn = func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
		mu.Lock()
		defer mu.Unlock()
		cs := []engine.Container{app("demo-web-r1-1", "web", 1, "running", "")}
		cs[0].ID = "c1"
		if routerState != "" {
			cs = append(cs, engine.Container{ID: routerID, Name: "demo-lifecycle-router", State: routerState,
				Labels: map[string]string{compose.LabelProject: "demo", compose.LabelRole: compose.RoleRouter}})
		}
		return cs, nil
	}
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		return engine.ContainerDetails{ID: id, Name: "demo-web-r1-1", State: "running", Labels: map[string]string{
			compose.LabelProject: "demo", compose.LabelService: "web", compose.LabelRole: compose.RoleApp, compose.LabelRevision: "1"}}, nil
	}
	f.StartContainerFn = func(ctx context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		assert.Check(t, is.Equal(id, routerID))
		routerState = "running"
		w.record("start " + id)
		return nil
	}
	fakeRouterAgents(t, f, &mu, func(string) router.Config { return saved }, func(id string, cfg router.Config) {
		w.mu.Lock()
		held := w.lock != nil
		w.mu.Unlock()
		assert.Check(t, held, "put-config without the project lock")
		saved = cfg
		w.record("put-config " + strings.Join(backendIDs(cfg.Routes[0]), ","))
	})
	f.CreateContainerFn = func(ctx context.Context, spec engine.ContainerSpec) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		created = append(created, spec)
		routerState, routerID, saved = "created", "r2", router.Config{Version: router.ConfigVersion}
		return routerID, nil
	}

	stream := runGuard(t, w, f, p)

	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertRouter))
	assert.Check(t, is.Equal(a.Action, ActionRouterStarted))
	assert.Check(t, is.Equal(a.Container, "demo-lifecycle-router"))
	assert.Check(t, is.Contains(a.Reason, "web: dropped demo-web-r1-2 (no longer running)"))
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"start r1", "put-config demo-web-r1-1/r1/1@demo-web-r1-1:80"}))
	w.mu.Lock()
	assert.Check(t, w.lock == nil, "the lock is released")
	w.mu.Unlock()

	// Removed: created again.
	mu.Lock()
	routerState = ""
	mu.Unlock()
	stream <- engine.Event{Action: engine.EventDestroy, ContainerID: "r1", Attributes: map[string]string{compose.LabelRole: compose.RoleRouter}}
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRouterRecreated), "%+v", a)
	assert.Check(t, is.Contains(a.Reason, "web: added demo-web-r1-1"))
	assert.Assert(t, is.Len(created, 1))
	assert.Check(t, is.Equal(created[0].Name, "demo-lifecycle-router"))
	assert.Check(t, is.Equal(created[0].Config.Labels[compose.LabelRole], compose.RoleRouter))
	assert.Check(t, is.Equal(created[0].Config.Labels[compose.LabelRouterHash], compose.RouterHash(target.Router.Ports, target.Router.Networks)))
	assert.Check(t, is.Len(created[0].HostConfig.PortBindings, 1))
	assert.Check(t, is.DeepEqual(w.restarts()[2:], []string{"start r2", "put-config demo-web-r1-1/r1/1@demo-web-r1-1:80"}))

	// As it should be: a start event changes nothing, says nothing.
	stream <- engine.Event{Action: engine.EventStart, ContainerID: "r2", Attributes: map[string]string{compose.LabelRole: compose.RoleRouter}}
	w.noAlert(t, 300*time.Millisecond)
	assert.Check(t, is.Len(w.restarts(), 4))
}

// TestGuardTargetServiceRouter: an internal service's own router is in the guard's
// target, and the container the guard would create again from it (after the JSON the
// detached guard is given) is exactly the deploy's.
func TestGuardTargetServiceRouter(t *testing.T) {
	p := loadProject(t, internalProject)
	target := encodedTarget(t, p)
	assert.Assert(t, target.Router != nil)
	assert.Assert(t, is.Len(target.ServiceRouters, 1))
	r := target.ServiceRouters[0]
	assert.Check(t, is.Equal(r.Service, "api"))
	assert.Check(t, is.DeepEqual(r.Ports, []compose.RoutedPort{{Route: "api:9000", Service: "api", Published: 9000, Target: 9000}}))
	assert.Check(t, is.Equal(r.Routes.Routes[0].Name, "api:9000"))
	got, err := routerSpec("demo", "agent:1", r)
	assert.NilError(t, err)
	want, err := compose.InternalRouterContainer(p, "api", "agent:1")
	assert.NilError(t, err)
	gotJSON, err := json.Marshal(got)
	assert.NilError(t, err)
	wantJSON, err := json.Marshal(want)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(string(gotJSON), string(wantJSON)))
	assert.Check(t, is.Equal(got.Config.Labels[compose.LabelRouterHash], compose.InternalRouterHash(p, "api")))
}

const internalProject = `
name: demo
services:
  web:
    image: app
    ports: ["127.0.0.1:8080:80"]
    x-lifecycle: {strategy: rolling}
  api:
    image: app
    expose: ["9000"]
    x-lifecycle: {strategy: rolling}
`

// TestGuardKeepsServiceRouter: an internal service's router, removed, is created again
// as the deploy creates it and given its routes; the alert names it; the project's
// router, as it should be, is left alone.
func TestGuardKeepsServiceRouter(t *testing.T) {
	p := loadProject(t, internalProject)

	w, f := newGuardWorld()
	var mu sync.Mutex
	apiState, apiID := "running", "ra1"
	configs := map[string]router.Config{
		"r0": {Version: router.ConfigVersion, Routes: []router.Route{{Name: "web:8080", Listen: ":8080", Protocol: router.HTTP, Backends: []router.Backend{
			{ID: "demo-web-r1-1", Address: "demo-web-r1-1:80", Weight: 1, Group: "r1"},
		}}}},
		"ra1": {Version: router.ConfigVersion, Routes: []router.Route{{Name: "api:9000", Listen: ":9000", Protocol: router.HTTP, Backends: []router.Backend{
			{ID: "demo-api-r1-1", Address: "demo-api-r1-1:9000", Weight: 1, Group: "r1"},
		}}}},
	}
	var created []engine.ContainerSpec
	f.ListContainersFn = func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
		mu.Lock()
		defer mu.Unlock()
		cs := []engine.Container{app("demo-web-r1-1", "web", 1, "running", ""), app("demo-api-r1-1", "api", 1, "running", "")}
		cs[0].ID, cs[1].ID = "c1", "c2"
		cs = append(cs, engine.Container{ID: "r0", Name: "demo-lifecycle-router", State: "running",
			Labels: map[string]string{compose.LabelProject: "demo", compose.LabelRole: compose.RoleRouter, compose.LabelService: "web"}})
		if apiState != "" {
			cs = append(cs, engine.Container{ID: apiID, Name: "demo-api-lifecycle-router", State: apiState,
				Labels: map[string]string{compose.LabelProject: "demo", compose.LabelRole: compose.RoleRouter, compose.LabelService: "api", compose.LabelRouterService: "api"}})
		}
		return cs, nil
	}
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		service := map[string]string{"c1": "web", "c2": "api"}[id]
		return engine.ContainerDetails{ID: id, Name: "demo-" + service + "-r1-1", State: "running", Labels: map[string]string{
			compose.LabelProject: "demo", compose.LabelService: service, compose.LabelRole: compose.RoleApp, compose.LabelRevision: "1"}}, nil
	}
	f.StartContainerFn = func(ctx context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		assert.Check(t, is.Equal(id, apiID))
		apiState = "running"
		w.record("start " + id)
		return nil
	}
	fakeRouterAgents(t, f, &mu, func(id string) router.Config { return configs[id] }, func(id string, cfg router.Config) {
		configs[id] = cfg
		w.record("put-config " + id + " " + cfg.Routes[0].Name + " " + strings.Join(backendIDs(cfg.Routes[0]), ","))
	})
	f.CreateContainerFn = func(ctx context.Context, spec engine.ContainerSpec) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		created = append(created, spec)
		apiState, apiID = "created", "ra2"
		configs[apiID] = router.Config{Version: router.ConfigVersion}
		return apiID, nil
	}

	stream := runGuard(t, w, f, p)
	w.noAlert(t, 300*time.Millisecond) // both routers as they should be

	// The internal router removed: created again, given its routes.
	mu.Lock()
	apiState = ""
	mu.Unlock()
	stream <- engine.Event{Action: engine.EventDestroy, ContainerID: "ra1", Attributes: map[string]string{
		compose.LabelRole: compose.RoleRouter, compose.LabelService: "api", compose.LabelRouterService: "api"}}
	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertRouter))
	assert.Check(t, is.Equal(a.Action, ActionRouterRecreated), "%+v", a)
	assert.Check(t, is.Equal(a.Container, "demo-api-lifecycle-router"))
	assert.Check(t, is.Equal(a.Service, "api"))
	assert.Check(t, is.Contains(a.String(), "api (demo-api-lifecycle-router): router, router-recreated"))
	assert.Check(t, is.Contains(a.Reason, "api: added demo-api-r1-1"))
	assert.Assert(t, is.Len(created, 1))
	assert.Check(t, is.Equal(created[0].Name, "demo-api-lifecycle-router"))
	assert.Check(t, is.Equal(created[0].Config.Labels[compose.LabelRouterHash], compose.InternalRouterHash(p, "api")))
	assert.Check(t, is.Len(created[0].HostConfig.PortBindings, 0), "a service's router publishes nothing")
	assert.Assert(t, created[0].Networking != nil)
	assert.Check(t, is.Contains(created[0].Networking.EndpointsConfig["demo_default"].Aliases, "api"), "it answers to the service's name")
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"start ra2", "put-config ra2 api:9000 demo-api-r1-1/r1/1@demo-api-r1-1:9000"}))

	// A backend of the internal service removed: its router, not the project's, loses it.
	mu.Lock()
	configs[apiID] = router.Config{Version: router.ConfigVersion, Routes: []router.Route{{Name: "api:9000", Listen: ":9000", Protocol: router.HTTP, Backends: []router.Backend{
		{ID: "demo-api-r1-1", Address: "demo-api-r1-1:9000", Weight: 1, Group: "r1"},
		{ID: "demo-api-r1-2", Address: "demo-api-r1-2:9000", Weight: 1, Group: "r1"},
	}}}}
	mu.Unlock()
	stream <- engine.Event{Action: engine.EventDestroy, ContainerID: "c9", Attributes: map[string]string{
		compose.LabelRole: compose.RoleApp, compose.LabelService: "api", compose.LabelProject: "demo"}}
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRouterReconciled), "%+v", a)
	assert.Check(t, is.Equal(a.Container, "demo-api-lifecycle-router"))
	assert.Check(t, is.Contains(a.Reason, "api: dropped demo-api-r1-2"))
	assert.Check(t, is.DeepEqual(w.restarts()[2:], []string{"put-config ra2 api:9000 demo-api-r1-1/r1/1@demo-api-r1-1:9000"}))
	w.noAlert(t, 300*time.Millisecond)
}
