package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// world is an in-memory engine: a Fake whose functions keep containers, networks and
// volumes in maps, and whose containers' health is decided by the test.
type world struct {
	mu         sync.Mutex
	calls      []string
	containers map[string]*engine.ContainerDetails // by ID
	networks   map[string]bool
	volumes    map[string]engine.Volume
	// health decides what a started container reports, by container name.
	health func(name string) engine.ContainerDetails
	// tamper, when set, changes what the engine "runs", as an engine ignoring a setting would.
	tamper func(*container.HostConfig)
	// The router's control plane (docker exec … /agent ctl): the config it serves now,
	// and every config put, in order.
	routerConfig []byte
	puts         []router.Config
	// stats answers `ctl stats` (nil: no traffic).
	stats func() router.Snapshot
	// preAutoAgent makes the router answer as an agent older than protocol auto.
	preAutoAgent bool
	// stopErr, when set, is what stopping a container returns after it stopped (a stop
	// whose answer was lost: the deploy's context ended, the engine timed out).
	stopErr func(name string) error
	// lateCreate, when set, runs before a create reaches the world: a killed deploy's
	// create request that the engine finished only now (it may add a container).
	lateCreate func(spec engine.ContainerSpec)
}

func newWorld() *world {
	return &world{containers: map[string]*engine.ContainerDetails{}, networks: map[string]bool{}, volumes: map[string]engine.Volume{},
		health: func(name string) engine.ContainerDetails { return engine.ContainerDetails{State: "running"} }}
}

func (w *world) record(format string, args ...any) {
	w.calls = append(w.calls, fmt.Sprintf(format, args...))
}

// hasLabels filters as the engine does: every label must be set, with its value unless
// the value asked for is empty.
func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

func (w *world) fake() *engine.Fake {
	return &engine.Fake{
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []engine.Container
			for id, c := range w.containers {
				if !hasLabels(c.Labels, labels) {
					continue
				}
				out = append(out, engine.Container{ID: id, Name: c.Name, Labels: c.Labels, State: c.State,
					Image: c.Labels[compose.LabelImageRef], ImageID: c.Labels[compose.LabelImageDigest]})
			}
			return out, nil
		},
		ListNetworksFn: func(context.Context, map[string]string) ([]engine.Network, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []engine.Network
			for n := range w.networks {
				out = append(out, engine.Network{Name: n})
			}
			return out, nil
		},
		ListVolumesFn: func(_ context.Context, labels map[string]string) ([]engine.Volume, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			var out []engine.Volume
			for _, v := range w.volumes {
				if hasLabels(v.Labels, labels) {
					out = append(out, v)
				}
			}
			return out, nil
		},
		InspectVolumeFn: func(_ context.Context, name string) (engine.Volume, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if v, ok := w.volumes[name]; ok {
				return v, nil
			}
			return engine.Volume{}, engine.ErrNotFound
		},
		CreateVolumeFn: func(_ context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if v, ok := w.volumes[spec.Name]; ok {
				return v, nil
			}
			w.record("create volume %s", spec.Name)
			v := engine.Volume{Name: spec.Name, Labels: spec.Labels}
			w.volumes[spec.Name] = v
			return v, nil
		},
		RemoveVolumeFn: func(_ context.Context, name string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			delete(w.volumes, name)
			return nil
		},
		InspectImageFn: func(_ context.Context, ref string) (engine.Image, error) {
			return engine.Image{ID: "sha256:" + ref}, nil
		},
		CreateNetworkFn: func(_ context.Context, spec engine.NetworkSpec) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.record("create network %s", spec.Name)
			w.networks[spec.Name] = true
			return nil
		},
		InspectNetworkFn: func(_ context.Context, name string) (engine.Network, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			n := 0
			for _, c := range w.containers {
				if c.State == "running" {
					n++
				}
			}
			return engine.Network{Name: name, Containers: n}, nil
		},
		RemoveNetworkFn: func(_ context.Context, name string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.record("remove network %s", name)
			delete(w.networks, name)
			return nil
		},
		CreateContainerFn: func(_ context.Context, spec engine.ContainerSpec) (string, error) {
			if w.lateCreate != nil {
				w.lateCreate(spec)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, c := range w.containers {
				if c.Name == spec.Name {
					return "", fmt.Errorf("create container %s: %w", spec.Name, engine.ErrNameInUse)
				}
			}
			w.record("create %s", spec.Name)
			id := "id-" + spec.Name
			for w.containers[id] != nil { // a renamed container had the name before
				id += "+"
			}
			hc := *spec.HostConfig
			if w.tamper != nil {
				w.tamper(&hc)
			}
			w.containers[id] = &engine.ContainerDetails{ID: id, Name: spec.Name, State: "created", Labels: spec.Config.Labels, Config: spec.Config, HostConfig: &hc}
			return id, nil
		},
		StartContainerFn: func(_ context.Context, id string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			c := w.containers[id]
			w.record("start %s", c.Name)
			c.State = "running"
			return nil
		},
		StopContainerFn: func(_ context.Context, id, _ string, _ *time.Duration) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.record("stop %s", w.containers[id].Name)
			w.containers[id].State = "exited"
			if w.stopErr != nil {
				return w.stopErr(w.containers[id].Name)
			}
			return nil
		},
		RenameContainerFn: func(_ context.Context, id, name string) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			for _, c := range w.containers {
				if c.Name == name {
					return fmt.Errorf("rename container %s to %s: %w", id, name, engine.ErrNameInUse)
				}
			}
			c, ok := w.containers[id]
			if !ok {
				return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
			}
			w.record("rename %s %s", c.Name, name)
			c.Name = name
			return nil
		},
		RemoveContainerFn: func(_ context.Context, id string, _ bool) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			if c, ok := w.containers[id]; ok {
				w.record("remove %s", c.Name)
				delete(w.containers, id)
			}
			return nil
		},
		InspectContainerFn: func(_ context.Context, id string) (engine.ContainerDetails, error) {
			w.mu.Lock()
			cp, ok := w.containers[id]
			for _, c := range w.containers {
				if !ok && c.Name == id { // the engine inspects by name too
					cp, ok = c, true
				}
			}
			if !ok {
				w.mu.Unlock()
				return engine.ContainerDetails{}, fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
			}
			c := *cp
			w.mu.Unlock()
			if c.State == "created" {
				return c, nil // not started: health decides what a started container reports
			}
			d := w.health(c.Name)
			d.ID, d.Name, d.Labels, d.Config, d.HostConfig = c.ID, c.Name, c.Labels, c.Config, c.HostConfig
			return d, nil
		},
		ContainerLogTailFn: func(_ context.Context, id string, _ int) (string, error) {
			return "booting\npanic: database unreachable\n", nil
		},
		ExecFn: w.exec,
	}
}

// exec plays the router's control commands; nothing else is exec'd in a deploy.
func (w *world) exec(_ context.Context, id string, cmd []string, stdin []byte) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.containers[id]
	if !ok {
		return nil, fmt.Errorf("exec %v: no container %s: %w", cmd, id, engine.ErrNotFound)
	}
	if c.Labels[compose.LabelRole] != compose.RoleRouter || len(cmd) < 3 || cmd[0] != "/agent" || cmd[1] != "ctl" {
		return nil, fmt.Errorf("exec %v in %s: not a router command", cmd, c.Name)
	}
	if c.State != "running" {
		return nil, &engine.ExecError{Container: c.Name, Cmd: cmd, ExitCode: 126, Stderr: "container is not running"}
	}
	switch cmd[len(cmd)-1] {
	case "healthz":
		return []byte("ok\n"), nil
	case "get-config":
		if w.routerConfig == nil {
			return []byte(`{"version":1,"routes":[]}`), nil
		}
		return w.routerConfig, nil
	case "put-config":
		if w.preAutoAgent && bytes.Contains(stdin, []byte(`"sniff_window"`)) {
			// What that agent's ctl said of a field its strict decoder did not know.
			return nil, &engine.ExecError{Container: c.Name, Cmd: cmd, ExitCode: 1,
				Stderr: "router answered 400 Bad Request: {\n  \"error\": \"invalid config: json: unknown field \\\"sniff_window\\\"\"\n}"}
		}
		cfg, err := router.DecodeConfig(stdin)
		if err != nil {
			return nil, &engine.ExecError{Container: c.Name, Cmd: cmd, ExitCode: 1, Stderr: err.Error()}
		}
		w.record("put-config %s", describeConfig(cfg))
		w.routerConfig = slices.Clone(stdin)
		w.puts = append(w.puts, cfg)
		return nil, nil
	case "stats":
		snap := router.Snapshot{Routes: []router.RouteStats{}}
		if w.stats != nil {
			snap = w.stats()
		}
		return json.Marshal(snap)
	}
	return nil, &engine.ExecError{Container: c.Name, Cmd: cmd, ExitCode: 2, Stderr: "unknown command"}
}

// describeConfig is a router config as "route=backend/weight,…;…", for call logs.
func describeConfig(cfg router.Config) string {
	var routes []string
	for _, r := range cfg.Routes {
		var bs []string
		for _, b := range r.Backends {
			bs = append(bs, fmt.Sprintf("%s/%d", b.ID, b.Weight))
		}
		routes = append(routes, r.Name+"="+strings.Join(bs, ","))
	}
	return strings.Join(routes, ";")
}

func (w *world) index(call string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Index(w.calls, call)
}

const chainCompose = `
name: demo
x-lifecycle: {strategy: recreate}
services:
  db:
    image: db
    healthcheck: {test: ["CMD", "true"]}
  migrate:
    image: app
    depends_on: {db: {condition: service_healthy}}
  web:
    image: app
    depends_on:
      migrate: {condition: service_completed_successfully}
`

func loadProject(t *testing.T, yaml string) *compose.Project {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	return p
}

func deploy(t *testing.T, w *world, p *compose.Project, opts DeployOptions) (strategies.Plan, error) {
	t.Helper()
	if opts.WaitTimeout == 0 {
		opts.WaitTimeout = 2 * time.Second
	}
	return Deploy(context.Background(), w.fake(), p, progress.Nop, opts)
}

func TestDeployHonoursDependencyConditions(t *testing.T) {
	w := newWorld()
	w.health = func(name string) engine.ContainerDetails {
		switch {
		case strings.HasSuffix(name, "db-1"):
			return engine.ContainerDetails{State: "running", Health: "healthy"}
		case strings.HasSuffix(name, "migrate-1"):
			return engine.ContainerDetails{State: "exited", ExitCode: 0}
		}
		return engine.ContainerDetails{State: "running"}
	}
	p := loadProject(t, chainCompose)
	plan, err := deploy(t, w, p, DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(plan.Steps, 10))
	assert.Check(t, w.index("start demo-db-1") < w.index("create demo-migrate-1"))
	assert.Check(t, w.index("start demo-migrate-1") < w.index("create demo-web-1"))

	// Converged: the same deploy plans nothing.
	plan, err = deploy(t, w, p, DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, plan.Empty())
}

func TestFailedHealthGateNamesContainerAndCleansUp(t *testing.T) {
	w := newWorld()
	w.health = func(name string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "unhealthy", HealthLog: []string{"exit 1: connection refused"}}
	}
	p := loadProject(t, chainCompose)
	_, err := deploy(t, w, p, DeployOptions{})
	assert.Check(t, errors.Is(err, ErrDeployFailed))
	assert.Check(t, errors.Is(err, ErrUnhealthy))
	for _, want := range []string{`service "db"`, "demo-db-1", "health check failing", "exit 1: connection refused", "panic: database unreachable"} {
		assert.Check(t, is.ErrorContains(err, want))
	}
	assert.Check(t, w.index("create demo-migrate-1") < 0, "dependents are never created")
	assert.Check(t, is.Len(w.containers, 0), "the failed container is removed")
	assert.Check(t, is.Len(w.networks, 0), "the network this deploy created is removed")
	_, locked := w.volumes[lock.VolumeName("demo")]
	assert.Check(t, !locked, "the lock is released")

	// The failure is in the revision history (a volume with labels), and nothing else is left.
	records, err := History(context.Background(), w.fake(), "demo")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(records, 1))
	assert.Check(t, is.Equal(records[0].Service, "db"))
	assert.Check(t, is.Equal(records[0].Revision, 1))
	assert.Check(t, is.Equal(records[0].Result, ResultFailed))
	assert.Check(t, is.Equal(records[0].Strategy, compose.StrategyRecreate))
	assert.Check(t, is.Contains(records[0].Reason, "demo-db-1: container failed its health gate"))
	assert.Check(t, is.Len(w.volumes, 1), "volumes: %v", w.volumes)
}

func TestCrashLoopAndOOMAreReported(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detail engine.ContainerDetails
		want   string
	}{
		{"exit", engine.ContainerDetails{State: "exited", ExitCode: 3}, "exited with code 3"},
		{"oom", engine.ContainerDetails{State: "exited", ExitCode: 137, OOMKilled: true}, "OOMKilled"},
		{"crash-loop", engine.ContainerDetails{State: "restarting", RestartCount: 2, ExitCode: 3}, "crash-looping: restarted 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.health = func(string) engine.ContainerDetails { return tc.detail }
			_, err := deploy(t, w, loadProject(t, "services: {app: {image: app}}"), DeployOptions{})
			assert.Check(t, is.ErrorContains(err, tc.want))
			assert.Check(t, is.Len(w.containers, 0))
			assert.Check(t, w.index("put-config ") < 0, "a service without published ports is not routed")
		})
	}
}

func TestHealthWaitTimesOut(t *testing.T) {
	w := newWorld()
	w.health = func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "starting"}
	}
	start := time.Now()
	_, err := deploy(t, w, loadProject(t, "services: {app: {image: app, healthcheck: {test: [CMD, 'true']}}}"), DeployOptions{WaitTimeout: 600 * time.Millisecond})
	assert.Check(t, is.ErrorContains(err, "not healthy within 600ms (state running, health starting)"))
	assert.Check(t, time.Since(start) < 5*time.Second)
}

func TestCancelledDeployCleansUpAndReportsCanceled(t *testing.T) {
	w := newWorld()
	w.health = func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "starting"}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	p := loadProject(t, "services: {app: {image: app, healthcheck: {test: [CMD, 'true']}}}")
	_, err := Deploy(ctx, w.fake(), p, progress.Nop, DeployOptions{WaitTimeout: time.Minute})
	assert.Check(t, errors.Is(err, context.Canceled), "got %v", err)
	assert.Check(t, is.Len(w.containers, 0))
	_, locked := w.volumes[lock.VolumeName(p.Name)]
	assert.Check(t, !locked, "the lock is released")
}

func TestDryRunMakesNoWrite(t *testing.T) {
	w := newWorld()
	f := w.fake()
	plan, err := Plan(context.Background(), f, loadProject(t, chainCompose), DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(plan.Steps, 10))
	assert.Check(t, is.Len(w.calls, 0), "calls: %v", w.calls)
}

const readOnlyPolicy = `
x-lifecycle:
  strategy: recreate
  policy: {require: [read-only]}
services:
  app: {image: app, read_only: true}
`

func TestDeployVerifiesThePolicyOnTheEngine(t *testing.T) {
	w := newWorld()
	_, err := deploy(t, w, loadProject(t, readOnlyPolicy), DeployOptions{})
	assert.NilError(t, err)

	w = newWorld()
	w.tamper = func(h *container.HostConfig) { h.ReadonlyRootfs = false }
	_, err = deploy(t, w, loadProject(t, readOnlyPolicy), DeployOptions{})
	assert.Check(t, errors.Is(err, ErrPolicyNotEnforced), "got %v", err)
	assert.Check(t, is.ErrorContains(err, `service "app", container `))
	assert.Check(t, is.ErrorContains(err, "-app-1: read-only: read_only is not true"))
}

// A deploy killed while its create request was in the engine leaves a container the
// next deploy's observation missed (the engine finished the create later): the next
// deploy's create of the same name removes it, when it is exactly that container and
// never started, and creates it again; any other container keeps the conflict.
func TestCreateRemovesALeftoverOfAKilledDeploy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state string
		ok    bool
	}{
		{name: "created, never started", state: "created", ok: true},
		{name: "running", state: "running", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			_, err := deploy(t, w, loadProject(t, routedCompose("app:1", "")), DeployOptions{})
			assert.NilError(t, err)
			var once sync.Once
			w.lateCreate = func(spec engine.ContainerSpec) {
				if spec.Name != "demo-web-r2-1" {
					return
				}
				once.Do(func() {
					w.mu.Lock()
					defer w.mu.Unlock()
					w.containers["leftover"] = &engine.ContainerDetails{ID: "leftover", Name: spec.Name, State: tc.state,
						Labels: spec.Config.Labels, Config: spec.Config, HostConfig: spec.HostConfig}
				})
			}
			_, err = deploy(t, w, loadProject(t, routedCompose("app:2", "")), DeployOptions{})
			if !tc.ok {
				assert.Check(t, errors.Is(err, engine.ErrNameInUse), "got %v", err)
				return
			}
			assert.NilError(t, err)
			assert.Check(t, w.index("remove leftover") >= 0 || w.index("remove demo-web-r2-1") >= 0, "%v", w.calls)
			_, stillThere := w.containers["leftover"]
			assert.Check(t, !stillThere)
			assert.Check(t, is.Contains(w.state(), "demo-web-r2-1:running"))
		})
	}
}
