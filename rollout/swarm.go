package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ErrSwarmPaused marks a Swarm update that paused (failure_action pause, or a rollback
// that failed in turn): the service runs a mix of tasks until someone acts.
var ErrSwarmPaused = errors.New("Swarm paused the update")

// swarmPoll is how often the wait reads the services' update status.
var swarmPoll = 500 * time.Millisecond

// swarmQuiet is how long an updated service whose update never started (a change Swarm
// rolls no task for, e.g. a label) must show all its tasks running to count as done.
const swarmQuiet = 3 * time.Second

// SwarmTarget reports whether deploy goes to Swarm: with --swarm (forced), which needs a
// manager, or because the engine of the context is a Swarm manager. node is the
// engine's membership, for SwarmDeployOptions.Node.
func SwarmTarget(ctx context.Context, eng engine.Engine, forced bool) (node engine.SwarmInfo, onSwarm bool, err error) {
	info, err := eng.Swarm(ctx)
	if err != nil {
		return info, false, err
	}
	if forced && !info.ControlAvailable {
		return info, false, fmt.Errorf("--swarm: the engine is not a Swarm manager (node state %q): run `docker swarm init`, or use the context of a manager", cmp.Or(info.LocalNodeState, "inactive"))
	}
	return info, info.ControlAvailable, nil
}

// SwarmDeployOptions are the deploy command's choices on Swarm.
type SwarmDeployOptions struct {
	Services []string
	DryRun   bool
	// WaitTimeout bounds the wait for each service's update (0: x-lifecycle wait-timeout,
	// plus the update's own monitor and delays).
	WaitTimeout time.Duration
	Command     string
	// Node is the manager's membership as SwarmTarget read it (zero: read it again).
	Node engine.SwarmInfo
	// Scan runs the image scan gate (ScanGate) on the manager's copy of each image
	// before anything is written; ScanDockerHost is trivy's way to the manager's engine
	// (empty: each image is streamed to trivy as a `docker save` archive).
	Scan           bool
	ScanDockerHost string
}

// DeploySwarm deploys the project onto the Swarm of a manager engine, as `docker stack
// deploy` names things: scan gate, policy gate, lock, observe, plan (strategies.PlanSwarm), create
// the overlay networks, create or update the services, then wait until Swarm finished
// each update. A service Swarm rolled back is a *RolledBackError (exit 3); one it paused
// is ErrSwarmPaused.
func DeploySwarm(ctx context.Context, eng engine.Engine, p *compose.Project, events progress.Writer, opts SwarmDeployOptions) (strategies.SwarmPlan, error) {
	if err := compose.SwarmProjectRefused(p); err != nil {
		return strategies.SwarmPlan{}, err
	}
	names := opts.Services
	if len(names) == 0 {
		names = p.ServiceNames()
	}
	objects, versions, values, err := swarmObjects(ctx, p, names)
	if err != nil {
		return strategies.SwarmPlan{}, err
	}
	// The blue-green and canary services are revisions behind the router (swarmbluegreen.go).
	specs, blueGreen := map[string]swarm.ServiceSpec{}, map[string]swarm.ServiceSpec{}
	for _, name := range names {
		if compose.SwarmBehindRouter(p, name) {
			spec, err := compose.SwarmRevisionService(p, name, versions, 0)
			if err != nil {
				return strategies.SwarmPlan{}, err
			}
			blueGreen[name] = spec
			continue
		}
		spec, err := compose.SwarmService(p, name, versions)
		if err != nil {
			return strategies.SwarmPlan{}, err
		}
		specs[name] = spec
	}
	images, err := InspectImages(ctx, eng, p)
	if err != nil {
		return strategies.SwarmPlan{}, err
	}
	if opts.Scan && !opts.DryRun {
		if err := ScanGate(ctx, eng, p, opts.Services, opts.ScanDockerHost, events); err != nil {
			return strategies.SwarmPlan{}, err
		}
	}
	if err := gatePolicy(p, images, events); err != nil {
		return strategies.SwarmPlan{}, err
	}
	node := opts.Node
	if node.Nodes == 0 {
		if node, err = eng.Swarm(ctx); err != nil {
			return strategies.SwarmPlan{}, err
		}
	}
	if opts.DryRun {
		dry := engine.NewDryRun(eng)
		dry.ReadOnlyExec = readOnlyExec // the router's config
		plan, _, _, _, err := planSwarm(ctx, dry, p, node, objects, specs, blueGreen)
		return plan, err
	}
	l, err := lock.Acquire(ctx, eng, p.Name, opts.Command, func(h lock.Holder) {
		progress.Emit(events, "Project "+p.Name, progress.Warning, "Stale lock taken over", h.String())
	})
	if err != nil {
		return strategies.SwarmPlan{}, err
	}
	defer func() {
		releaseCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Release(releaseCtx); err != nil {
			progress.Emit(events, "Project "+p.Name, progress.Warning, "Lock not released", err.Error())
		}
	}()
	// A canary's signals (pause, resume, abort, promote) are volumes on this manager, as
	// on one engine: a deploy starts and ends with none.
	clearCanarySignals(ctx, eng, p.Name)
	defer clearCanarySignals(context.WithoutCancel(ctx), eng, p.Name)
	plan, before, ids, bgState, err := planSwarm(ctx, eng, p, node, objects, specs, blueGreen)
	if err != nil || plan.Empty() {
		return plan, err
	}
	imageErrs, warnings := swarmImageProblems(p, plan.Services(), images, node)
	for _, w := range warnings {
		progress.Emit(events, "Project "+p.Name, progress.Warning, "Image check", w)
	}
	if len(imageErrs) > 0 {
		return plan, fmt.Errorf("nothing deployed: %w", errors.Join(imageErrs...))
	}
	if err := executeSwarm(ctx, eng, plan, values, ids, events); err != nil {
		return plan, err
	}
	if err := waitSwarm(ctx, eng, p, plan, before, opts.WaitTimeout, events); err != nil {
		return plan, err
	}
	if err := executeBlueGreen(ctx, eng, p, plan, ids, bgState, node, opts.WaitTimeout, events); err != nil {
		return plan, err
	}
	removeUnusedObjects(ctx, eng, plan, events)
	return plan, nil
}

// planSwarm observes the project's networks, secrets, configs and services on the
// manager and plans. ids are the IDs of the secrets and configs found, by kind and name.
func planSwarm(ctx context.Context, eng engine.Engine, p *compose.Project, node engine.SwarmInfo, objects []compose.SwarmObject, specs, blueGreen map[string]swarm.ServiceSpec) (plan strategies.SwarmPlan, before map[string]engine.Service, ids map[string]string, bg swarmBlueGreen, err error) {
	ns := map[string]string{compose.LabelStackNamespace: p.Name}
	networks, external := compose.SwarmNetworks(p)
	for _, name := range external {
		if _, err := eng.InspectNetwork(ctx, name); err != nil {
			return strategies.SwarmPlan{}, nil, nil, bg, fmt.Errorf("external network %s of project %s: %w; create it (docker network create -d overlay %s) or remove external", name, p.Name, err, name)
		}
	}
	obs := strategies.SwarmObserved{Networks: map[string]bool{}, Services: map[string]strategies.ObservedSwarmService{}}
	nets, err := eng.ListNetworks(ctx, ns)
	if err != nil {
		return strategies.SwarmPlan{}, nil, nil, bg, err
	}
	for _, n := range nets {
		obs.Networks[n.Name] = true
	}
	if obs.Objects, err = observeSwarmObjects(ctx, eng, p.Name); err != nil {
		return strategies.SwarmPlan{}, nil, nil, bg, err
	}
	ids = map[string]string{}
	for _, o := range obs.Objects {
		ids[objectKey(o.Kind, o.Name)] = o.ID
	}
	services, err := eng.ListServices(ctx, ns)
	if err != nil {
		return strategies.SwarmPlan{}, nil, nil, bg, err
	}
	before = map[string]engine.Service{}
	for _, s := range services {
		before[s.Name] = s
		var image string
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			image = cs.Image
		}
		obs.Services[s.Name] = strategies.ObservedSwarmService{ID: s.ID, Version: s.Version, SpecHash: s.Labels[compose.LabelSwarmSpec], Image: image,
			Secrets: strategies.SecretNames(s.Spec), Configs: strategies.ConfigNames(s.Spec)}
	}
	// The revisions' specs reference the secret and config versions too.
	all := maps.Clone(specs)
	for name, spec := range blueGreen {
		all[name] = spec
	}
	plan = strategies.PlanSwarm(p.Name, networks, objects, specs, obs)
	plan.Steps = slices.DeleteFunc(plan.Steps, strategies.SwarmStep.Removal)
	plan.Steps = append(plan.Steps, strategies.UnusedSwarmObjects(objects, all, obs)...)
	steps, upToDate, bg, err := planSwarmBlueGreen(ctx, eng, p, node, services, blueGreen, slices.Collect(maps.Keys(specs)))
	if err != nil {
		return strategies.SwarmPlan{}, nil, nil, bg, err
	}
	plan.WithBlueGreen(steps, upToDate)
	return plan, before, ids, bg, nil
}

// executeSwarm runs the plan's creations and updates in order (the removals wait until
// the services converged: removeUnusedObjects).
func executeSwarm(ctx context.Context, eng engine.Engine, plan strategies.SwarmPlan, values swarmValues, ids map[string]string, events progress.Writer) error {
	for _, s := range plan.Steps {
		if s.BlueGreen() {
			continue // executeBlueGreen, once these services converged
		}
		id := "Swarm " + s.Name
		if s.Service != "" {
			spec, err := withObjectIDs(s.Spec, ids)
			if err != nil {
				return err
			}
			s.Spec = spec
		}
		switch s.Action {
		case strategies.SwarmCreateSecret, strategies.SwarmCreateConfig:
			if err := createSwarmObject(ctx, eng, s, values, ids, events); err != nil {
				return err
			}
		case strategies.SwarmCreateNetwork:
			n := s.Network
			progress.Emit(events, id, progress.Working, "Creating overlay network", "")
			if err := eng.CreateNetwork(ctx, engine.NetworkSpec{Name: n.Name, Driver: n.Driver, Internal: n.Internal, Attachable: n.Attachable, Options: n.Options, Labels: n.Labels}); err != nil {
				return err
			}
			progress.Emit(events, id, progress.Done, "Created", "")
		case strategies.SwarmCreateService:
			progress.Emit(events, id, progress.Working, "Creating service", s.Cause)
			if _, err := eng.CreateService(ctx, s.Spec); err != nil {
				return err
			}
		case strategies.SwarmUpdateService:
			progress.Emit(events, id, progress.Working, "Updating service", s.Cause+"; "+s.Rollout)
			if err := eng.UpdateService(ctx, s.ID, s.Version, s.Spec); err != nil {
				return fmt.Errorf("%w; if the service changed meanwhile, deploy again", err)
			}
		}
	}
	return nil
}

// waitSwarm waits until Swarm finished every service the plan created or updated: all
// tasks running for a new service, the update's state for an updated one (completed;
// rollback_completed is a rollback; paused and rollback_paused stop the wait).
func waitSwarm(ctx context.Context, eng engine.Engine, p *compose.Project, plan strategies.SwarmPlan, before map[string]engine.Service, waitTimeout time.Duration, events progress.Writer) error {
	type pending struct {
		step     strategies.SwarmStep
		deadline time.Time
	}
	start := time.Now()
	waiting := map[string]pending{}
	for _, s := range plan.Steps {
		if s.Service != "" && !s.BlueGreen() {
			waiting[s.Name] = pending{s, start.Add(swarmBound(p, s, waitTimeout))}
		}
	}
	var rolledBack, paused, causes []string
	// why keeps Swarm's reason for a rollback (the task that failed), which the final
	// status replaces with "rollback completed".
	why := map[string]string{}
	for len(waiting) > 0 {
		services, err := eng.ListServices(ctx, map[string]string{compose.LabelStackNamespace: p.Name})
		if err != nil {
			return err
		}
		now := time.Now()
		for _, svc := range services {
			w, ok := waiting[svc.Name]
			if !ok {
				continue
			}
			id := "Swarm " + svc.Name
			state := svc.UpdateState
			asked := w.step.Action == strategies.SwarmRollbackService // a rollback we asked for, not Swarm's own
			if old, ok := before[svc.Name]; ok && w.step.Action != strategies.SwarmCreateService && svc.UpdateStarted.Equal(old.UpdateStarted) {
				state = "" // still the previous update's status: this one has not started
			}
			// Running and desired equal: during a start-first update, and while extra tasks
			// shut down, more tasks run than desired.
			converged := svc.RunningTasks == svc.DesiredTasks && (svc.DesiredTasks > 0 || wantsNoTask(w.step.Spec))
			done := false
			switch state {
			case string(swarm.UpdateStateRollbackStarted):
				if !asked && why[svc.Name] == "" {
					why[svc.Name] = svc.UpdateMessage
					progress.Emit(events, id, progress.Warning, "Swarm rolls back", svc.UpdateMessage)
				}
			case string(swarm.UpdateStateCompleted):
				done = converged
			case "":
				done = converged && (w.step.Action == strategies.SwarmCreateService || now.Sub(start) >= swarmQuiet)
			case string(swarm.UpdateStateRollbackCompleted):
				if asked {
					done = converged
					break
				}
				progress.Emit(events, id, progress.Error, "Rolled back by Swarm", svc.UpdateMessage)
				rolledBack = append(rolledBack, w.step.Service)
				causes = append(causes, fmt.Sprintf("%s: %s", svc.Name, cmp.Or(why[svc.Name], svc.UpdateMessage, "update failed")))
				delete(waiting, svc.Name)
				continue
			case string(swarm.UpdateStatePaused), string(swarm.UpdateStateRollbackPaused):
				progress.Emit(events, id, progress.Error, "Update paused by Swarm", svc.UpdateMessage)
				paused = append(paused, fmt.Sprintf("%s (%s: %s)", svc.Name, state, cmp.Or(svc.UpdateMessage, "no message")))
				delete(waiting, svc.Name)
				continue
			}
			if done {
				progress.Emit(events, id, progress.Done, "Converged", fmt.Sprintf("%d/%d tasks running", svc.RunningTasks, svc.DesiredTasks))
				delete(waiting, svc.Name)
				continue
			}
			if now.After(w.deadline) {
				return fmt.Errorf("service %s: Swarm has not converged within %s (update state %q, %d/%d tasks running%s); it goes on: watch `docker service ps %s`, or roll back with `docker service rollback %s`",
					svc.Name, w.deadline.Sub(start).Round(time.Second), cmp.Or(state, "none"), svc.RunningTasks, svc.DesiredTasks, suffix(svc.UpdateMessage), svc.Name, svc.Name)
			}
		}
		for name := range waiting {
			if !slices.ContainsFunc(services, func(s engine.Service) bool { return s.Name == name }) {
				return fmt.Errorf("service %s disappeared from the Swarm during the deploy (removed by someone?): deploy again", name)
			}
		}
		if len(waiting) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for Swarm to update %s: %w", strings.Join(slices.Sorted(maps.Keys(waiting)), ", "), ctx.Err())
		case <-time.After(swarmPoll):
		}
	}
	if len(paused) > 0 {
		return fmt.Errorf("%w: %s: fix the cause (see `docker service ps --no-trunc`), then deploy again or run `docker service rollback`", ErrSwarmPaused, strings.Join(paused, "; "))
	}
	if len(rolledBack) > 0 {
		return &RolledBackError{Services: rolledBack, Cause: errors.New(strings.Join(causes, "; ")), Swarm: true}
	}
	return nil
}

// swarmBound is how long a service's update may take: the health wait, plus for each
// batch of the update its monitor and delay.
func swarmBound(p *compose.Project, s strategies.SwarmStep, waitTimeout time.Duration) time.Duration {
	bound := waitTimeout
	if bound == 0 {
		bound = time.Duration(p.ServiceSpecs[s.Service].WaitTimeout)
	}
	if bound == 0 {
		bound = compose.DefaultWaitTimeout
	}
	u := s.Spec.UpdateConfig
	if s.Action == strategies.SwarmRollbackService {
		u = s.Spec.RollbackConfig // Swarm rolls a rollback with the rollback config
	}
	if u == nil || s.Action == strategies.SwarmCreateService {
		return bound
	}
	batches := uint64(1)
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil && u.Parallelism > 0 {
		batches = max(1, (*r.Replicas+u.Parallelism-1)/u.Parallelism)
	}
	// A rollback takes as long again.
	return bound + 2*time.Duration(batches)*(u.Monitor+u.Delay)
}

// wantsNoTask: a service scaled to 0 has converged with no task running.
func wantsNoTask(spec swarm.ServiceSpec) bool {
	r := spec.Mode.Replicated
	return r != nil && r.Replicas != nil && *r.Replicas == 0
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}
