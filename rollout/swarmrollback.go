package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ErrNoPreviousSpec marks a Swarm service that Swarm keeps no previous spec for (never
// updated, or rolled back by Swarm itself, which drops it): there is nothing to roll
// back to.
var ErrNoPreviousSpec = errors.New("Swarm keeps no previous spec")

// SwarmRollbackOptions are the rollback command's choices on Swarm.
type SwarmRollbackOptions struct {
	// Services are compose service names; none: every service Swarm keeps a previous
	// spec for.
	Services []string
	DryRun   bool
	// WaitTimeout bounds the wait as for a deploy (0: x-lifecycle wait-timeout, or 2 m).
	WaitTimeout time.Duration
	Command     string
	// Project is the loaded compose project, for the services' wait timeouts; nil when
	// only the project name was given.
	Project *compose.Project
}

// RollbackSwarm rolls services of a project deployed to Swarm back to the spec Swarm
// kept from before their last update, as `docker service rollback` does: the manager
// swaps the current and previous specs and rolls the tasks with the service's rollback
// config. It takes the project lock, then waits as a deploy does (waitSwarm). A
// rollback that Swarm paused is ErrSwarmPaused; a service with no previous spec is
// refused (ErrNoPreviousSpec) before anything changes, all such services named at once.
func RollbackSwarm(ctx context.Context, eng engine.Engine, project string, events progress.Writer, opts SwarmRollbackOptions) (strategies.SwarmPlan, error) {
	plan, before, err := planSwarmRollback(ctx, eng, project, opts.Services)
	if err != nil || opts.DryRun {
		return plan, err
	}
	l, err := lock.Acquire(ctx, eng, project, opts.Command, func(h lock.Holder) {
		progress.Emit(events, "Project "+project, progress.Warning, "Stale lock taken over", h.String())
	})
	if err != nil {
		return plan, err
	}
	defer func() {
		releaseCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Release(releaseCtx); err != nil {
			progress.Emit(events, "Project "+project, progress.Warning, "Lock not released", err.Error())
		}
	}()
	// Planned again under the lock: a deploy that finished meanwhile changed the specs.
	if plan, before, err = planSwarmRollback(ctx, eng, project, opts.Services); err != nil {
		return plan, err
	}
	for _, s := range plan.Steps {
		id := "Swarm " + s.Name
		progress.Emit(events, id, progress.Working, "Rolling back", s.Cause)
		if err := eng.RollbackService(ctx, s.ID, s.Version, before[s.Name].Spec); err != nil {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			return plan, fmt.Errorf("service %s: %w (nothing else was rolled back after it; run rollback again)", s.Name, err)
		}
	}
	p := opts.Project
	if p == nil {
		p = &compose.Project{Project: &types.Project{Name: project}}
	}
	return plan, waitSwarm(ctx, eng, p, plan, before, opts.WaitTimeout, events)
}

// planSwarmRollback observes the project's services and plans a rollback-service step
// for each one asked for (every one with a previous spec when none is named). Its steps
// carry the previous spec: what runs after the rollback, and the rollback config the
// wait's bound is computed from.
func planSwarmRollback(ctx context.Context, eng engine.Engine, project string, services []string) (strategies.SwarmPlan, map[string]engine.Service, error) {
	plan := strategies.SwarmPlan{Project: project}
	svcs, err := eng.ListServices(ctx, map[string]string{compose.LabelStackNamespace: project})
	if err != nil {
		return plan, nil, err
	}
	if len(svcs) == 0 {
		return plan, nil, fmt.Errorf("project %s has no Swarm service on this manager: nothing to roll back (`docker stack ls` lists the projects)", project)
	}
	slices.SortFunc(svcs, func(a, b engine.Service) int { return strings.Compare(a.Name, b.Name) })
	var unknown, without, blueGreen []string
	for _, name := range services {
		switch {
		case slices.ContainsFunc(svcs, func(s engine.Service) bool { return s.Labels[compose.LabelSwarmService] == name }):
			blueGreen = append(blueGreen, name)
		case !slices.ContainsFunc(svcs, func(s engine.Service) bool { return swarmComposeName(project, s.Name) == name }):
			unknown = append(unknown, name)
		}
	}
	if len(blueGreen) > 0 {
		return plan, nil, fmt.Errorf("%s of project %s: blue-green on Swarm keeps no old revision (it is removed once the router switched away from it); nothing rolled back: deploy the version wanted instead (a new revision, switched to once healthy)",
			strings.Join(blueGreen, ", "), project)
	}
	if len(unknown) > 0 {
		return plan, nil, fmt.Errorf("no Swarm service %s in project %s (services: %s)", strings.Join(unknown, ", "), project, strings.Join(swarmServiceNames(project, svcs), ", "))
	}
	before := map[string]engine.Service{}
	for _, s := range svcs {
		name := swarmComposeName(project, s.Name)
		if len(services) > 0 && !slices.Contains(services, name) || s.Labels[compose.LabelRole] == compose.RoleRouter {
			continue // the router: its spec follows the blue-green services, deploy changes it
		}
		if s.PreviousSpec == nil {
			if len(services) > 0 {
				without = append(without, name)
			}
			continue
		}
		before[s.Name] = s
		plan.Steps = append(plan.Steps, strategies.SwarmStep{
			Action: strategies.SwarmRollbackService, Name: s.Name, Service: name, ID: s.ID, Version: s.Version, Spec: *s.PreviousSpec,
			Cause: fmt.Sprintf("image %s → %s (the spec before its last update)", specImage(&s.Spec), specImage(s.PreviousSpec)),
		})
	}
	if len(without) > 0 {
		return plan, nil, fmt.Errorf("%w for %s of project %s: never updated, or Swarm rolled its last update back by itself (it drops the previous spec then); nothing rolled back: deploy the version wanted instead",
			ErrNoPreviousSpec, strings.Join(without, ", "), project)
	}
	if len(plan.Steps) == 0 {
		return plan, nil, fmt.Errorf("%w for any service of project %s: nothing to roll back (`docker lifecycle history` shows PREVIOUS IMAGE -): deploy the version wanted instead", ErrNoPreviousSpec, project)
	}
	return plan, before, nil
}
