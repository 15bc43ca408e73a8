package rollout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ErrDeployFailed marks a deploy that stopped on a failed step; the message says which
// container failed and why.
var ErrDeployFailed = errors.New("deploy failed")

// cleanupTimeout bounds the cleanup after a failure or Ctrl-C, which runs on a fresh
// context because the deploy's own may be cancelled.
const cleanupTimeout = 60 * time.Second

// ExecOptions tune plan execution.
type ExecOptions struct {
	// WaitTimeout overrides every service's x-lifecycle wait-timeout when non-zero.
	WaitTimeout time.Duration
	// PollInterval is the longest pause between health polls (default 250ms); the first
	// polls come sooner, because most containers pass within their first seconds.
	PollInterval time.Duration
	// Checkpoint, if set, is called before each step runs (crash tests stop there).
	Checkpoint func(strategies.Step)
	// Images are the project's images as inspected (their users own secret files).
	Images Images
	// Accounts are the users and groups of images, by image ID, read for services
	// whose secrets belong to a user name (resolveSecretOwners).
	Accounts map[string]*compose.Accounts
	// SecretValues are the secrets' values, read before the deploy wrote anything;
	// a secret missing here is read when a container needs it.
	SecretValues map[string][]byte
	// Result is what a successful service rollout is recorded as in its revision
	// history (default ResultDeployed; `rollback` records ResultRollback).
	Result string
	// Rollback names the services `rollback` takes back to a retained revision: their
	// rollout runs under deploy.rollback_config, as their plan does.
	Rollback map[string]int
	// Created, if set, is told the ID of each container this run created (Deploy
	// inspects it for the policy check while the run goes on).
	Created func(id string)
	// Trigger and Reason go into the revision record of a successful rollout: what
	// started it, when not a person's command (TriggerGuardRollback), and why.
	Trigger, Reason string
	// Backups is the pre-deploy backup's location per service (predeploy.go), recorded
	// on each of those services' revision records.
	Backups map[string]string
	// View, if set, is given the rollout view every second while the plan runs, and
	// once more with the results (the terminal view of deploy, rollback and promote);
	// Holder is the lock holder it shows.
	View   func(RolloutView)
	Holder lock.Holder
}

// executor runs one plan; it remembers what it created so a failure can undo it.
type executor struct {
	eng      engine.Engine
	desired  *compose.Desired
	project  *compose.Project // desired.Project
	observed strategies.Observed
	events   progress.Writer
	opts     ExecOptions

	mu              sync.Mutex
	ids             map[string]string // container name → ID, for containers created in this run
	createdFor      map[string]string // container name → service, for containers created in this run
	createdRevision map[string]int    // container name → revision, for containers created in this run
	createdNetworks []string
	healthy         map[string]bool // containers created in this run that passed their gate
	// per service: steps done, and the containers this run stopped or started
	done    map[string]int
	stopped map[string][]strategies.Step
	started map[string][]strategies.Step

	// routeMu guards the router state: each service's backends and the router container.
	routeMu sync.Mutex
	routes  map[string][]strategies.RouteBackend
	routers map[string]*routerClient // by router key: "" the project's, else the service's
	failed  string                   // the service whose step failed first
	// state is what the rollout publishes for `watch` (rolloutstate.go).
	state *statePublisher

	// tolerated failures (see tolerate.go), guarded by mu
	tolerated     map[string]int    // per service
	newContainers map[string]int    // per routed service: new containers the plan waits for
	substitutes   map[string]string // failed new container → old container keeping its place
	failedNew     []string          // failed new containers with no old one to fall back to
	warnings      []string

	secretValues map[string][]byte            // read once per deploy, guarded by mu
	accounts     map[string]*compose.Accounts // image ID → its users and groups, guarded by mu

	timeline *timelineRecorder // the events and samples each revision record keeps

	archive *LogArchive // x-lifecycle.logs.archive: removed containers' logs go there

	anon *anonymousVolumes // the old containers' anonymous volumes (anonymousvolumes.go)
}

// Execute runs the plan's steps, each as soon as the steps it waits for are done, so
// independent services roll in parallel. On failure or cancellation it stops starting
// new steps, waits for the running ones, removes what this run created and did not
// bring up, and returns the first error.
func Execute(ctx context.Context, eng engine.Engine, d *compose.Desired, observed strategies.Observed, plan strategies.Plan, events progress.Writer, opts ExecOptions) error {
	if opts.PollInterval == 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	p := d.Project
	timeline := newTimelineRecorder(events, plan, time.Now())
	events = timeline
	x := &executor{eng: eng, desired: d, project: p, observed: observed, events: events, opts: opts, timeline: timeline,
		ids: map[string]string{}, createdFor: map[string]string{}, createdRevision: map[string]int{}, healthy: map[string]bool{},
		done: map[string]int{}, stopped: map[string][]strategies.Step{}, started: map[string][]strategies.Step{},
		routes:    maps.Clone(observed.Routes),
		tolerated: map[string]int{}, newContainers: map[string]int{}, substitutes: map[string]string{},
		secretValues: maps.Clone(opts.SecretValues), accounts: maps.Clone(opts.Accounts)}
	if x.accounts == nil {
		x.accounts = map[string]*compose.Accounts{}
	}
	x.archive = ProjectLogArchive(p)
	x.anon = newAnonymousVolumes(plan, observed)
	if x.secretValues == nil {
		x.secretValues = map[string][]byte{}
	}
	for _, s := range plan.Steps {
		if s.Action == strategies.WaitHealthy && p.ServiceSpecs[s.Service].Routed() {
			x.newContainers[s.Service]++
		}
	}
	if x.routes == nil {
		x.routes = map[string][]strategies.RouteBackend{}
	}
	x.routers = map[string]*routerClient{}
	if observed.Router != nil {
		x.routers[""] = observedRouterClient(eng, *observed.Router)
	}
	for service, r := range observed.ServiceRouters {
		x.routers[service] = observedRouterClient(eng, *r)
	}
	for _, s := range plan.Steps {
		if ds := d.Services[s.Service]; ds.Behind && s.Action == strategies.Route && x.routers[ds.RouterKey] != nil {
			go x.routers[ds.RouterKey].warm(ctx)
		}
	}
	defer func() {
		x.routeMu.Lock()
		defer x.routeMu.Unlock()
		for _, c := range x.routers {
			c.Close()
		}
	}()
	stopSampling := x.startSampler(timeline, plan)
	defer stopSampling()
	// Published for `watch` until the records are written (they hold the result).
	x.state = newStatePublisher(ctx, eng, d, plan, opts.Result == ResultRollback, events, time.Now())
	x.state.timeline = timeline
	defer x.state.close()
	// Stopped once the records are written, before the state is removed: its last
	// view has the results.
	defer startRolloutView(ctx, eng, p.Name, opts.Holder, nil, opts.View)()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(map[int]chan struct{}, len(plan.Steps))
	for _, s := range plan.Steps {
		done[s.ID] = make(chan struct{})
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for _, s := range plan.Steps {
		wg.Add(1)
		go func(s strategies.Step) {
			defer wg.Done()
			for _, dep := range s.After {
				select {
				case <-done[dep]:
				case <-runCtx.Done():
					return
				}
			}
			if runCtx.Err() != nil {
				return
			}
			if opts.Checkpoint != nil {
				opts.Checkpoint(s)
			}
			err := x.run(runCtx, s)
			if err != nil && errors.Is(err, ErrUnhealthy) && runCtx.Err() == nil && x.tolerates(s) {
				err = x.tolerate(runCtx, s, err)
			}
			if err != nil {
				x.mu.Lock()
				if x.failed == "" && runCtx.Err() == nil {
					x.failed = s.Service
				}
				if s.Action == strategies.Stop {
					// A failed stop may still have stopped the container (cut short by
					// the deploy's end, an engine timeout): the rollback starts it.
					x.stopped[s.Service] = append(x.stopped[s.Service], s)
				}
				x.mu.Unlock()
				fail(err)
				return
			}
			x.mu.Lock()
			x.done[s.Service]++
			switch s.Action {
			case strategies.Stop:
				x.stopped[s.Service] = append(x.stopped[s.Service], s)
			case strategies.Start:
				x.started[s.Service] = append(x.started[s.Service], s)
			}
			x.mu.Unlock()
			close(done[s.ID])
		}(s)
	}
	wg.Wait()
	x.pruneLogArchive()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr == nil {
		for _, w := range x.warnings {
			progress.Emit(x.events, "Project "+p.Name, progress.Warning, w, "")
		}
		stopSampling()
		x.recordHistory(plan, nil, nil)
		return nil
	}
	if ctx.Err() != nil && !errors.Is(firstErr, context.Canceled) {
		firstErr = fmt.Errorf("%w (interrupted)", context.Canceled)
	}
	rolledBack, revertErr := x.revert(plan, firstErr)
	x.cleanup()
	x.stopFailedRecreateRollback(plan)
	stopSampling()
	x.recordHistory(plan, rolledBack, firstErr)
	switch {
	case revertErr != nil:
		return fmt.Errorf("%w; the rollback failed too: %w", firstErr, revertErr)
	case len(rolledBack) > 0:
		return &RolledBackError{Services: rolledBack, Cause: firstErr}
	}
	return firstErr
}

func containerID(name string) string { return "Container " + name }

func (x *executor) run(ctx context.Context, s strategies.Step) error {
	switch s.Action {
	case strategies.CreateNetwork:
		return x.createNetwork(ctx, s)
	case strategies.CreateVolume:
		return x.createVolume(ctx, s)
	case strategies.Stop:
		if x.kept(s.Target) {
			_, key := x.updateConfig(s.Service)
			progress.Emit(x.events, containerID(s.Target), progress.Warning, "Kept", "its replacement failed (tolerated by "+key+")")
			return nil
		}
		if svc, ok := x.project.Project.Services[s.Service]; ok && len(svc.PreStop) > 0 {
			// A failing pre_stop hook does not keep the old container: it is logged.
			if err := x.runHooks(ctx, s, s.ContainerID, "pre_stop", svc.PreStop); err != nil {
				progress.Emit(x.events, containerID(s.Target), progress.Warning, "Hook failed", err.Error())
			}
		}
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Stopping", s.Cause)
		if err := x.eng.StopContainer(ctx, s.ContainerID, "", nil); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return x.stepError(s, err)
		}
		progress.Emit(x.events, containerID(s.Target), progress.Done, "Stopped", "")
	case strategies.Remove:
		if x.archive != nil && s.ContainerID != "" {
			x.archiveLogs(ctx, s)
		}
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Removing", s.Cause)
		keepVolumes := x.beforeRemove(ctx, s)
		if err := x.eng.RemoveContainer(ctx, s.ContainerID, !keepVolumes); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return x.stepError(s, err)
		}
		if s.Service != "" && len(x.project.Project.Services[s.Service].Secrets) > 0 {
			x.removeSecretsOf(ctx, s.Target)
		}
		progress.Emit(x.events, containerID(s.Target), progress.Done, "Removed", "")
	case strategies.Rename:
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Renaming", "to "+s.RenameTo+": "+s.Cause)
		if err := x.eng.RenameContainer(ctx, s.ContainerID, s.RenameTo); err != nil {
			return x.stepError(s, err)
		}
		progress.Emit(x.events, containerID(s.Target), progress.Done, "Renamed", s.RenameTo)
	case strategies.Create:
		return x.create(ctx, s)
	case strategies.Start:
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Starting", s.Cause)
		if err := x.eng.StartContainer(ctx, x.idOf(s)); err != nil {
			return x.stepError(s, startHint(err))
		}
		if svc, ok := x.project.Project.Services[s.Service]; ok && len(svc.PostStart) > 0 {
			if err := x.runHooks(ctx, s, x.idOf(s), "post_start", svc.PostStart); err != nil {
				return x.stepError(s, err)
			}
		}
		progress.Emit(x.events, containerID(s.Target), progress.Done, "Started", "")
	case strategies.WaitHealthy, strategies.WaitCompleted:
		return x.wait(ctx, s)
	case strategies.EnsureRouter:
		return x.ensureRouter(ctx, s)
	case strategies.Route:
		return x.route(ctx, s)
	case strategies.Analyze:
		return x.analyze(ctx, s)
	case strategies.Delay:
		progress.Emit(x.events, "Service "+s.Service, progress.Working, "Waiting", fmt.Sprintf("%s %s", s.Cause, time.Duration(s.Duration)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(s.Duration)):
		}
		progress.Emit(x.events, "Service "+s.Service, progress.Done, "Waited", s.Cause)
	default:
		return fmt.Errorf("step %d: unknown action %q", s.ID, s.Action)
	}
	return nil
}

func (x *executor) stepError(s strategies.Step, err error) error {
	// The progress line gets the first line only: the diagnostics that follow (health
	// check output, log lines) are in the returned error, printed once at the end.
	detail, _, _ := strings.Cut(err.Error(), "\n")
	progress.Emit(x.events, containerID(s.Target), progress.Error, "Error", detail)
	if s.Service != "" {
		return fmt.Errorf("%w: service %q: %s %s: %w", ErrDeployFailed, s.Service, s.Action, s.Target, err)
	}
	return fmt.Errorf("%w: %s %s: %w", ErrDeployFailed, s.Action, s.Target, err)
}

// startHint makes the engine's port errors say what to do.
func startHint(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "port is already allocated") || strings.Contains(msg, "address already in use") {
		return fmt.Errorf("%w (%w: free the port or change the published port)", err, strategies.ErrPortTaken)
	}
	return err
}

func (x *executor) idOf(s strategies.Step) string {
	if s.ContainerID != "" {
		return s.ContainerID
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.ids[s.Target]
}

func (x *executor) createNetwork(ctx context.Context, s strategies.Step) error {
	id := "Network " + s.Target
	networks, _ := compose.Networks(x.project)
	for _, n := range networks {
		if n.Name != s.Target {
			continue
		}
		progress.Emit(x.events, id, progress.Working, "Creating", s.Cause)
		if err := x.eng.CreateNetwork(ctx, engine.NetworkSpec(n)); err != nil {
			progress.Emit(x.events, id, progress.Error, "Error", err.Error())
			return fmt.Errorf("%w: %w", ErrDeployFailed, err)
		}
		x.mu.Lock()
		x.createdNetworks = append(x.createdNetworks, n.Name)
		x.mu.Unlock()
		progress.Emit(x.events, id, progress.Done, "Created", "")
		return nil
	}
	return fmt.Errorf("step %d: network %s is not in the project", s.ID, s.Target)
}

func (x *executor) createVolume(ctx context.Context, s strategies.Step) error {
	id := "Volume " + s.Target
	volumes, _ := compose.Volumes(x.project)
	for _, v := range volumes {
		if v.Name != s.Target {
			continue
		}
		progress.Emit(x.events, id, progress.Working, "Creating", s.Cause)
		if _, err := x.eng.CreateVolume(ctx, engine.VolumeSpec(v)); err != nil {
			progress.Emit(x.events, id, progress.Error, "Error", err.Error())
			return fmt.Errorf("%w: %w", ErrDeployFailed, err)
		}
		progress.Emit(x.events, id, progress.Done, "Created", "")
		return nil
	}
	return fmt.Errorf("step %d: volume %s is not in the project", s.ID, s.Target)
}

func (x *executor) create(ctx context.Context, s strategies.Step) error {
	spec, err := compose.Container(x.project, s.Service, compose.ReplicaLabels{
		Number: s.Number, Revision: s.Revision, ConfigHash: s.ConfigHash,
		ImageID: x.observed.ImageIDs[x.desired.Services[s.Service].Image],
	})
	if err != nil {
		return x.stepError(s, err)
	}
	progress.Emit(x.events, containerID(s.Target), progress.Working, "Creating", s.Cause)
	if len(x.project.Project.Services[s.Service].Secrets) > 0 {
		x.mu.Lock()
		x.createdFor[s.Target] = s.Service // so cleanup removes the secrets holder too
		x.ids[s.Target] = ""
		x.mu.Unlock()
		if err := x.prepareSecrets(ctx, s.Service, s.Target, &spec); err != nil {
			return x.stepError(s, err)
		}
	}
	if err := resolveServiceRefs(ctx, x.eng, x.project.Name, &spec); err != nil {
		return x.stepError(s, err)
	}
	if err := x.inheritAnonymousVolumes(ctx, s, &spec); err != nil {
		return x.stepError(s, err)
	}
	id, err := x.eng.CreateContainer(ctx, engineSpec(spec))
	if errors.Is(err, engine.ErrNameInUse) && x.removeLeftover(ctx, s) {
		id, err = x.eng.CreateContainer(ctx, engineSpec(spec))
	}
	if id != "" {
		x.mu.Lock()
		x.ids[s.Target] = id
		x.createdFor[s.Target] = s.Service
		x.createdRevision[s.Target] = s.Revision
		x.mu.Unlock()
	}
	if err != nil {
		return x.stepError(s, err)
	}
	if err := copyFiles(ctx, x.eng, id, spec.Files); err != nil {
		return x.stepError(s, err)
	}
	if x.opts.Created != nil {
		x.opts.Created(id)
	}
	progress.Emit(x.events, containerID(s.Target), progress.Done, "Created", fmt.Sprintf("revision %d", s.Revision))
	return nil
}

// removeLeftover removes the container that holds s's name when it is exactly the one
// s creates, never started: the create of a deploy killed just before (its request
// was still in the engine when the next deploy observed the project, so the plan did
// not know it). It reports whether the name is free now; anything else keeps the
// conflict, which names the container.
func (x *executor) removeLeftover(ctx context.Context, s strategies.Step) bool {
	d, err := x.eng.InspectContainer(ctx, s.Target)
	if err != nil || d.State != "created" || d.Labels[compose.LabelProject] != x.project.Name ||
		d.Labels[compose.LabelService] != s.Service || d.Labels[compose.LabelRevision] != strconv.Itoa(s.Revision) ||
		d.Labels[compose.LabelConfigHash] != s.ConfigHash {
		return false
	}
	if err := x.eng.RemoveContainer(ctx, d.ID, true); err != nil {
		return false
	}
	progress.Emit(x.events, containerID(s.Target), progress.Warning, "Removed a leftover", "created by an interrupted deploy and never started; created again")
	return true
}

// cleanup removes the containers this run created that did not pass their health gate
// (with their anonymous volumes) and the networks it created that are now unused, so a
// failed deploy leaves nothing behind; the next deploy starts them afresh. When
// x-lifecycle.logs.archive is set, the removed containers' logs are archived first:
// they are what explains the failure afterwards.
func (x *executor) cleanup() {
	x.mu.Lock()
	defer x.mu.Unlock()
	var failed []string
	for name, id := range x.ids {
		if !x.healthy[name] && id != "" {
			failed = append(failed, name)
		}
	}
	sort.Strings(failed)
	if x.archive != nil && len(failed) > 0 {
		// The archives have a budget of their own, so a slow read cannot leave the
		// containers behind: the removal below gets its full timeout.
		actx, acancel := context.WithTimeout(context.Background(), cleanupTimeout)
		for _, name := range failed {
			archiveBeforeRemove(actx, x.eng, x.archive, x.project.Name, x.createdFor[name], x.createdRevision[name], name, x.ids[name], x.events)
		}
		acancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	for name, id := range x.ids {
		if x.healthy[name] {
			continue
		}
		if service := x.createdFor[name]; service != "" && len(x.project.Project.Services[service].Secrets) > 0 {
			defer x.removeSecretsOf(ctx, name) // after the container that mounts the tmpfs
		}
		if id == "" {
			continue // its secrets were prepared, the container never created
		}
		progress.Emit(x.events, containerID(name), progress.Working, "Removing", "deploy failed: removing the new container")
		held := x.anon.held[name]
		if len(held) > 0 {
			// It inherited the data of a container removed before it: keep the volumes.
			progress.Emit(x.events, containerID(name), progress.Warning, "Volumes kept",
				fmt.Sprintf("the anonymous volumes %s hold the data of the container it replaced, which is gone: they are kept (docker volume ls)", strings.Join(held, ", ")))
		}
		if err := x.eng.RemoveContainer(ctx, id, len(held) == 0); err != nil && !errors.Is(err, engine.ErrNotFound) {
			progress.Emit(x.events, containerID(name), progress.Warning, "Not removed", err.Error())
			continue
		}
		progress.Emit(x.events, containerID(name), progress.Done, "Removed", "")
	}
	for _, name := range x.createdNetworks {
		n, err := x.eng.InspectNetwork(ctx, name)
		if err != nil || n.Containers > 0 {
			continue
		}
		if err := x.eng.RemoveNetwork(ctx, name); err == nil {
			progress.Emit(x.events, "Network "+name, progress.Done, "Removed", "deploy failed: network unused")
		}
	}
}
