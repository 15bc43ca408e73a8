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

func imageSpec(image string) *swarm.ServiceSpec {
	replicas := uint64(2)
	return &swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}}
}

// swarmRollbackWorld is a manager with web (updated from app:1 to app:2) and worker
// (never updated). After RollbackService, web's listings follow polls, one per call.
type swarmRollbackWorld struct {
	rolledBack []string
	polls      []engine.Service
	n          int
	lockTaken  bool
}

func (w *swarmRollbackWorld) fake() *engine.Fake {
	started := time.Unix(100, 0)
	web := engine.Service{ID: "w1", Name: "shop_web", Version: 7, Spec: *imageSpec("app:2"), PreviousSpec: imageSpec("app:1"),
		UpdateState: "completed", UpdateStarted: started, RunningTasks: 2, DesiredTasks: 2}
	worker := engine.Service{ID: "k1", Name: "shop_worker", Version: 3, Spec: *imageSpec("worker:1"), RunningTasks: 2, DesiredTasks: 2}
	return &engine.Fake{
		CreateVolumeFn: func(_ context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			w.lockTaken = true
			return engine.Volume{Name: spec.Name, Labels: spec.Labels}, nil
		},
		InspectVolumeFn: func(context.Context, string) (engine.Volume, error) { return engine.Volume{}, engine.ErrNotFound },
		RemoveVolumeFn:  func(context.Context, string) error { return nil },
		ListServicesFn: func(_ context.Context, labels map[string]string) ([]engine.Service, error) {
			if labels[compose.LabelStackNamespace] != "shop" {
				return nil, errors.New("listed without the namespace label")
			}
			if len(w.rolledBack) > 0 && len(w.polls) > 0 {
				web = w.polls[min(w.n, len(w.polls)-1)]
				w.n++
			}
			return []engine.Service{worker, web}, nil
		},
		RollbackServiceFn: func(_ context.Context, id string, version uint64, current swarm.ServiceSpec) error {
			if current.TaskTemplate.ContainerSpec == nil || current.TaskTemplate.ContainerSpec.Image != "app:2" {
				return errors.New("rolled back without sending the current spec")
			}
			if !w.lockTaken {
				return errors.New("rolled back without the project lock")
			}
			if id != "w1" || version != 7 {
				return errors.New("rolled back the wrong service or version")
			}
			w.rolledBack = append(w.rolledBack, id)
			return nil
		},
	}
}

func TestRollbackSwarm(t *testing.T) {
	swarmPoll = time.Millisecond
	ctx := context.Background()
	later := time.Unix(200, 0)
	web := func(state string, running uint64, msg string) engine.Service {
		return engine.Service{ID: "w1", Name: "shop_web", Version: 8, Spec: *imageSpec("app:1"), PreviousSpec: imageSpec("app:2"),
			UpdateState: state, UpdateStarted: later, UpdateMessage: msg, RunningTasks: running, DesiredTasks: 2}
	}

	t.Run("rolls back and waits for rollback_completed", func(t *testing.T) {
		w := &swarmRollbackWorld{polls: []engine.Service{web("rollback_started", 2, "manually requested rollback"), web("rollback_started", 3, ""), web("rollback_completed", 2, "rollback completed")}}
		plan, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{Services: []string{"web"}, WaitTimeout: time.Minute})
		assert.NilError(t, err)
		assert.DeepEqual(t, w.rolledBack, []string{"w1"})
		assert.Equal(t, w.n, 3, "the wait polled until rollback_completed")
		assert.Equal(t, plan.Text(), "Swarm plan for project shop:\n  rollback-service shop_web: image app:2 → app:1 (the spec before its last update)\n")
	})
	t.Run("no service named: every one with a previous spec", func(t *testing.T) {
		w := &swarmRollbackWorld{polls: []engine.Service{web("rollback_completed", 2, "rollback completed")}}
		plan, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{WaitTimeout: time.Minute})
		assert.NilError(t, err)
		assert.DeepEqual(t, plan.Services(), []string{"web"})
		assert.DeepEqual(t, w.rolledBack, []string{"w1"})
	})
	t.Run("rollback paused: exit 1", func(t *testing.T) {
		w := &swarmRollbackWorld{polls: []engine.Service{web("rollback_started", 1, ""), web("rollback_paused", 1, "rollback paused due to failure of task z")}}
		_, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{Services: []string{"web"}, WaitTimeout: time.Minute})
		assert.Assert(t, errors.Is(err, ErrSwarmPaused), "%v", err)
		var rb *RolledBackError
		assert.Assert(t, !errors.As(err, &rb), "a paused rollback is not exit 3")
		assert.ErrorContains(t, err, "shop_web (rollback_paused: rollback paused due to failure of task z)")
	})
	t.Run("the last update's status does not end the wait", func(t *testing.T) {
		// Still the status of the update before (completed, earlier start): not done.
		w := &swarmRollbackWorld{}
		_, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{Services: []string{"web"}, WaitTimeout: 30 * time.Millisecond})
		assert.ErrorContains(t, err, "service shop_web: Swarm has not converged within")
	})
	t.Run("refused without a previous spec, every such service named, nothing changed", func(t *testing.T) {
		w := &swarmRollbackWorld{}
		_, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{Services: []string{"web", "worker"}})
		assert.Assert(t, errors.Is(err, ErrNoPreviousSpec), "%v", err)
		assert.ErrorContains(t, err, "Swarm keeps no previous spec for worker of project shop")
		assert.Assert(t, w.rolledBack == nil && !w.lockTaken)
	})
	t.Run("unknown service", func(t *testing.T) {
		w := &swarmRollbackWorld{}
		_, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{Services: []string{"db"}})
		assert.ErrorContains(t, err, "no Swarm service db in project shop (services: web, worker)")
	})
	t.Run("dry run changes nothing", func(t *testing.T) {
		w := &swarmRollbackWorld{}
		plan, err := RollbackSwarm(ctx, w.fake(), "shop", progress.Nop, SwarmRollbackOptions{DryRun: true})
		assert.NilError(t, err)
		assert.Equal(t, len(plan.Steps), 1)
		assert.Equal(t, plan.Steps[0].Action, strategies.SwarmRollbackService)
		assert.Assert(t, w.rolledBack == nil && !w.lockTaken)
	})
}
