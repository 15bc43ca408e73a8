package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// Blue-green on Swarm (docs/swarm.md): the router is a Swarm service pinned to the
// manager the plugin talks to, driven with `docker exec` into its task's container as on
// one engine; each revision of a blue-green service is a Swarm service, which the
// router reaches by its name on the overlay networks.

// swarmRouterStart bounds how long the router's task may take to run and answer.
const swarmRouterStart = 60 * time.Second

// swarmBlueGreen is what the plan of the blue-green services was made from, for the
// runtime: the router's running container on this node ("" when there is none) and the
// backends it routes to, by compose service.
type swarmBlueGreen struct {
	router string
	routes map[string][]strategies.RouteBackend
}

// serviceLabel is the engine's label of a Swarm task's container naming its service.
const serviceLabel = "com.docker.swarm.service.name"

// planSwarmBlueGreen observes the router and the revisions among the project's services
// and plans them (strategies.PlanSwarmBlueGreen). desired are the blue-green services to
// deploy (compose.SwarmRevisionService); plain are the other services deployed, which
// must not have revisions (and the blue-green ones no plain service): changing a
// service's strategy between rolling and blue-green on Swarm is refused.
func planSwarmBlueGreen(ctx context.Context, eng engine.Engine, p *compose.Project, node engine.SwarmInfo, services []engine.Service, desired map[string]swarm.ServiceSpec, plain []string) (steps []strategies.SwarmStep, upToDate []string, state swarmBlueGreen, err error) {
	state.routes = map[string][]strategies.RouteBackend{}
	observed := strategies.SwarmBlueGreenObserved{Revisions: map[string][]strategies.ObservedSwarmRevision{}}
	byName := map[string]engine.Service{}
	var problems []error
	for _, s := range services {
		byName[s.Name] = s
		if s.Name == compose.SwarmRouterName(p.Name) {
			observed.Router = &strategies.ObservedSwarmService{ID: s.ID, Version: s.Version, SpecHash: s.Labels[compose.LabelSwarmSpec]}
			continue
		}
		rev, err := strconv.Atoi(s.Labels[compose.LabelSwarmRevision])
		if err != nil {
			continue
		}
		name := s.Labels[compose.LabelSwarmService]
		var image string
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			image = cs.Image
		}
		observed.Revisions[name] = append(observed.Revisions[name], strategies.ObservedSwarmRevision{
			Name: s.Name, ID: s.ID, Revision: rev, SpecHash: s.Labels[compose.LabelSwarmSpec], Image: image})
	}
	for _, name := range plain {
		if revs := observed.Revisions[name]; len(revs) > 0 {
			problems = append(problems, fmt.Errorf("service %s runs as blue-green revisions on Swarm (%s) and is now %s: changing the strategy of a deployed service is not supported on Swarm yet; set blue-green again, or remove the project first (docker lifecycle down)",
				name, revs[0].Name, p.ServiceSpecs[name].Strategy))
		}
	}
	for name := range desired {
		if s, ok := byName[compose.SwarmServiceName(p.Name, name)]; ok {
			problems = append(problems, fmt.Errorf("service %s runs as the Swarm service %s (rolling) and is now blue-green: changing the strategy of a deployed service is not supported on Swarm yet; set rolling again, or remove the project first (docker lifecycle down)", name, s.Name))
		}
	}
	if len(problems) > 0 {
		return nil, nil, state, fmt.Errorf("nothing deployed: %w", errors.Join(problems...))
	}
	if len(desired) == 0 {
		return nil, nil, state, nil
	}
	if observed.Router != nil {
		if state.router, err = swarmRouterContainer(ctx, eng, p.Name, node); err != nil {
			return nil, nil, state, err
		}
		out, err := eng.Exec(ctx, state.router, ctlGetConfig, nil)
		if err != nil {
			return nil, nil, state, fmt.Errorf("%w: read the config of %s: %w", ErrRouter, compose.SwarmRouterName(p.Name), err)
		}
		cfg, err := router.DecodeConfig(out)
		if err != nil {
			return nil, nil, state, fmt.Errorf("%w: config of %s: %w", ErrRouter, compose.SwarmRouterName(p.Name), err)
		}
		routesFromConfig(cfg, state.routes)
		for name, revs := range observed.Revisions {
			for i := range revs {
				revs[i].Routed = slices.ContainsFunc(state.routes[name], func(b strategies.RouteBackend) bool {
					return b.Container == revs[i].Name && b.Weight > 0
				})
			}
		}
	}
	canary := map[string][]compose.CanaryStep{}
	for name := range desired {
		if spec := p.ServiceSpecs[name]; spec.Strategy == compose.StrategyCanary {
			canary[name] = spec.Canary.Steps
		}
	}
	arch, err := eng.Arch(ctx)
	if err != nil {
		return nil, nil, state, err
	}
	image, err := agentimage.TagFor(arch)
	if err != nil {
		return nil, nil, state, err
	}
	ports, err := compose.SwarmRoutedPorts(p)
	if err != nil {
		return nil, nil, state, err
	}
	routerSpec := compose.SwarmRouterService(p, image, node.NodeID, ports, compose.SwarmRouterNetworks(p))
	steps, upToDate = strategies.PlanSwarmBlueGreen(p.Name, routerSpec, desired, canary, observed)
	return steps, upToDate, state, nil
}

// swarmRouterContainer is the running container of the router's task on this node; a
// router running elsewhere (the plugin talks to another manager than the one it was
// pinned to) cannot be driven from here.
func swarmRouterContainer(ctx context.Context, eng engine.Engine, project string, node engine.SwarmInfo) (string, error) {
	name := compose.SwarmRouterName(project)
	cs, err := eng.ListContainers(ctx, map[string]string{serviceLabel: name})
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.State == "running" {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("%w: %s has no running task on this node (%s): it is pinned to the manager that first deployed the project's blue-green services; run docker lifecycle against that manager's engine, or wait until Swarm restarted it (docker service ps %s)",
		ErrRouter, name, node.NodeName, name)
}

// waitSwarmRouter waits until the router's task runs on this node in a container other
// than old and its control socket answers.
func waitSwarmRouter(ctx context.Context, eng engine.Engine, project, old string, node engine.SwarmInfo) (string, error) {
	deadline := time.Now().Add(swarmRouterStart)
	var last error
	for {
		id, err := swarmRouterContainer(ctx, eng, project, node)
		if err == nil && id != old {
			if _, err = eng.Exec(ctx, id, ctlHealthz, nil); err == nil {
				return id, nil
			}
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w: %s did not start within %s: %v; see docker service ps --no-trunc %s", ErrRouter, compose.SwarmRouterName(project), swarmRouterStart, last, compose.SwarmRouterName(project))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(swarmPoll):
		}
	}
}

// executeBlueGreen runs the router and blue-green steps of the plan, in order: the
// router, then for each service its new revision (removed again if it fails before the
// switch: the old one serves on), the switch, the removal of the old revisions.
func executeBlueGreen(ctx context.Context, eng engine.Engine, p *compose.Project, plan strategies.SwarmPlan, ids map[string]string, state swarmBlueGreen, node engine.SwarmInfo, waitTimeout time.Duration, events progress.Writer) error {
	var client *routerClient
	if state.router != "" {
		client = newRouterClient(eng, state.router)
	}
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	push := func() error {
		_, err := pushWith(ctx, p, client, state.routes)
		return err
	}
	for _, s := range plan.Steps {
		if !s.BlueGreen() {
			continue
		}
		id := "Swarm " + s.Name
		switch s.Action {
		case strategies.SwarmCreateRouter, strategies.SwarmUpdateRouter:
			progress.Emit(events, id, progress.Working, "Starting the router", s.Cause)
			arch, err := eng.Arch(ctx)
			if err != nil {
				return err
			}
			if _, err := agentimage.Ensure(ctx, eng, arch); err != nil {
				return fmt.Errorf("%w: %w", ErrRouter, err)
			}
			if s.Action == strategies.SwarmCreateRouter {
				_, err = eng.CreateService(ctx, s.Spec)
			} else {
				err = eng.UpdateService(ctx, s.ID, s.Version, s.Spec)
			}
			if err != nil {
				return fmt.Errorf("%w: %w", ErrRouter, err)
			}
			cid, err := waitSwarmRouter(ctx, eng, p.Name, state.router, node)
			if err != nil {
				return err
			}
			if client != nil {
				client.Close()
			}
			state.router, client = cid, newRouterClient(eng, cid)
			// A new task starts with no config: it gets what the project serves now.
			if err := push(); err != nil {
				return err
			}
			progress.Emit(events, id, progress.Done, "Started", "traffic router on node "+node.NodeName)
		case strategies.SwarmCreateService:
			if err := createRevision(ctx, eng, p, s, ids, state, waitTimeout, events); err != nil {
				return err
			}
		case strategies.SwarmCanaryStep:
			if err := canaryStep(ctx, eng, p, s, client, state, push, events); err != nil {
				return err
			}
		case strategies.SwarmSwitch:
			progress.Emit(events, id, progress.Working, "Switching", s.Cause)
			target := compose.SwarmRevisionName(p.Name, s.Service, s.Revision)
			state.routes[s.Service] = []strategies.RouteBackend{{Container: target, Revision: s.Revision, Weight: 1}}
			if err := push(); err != nil {
				return fmt.Errorf("switch %s to %s: %w", s.Service, target, err)
			}
			progress.Emit(events, id, progress.Done, "Switched", s.Cause)
		case strategies.SwarmRemoveService:
			progress.Emit(events, id, progress.Working, "Removing", s.Cause)
			if err := eng.RemoveService(ctx, s.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("%w; the router no longer sends it traffic: remove it with docker service rm %s", err, s.Name)
			}
			progress.Emit(events, id, progress.Done, "Removed", "")
		}
	}
	return nil
}

// canaryStep gives the new revision s.Weight percent of the service's traffic for
// s.Pause and judges it on the router's counters of that window (as on one engine:
// canaryWindow, judge), honouring the operator's signals as on one engine
// (waitCanaryStep): pause holds the step, promote ends it unjudged and skips the steps
// after it (the switch follows), abort fails it. A failed analysis or an abort sends all
// traffic back to the revisions that served before, and removes the new one once
// drained: a *RolledBackError (exit 3).
func canaryStep(ctx context.Context, eng engine.Engine, p *compose.Project, s strategies.SwarmStep, client *routerClient, state swarmBlueGreen, push func() error, events progress.Writer) error {
	id := "Swarm " + s.Name
	serving := slices.Clone(state.routes[s.Service])
	target := compose.SwarmRevisionName(p.Name, s.Service, s.Revision)
	signals, err := canarySignals(ctx, eng, p.Name, s.Service)
	if err != nil {
		return err
	}
	if signals[SignalPromote] {
		progress.Emit(events, id, progress.Done, "Skipped", fmt.Sprintf("%s %d%%: promoted by `docker lifecycle promote`", s.Service, s.Weight))
		return nil
	}
	var backends []strategies.RouteBackend
	for _, b := range serving {
		if b.Weight > 0 && b.Container != target {
			b.Weight = 100 - s.Weight
			backends = append(backends, b)
		}
	}
	backends = append(backends, strategies.RouteBackend{Container: target, Revision: s.Revision, Weight: s.Weight})
	progress.Emit(events, id, progress.Working, "Canary", s.Cause)
	before, err := routerStats(ctx, client)
	if err != nil {
		return err
	}
	state.routes[s.Service] = backends
	if err := push(); err != nil {
		return fmt.Errorf("canary %s %d%%: %w", s.Service, s.Weight, err)
	}
	var verdict, detail string
	promoted, err := waitCanaryStep(ctx, eng, p.Name, s.Service, s.Pause, events, id, nil)
	if promoted {
		return nil
	}
	if err == nil {
		var after router.Snapshot
		if after, err = routerStats(ctx, client); err == nil {
			w := canaryWindow(s.Service, revisionGroup(s.Revision), before, after)
			verdict = judge(w, p.ServiceSpecs[s.Service].Canary.Analysis)
			detail = fmt.Sprintf("revision %d: %d requests, %.2f%% errors, p99 %s", s.Revision, w.Requests, 100*w.errorRate(), w.p99())
		}
	}
	if err == nil && verdict == "" {
		progress.Emit(events, id, progress.Done, "Analysis passed", detail)
		return nil
	}
	if err == nil {
		err = fmt.Errorf("%w: %s (%s)", ErrAnalysisFailed, verdict, detail)
	}
	if errors.Is(err, ErrCanaryAborted) {
		progress.Emit(events, id, progress.Error, "Canary aborted", err.Error())
	} else {
		progress.Emit(events, id, progress.Error, "Canary failed", err.Error())
	}
	// Back to what served before (the new revision drains), then the new one goes.
	state.routes[s.Service] = serving
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, perr := pushWith(cleanup, p, client, state.routes); perr != nil {
		return fmt.Errorf("%w; sending %s back to the revision that served failed too: %w (deploy again)", err, s.Service, perr)
	}
	if rerr := removeServiceNamed(cleanup, eng, p.Name, target); rerr != nil {
		err = fmt.Errorf("%w; removing %s failed: %w (docker service rm %s)", err, target, rerr, target)
	}
	return &RolledBackError{Services: []string{s.Service}, Cause: err}
}

// pushWith sends the router the config of routes, waiting for removed backends to drain.
func pushWith(ctx context.Context, p *compose.Project, client *routerClient, routes map[string][]strategies.RouteBackend) ([]byte, error) {
	cfg, drain, err := swarmRouterConfig(p, routes)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	out, err := client.do(ctx, "put-config", body, drain+time.Second)
	if err != nil {
		return nil, fmt.Errorf("%w: apply config: %w", ErrRouter, err)
	}
	return out, nil
}

// removeServiceNamed removes the project's Swarm service of that name.
func removeServiceNamed(ctx context.Context, eng engine.Engine, project, name string) error {
	services, err := eng.ListServices(ctx, map[string]string{compose.LabelStackNamespace: project})
	if err != nil {
		return err
	}
	for _, svc := range services {
		if svc.Name == name {
			if err := eng.RemoveService(ctx, svc.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// createRevision creates a revision's service and waits until its tasks run (healthy)
// and the router reaches it by name. A task that fails, or a wait that times out,
// removes the revision again: nothing was switched, the old revision serves on
// (a *RolledBackError, exit 3, when there is one).
func createRevision(ctx context.Context, eng engine.Engine, p *compose.Project, s strategies.SwarmStep, ids map[string]string, state swarmBlueGreen, waitTimeout time.Duration, events progress.Writer) error {
	id := "Swarm " + s.Name
	spec, err := withObjectIDs(s.Spec, ids)
	if err != nil {
		return err
	}
	progress.Emit(events, id, progress.Working, "Creating service", s.Cause)
	sid, err := eng.CreateService(ctx, spec)
	if err != nil {
		return err
	}
	err = waitRevision(ctx, eng, p, s, sid, waitTimeout, events)
	if err == nil {
		err = probeRevision(ctx, eng, p, s, state.router)
	}
	if err == nil {
		progress.Emit(events, id, progress.Done, "Healthy", "")
		return nil
	}
	progress.Emit(events, id, progress.Error, "Failed", err.Error())
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	removeErr := eng.RemoveService(cleanup, sid)
	if removeErr != nil {
		err = fmt.Errorf("%w; removing %s failed too: %w (docker service rm %s)", err, s.Name, removeErr, s.Name)
	}
	if len(state.routes[s.Service]) > 0 && !errors.Is(err, context.Canceled) {
		return &RolledBackError{Services: []string{s.Service}, Cause: err}
	}
	return fmt.Errorf("%w: blue-green %s: %w; nothing was switched", ErrDeployFailed, s.Service, err)
}

// waitRevision waits until every task of the new revision runs (Swarm reports a task
// with a healthcheck running once it is healthy). The first task that ends (complete,
// failed, rejected) ends the wait: blue-green never switches to a revision whose tasks
// fail.
func waitRevision(ctx context.Context, eng engine.Engine, p *compose.Project, s strategies.SwarmStep, sid string, waitTimeout time.Duration, events progress.Writer) error {
	bound := waitTimeout
	if bound == 0 {
		bound = time.Duration(p.ServiceSpecs[s.Service].WaitTimeout)
	}
	if bound == 0 {
		bound = compose.DefaultWaitTimeout
	}
	deadline := time.Now().Add(bound)
	ns := map[string]string{compose.LabelStackNamespace: p.Name}
	for {
		services, err := eng.ListServices(ctx, ns)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(services, func(svc engine.Service) bool { return svc.ID == sid })
		if i < 0 {
			return fmt.Errorf("service %s disappeared from the Swarm during the deploy (removed by someone?)", s.Name)
		}
		svc := services[i]
		if svc.DesiredTasks > 0 && svc.RunningTasks == svc.DesiredTasks {
			progress.Emit(events, "Swarm "+s.Name, progress.Working, "Running", fmt.Sprintf("%d/%d tasks running", svc.RunningTasks, svc.DesiredTasks))
			return nil
		}
		tasks, err := eng.ListTasks(ctx, ns)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			if t.ServiceID == sid && taskEnded(t.State) {
				why := t.Err
				if why == "" {
					// Swarm stops a task whose healthcheck fails: a process that exits
					// cleanly on SIGTERM ends its task complete, with no error (seen here).
					why = "it ended before every task ran healthy (Swarm stops a task that turns unhealthy)"
				}
				return fmt.Errorf("revision %d of %s: task %s.%d %s: %s", s.Revision, s.Service, s.Name, t.Slot, t.State, why)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("revision %d of %s: %d/%d tasks running after %s (wait timeout; see docker service ps --no-trunc %s)", s.Revision, s.Service, svc.RunningTasks, svc.DesiredTasks, bound, s.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(swarmPoll):
		}
	}
}

// taskEnded: a task of a new revision in one of these states never serves; Swarm
// replaces it, but blue-green does not switch to a revision whose tasks end.
func taskEnded(state string) bool {
	switch swarm.TaskState(state) {
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// probeRevision checks from inside the router that it reaches the new revision by name
// on each routed port (the name resolves once the overlay's service discovery has it).
func probeRevision(ctx context.Context, eng engine.Engine, p *compose.Project, s strategies.SwarmStep, routerID string) error {
	if routerID == "" {
		return nil // a dry run, or no router: nothing to probe from
	}
	ports, err := compose.SwarmRoutedPorts(p)
	if err != nil {
		return err
	}
	seen := map[int]bool{}
	for _, rp := range ports {
		if rp.Service != s.Service || seen[rp.Target] {
			continue
		}
		seen[rp.Target] = true
		target := net.JoinHostPort(s.Name, strconv.Itoa(rp.Target))
		if out, err := eng.Exec(ctx, routerID, []string{"/agent", "probe", "-timeout", "15s", "tcp", target}, nil); err != nil {
			return fmt.Errorf("the router does not reach %s: %w %s", target, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// swarmRouterConfig is the router's config on Swarm: one route per published port of a
// blue-green service, its backends the revision services by name; drain is the longest
// drain bound.
func swarmRouterConfig(p *compose.Project, routes map[string][]strategies.RouteBackend) (router.Config, time.Duration, error) {
	ports, err := compose.SwarmRoutedPorts(p)
	if err != nil {
		return router.Config{}, 0, err
	}
	cfg := router.Config{Version: router.ConfigVersion}
	var drain time.Duration
	for _, rp := range ports {
		cfg.Routes = append(cfg.Routes, routeOf(p, rp, routes[rp.Service]))
		drain = max(drain, time.Duration(p.ServiceSpecs[rp.Service].Drain))
	}
	return cfg, drain, nil
}
