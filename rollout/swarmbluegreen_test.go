package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
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

// TestSwarmCanaryStepFails: a canary window with errors over max-error-rate sends all
// traffic back to the revision that served, removes the canary's service and is a
// *RolledBackError naming the analysis.
func TestSwarmCanaryStepFails(t *testing.T) {
	p := loadProject(t, strings.Replace(swarmBlueGreenYAML, "x-lifecycle: {strategy: blue-green}",
		"x-lifecycle: {strategy: canary, canary: {steps: [{weight: 20, pause: 1ms}], analysis: {max-error-rate: 0.1}}}", 1))
	since := time.Unix(100, 0)
	snapshot := func(requests, errors uint64) []byte {
		b, _ := json.Marshal(router.Snapshot{Routes: []router.RouteStats{{Name: "web:8080", Backends: []router.BackendStats{
			{ID: "shop_web-r2", Group: "r2", Since: since, Counters: router.Counters{Requests: 100}},
			{ID: "shop_web-r3", Group: "r3", Since: since, Counters: router.Counters{Requests: requests, Responses5xx: errors}},
		}}}})
		return b
	}
	stats := [][]byte{snapshot(0, 0), snapshot(20, 5)}
	var configs []router.Config
	var removed []string
	eng := &engine.Fake{
		ExecFn: func(_ context.Context, _ string, cmd []string, stdin []byte) ([]byte, error) {
			switch cmd[len(cmd)-1] {
			case "stats":
				out := stats[0]
				stats = stats[1:]
				return out, nil
			case "put-config":
				cfg, err := router.DecodeConfig(stdin)
				assert.NilError(t, err)
				configs = append(configs, cfg)
				return nil, nil
			}
			return nil, fmt.Errorf("unexpected %v", cmd)
		},
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			return []engine.Service{{ID: "w3", Name: "shop_web-r3"}, {ID: "w2", Name: "shop_web-r2"}}, nil
		},
		RemoveServiceFn: func(_ context.Context, id string) error { removed = append(removed, id); return nil },
	}
	state := swarmBlueGreen{router: "router-task", routes: map[string][]strategies.RouteBackend{"web": {{Container: "shop_web-r2", Revision: 2, Weight: 1}}}}
	client := newRouterClient(eng, state.router)
	push := func() error { _, err := pushWith(context.Background(), p, client, state.routes); return err }
	step := strategies.SwarmStep{Action: strategies.SwarmCanaryStep, Name: "shop_lifecycle-router", Service: "web", Revision: 3, Weight: 20, Pause: time.Millisecond}
	err := canaryStep(context.Background(), eng, p, step, client, state, push, progress.Nop)
	var rolledBack *RolledBackError
	assert.Assert(t, errors.As(err, &rolledBack), "%v", err)
	assert.ErrorIs(t, err, ErrAnalysisFailed)
	assert.ErrorContains(t, err, "error rate 25.00% above max-error-rate 10.00%")
	assert.Equal(t, len(configs), 2)
	weights := func(cfg router.Config) (out []string) {
		for _, b := range cfg.Routes[0].Backends {
			out = append(out, fmt.Sprintf("%s=%d", b.ID, b.Weight))
		}
		return out
	}
	assert.DeepEqual(t, weights(configs[0]), []string{"shop_web-r2=80", "shop_web-r3=20"})
	assert.DeepEqual(t, weights(configs[1]), []string{"shop_web-r2=1"})
	assert.DeepEqual(t, removed, []string{"w3"})
}
