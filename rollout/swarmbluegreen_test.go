package rollout

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
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
