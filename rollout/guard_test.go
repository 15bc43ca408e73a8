package rollout

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// guardWorld is a fake engine with one app container whose health the test sets, and
// event streams the test feeds and ends.
type guardWorld struct {
	mu       sync.Mutex
	health   string
	failing  time.Time
	calls    []string
	streams  chan chan engine.Event // each subscription's channel, for the test
	lock     map[string]string      // the lock volume's labels, nil: not held
	alerts   chan GuardAlert
	watching chan int
}

func newGuardWorld() (*guardWorld, *engine.Fake) {
	w := &guardWorld{streams: make(chan chan engine.Event, 4), alerts: make(chan GuardAlert, 16), watching: make(chan int, 16)}
	labels := map[string]string{compose.LabelProject: "demo", compose.LabelService: "web", compose.LabelRole: compose.RoleApp,
		compose.LabelManagedBy: compose.ManagedByValue, compose.LabelRevision: "1", compose.LabelConfigHash: "h1"}
	f := &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
			if l[compose.LabelRole] == compose.RoleRouter {
				return nil, nil // no router
			}
			return []engine.Container{{ID: "c1", Name: "demo-web-r1-1", State: "running", Labels: labels}}, nil
		},
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return engine.ContainerDetails{
				ID: id, Name: "demo-web-r1-1", State: "running", Health: w.health, HealthFailingSince: w.failing, Labels: labels,
				Config:     &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/testapp", "healthcheck"}, Interval: 100 * time.Millisecond, Retries: 2}},
				HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}},
			}, nil
		},
		CreateVolumeFn: func(ctx context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.lock == nil {
				w.lock = spec.Labels
			}
			return engine.Volume{Name: spec.Name, Labels: w.lock}, nil
		},
		InspectVolumeFn: func(ctx context.Context, name string) (engine.Volume, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.lock == nil {
				return engine.Volume{}, engine.ErrNotFound
			}
			return engine.Volume{Name: name, Labels: w.lock}, nil
		},
		RemoveVolumeFn: func(ctx context.Context, name string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.lock = nil
			return nil
		},
		StopContainerFn: func(ctx context.Context, id, signal string, timeout *time.Duration) error {
			w.record("stop " + id)
			return nil
		},
		StartContainerFn: func(ctx context.Context, id string) error {
			w.mu.Lock()
			w.health, w.failing = "starting", time.Time{}
			w.mu.Unlock()
			w.record("start " + id)
			return nil
		},
		EventsFn: func(ctx context.Context, labels map[string]string, actions []string) (<-chan engine.Event, <-chan error) {
			ch, errs := make(chan engine.Event), make(chan error, 1)
			out := make(chan engine.Event)
			w.streams <- ch
			go func() {
				defer close(out)
				for {
					select {
					case e, ok := <-ch:
						if !ok {
							errs <- context.Canceled
							return
						}
						out <- e
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
				}
			}()
			return out, errs
		},
	}
	return w, f
}

func (w *guardWorld) record(call string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, call)
}

func (w *guardWorld) restarts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func (w *guardWorld) nextAlert(t *testing.T) GuardAlert {
	t.Helper()
	select {
	case a := <-w.alerts:
		return a
	case <-time.After(5 * time.Second):
		t.Fatal("no alert within 5s")
	}
	return GuardAlert{}
}

func (w *guardWorld) noAlert(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case a := <-w.alerts:
		t.Fatalf("unexpected alert: %+v", a)
	case <-time.After(within):
	}
}

// TestGuardLoop drives the runtime loop on a fake engine: an unhealthy container found
// at start is restarted once; the health probes' execs are not alerts, a shell is;
// an OOM names the limit; after the stream breaks the guard re-lists and does not
// restart the container again.
func TestGuardLoop(t *testing.T) {
	p := loadProject(t, `
name: demo
x-lifecycle:
  guard: {backoff: {start: 1h}, window: 2h}
services:
  web:
    image: app
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 100ms, retries: 2}
`)
	w, f := newGuardWorld()
	failing := time.Now().Add(-time.Minute)
	w.health, w.failing = "unhealthy", failing
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{Alert: func(a GuardAlert) { w.alerts <- a }, Watching: func(n int) { w.watching <- n }})
	}()
	t.Cleanup(func() {
		cancel()
		assert.Check(t, <-done)
	})
	stream := <-w.streams
	assert.Check(t, is.Equal(<-w.watching, 1))

	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertUnhealthy))
	assert.Check(t, is.Equal(a.Action, ActionRestarted))
	assert.Check(t, is.Equal(a.Project, "demo"))
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, is.Equal(a.Container, "demo-web-r1-1"))
	assert.Check(t, is.Equal(a.Restarts, 1))
	assert.Check(t, is.Equal(a.Budget, 3))
	assert.Check(t, a.FailingSince != nil && a.FailingSince.Equal(failing))
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1", "start c1"}))

	attrs := map[string]string{"name": "demo-web-r1-1", compose.LabelService: "web", compose.LabelRole: compose.RoleApp}
	stream <- engine.Event{Action: engine.EventExecStart, Detail: "/testapp healthcheck", ContainerID: "c1", Name: "demo-web-r1-1", Attributes: attrs}
	stream <- engine.Event{Action: engine.EventExecStart, Detail: "sh -c id", ContainerID: "c1", Name: "demo-web-r1-1", Attributes: attrs}
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertExec))
	assert.Check(t, is.Equal(a.Command, "sh -c id"))
	assert.Check(t, is.Contains(a.Reason, "docker exec: sh -c id"))

	stream <- engine.Event{Action: engine.EventOOM, ContainerID: "c1", Name: "demo-web-r1-1", Attributes: attrs}
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertOOM))
	assert.Check(t, a.MemoryLimit != nil && *a.MemoryLimit == 64<<20)
	assert.Check(t, is.Contains(a.Reason, "memory limit 67108864 bytes"))

	// Unhealthy again: the 1h backoff holds the next restart.
	w.mu.Lock()
	w.health, w.failing = "unhealthy", time.Now()
	w.mu.Unlock()
	stream <- engine.Event{Action: engine.EventHealthStatus, Detail: "unhealthy", ContainerID: "c1", Name: "demo-web-r1-1", Attributes: attrs}
	w.noAlert(t, 300*time.Millisecond)

	// The stream breaks: the guard re-lists, says so, and does not restart again.
	close(stream)
	<-w.streams
	assert.Check(t, is.Equal(<-w.watching, 1))
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertGuard))
	assert.Check(t, is.Contains(a.Reason, "reconnecting in"))
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionReconnected))
	w.noAlert(t, 300*time.Millisecond)
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1", "start c1"}))
}

// TestGuardRestartedGuardDoesNotDoubleRestart: a new guard finds the container its
// predecessor just restarted (health: starting) and leaves it alone.
func TestGuardRestartedGuardDoesNotDoubleRestart(t *testing.T) {
	p := loadProject(t, "name: demo\nservices:\n  web:\n    image: app\n")
	w, f := newGuardWorld()
	w.health = "starting"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{Alert: func(a GuardAlert) { w.alerts <- a }})
	}()
	<-w.streams
	w.noAlert(t, 300*time.Millisecond)
	cancel()
	assert.Check(t, <-done)
	assert.Check(t, is.Len(w.restarts(), 0))
}

// TestGuardOwnExecs: the engine's health probes (exec and shell form), the agent's
// control commands and the service's compose hooks are not reported; anything else is.
func TestGuardOwnExecs(t *testing.T) {
	p := loadProject(t, `
name: demo
services:
  web:
    image: app
    post_start: [{command: ["/bin/warm", "cache"]}]
    pre_stop: [{command: ["/bin/flush"]}]
`)
	g := &guard{project: encodedTarget(t, p), eng: &engine.Fake{}}
	app := map[string]string{compose.LabelService: "web", compose.LabelRole: compose.RoleApp}
	router := map[string]string{compose.LabelService: "web", compose.LabelRole: compose.RoleRouter}
	shell := engine.ContainerDetails{Config: &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -fs localhost"}}}}
	w := &watchedContainer{healthcheck: healthcheckCommand(shell)}
	assert.Check(t, is.Equal(w.healthcheck, "/bin/sh -c curl -fs localhost"))
	for _, tc := range []struct {
		cmd   string
		attrs map[string]string
		own   bool
	}{
		{"/bin/sh -c curl -fs localhost", app, true},
		{"/bin/warm cache", app, true},
		{"/bin/flush", app, true},
		{"/agent ctl get-config", router, true},
		{"/agent ctl get-config", app, false}, // an app container has no agent of ours
		{"sh", app, false},
		{"/bin/sh -c curl -fs localhost; id", app, false},
	} {
		got := g.ownExec(context.Background(), engine.Event{Action: engine.EventExecStart, Detail: tc.cmd, Attributes: tc.attrs}, w)
		assert.Check(t, is.Equal(got, tc.own), "%q in %s", tc.cmd, tc.attrs[compose.LabelRole])
	}
	assert.Check(t, is.Equal(healthcheckCommand(engine.ContainerDetails{Config: &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}}), ""))
}

// TestGuardWaitsForADeploysLock: while another process (a deploy) holds the project
// lock, the restart is postponed (said once) and made once the lock is free.
func TestGuardWaitsForADeploysLock(t *testing.T) {
	p := loadProject(t, "name: demo\nservices:\n  web:\n    image: app\n")
	w, f := newGuardWorld()
	w.health, w.failing = "unhealthy", time.Now().Add(-time.Minute)
	w.lock = map[string]string{"io.lifecycle.lock.token": "someone-else", "io.lifecycle.lock.command": "deploy", "io.lifecycle.lock.host": "elsewhere"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{Alert: func(a GuardAlert) { w.alerts <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		assert.Check(t, <-done)
	})
	<-w.streams
	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionPostponed))
	assert.Check(t, is.Contains(a.Reason, "locked"), a.Reason)
	w.noAlert(t, 2500*time.Millisecond) // tried again, still locked: not said twice
	assert.Check(t, is.Len(w.restarts(), 0))

	w.mu.Lock()
	w.lock = nil
	w.mu.Unlock()
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRestarted))
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1", "start c1"}))
	w.mu.Lock()
	assert.Check(t, w.lock == nil, "the lock is released")
	w.mu.Unlock()
}

// TestGuardStopsAfterTheRestartInFlight: a guard stopped during a restart finishes it
// (a container is not left stopped) and then returns.
func TestGuardStopsAfterTheRestartInFlight(t *testing.T) {
	p := loadProject(t, "name: demo\nservices:\n  web:\n    image: app\n")
	w, f := newGuardWorld()
	w.health, w.failing = "unhealthy", time.Now().Add(-time.Minute)
	stopping, release := make(chan struct{}), make(chan struct{})
	stop := f.StopContainerFn
	f.StopContainerFn = func(ctx context.Context, id, signal string, timeout *time.Duration) error {
		close(stopping)
		<-release
		return stop(ctx, id, signal, timeout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{}) }()
	<-stopping
	cancel()
	select {
	case <-done:
		t.Fatal("the guard returned with a restart in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		assert.Check(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the guard did not return after the restart")
	}
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c1", "start c1"}))
}

// encodedTarget is p's guard target after the JSON trip the detached guard's takes, so
// the loop tests also prove that nothing the guard needs is lost on the way.
func encodedTarget(t *testing.T, p *compose.Project) GuardTarget {
	t.Helper()
	target, err := DecodeGuardTarget([]byte(NewGuardTarget(p).Encode()))
	assert.NilError(t, err)
	return target
}
