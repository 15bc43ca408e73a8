package rollout

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// swarmWorld replays a sequence of service listings, one per poll, the last repeated.
func swarmWorld(polls ...engine.Service) *engine.Fake {
	n := 0
	return &engine.Fake{ListServicesFn: func(_ context.Context, labels map[string]string) ([]engine.Service, error) {
		if labels[compose.LabelStackNamespace] != "shop" {
			return nil, errors.New("listed without the namespace label")
		}
		s := polls[min(n, len(polls)-1)]
		n++
		return []engine.Service{s}, nil
	}}
}

func updatePlan(p *compose.Project) strategies.SwarmPlan {
	spec, _ := compose.SwarmService(p, "web", nil)
	return strategies.SwarmPlan{Project: "shop", Steps: []strategies.SwarmStep{{Action: strategies.SwarmUpdateService, Name: "shop_web", Service: "web", ID: "w1", Version: 3, Spec: spec}}}
}

func TestWaitSwarm(t *testing.T) {
	swarmPoll = time.Millisecond
	p := loadProject(t, "name: shop\nservices:\n  web: {image: app:2, deploy: {replicas: 3}}\n")
	earlier, later := time.Unix(100, 0), time.Unix(200, 0)
	before := map[string]engine.Service{"shop_web": {Name: "shop_web", UpdateState: "completed", UpdateStarted: earlier}}
	svc := func(state string, started time.Time, running uint64, msg string) engine.Service {
		return engine.Service{Name: "shop_web", UpdateState: state, UpdateStarted: started, RunningTasks: running, DesiredTasks: 3, UpdateMessage: msg}
	}
	ctx := context.Background()

	t.Run("completed", func(t *testing.T) {
		eng := swarmWorld(svc("completed", earlier, 3, ""), svc("updating", later, 3, ""), svc("completed", later, 3, "update completed"))
		assert.NilError(t, waitSwarm(ctx, eng, p, updatePlan(p), before, time.Minute, progress.Nop))
	})
	t.Run("rolled back: exit 3", func(t *testing.T) {
		eng := swarmWorld(svc("updating", later, 3, ""), svc("rollback_started", later, 2, "update rolled back due to failure or early termination of task x"),
			svc("rollback_completed", later, 3, "rollback completed"))
		err := waitSwarm(ctx, eng, p, updatePlan(p), before, time.Minute, progress.Nop)
		var rb *RolledBackError
		assert.Assert(t, errors.As(err, &rb), "%v", err)
		assert.Assert(t, errors.Is(err, ErrRolledBack))
		assert.DeepEqual(t, rb.Services, []string{"web"})
		assert.ErrorContains(t, err, "web rolled back by Swarm: the previous spec runs again; the cause: shop_web: update rolled back due to failure or early termination of task x")
	})
	t.Run("paused: exit 1", func(t *testing.T) {
		eng := swarmWorld(svc("updating", later, 3, ""), svc("paused", later, 2, "update paused due to failure or early termination of task y"))
		err := waitSwarm(ctx, eng, p, updatePlan(p), before, time.Minute, progress.Nop)
		assert.Assert(t, errors.Is(err, ErrSwarmPaused), "%v", err)
		var rb *RolledBackError
		assert.Assert(t, !errors.As(err, &rb))
		assert.ErrorContains(t, err, "shop_web (paused: update paused due to failure or early termination of task y)")
	})
	t.Run("created: all tasks running", func(t *testing.T) {
		eng := swarmWorld(svc("", time.Time{}, 0, ""), svc("", time.Time{}, 2, ""), svc("", time.Time{}, 3, ""))
		plan := updatePlan(p)
		plan.Steps[0].Action = strategies.SwarmCreateService
		assert.NilError(t, waitSwarm(ctx, eng, p, plan, map[string]engine.Service{}, time.Minute, progress.Nop))
	})
	t.Run("created with 0 replicas", func(t *testing.T) {
		eng := swarmWorld(engine.Service{Name: "shop_web"})
		plan := updatePlan(p)
		plan.Steps[0].Action = strategies.SwarmCreateService
		plan.Steps[0].Spec.Mode.Replicated.Replicas = new(uint64(0))
		assert.NilError(t, waitSwarm(ctx, eng, p, plan, map[string]engine.Service{}, time.Minute, progress.Nop))
	})
	t.Run("the previous update's status does not end the wait", func(t *testing.T) {
		// The status of the update before this one (completed, same start time) stays
		// until Swarm starts ours: with a short bound the wait times out instead.
		eng := swarmWorld(svc("completed", earlier, 3, ""))
		plan := updatePlan(p)
		plan.Steps[0].Spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1}
		err := waitSwarm(ctx, eng, p, plan, before, 50*time.Millisecond, progress.Nop)
		assert.ErrorContains(t, err, "service shop_web: Swarm has not converged within")
	})
}

func TestSwarmTarget(t *testing.T) {
	ctx := context.Background()
	manager := &engine.Fake{SwarmFn: func(context.Context) (engine.SwarmInfo, error) {
		return engine.SwarmInfo{LocalNodeState: "active", ControlAvailable: true}, nil
	}}
	single := &engine.Fake{SwarmFn: func(context.Context) (engine.SwarmInfo, error) {
		return engine.SwarmInfo{LocalNodeState: "inactive"}, nil
	}}
	node, on, err := SwarmTarget(ctx, manager, false)
	assert.NilError(t, err)
	assert.Assert(t, on)
	assert.Check(t, node.ControlAvailable)
	_, on, err = SwarmTarget(ctx, single, false)
	assert.NilError(t, err)
	assert.Assert(t, !on)
	_, _, err = SwarmTarget(ctx, single, true)
	assert.ErrorContains(t, err, `--swarm: the engine is not a Swarm manager (node state "inactive")`)
}
