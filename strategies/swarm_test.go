package strategies

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func swarmSpec(name, image, hash string, replicas uint64) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: map[string]string{compose.LabelSwarmSpec: hash}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: "start-first", FailureAction: "rollback", Monitor: 15 * time.Second},
	}
}

func TestPlanSwarm(t *testing.T) {
	networks := []compose.NetworkCreate{{Name: "shop_default", Driver: "overlay"}, {Name: "shop_back", Driver: "overlay"}}
	services := map[string]swarm.ServiceSpec{
		"web":    swarmSpec("shop_web", "shop/web:2", "h2", 3),
		"api":    swarmSpec("shop_api", "shop/api:1", "h-api-new", 2),
		"worker": swarmSpec("shop_worker", "shop/worker:1", "hw", 1),
		"cache":  swarmSpec("shop_cache", "cache:7", "hc", 1),
	}
	observed := SwarmObserved{
		Networks: map[string]bool{"shop_default": true},
		Services: map[string]ObservedSwarmService{
			"shop_web":    {ID: "w1", Version: 12, SpecHash: "h1", Image: "shop/web:1"},
			"shop_api":    {ID: "a1", Version: 4, SpecHash: "h-api-old", Image: "shop/api:1"},
			"shop_worker": {ID: "k1", Version: 3, SpecHash: "hw", Image: "shop/worker:1"},
		},
	}
	plan := PlanSwarm("shop", networks, services, observed)
	golden.Assert(t, plan.Text(), "swarm.golden")
	b, err := json.MarshalIndent(plan, "", "  ")
	assert.NilError(t, err)
	golden.Assert(t, string(b)+"\n", "swarm-json.golden")
	assert.DeepEqual(t, plan.Services(), []string{"api", "cache", "web"})
	for _, s := range plan.Steps {
		if s.Action == SwarmUpdateService && s.Service == "web" {
			assert.Equal(t, s.ID, "w1")
			assert.Equal(t, s.Version, uint64(12)) // the version the update must name
		}
	}

	observed.Networks["shop_back"] = true
	observed.Services["shop_web"] = ObservedSwarmService{ID: "w1", SpecHash: "h2", Image: "shop/web:2"}
	observed.Services["shop_api"] = ObservedSwarmService{ID: "a1", SpecHash: "h-api-new", Image: "shop/api:1"}
	observed.Services["shop_cache"] = ObservedSwarmService{ID: "c1", SpecHash: "hc", Image: "cache:7"}
	again := PlanSwarm("shop", networks, services, observed)
	assert.Assert(t, again.Empty())
	assert.DeepEqual(t, again.UpToDate, []string{"shop_api", "shop_cache", "shop_web", "shop_worker"})
}
