package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

const swarmBlueGreenYAML = `name: shop
services:
  web:
    image: shop/web:2
    ports: ["8080:8080"]
    deploy: {replicas: 2}
    x-lifecycle: {strategy: blue-green}
  worker: {image: shop/worker:1}
`

// TestPlanSwarmBlueGreenObserves reads which revision the router serves from its config
// (get-config in its task's container on this node) and plans the next revision.
func TestPlanSwarmBlueGreenObserves(t *testing.T) {
	p := loadProject(t, swarmBlueGreenYAML)
	desired, err := compose.SwarmRevisionService(p, "web", nil, 0)
	assert.NilError(t, err)
	cfg, _, err := swarmRouterConfig(p, nil)
	assert.NilError(t, err)
	cfg.Routes[0].Backends = []router.Backend{{ID: "shop_web-r2", Address: "shop_web-r2:8080", Weight: 1, Group: "r2"}}
	config, _ := json.Marshal(cfg)
	var execs [][]string
	eng := &engine.Fake{
		ArchFn: func(context.Context) (string, error) { return "amd64", nil },
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.Equal(t, labels["com.docker.swarm.service.name"], "shop_lifecycle-router")
			return []engine.Container{{ID: "router-task", State: "running"}}, nil
		},
		ExecFn: func(_ context.Context, id string, cmd []string, _ []byte) ([]byte, error) {
			assert.Equal(t, id, "router-task")
			execs = append(execs, cmd)
			return config, nil
		},
	}
	rev := func(n int, image string) engine.Service {
		spec := compose.WithRevision(desired, "shop", "web", n)
		cs := *spec.TaskTemplate.ContainerSpec
		cs.Image = image
		spec.TaskTemplate.ContainerSpec = &cs
		spec.Labels[compose.LabelSwarmSpec] = "old"
		return engine.Service{ID: "w" + strings.Repeat("x", n), Name: spec.Name, Labels: spec.Labels, Spec: spec}
	}
	services := []engine.Service{
		{ID: "r", Name: "shop_lifecycle-router", Labels: map[string]string{compose.LabelSwarmSpec: "stale"}},
		rev(2, "shop/web:1"), rev(1, "shop/web:0"),
	}
	node := engine.SwarmInfo{NodeID: "n1", NodeName: "mgr", Nodes: 1}
	steps, upToDate, state, err := planSwarmBlueGreen(context.Background(), eng, p, node, services, map[string]swarm.ServiceSpec{"web": desired}, []string{"worker"})
	assert.NilError(t, err)
	assert.Equal(t, len(upToDate), 0)
	assert.Equal(t, state.router, "router-task")
	assert.DeepEqual(t, execs, [][]string{ctlGetConfig})
	var text []string
	for _, s := range steps {
		text = append(text, s.Action+" "+s.Name+": "+s.Cause)
	}
	assert.DeepEqual(t, text, []string{
		"update-router shop_lifecycle-router: its ports, networks, node or agent changed (publishes 8080/tcp): Swarm replaces its task, open connections drop",
		"create-service shop_web-r3: blue-green web, revision 3: 2 replicas of shop/web:2 (was shop/web:1)",
		"switch-traffic shop_lifecycle-router: web: revision 2 → revision 3, once its tasks run (healthy)",
		"remove-service shop_web-r2: revision 2, old colour of web: removed once drained",
		"remove-service shop_web-r1: revision 1, not routed: left by an interrupted deploy",
	})
	assert.Assert(t, slices.ContainsFunc(steps, func(s strategies.SwarmStep) bool {
		return s.Spec.Name == "shop_web-r3" && s.Spec.Labels[compose.LabelSwarmRevision] == "3"
	}))

	// A strategy changed between rolling and blue-green is refused, naming both ways.
	services = append(services, engine.Service{ID: "plain", Name: "shop_web"}, rev(1, "shop/worker:0"))
	services[len(services)-1].Labels[compose.LabelSwarmService] = "worker"
	_, _, _, err = planSwarmBlueGreen(context.Background(), eng, p, node, services, map[string]swarm.ServiceSpec{"web": desired}, []string{"worker"})
	assert.ErrorContains(t, err, "nothing deployed: service worker runs as blue-green revisions on Swarm")
	assert.ErrorContains(t, err, "service web runs as the Swarm service shop_web (rolling) and is now blue-green")
}

// swarmCanaryYAML is swarmBlueGreenYAML as a canary of the given steps, no error allowed.
func swarmCanaryYAML(steps string) string {
	return strings.Replace(swarmBlueGreenYAML, "x-lifecycle: {strategy: blue-green}",
		"x-lifecycle: {strategy: canary, canary: {steps: ["+steps+"], analysis: {max-error-rate: 0.1}}}", 1)
}

// swarmCanaryManager fakes the manager of a Swarm canary: revision 2 of web serves,
// revision 3 is the canary; the router answers stats (the given snapshots in turn, the
// last one again) and put-config (recorded, and announced on pushed); its volumes
// behave as the engine's (the project lock and the canary's signals live there).
type swarmCanaryManager struct {
	*engine.Fake
	mu      sync.Mutex
	configs []router.Config
	removed []string
	volumes map[string]engine.Volume
	pushed  chan struct{}
}

func newSwarmCanaryManager(t *testing.T, stats ...[]byte) *swarmCanaryManager {
	m := &swarmCanaryManager{volumes: map[string]engine.Volume{}, pushed: make(chan struct{}, 16)}
	m.Fake = &engine.Fake{
		ExecFn: func(_ context.Context, _ string, cmd []string, stdin []byte) ([]byte, error) {
			switch cmd[len(cmd)-1] {
			case "stats":
				m.mu.Lock()
				defer m.mu.Unlock()
				out := stats[0]
				if len(stats) > 1 {
					stats = stats[1:]
				}
				return out, nil
			case "put-config":
				cfg, err := router.DecodeConfig(stdin)
				assert.Check(t, err)
				m.mu.Lock()
				m.configs = append(m.configs, cfg)
				m.mu.Unlock()
				m.pushed <- struct{}{}
				return nil, nil
			}
			return nil, fmt.Errorf("unexpected %v", cmd)
		},
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			return []engine.Service{{ID: "w3", Name: "shop_web-r3"}, {ID: "w2", Name: "shop_web-r2"}}, nil
		},
		RemoveServiceFn: func(_ context.Context, id string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			m.removed = append(m.removed, id)
			return nil
		},
		CreateVolumeFn: func(_ context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if v, ok := m.volumes[spec.Name]; ok {
				return v, nil
			}
			m.volumes[spec.Name] = engine.Volume{Name: spec.Name, Labels: spec.Labels}
			return m.volumes[spec.Name], nil
		},
		InspectVolumeFn: func(_ context.Context, name string) (engine.Volume, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			if v, ok := m.volumes[name]; ok {
				return v, nil
			}
			return engine.Volume{}, fmt.Errorf("volume %s: %w", name, engine.ErrNotFound)
		},
		ListVolumesFn: func(_ context.Context, labels map[string]string) ([]engine.Volume, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			var out []engine.Volume
		volumes:
			for _, v := range m.volumes {
				for k, want := range labels {
					if got, ok := v.Labels[k]; !ok || (want != "" && got != want) {
						continue volumes
					}
				}
				out = append(out, v)
			}
			return out, nil
		},
		RemoveVolumeFn: func(_ context.Context, name string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.volumes[name]; !ok {
				return fmt.Errorf("volume %s: %w", name, engine.ErrNotFound)
			}
			delete(m.volumes, name)
			return nil
		},
	}
	return m
}

// weights lists the backends of each config the router was sent, "id=weight".
func (m *swarmCanaryManager) weights() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]string
	for _, cfg := range m.configs {
		var set []string
		for _, b := range cfg.Routes[0].Backends {
			set = append(set, fmt.Sprintf("%s=%d", b.ID, b.Weight))
		}
		out = append(out, set)
	}
	return out
}

// waitPush waits for the router's next put-config.
func (m *swarmCanaryManager) waitPush(t *testing.T) {
	t.Helper()
	select {
	case <-m.pushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the router was sent no config")
	}
}

// canarySnapshot is the router's stats: revision 2 served 100 requests, the canary
// (revision 3) requests, errors of them 5xx.
func canarySnapshot(requests, errors uint64) []byte {
	since := time.Unix(100, 0)
	b, _ := json.Marshal(router.Snapshot{Routes: []router.RouteStats{{Name: "web:8080", Backends: []router.BackendStats{
		{ID: "shop_web-r2", Group: "r2", Since: since, Counters: router.Counters{Requests: 100}},
		{ID: "shop_web-r3", Group: "r3", Since: since, Counters: router.Counters{Requests: requests, Responses5xx: errors}},
	}}}})
	return b
}

// servingR2 is the runtime's state of a router that sends all of web to revision 2.
func servingR2() swarmBlueGreen {
	return swarmBlueGreen{router: "router-task", routes: map[string][]strategies.RouteBackend{"web": {{Container: "shop_web-r2", Revision: 2, Weight: 1}}}}
}

func canaryStepOf(weight int, pause time.Duration) strategies.SwarmStep {
	return strategies.SwarmStep{Action: strategies.SwarmCanaryStep, Name: "shop_lifecycle-router", Service: "web", Revision: 3, Weight: weight, Pause: pause}
}

// runCanaryStep runs canaryStep against m in the background.
func runCanaryStep(p *compose.Project, m *swarmCanaryManager, step strategies.SwarmStep) <-chan error {
	state := servingR2()
	client := newRouterClient(m, state.router)
	push := func() error { _, err := pushWith(context.Background(), p, client, state.routes); return err }
	done := make(chan error, 1)
	go func() { done <- canaryStep(context.Background(), m, p, step, client, state, push, progress.Nop) }()
	return done
}

// holdLock takes the project's lock as the running deploy does: the signals need it.
func holdLock(t *testing.T, m *swarmCanaryManager) {
	t.Helper()
	_, err := lock.Acquire(context.Background(), m, "shop", "docker lifecycle deploy", nil)
	assert.NilError(t, err)
}

// TestSwarmCanaryStepFails: a canary window with errors over max-error-rate sends all
// traffic back to the revision that served, removes the canary's service and is a
// *RolledBackError naming the analysis.
func TestSwarmCanaryStepFails(t *testing.T) {
	p := loadProject(t, swarmCanaryYAML("{weight: 20, pause: 1ms}"))
	m := newSwarmCanaryManager(t, canarySnapshot(0, 0), canarySnapshot(20, 5))
	err := <-runCanaryStep(p, m, canaryStepOf(20, time.Millisecond))
	var rolledBack *RolledBackError
	assert.Assert(t, errors.As(err, &rolledBack), "%v", err)
	assert.ErrorIs(t, err, ErrAnalysisFailed)
	assert.ErrorContains(t, err, "error rate 25.00% above max-error-rate 10.00%")
	assert.DeepEqual(t, m.weights(), [][]string{{"shop_web-r2=80", "shop_web-r3=20"}, {"shop_web-r2=1"}})
	assert.DeepEqual(t, m.removed, []string{"w3"})
}

// TestSwarmCanaryAbort: `docker lifecycle abort` during a step of a minute ends it at
// once as a failed analysis does (exit 3): all traffic back to revision 2, the canary's
// service removed; a second abort finds no canary once the deploy released the lock.
func TestSwarmCanaryAbort(t *testing.T) {
	p := loadProject(t, swarmCanaryYAML("{weight: 20, pause: 1m}"))
	m := newSwarmCanaryManager(t, canarySnapshot(0, 0))
	holdLock(t, m)
	started := time.Now()
	done := runCanaryStep(p, m, canaryStepOf(20, time.Minute))
	m.waitPush(t)
	assert.NilError(t, SendCanarySignal(context.Background(), m, p, "web", SignalAbort))
	err := <-done
	assert.Assert(t, time.Since(started) < 5*time.Second, "abort did not end the step: %s", time.Since(started))
	var rolledBack *RolledBackError
	assert.Assert(t, errors.As(err, &rolledBack), "%v", err)
	assert.ErrorIs(t, err, ErrCanaryAborted)
	assert.ErrorContains(t, err, "canary aborted by `docker lifecycle abort web`")
	assert.DeepEqual(t, m.weights(), [][]string{{"shop_web-r2=80", "shop_web-r3=20"}, {"shop_web-r2=1"}})
	assert.DeepEqual(t, m.removed, []string{"w3"})
}

// TestSwarmCanaryPauseResume: a paused step does not end while paused (the paused time
// does not count), resume lets it run out what was left, then it is judged as usual on
// the whole window; resume of a step not paused is an error.
func TestSwarmCanaryPauseResume(t *testing.T) {
	p := loadProject(t, swarmCanaryYAML("{weight: 20, pause: 600ms}"))
	m := newSwarmCanaryManager(t, canarySnapshot(0, 0), canarySnapshot(30, 0))
	holdLock(t, m)
	assert.ErrorContains(t, SendCanarySignal(context.Background(), m, p, "web", SignalResume), "the canary of service \"web\" is not paused")
	started := time.Now()
	done := runCanaryStep(p, m, canaryStepOf(20, 600*time.Millisecond))
	m.waitPush(t)
	assert.NilError(t, SendCanarySignal(context.Background(), m, p, "web", SignalPause))
	select {
	case err := <-done:
		t.Fatalf("the paused step ended after %s: %v", time.Since(started), err)
	case <-time.After(1500 * time.Millisecond):
	}
	resumed := time.Now()
	assert.NilError(t, SendCanarySignal(context.Background(), m, p, "web", SignalResume))
	assert.NilError(t, <-done)
	assert.Assert(t, time.Since(resumed) < 1500*time.Millisecond, "resume did not let the step go on: %s", time.Since(resumed))
	assert.DeepEqual(t, m.weights(), [][]string{{"shop_web-r2=80", "shop_web-r3=20"}})
	assert.Equal(t, len(m.removed), 0)
}

// TestSwarmCanaryPromote: `docker lifecycle promote` during the first of two steps of a
// minute ends it unjudged, skips the second (its weight is never sent) and the deploy
// switches all traffic to the new revision and removes the old one.
func TestSwarmCanaryPromote(t *testing.T) {
	p := loadProject(t, swarmCanaryYAML("{weight: 20, pause: 1m}, {weight: 50, pause: 1m}"))
	// The canary's answers all fail: judged, the step would fail.
	m := newSwarmCanaryManager(t, canarySnapshot(0, 0), canarySnapshot(20, 20))
	holdLock(t, m)
	plan := strategies.SwarmPlan{Steps: []strategies.SwarmStep{
		canaryStepOf(20, time.Minute), canaryStepOf(50, time.Minute),
		{Action: strategies.SwarmSwitch, Name: "shop_lifecycle-router", Service: "web", Revision: 3},
		{Action: strategies.SwarmRemoveService, Name: "shop_web-r2", Service: "web", Revision: 2, ID: "w2"},
	}}
	started := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- executeBlueGreen(context.Background(), m, p, plan, nil, servingR2(), engine.SwarmInfo{NodeName: "mgr"}, 0, progress.Nop)
	}()
	m.waitPush(t)
	assert.NilError(t, SendCanarySignal(context.Background(), m, p, "web", SignalPromote))
	assert.NilError(t, <-done)
	assert.Assert(t, time.Since(started) < 5*time.Second, "promote did not end the steps: %s", time.Since(started))
	assert.DeepEqual(t, m.weights(), [][]string{{"shop_web-r2=80", "shop_web-r3=20"}, {"shop_web-r3=1"}})
	assert.DeepEqual(t, m.removed, []string{"w2"})
}
