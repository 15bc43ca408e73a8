package rollout

import (
	"context"
	"errors"
	"slices"
	"sort"
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
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// routedCompose is a 2-replica service behind the router, with extra lines under deploy.
func routedCompose(image, extra string) string {
	return `
name: demo
services:
  web:
    image: ` + image + `
    ports: ["8080:80"]
    deploy:
      replicas: 2
` + extra
}

// backendSets lists, for each config put, the backends of route name as "id/weight".
func backendSets(puts []router.Config, name string) [][]string {
	var out [][]string
	for _, cfg := range puts {
		for _, r := range cfg.Routes {
			if r.Name != name {
				continue
			}
			set := []string{}
			for _, b := range r.Backends {
				set = append(set, b.ID+"/"+strconv.Itoa(b.Weight))
			}
			out = append(out, set)
		}
	}
	return out
}

// state is each container of the world as "name:state", sorted.
func (w *world) state() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, c := range w.containers {
		out = append(out, c.Name+":"+c.State)
	}
	sort.Strings(out)
	return out
}

func TestRoutedFirstDeployCreatesTheRouter(t *testing.T) {
	w := newWorld()
	p := loadProject(t, routedCompose("app:1", ""))
	assert.Equal(t, p.ServiceSpecs["web"].Strategy, compose.StrategyRolling)
	plan, err := deploy(t, w, p, DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, hasAction(plan.Steps, strategies.EnsureRouter))

	// The router owns the published port; the replicas carry their revision and no port.
	w.mu.Lock()
	var routerHC, replicaPorts int
	for _, c := range w.containers {
		switch {
		case c.Labels[compose.LabelRole] == compose.RoleRouter:
			routerHC = len(c.HostConfig.PortBindings)
			assert.Check(t, is.Equal(c.Name, "demo-lifecycle-router"))
		default:
			replicaPorts += len(c.HostConfig.PortBindings)
			assert.Check(t, is.Equal(c.Labels[compose.LabelStrategy], compose.StrategyRolling))
		}
	}
	w.mu.Unlock()
	assert.Check(t, is.Equal(routerHC, 1), "the router publishes 8080")
	assert.Check(t, is.Equal(replicaPorts, 0), "replicas publish nothing")
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-lifecycle-router:running", "demo-web-r1-1:running", "demo-web-r1-2:running"}))

	// The router starts with no backend (nothing served yet), then gets both replicas
	// once they passed their gates.
	assert.Check(t, is.DeepEqual(backendSets(w.puts, "web:8080"), [][]string{
		{},
		{"demo-web-r1-1/1", "demo-web-r1-2/1"},
	}))
	last := w.puts[len(w.puts)-1].Routes[0]
	assert.Check(t, is.Equal(last.Listen, ":8080"))
	assert.Check(t, is.Equal(last.Backends[0].Address, "demo-web-r1-1:80"))
	assert.Check(t, is.Equal(last.Backends[0].Group, "r1"))
	assert.Check(t, w.index("create demo-lifecycle-router") < w.index("create demo-web-r1-1"))

	// Converged: the routes are read back from the router, and nothing is planned.
	plan, err = deploy(t, w, p, DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, plan.Empty(), "steps: %v", plan.Steps)
}

func hasAction(steps []strategies.Step, a strategies.Action) bool {
	return slices.ContainsFunc(steps, func(s strategies.Step) bool { return s.Action == a })
}

// A rolling v1→v2 of 2 replicas, one at a time, start-first: each new container is
// routed before an old one leaves, so a backend always serves.
func TestRollingUpdateBehindTheRouter(t *testing.T) {
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", "")), DeployOptions{})
	assert.NilError(t, err)
	putsBefore := len(w.puts)
	w.calls = nil

	plan, err := deploy(t, w, loadProject(t, routedCompose("app:2", "")), DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, !hasAction(plan.Steps, strategies.EnsureRouter), "the router stays")

	assert.Check(t, is.DeepEqual(backendSets(w.puts[putsBefore:], "web:8080"), [][]string{
		{"demo-web-r1-2/1", "demo-web-r2-1/1"},
		{"demo-web-r2-1/1", "demo-web-r2-2/1"},
	}))
	// start-first: the new container is up and routed before the old one stops
	assert.Check(t, w.index("start demo-web-r2-1") < w.index("put-config web:8080=demo-web-r1-2/1,demo-web-r2-1/1"))
	assert.Check(t, w.index("put-config web:8080=demo-web-r1-2/1,demo-web-r2-1/1") < w.index("stop demo-web-r1-1"))
	// Later batches' containers are created up front; they start only after the
	// previous batch's old container stopped.
	assert.Check(t, w.index("stop demo-web-r1-1") < w.index("start demo-web-r2-2"))
	assert.Check(t, w.index("put-config web:8080=demo-web-r2-1/1,demo-web-r2-2/1") < w.index("stop demo-web-r1-2"))
	// The old revision is kept, stopped, for rollback.
	assert.Check(t, is.DeepEqual(w.state(), []string{
		"demo-lifecycle-router:running",
		"demo-web-r1-1:exited", "demo-web-r1-2:exited",
		"demo-web-r2-1:running", "demo-web-r2-2:running",
	}))
	records, err := History(context.Background(), w.fake(), "demo")
	assert.NilError(t, err)
	var got []string
	for _, r := range records {
		got = append(got, r.Service+"/"+strconv.Itoa(r.Revision)+"/"+r.Result+"/"+r.Image)
	}
	assert.Check(t, is.DeepEqual(got, []string{"web/1/deployed/app:1", "web/2/deployed/app:2"}))
}

// A new container that fails its health gate rolls the service back automatically: the
// old containers the run stopped start again, the router serves them alone, and the new
// containers are removed.
func TestFailedRollingUpdateRollsBack(t *testing.T) {
	tests := []struct {
		name string
		// extra compose lines for services.web
		extra string
		// unhealthy is the new container that fails
		unhealthy string
		// stoppedBeforeFailure: the old containers the run had stopped when it failed
		stoppedBeforeFailure []string
	}{
		{
			name:                 "start-first: the second batch fails",
			unhealthy:            "demo-web-r2-2",
			stoppedBeforeFailure: []string{"demo-web-r1-1"},
		},
		{
			name:                 "stop-first: the first new container fails",
			extra:                "      update_config: {order: stop-first}\n",
			unhealthy:            "demo-web-r2-1",
			stoppedBeforeFailure: []string{"demo-web-r1-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			_, err := deploy(t, w, loadProject(t, routedCompose("app:1", tc.extra)), DeployOptions{})
			assert.NilError(t, err)
			putsBefore := len(w.puts)
			w.calls = nil
			w.health = func(name string) engine.ContainerDetails {
				if name == tc.unhealthy {
					return engine.ContainerDetails{State: "running", Health: "unhealthy", HealthLog: []string{"exit 1: 503"}}
				}
				return engine.ContainerDetails{State: "running"}
			}

			_, err = deploy(t, w, loadProject(t, routedCompose("app:2", tc.extra)), DeployOptions{})
			assert.Assert(t, err != nil)
			t.Log(err)
			assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
			assert.Check(t, errors.Is(err, ErrUnhealthy), "the cause is kept")
			assert.Check(t, errors.Is(err, ErrDeployFailed))
			var rb *RolledBackError
			assert.Assert(t, errors.As(err, &rb))
			assert.Check(t, is.DeepEqual(rb.Services, []string{"web"}))
			assert.Check(t, is.ErrorContains(err, tc.unhealthy))

			// The old containers the run stopped were started again.
			for _, name := range tc.stoppedBeforeFailure {
				stop, restart := w.index("stop "+name), lastIndex(w.calls, "start "+name)
				assert.Check(t, stop >= 0 && restart > stop, "%s: stop at %d, start again at %d: %v", name, stop, restart, w.calls)
			}
			// The router's last config routes only to the old containers.
			sets := backendSets(w.puts[putsBefore:], "web:8080")
			assert.Assert(t, len(sets) > 0)
			assert.Check(t, is.DeepEqual(sets[len(sets)-1], []string{"demo-web-r1-1/1", "demo-web-r1-2/1"}), "puts: %v", sets)
			// The new containers are gone (the healthy one too: the revision failed), the
			// old ones run, the router stays.
			assert.Check(t, is.DeepEqual(w.state(), []string{
				"demo-lifecycle-router:running", "demo-web-r1-1:running", "demo-web-r1-2:running",
			}))
			assert.Check(t, w.index("remove "+tc.unhealthy) >= 0)

			records, err := History(context.Background(), w.fake(), "demo")
			assert.NilError(t, err)
			assert.Assert(t, is.Len(records, 2))
			assert.Check(t, is.Equal(records[1].Revision, 2))
			assert.Check(t, is.Equal(records[1].Result, ResultRolledBack))
			assert.Check(t, is.Contains(records[1].Reason, "container failed its health gate"))

			// The next deploy of v1 has nothing to do: v1 serves again.
			w.health = func(string) engine.ContainerDetails { return engine.ContainerDetails{State: "running"} }
			plan, err := deploy(t, w, loadProject(t, routedCompose("app:1", tc.extra)), DeployOptions{})
			assert.NilError(t, err)
			assert.Check(t, plan.Empty(), "steps: %v", plan.Steps)
		})
	}
}

// A stop whose answer is an error may still have stopped the container (a stop cut
// short by the deploy's end, an engine timeout): the rollback starts it again.
func TestRollbackRestartsAContainerWhoseStopFailed(t *testing.T) {
	const extra = "      update_config: {order: stop-first}\n"
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
	assert.NilError(t, err)
	w.calls = nil
	w.stopErr = func(name string) error {
		if name == "demo-web-r1-1" {
			return errors.New("stop demo-web-r1-1: the engine did not answer in time")
		}
		return nil
	}
	_, err = deploy(t, w, loadProject(t, routedCompose("app:2", extra)), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
	assert.Check(t, is.ErrorContains(err, "the engine did not answer in time"))
	stop, restart := w.index("stop demo-web-r1-1"), lastIndex(w.calls, "start demo-web-r1-1")
	assert.Check(t, stop >= 0 && restart > stop, "stop at %d, start again at %d: %v", stop, restart, w.calls)
	assert.Check(t, is.DeepEqual(w.state(), []string{
		"demo-lifecycle-router:running", "demo-web-r1-1:running", "demo-web-r1-2:running",
	}))
}

func lastIndex(calls []string, call string) int {
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i] == call {
			return i
		}
	}
	return -1
}

// failure_action other than rollback leaves the service as the failure left it.
func TestFailedRollingUpdateWithoutRollback(t *testing.T) {
	const extra = "      update_config: {failure_action: pause}\n"
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
	assert.NilError(t, err)
	w.health = func(name string) engine.ContainerDetails {
		if name == "demo-web-r2-2" {
			return engine.ContainerDetails{State: "running", Health: "unhealthy"}
		}
		return engine.ContainerDetails{State: "running"}
	}
	_, err = deploy(t, w, loadProject(t, routedCompose("app:2", extra)), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrDeployFailed))
	assert.Check(t, !errors.Is(err, ErrRolledBack), "got %v", err)
	records, err := History(context.Background(), w.fake(), "demo")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(records, 2))
	assert.Check(t, is.Equal(records[1].Result, ResultFailed))
}

// A first deploy has no previous revision: a failure is a plain failure.
func TestFailedFirstRoutedDeployIsNotRolledBack(t *testing.T) {
	w := newWorld()
	w.health = func(name string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "unhealthy"}
	}
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", "")), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrDeployFailed))
	assert.Check(t, !errors.Is(err, ErrRolledBack), "got %v", err)
	for _, c := range w.state() {
		assert.Check(t, !strings.HasPrefix(c, "demo-web-"), "left behind: %s", c)
	}
}

// When one service rolls back, another service that finished its rollout in the same
// run keeps its new containers, even when its name starts with the first one's.
func TestRollbackLeavesOtherServicesAlone(t *testing.T) {
	c := func(tag string) string {
		return `
name: demo
services:
  web-api:
    image: api:` + tag + `
    ports: ["8081:80"]
  web:
    image: web:` + tag + `
    ports: ["8080:80"]
    depends_on: [web-api]
`
	}
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, c("1")), DeployOptions{})
	assert.NilError(t, err)
	// web's new container fails only once web-api's rollout had time to finish (web
	// waits for web-api's start alone, so without the pause the two race).
	var (
		mu        sync.Mutex // the deploy inspects a new container from two goroutines
		firstLook time.Time
	)
	w.health = func(name string) engine.ContainerDetails {
		if name == "demo-web-r2-1" {
			mu.Lock()
			defer mu.Unlock()
			if firstLook.IsZero() {
				firstLook = time.Now()
			}
			if time.Since(firstLook) < 500*time.Millisecond {
				return engine.ContainerDetails{State: "running", Health: "starting"}
			}
			return engine.ContainerDetails{State: "running", Health: "unhealthy"}
		}
		return engine.ContainerDetails{State: "running"}
	}
	_, err = deploy(t, w, loadProject(t, c("2")), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
	assert.Check(t, is.DeepEqual(w.state(), []string{
		"demo-lifecycle-router:running",
		"demo-web-api-r1-1:exited", "demo-web-api-r2-1:running",
		"demo-web-r1-1:running",
	}))
	sets := backendSets(w.puts, "web-api:8081")
	assert.Check(t, is.DeepEqual(sets[len(sets)-1], []string{"demo-web-api-r2-1/1"}))
}

// update_config.monitor keeps watching a new container after its gate: one that dies
// within the window fails the batch, and the service rolls back.
func TestMonitorWindowFailureRollsBack(t *testing.T) {
	const extra = "      update_config: {monitor: 2s}\n"
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
	assert.NilError(t, err)
	var mu sync.Mutex
	inspections := 0
	w.health = func(name string) engine.ContainerDetails {
		if name != "demo-web-r2-1" {
			return engine.ContainerDetails{State: "running"}
		}
		mu.Lock()
		defer mu.Unlock()
		inspections++
		// Running for its gate and for the deploy's policy inspection, which runs on
		// its own goroutine and may come before or after the start.
		if inspections <= 2 {
			return engine.ContainerDetails{State: "running"}
		}
		return engine.ContainerDetails{State: "exited", ExitCode: 2}
	}
	_, err = deploy(t, w, loadProject(t, routedCompose("app:2", extra)), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
	assert.Check(t, errors.Is(err, ErrUnhealthy))
	assert.Check(t, is.ErrorContains(err, "during update_config.monitor: exited with code 2"))
	assert.Check(t, w.index("put-config web:8080=demo-web-r1-2/1,demo-web-r2-1/1") < 0, "never routed to")
	assert.Check(t, is.DeepEqual(w.state(), []string{
		"demo-lifecycle-router:running", "demo-web-r1-1:running", "demo-web-r1-2:running",
	}))
}

// The rollback restarts the containers the run stopped and waits for their gate alone:
// update_config.monitor is for the new revision, and the old one served until this run.
func TestRollbackDoesNotMonitorThePreviousRevision(t *testing.T) {
	const extra = "      update_config: {monitor: 1s}\n"
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
	assert.NilError(t, err)
	var mu sync.Mutex
	inspections := map[string]int{}
	w.health = func(name string) engine.ContainerDetails {
		mu.Lock()
		defer mu.Unlock()
		inspections[name]++
		// After its gate and the deploy's policy inspection (on its own goroutine, before
		// or after the start).
		if name == "demo-web-r2-2" && inspections[name] > 2 {
			return engine.ContainerDetails{State: "exited", ExitCode: 2}
		}
		return engine.ContainerDetails{State: "running", Health: "healthy"}
	}
	_, err = deploy(t, w, loadProject(t, routedCompose("app:2", extra)), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
	assert.Check(t, is.ErrorContains(err, "demo-web-r2-2: container failed its health gate: during update_config.monitor"))
	mu.Lock()
	defer mu.Unlock()
	assert.Check(t, inspections["demo-web-r2-1"] >= 4, "the new revision is monitored: %v", inspections)
	assert.Check(t, is.Equal(inspections["demo-web-r1-1"], 1), "the restarted r1-1 passes its gate at once, unmonitored: %v", inspections)
	assert.Check(t, is.DeepEqual(w.state(), []string{
		"demo-lifecycle-router:running", "demo-web-r1-1:running", "demo-web-r1-2:running",
	}))
}

// update_config.max_failure_ratio: a failed new container within the ratio is removed
// and the old one it was to replace keeps its place; the rollout goes on without error.
func TestToleratedFailureKeepsTheOldContainer(t *testing.T) {
	for _, extra := range []string{
		"      update_config: {max_failure_ratio: 0.5}\n",
		"      update_config: {failure_action: continue}\n",
	} {
		w := newWorld()
		_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
		assert.NilError(t, err)
		w.health = func(name string) engine.ContainerDetails {
			if name == "demo-web-r2-1" {
				return engine.ContainerDetails{State: "exited", ExitCode: 3}
			}
			return engine.ContainerDetails{State: "running"}
		}
		_, err = deploy(t, w, loadProject(t, routedCompose("app:2", extra)), DeployOptions{})
		assert.NilError(t, err, extra)
		assert.Check(t, is.DeepEqual(w.state(), []string{
			"demo-lifecycle-router:running", "demo-web-r1-1:running", "demo-web-r1-2:exited", "demo-web-r2-2:running",
		}), extra)
		sets := backendSets(w.puts, "web:8080")
		assert.Check(t, is.DeepEqual(sets[len(sets)-1], []string{"demo-web-r1-1/1", "demo-web-r2-2/1"}), extra)
	}
	// Beyond the ratio, the failure action applies (rollback by default).
	w := newWorld()
	extra := "      update_config: {max_failure_ratio: 0.4}\n"
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
	assert.NilError(t, err)
	w.health = func(name string) engine.ContainerDetails {
		if name == "demo-web-r2-1" {
			return engine.ContainerDetails{State: "exited", ExitCode: 3}
		}
		return engine.ContainerDetails{State: "running"}
	}
	_, err = deploy(t, w, loadProject(t, routedCompose("app:2", extra)), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
}

// x-lifecycle.active-check reaches the router's route as its active health check.
func TestActiveCheckReachesTheRouterConfig(t *testing.T) {
	p := loadProject(t, routedCompose("app:1", "    x-lifecycle: {active-check: {path: /healthz, interval: 700ms}}\n"))
	cfg, err := routerConfig(p, "", map[string][]strategies.RouteBackend{"web": {{Container: "demo-web-r1-1", Revision: 1, Weight: 1}}})
	assert.NilError(t, err)
	assert.Equal(t, len(cfg.Routes), 1)
	assert.Equal(t, cfg.Routes[0].HealthPath, "/healthz")
	assert.Equal(t, time.Duration(cfg.Routes[0].HealthInterval), 700*time.Millisecond)

	p = loadProject(t, routedCompose("app:1", ""))
	cfg, err = routerConfig(p, "", nil)
	assert.NilError(t, err)
	assert.Equal(t, cfg.Routes[0].HealthPath, "", "no active check unless asked for")
}

// Published ports default to protocol auto, with the sniff window the router itself
// would default to; an explicit protocol is passed on unchanged.
func TestProtocolReachesTheRouterConfig(t *testing.T) {
	assert.Equal(t, compose.DefaultSniffWindow, router.DefaultSniffWindow)
	p := loadProject(t, routedCompose("app:1", ""))
	cfg, err := routerConfig(p, "", nil)
	assert.NilError(t, err)
	assert.Equal(t, cfg.Routes[0].Protocol, router.Auto)
	assert.Equal(t, time.Duration(cfg.Routes[0].SniffWindow), router.DefaultSniffWindow)

	p = loadProject(t, routedCompose("app:1", "    x-lifecycle: {sniff-window: 40ms}\n"))
	cfg, err = routerConfig(p, "", nil)
	assert.NilError(t, err)
	assert.Equal(t, time.Duration(cfg.Routes[0].SniffWindow), 40*time.Millisecond)

	for _, proto := range []router.Protocol{router.HTTP, router.TCP} {
		p = loadProject(t, routedCompose("app:1", "    x-lifecycle: {protocol: "+string(proto)+"}\n"))
		cfg, err = routerConfig(p, "", nil)
		assert.NilError(t, err)
		assert.Equal(t, cfg.Routes[0].Protocol, proto)
		assert.Equal(t, cfg.Routes[0].SniffWindow, router.Duration(0))
	}
}

// A router created by an older plugin carries no feature label: the deploy sends it
// its ports as http, as that router carried them before, without trying auto first;
// a router whose label lists protocol-auto gets auto.
func TestRouterOlderThanProtocolAuto(t *testing.T) {
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", "")), DeployOptions{})
	assert.NilError(t, err)
	_, err = deploy(t, w, loadProject(t, routedCompose("app:2", "")), DeployOptions{})
	assert.NilError(t, err)
	assert.Assert(t, len(w.puts) > 0)
	for _, cfg := range w.puts {
		assert.Equal(t, cfg.Routes[0].Protocol, router.Auto, "a router with the feature label")
	}

	w.mu.Lock()
	for _, c := range w.containers {
		if c.Labels[compose.LabelRole] == compose.RoleRouter {
			assert.Equal(t, c.Labels[compose.LabelAgentFeatures], router.FeatureProtocolAuto)
			delete(c.Labels, compose.LabelAgentFeatures)
		}
	}
	w.preAutoAgent, w.puts = true, nil
	w.mu.Unlock()
	_, err = deploy(t, w, loadProject(t, routedCompose("app:3", "")), DeployOptions{})
	assert.NilError(t, err)
	assert.Assert(t, len(w.puts) > 0)
	for _, cfg := range w.puts {
		assert.Equal(t, cfg.Routes[0].Protocol, router.HTTP)
	}
}

// `rollback` runs under deploy.rollback_config, not update_config: here only the
// rollback has a monitor window, and a retained container that dies within it fails
// the rollback, which is itself rolled back (the current revision serves again).
func TestRollbackRunsUnderRollbackConfig(t *testing.T) {
	const extra = "      rollback_config: {monitor: 300ms}\n"
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, routedCompose("app:1", extra)), DeployOptions{})
	assert.NilError(t, err)
	v2 := loadProject(t, routedCompose("app:2", extra))
	_, err = deploy(t, w, v2, DeployOptions{})
	assert.NilError(t, err)

	var mu sync.Mutex
	inspections := 0
	w.health = func(name string) engine.ContainerDetails {
		if name != "demo-web-r1-1" {
			return engine.ContainerDetails{State: "running"}
		}
		mu.Lock()
		defer mu.Unlock()
		inspections++
		// Running for its gate and for the deploy's policy inspection, which runs on
		// its own goroutine and may come before or after the start.
		if inspections <= 2 {
			return engine.ContainerDetails{State: "running"}
		}
		return engine.ContainerDetails{State: "exited", ExitCode: 2}
	}
	_, err = deploy(t, w, v2, DeployOptions{Rollback: map[string]int{"web": 1}})
	assert.Check(t, errors.Is(err, ErrRolledBack), "got %v", err)
	assert.Check(t, is.ErrorContains(err, "during rollback_config.monitor: exited with code 2"))
	assert.Check(t, w.index("put-config web:8080=demo-web-r1-1/1,demo-web-r2-2/1") < 0, "never routed to")
	assert.Check(t, is.DeepEqual(w.state(), []string{
		"demo-lifecycle-router:running", "demo-web-r1-1:exited", "demo-web-r1-2:exited", "demo-web-r2-1:running", "demo-web-r2-2:running",
	}))
}
