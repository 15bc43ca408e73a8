package rollout

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// dependentsProject: web (the parent); sidecar joins its network (service:web), tail
// joins sidecar's; worker has depends_on.restart on web, log a plain depends_on;
// other joins web's container by name and web has depends_on.restart on other (a
// loop the guard must not follow); alone depends on nothing.
const dependentsProject = `
name: demo
x-lifecycle:
  guard: {budget: 1, window: 2h, backoff: {start: 1h}}
services:
  web:
    image: app
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 100ms, retries: 2}
    depends_on: {other: {condition: service_started, restart: true}}
  sidecar: {image: app, network_mode: "service:web"}
  tail: {image: app, network_mode: "service:sidecar"}
  worker: {image: app, depends_on: {web: {condition: service_started, restart: true}}}
  log: {image: app, depends_on: [web]}
  other: {image: app, network_mode: "container:demo-web-r1-1"}
  alone: {image: app}
`

// dependentsWorld is guardWorld with the containers of dependentsProject: c1 is web's
// (its health is the world's), the others are healthy unless unhealthy says otherwise.
func dependentsWorld(t *testing.T) (*guardWorld, *engine.Fake, map[string]string) {
	t.Helper()
	w, f := newGuardWorld()
	type c struct{ id, service, netMode string }
	cs := []c{
		{"c1", "web", "demo_default"},
		{"c2", "sidecar", "container:c1"}, // as a deploy resolves service:web
		{"c3", "log", "demo_default"},
		{"c4", "worker", "demo_default"},
		{"c5", "other", "container:demo-web-r1-1"},
		{"c6", "tail", "container:c2"},
		{"c7", "alone", "demo_default"},
	}
	unhealthy := map[string]string{} // by id: health of the others
	name := func(s string) string { return "demo-" + s + "-r1-1" }
	labels := func(s string) map[string]string {
		return map[string]string{compose.LabelProject: "demo", compose.LabelService: s, compose.LabelRole: compose.RoleApp,
			compose.LabelManagedBy: compose.ManagedByValue, compose.LabelRevision: "1", compose.LabelConfigHash: "h1"}
	}
	f.ListContainersFn = func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
		if l[compose.LabelRole] == compose.RoleRouter {
			return nil, nil
		}
		var out []engine.Container
		for _, c := range cs {
			out = append(out, engine.Container{ID: c.id, Name: name(c.service), State: "running", Labels: labels(c.service)})
		}
		return out, nil
	}
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range cs {
			if c.id != id {
				continue
			}
			d := engine.ContainerDetails{ID: id, Name: name(c.service), State: "running", Labels: labels(c.service),
				HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(c.netMode)}}
			if id == "c1" {
				d.Health, d.HealthFailingSince = w.health, w.failing
			} else if h := unhealthy[id]; h != "" {
				d.Health, d.HealthFailingSince = h, time.Now().Add(-10*time.Minute) // past the default after (no healthcheck when first seen)
			}
			if d.Health != "" {
				d.Config = &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/testapp", "healthcheck"}, Interval: 100 * time.Millisecond, Retries: 2}}
			}
			return d, nil
		}
		return engine.ContainerDetails{}, engine.ErrNotFound
	}
	start := f.StartContainerFn
	f.StartContainerFn = func(ctx context.Context, id string) error {
		if id != "c1" {
			w.mu.Lock()
			delete(unhealthy, id)
			w.mu.Unlock()
			w.record("start " + id)
			return nil
		}
		if err := start(ctx, id); err != nil {
			return err
		}
		// The restart heals web: its dependents are restarted once it is healthy.
		w.mu.Lock()
		w.health = "healthy"
		w.mu.Unlock()
		return nil
	}
	return w, f, unhealthy
}

func runGuard(t *testing.T, w *guardWorld, f *engine.Fake, p *compose.Project) chan engine.Event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{Alert: func(a GuardAlert) { w.alerts <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		assert.Check(t, <-done)
	})
	return <-w.streams
}

// TestGuardRestartsDependents: after web's container is restarted, the containers that
// join its network namespace (by service, by container name, and transitively) and those
// of the service with depends_on.restart on web are restarted, parents first, each once
// (the depends_on.restart loop back to web is not followed); a plain depends_on and an
// unrelated service are not. A dependent's restart is not counted against its budget.
func TestGuardRestartsDependents(t *testing.T) {
	p := loadProject(t, dependentsProject)
	w, f, unhealthy := dependentsWorld(t)
	w.health, w.failing = "unhealthy", time.Now().Add(-time.Minute)
	stream := runGuard(t, w, f, p)

	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRestarted), "%+v", a)
	assert.Check(t, is.Equal(a.Container, "demo-web-r1-1"))
	type dep struct{ Container, Parent, Dependency string }
	var got []dep
	for range 4 {
		a := w.nextAlert(t)
		assert.Check(t, is.Equal(a.Kind, AlertUnhealthy))
		assert.Check(t, is.Equal(a.Action, ActionRestartedDependent), "%+v", a)
		assert.Check(t, a.RestartBegan != nil && !a.Time.Before(*a.RestartBegan))
		assert.Check(t, is.Equal(a.Restarts, 0))
		assert.Check(t, is.Contains(a.Reason, "not counted against its own budget"))
		got = append(got, dep{a.Container, a.Parent, a.Dependency})
	}
	assert.Check(t, is.DeepEqual(got, []dep{
		{"demo-sidecar-r1-1", "demo-web-r1-1", DependentNetworkMode},
		{"demo-worker-r1-1", "demo-web-r1-1", DependentRestart},
		{"demo-other-r1-1", "demo-web-r1-1", DependentNetworkMode},
		{"demo-tail-r1-1", "demo-sidecar-r1-1", DependentNetworkMode},
	}), "parents first, ids in order among siblings")
	w.noAlert(t, 300*time.Millisecond)
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1", "start c1", "stop c2", "start c2", "stop c4", "start c4", "stop c5", "start c5", "stop c6", "start c6"}))

	// The sidecar turns unhealthy on its own: with a budget of 1, its own restart is
	// made (the dependent restart did not spend it), and it has no dependents of web.
	w.mu.Lock()
	unhealthy["c2"] = "unhealthy"
	w.calls = nil
	w.mu.Unlock()
	stream <- engine.Event{Action: engine.EventHealthStatus, Detail: "unhealthy", ContainerID: "c2", Name: "demo-sidecar-r1-1"}
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRestarted), "%+v", a)
	assert.Check(t, is.Equal(a.Container, "demo-sidecar-r1-1"))
	assert.Check(t, is.Equal(a.Restarts, 1))
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRestartedDependent), "%+v", a)
	assert.Check(t, is.Equal(a.Container, "demo-tail-r1-1"))
	assert.Check(t, is.Equal(a.Parent, "demo-sidecar-r1-1"))
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c2", "start c2", "stop c6", "start c6"}))
}

// TestGuardDependentsWaitForTheirParent: when the parent's restart fails, its
// dependents are left alone (starting them would fail: their namespace's owner is
// down), the alert names them, and they are watched again.
func TestGuardDependentsWaitForTheirParent(t *testing.T) {
	p := loadProject(t, dependentsProject)
	w, f, unhealthy := dependentsWorld(t)
	w.health, w.failing = "unhealthy", time.Now().Add(-time.Minute)
	start := f.StartContainerFn
	f.StartContainerFn = func(ctx context.Context, id string) error {
		if id == "c1" {
			return errors.New("no such image")
		}
		return start(ctx, id)
	}
	stream := runGuard(t, w, f, p)
	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRestartFailed), "%+v", a)
	assert.Check(t, is.Contains(a.Reason, "its dependents (demo-sidecar-r1-1, demo-worker-r1-1, demo-other-r1-1, demo-tail-r1-1) were not restarted"))
	w.noAlert(t, 300*time.Millisecond)
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1"}))

	// Not left busy: the worker's own health failure restarts it.
	w.mu.Lock()
	unhealthy["c4"] = "unhealthy"
	w.mu.Unlock()
	stream <- engine.Event{Action: engine.EventHealthStatus, Detail: "unhealthy", ContainerID: "c4", Name: "demo-worker-r1-1"}
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRestarted), "%+v", a)
	assert.Check(t, is.Equal(a.Container, "demo-worker-r1-1"))
}

// TestGuardTargetDependents: the target (the detached guard's JSON) carries each
// service's dependents; a plain depends_on is none; a target without the field (an
// older plugin's) still decodes.
func TestGuardTargetDependents(t *testing.T) {
	p := loadProject(t, dependentsProject)
	target := encodedTarget(t, p)
	assert.Check(t, is.DeepEqual(target.Services["web"].Dependents, []GuardDependent{
		{Service: "sidecar", Reason: DependentNetworkMode},
		{Service: "worker", Reason: DependentRestart},
	}))
	assert.Check(t, is.DeepEqual(target.Services["sidecar"].Dependents, []GuardDependent{{Service: "tail", Reason: DependentNetworkMode}}))
	assert.Check(t, is.DeepEqual(target.Services["other"].Dependents, []GuardDependent{{Service: "web", Reason: DependentRestart}}))
	for _, s := range []string{"log", "worker", "tail", "alone"} {
		assert.Check(t, is.Len(target.Services[s].Dependents, 0), s)
	}
	assert.Check(t, is.Contains(NewGuardTarget(p).Encode(), `"dependents":[{"service":"sidecar","reason":"network_mode"},{"service":"worker","reason":"depends_on.restart"}]`))

	old, err := DecodeGuardTarget([]byte(`{"project":"demo","services":{"web":{"policy":{}}}}`))
	assert.NilError(t, err)
	assert.Check(t, is.Len(old.Services["web"].Dependents, 0))

	// ipc and pid service:NAME are dependents too.
	p = loadProject(t, "name: demo\nservices:\n  web: {image: app}\n  dbg: {image: app, ipc: \"service:web\", pid: \"service:web\"}\n")
	deps := NewGuardTarget(p).Services["web"].Dependents
	sort.Slice(deps, func(i, j int) bool { return deps[i].Reason < deps[j].Reason })
	assert.Check(t, is.DeepEqual(deps, []GuardDependent{{Service: "dbg", Reason: DependentIPC}, {Service: "dbg", Reason: DependentPID}}))
}

// TestGuardDependentRestartFails: a dependent the engine cannot start is one
// dependent-restart-failed alert; the other dependents are restarted all the same.
func TestGuardDependentRestartFails(t *testing.T) {
	p := loadProject(t, dependentsProject)
	w, f, _ := dependentsWorld(t)
	w.health, w.failing = "unhealthy", time.Now().Add(-time.Minute)
	start := f.StartContainerFn
	f.StartContainerFn = func(ctx context.Context, id string) error {
		if id == "c4" {
			return errors.New("port is already allocated")
		}
		return start(ctx, id)
	}
	runGuard(t, w, f, p)
	assert.Check(t, is.Equal(w.nextAlert(t).Action, ActionRestarted))
	var failed []string
	for range 4 {
		a := w.nextAlert(t)
		if a.Action == ActionDependentFailed {
			failed = append(failed, a.Container)
			assert.Check(t, is.Contains(a.Reason, "restart as a dependent failed: port is already allocated; it declares depends_on.restart on the service of demo-web-r1-1"))
			assert.Check(t, is.Equal(a.Dependency, DependentRestart))
		} else {
			assert.Check(t, is.Equal(a.Action, ActionRestartedDependent), "%+v", a)
		}
	}
	assert.Check(t, is.DeepEqual(failed, []string{"demo-worker-r1-1"}))
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1", "start c1", "stop c2", "start c2", "stop c4", "stop c5", "start c5", "stop c6", "start c6"}))
}
