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

func swarmRouterSpec(hash string) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: "shop_lifecycle-router", Labels: map[string]string{compose.LabelSwarmSpec: hash}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{PublishedPort: 8080, Protocol: "tcp"}, {PublishedPort: 9090, Protocol: "tcp"}}},
	}
}

// TestPlanSwarmBlueGreen plans a first deploy (router and revision 1 of each service),
// a new version of web (revision 3 after 2, the old revision removed once switched), an
// interrupted deploy's leftover, and a router whose ports changed.
func TestPlanSwarmBlueGreen(t *testing.T) {
	desired := map[string]swarm.ServiceSpec{
		"web": swarmSpec("shop_web", "shop/web:2", "h-web-2", 3),
		"api": swarmSpec("shop_api", "shop/api:1", "h-api-1", 2),
	}
	plan := SwarmPlan{Project: "shop", Steps: []SwarmStep{
		{Action: SwarmCreateNetwork, Name: "shop_default", Cause: "missing"},
		{Action: SwarmRemoveSecret, Name: "shop_db_00000000", Cause: "old version of secret db, used by no service: removed after the services converged"},
	}}
	plan.WithBlueGreen(PlanSwarmBlueGreen("shop", swarmRouterSpec("r1"), desired, nil, SwarmBlueGreenObserved{}))
	golden.Assert(t, plan.Text(), "swarm-bluegreen-first.golden")
	assert.DeepEqual(t, plan.Services(), []string{"api", "web"})
	for _, s := range plan.Steps {
		if s.Action == SwarmCreateService {
			assert.Equal(t, s.Spec.Name, "shop_"+s.Service+"-r1")
			assert.Equal(t, s.Spec.Labels[compose.LabelSwarmRevision], "1")
			assert.Assert(t, s.BlueGreen())
		}
	}

	observed := SwarmBlueGreenObserved{
		Router: &ObservedSwarmService{ID: "r", Version: 7, SpecHash: "r1"},
		Revisions: map[string][]ObservedSwarmRevision{
			"web": {{Name: "shop_web-r2", ID: "w2", Revision: 2, SpecHash: "h-web-1", Image: "shop/web:1", Routed: true}},
			"api": {
				{Name: "shop_api-r4", ID: "a4", Revision: 4, SpecHash: "h-api-1", Image: "shop/api:1", Routed: true},
				{Name: "shop_api-r5", ID: "a5", Revision: 5, SpecHash: "h-api-2", Image: "shop/api:2"},
			},
		},
	}
	steps, upToDate := PlanSwarmBlueGreen("shop", swarmRouterSpec("r1"), desired, nil, observed)
	next := SwarmPlan{Project: "shop"}
	next.WithBlueGreen(steps, upToDate)
	golden.Assert(t, next.Text(), "swarm-bluegreen-next.golden")
	b, err := json.MarshalIndent(next, "", "  ")
	assert.NilError(t, err)
	golden.Assert(t, string(b)+"\n", "swarm-bluegreen-next-json.golden")
	for _, s := range next.Steps {
		if s.Action == SwarmRemoveService {
			assert.Assert(t, s.ID == "w2" || s.ID == "a5", "%+v", s)
		}
	}

	// A canary service: each step below 100 % is a canary-step, then the switch; on a
	// first deploy there is nothing to compare with: straight to the switch.
	canary := map[string][]compose.CanaryStep{"web": {{Weight: 10, Pause: compose.Duration(30 * time.Second)}, {Weight: 50, Pause: compose.Duration(time.Minute)}, {Weight: 100}}}
	steps, upToDate = PlanSwarmBlueGreen("shop", swarmRouterSpec("r1"), map[string]swarm.ServiceSpec{"web": desired["web"]}, canary, observed)
	canaryPlan := SwarmPlan{Project: "shop"}
	canaryPlan.WithBlueGreen(steps, upToDate)
	golden.Assert(t, canaryPlan.Text(), "swarm-canary.golden")
	assert.Equal(t, steps[1].Weight, 10)
	assert.Equal(t, steps[1].Pause, 30*time.Second)
	steps, _ = PlanSwarmBlueGreen("shop", swarmRouterSpec("r1"), map[string]swarm.ServiceSpec{"web": desired["web"]}, canary, SwarmBlueGreenObserved{Router: observed.Router})
	assert.DeepEqual(t, []string{steps[0].Action, steps[1].Action}, []string{SwarmCreateService, SwarmSwitch})
	assert.Equal(t, len(steps), 2)

	// The router's ports changed: Swarm replaces its task (the update names the version read).
	steps, _ = PlanSwarmBlueGreen("shop", swarmRouterSpec("r2"), map[string]swarm.ServiceSpec{"api": desired["api"]}, nil,
		SwarmBlueGreenObserved{Router: observed.Router, Revisions: map[string][]ObservedSwarmRevision{"api": observed.Revisions["api"][:1]}})
	assert.Equal(t, len(steps), 1)
	assert.Equal(t, steps[0].Action, SwarmUpdateRouter)
	assert.Equal(t, steps[0].Version, uint64(7))
}
