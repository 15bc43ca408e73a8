package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
)

// The guard (`docker lifecycle guard`): it follows the engine's event stream of the
// project's containers, restarts the unhealthy ones within their x-lifecycle.guard
// policy (the decisions are guardpolicy.go's), and reports what it sees and does as
// alerts. After every (re)connection of the stream it lists and inspects the project's
// containers, so neither a missed event nor a restarted guard leads to a wrong restart.

// Alert kinds: what the guard saw.
const (
	AlertUnhealthy = "unhealthy" // a container failed its health check for `after`
	AlertOOM       = "oom"       // the kernel killed a process of a container for memory
	AlertExec      = "exec"      // a process was started in a container with docker exec
	AlertGuard     = "guard"     // the guard itself: its event stream broke, a call failed
)

// Alert actions: what the guard did about it.
const (
	ActionRestarted     = "restarted"       // stopped and started the container
	ActionRestartFailed = "restart-failed"  // tried, the engine refused (Reason says why)
	ActionQuarantined   = "quarantined"     // the restart budget is spent: no more restarts
	ActionPostponed     = "postponed"       // a deploy holds the project lock: the restart waits
	ActionReported      = "reported"        // nothing but this alert
	ActionReconnected   = "reconnected"     // the event stream is back and the state re-read
	ActionRolledBack    = "rolled-back"     // the budget is spent on a recent revision: the service went back to the previous one
	ActionRollbackFail  = "rollback-failed" // that rollback failed: the container is quarantined instead
	// A dependent (guarddependents.go) restarted after the container it follows (Parent),
	// or whose restart failed; not counted against its own budget.
	ActionRestartedDependent = "restarted-dependent"
	ActionDependentFailed    = "dependent-restart-failed"
)

// GuardAlert is one line of the guard's output (docs/guard.md: the JSON schema).
type GuardAlert struct {
	Time      time.Time `json:"time"`
	Project   string    `json:"project"`
	Service   string    `json:"service,omitempty"`
	Container string    `json:"container,omitempty"`
	Kind      string    `json:"kind"`
	Action    string    `json:"action"`
	Reason    string    `json:"reason"`
	// FailingSince is the start of the first failing probe, RestartBegan when the guard
	// began the restart (stop, then start) and Time when the container was started again
	// (unhealthy).
	FailingSince *time.Time `json:"failing_since,omitempty"`
	RestartBegan *time.Time `json:"restart_began,omitempty"`
	// Restarts is the guard's restarts of the container within the window, this one
	// included, and Budget how many the window allows (unhealthy).
	Restarts int `json:"restarts,omitempty"`
	Budget   int `json:"budget,omitempty"`
	// Command is the command line of an exec (exec).
	Command string `json:"command,omitempty"`
	// MemoryLimit is the container's memory limit in bytes, 0 for none (oom).
	MemoryLimit *int64 `json:"memory_limit,omitempty"`
	// Revision is the service's revision the container runs, RollbackTo the one the
	// guard rolled (or tried to roll) it back to, and RollbackBegan when the budget was
	// found spent and the rollback began (rolled-back, rollback-failed).
	Revision      int        `json:"revision,omitempty"`
	RollbackTo    int        `json:"rollback_to,omitempty"`
	RollbackBegan *time.Time `json:"rollback_began,omitempty"`
	// Parent is the container whose restart this dependent followed, and Dependency why:
	// network_mode, ipc, pid (it joins Parent's namespace) or depends_on.restart
	// (restarted-dependent, dependent-restart-failed).
	Parent     string `json:"parent,omitempty"`
	Dependency string `json:"dependency,omitempty"`
	// Findings are the security rules a container breaks (policy).
	Findings []policy.Finding `json:"findings,omitempty"`
	// Changes are the settings that differ from Baseline: "deployed" (the compose file's
	// configuration, same config hash) or "first-seen" (drift).
	Changes  []DriftChange `json:"changes,omitempty"`
	Baseline string        `json:"baseline,omitempty"`
	// ImageID is the image the container runs, DeployedImageID the one its deploy
	// recorded (image-drift).
	ImageID         string `json:"image_id,omitempty"`
	DeployedImageID string `json:"deployed_image_id,omitempty"`
}

// String is the alert's human line (stderr).
func (a GuardAlert) String() string {
	who := a.Project
	switch {
	case a.Container != "" && a.Service != "":
		who = a.Service + " (" + a.Container + ")"
	case a.Container != "":
		who = a.Container // a container of no service (started by hand)
	}
	return fmt.Sprintf("%s guard: %s: %s, %s: %s", a.Time.Format(time.RFC3339), who, a.Kind, a.Action, a.Reason)
}

// GuardOptions are the guard's outputs.
type GuardOptions struct {
	// Alert receives every alert, from one goroutine at a time.
	Alert func(GuardAlert)
	// Watching is called after every (re)synchronisation with the number of containers
	// the guard watches.
	Watching func(containers int)
	// Project is the compose project of the foreground guard: with it, a budget spent on
	// a recent revision rolls the service back (guardrollback.go). Nil for the detached
	// guard, which has no compose files: it quarantines and names the rollback command.
	Project *compose.Project
	// rollBack replaces the rollback through Deploy (tests).
	rollBack func(ctx context.Context, service string, to int, reason string) error
}

var guardActions = []string{engine.EventStart, engine.EventDie, engine.EventOOM, engine.EventHealthStatus, engine.EventExecStart, engine.EventDestroy, engine.EventUpdate,
	engine.EventConnect, engine.EventDisconnect}

// Guard watches project p's containers (NewGuardTarget) until ctx ends (nil then) or the engine cannot
// be reached to re-synchronise.
func Guard(ctx context.Context, eng engine.Engine, p GuardTarget, opts GuardOptions) error {
	g := &guard{eng: eng, project: p, opts: opts, watched: map[string]*watchedContainer{}, said: map[string]map[string]string{}, baseline: map[string]DriftSettings{}, done: make(chan restartResult), rollingBack: map[string]bool{}}
	g.keepRouters()
	defer func() {
		// Restarts in flight end (they do not follow ctx); their results go nowhere.
		finished := make(chan struct{})
		go func() { g.wg.Wait(); close(finished) }()
		for {
			select {
			case <-g.done:
			case <-finished:
				return
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	reconnect := time.Duration(0)
	for first := true; ; first = false {
		streamCtx, cancel := context.WithCancel(ctx)
		evs, errs := eng.Events(streamCtx, map[string]string{compose.LabelProject: p.Project}, guardActions)
		err := g.resync(ctx, time.Now())
		if err == nil && !first {
			g.alert(GuardAlert{Kind: AlertGuard, Action: ActionReconnected, Reason: "event stream re-opened; the project's containers were listed and inspected again"})
		}
		var streamErr error
		switch {
		case err != nil && first:
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("guard of project %s: %w", p.Project, err)
		case err != nil:
			// The engine may be restarting: keep trying, with the backoff.
			streamErr = fmt.Errorf("re-synchronise: %w", err)
		default:
			reconnect = 0
			g.schedule(timer, time.Now())
			streamErr = g.follow(ctx, evs, errs, timer)
		}
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		reconnect = min(max(2*reconnect, 500*time.Millisecond), 10*time.Second)
		g.alert(GuardAlert{Kind: AlertGuard, Action: ActionReported, Reason: fmt.Sprintf("%v; reconnecting in %s", streamErr, reconnect)})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(reconnect):
		}
	}
}

type guard struct {
	eng     engine.Engine
	project GuardTarget
	opts    GuardOptions
	watched map[string]*watchedContainer // by container ID
	done    chan restartResult
	wg      sync.WaitGroup
	// rollingBack: the services whose automatic rollback is in flight (guardrollback.go).
	rollingBack map[string]bool
	// said: the security alerts said of each container, by kind (their content);
	// baseline: a container's settings when first seen, when its deployed ones are not
	// known (guardsecurity.go).
	said     map[string]map[string]string
	baseline map[string]DriftSettings
	// routers are the routers the guard keeps (guardrouter.go), by key ("" the
	// project's, else the internal service's); routerOf is the key of the router that
	// carries each routed service.
	routers  map[string]*keptRouter
	routerOf map[string]string
}

// watchedContainer is a running app container of the project.
type watchedContainer struct {
	id, name, service string
	tracker           *guardTracker
	// healthcheck is the command line the engine's probes run (their execs are not alerts).
	healthcheck string
	memory      int64
	// joins: the container:REF namespace modes it runs with, by Dependent* reason.
	joins map[string]string
	busy  bool // a restart is in flight (its own, or its parent's as a dependent)
	// retryAt: a postponed restart (the project was locked) is not tried before then;
	// postponed: that was said already.
	retryAt   time.Time
	postponed bool
}

// lockRetry is how long a restart waits for a deploy's lock before it tries again.
const lockRetry = 2 * time.Second

type restartResult struct {
	id        string
	began, at time.Time
	err       error
	note      string // what happened to the container's routes
	// postponed: the project lock could not be had (a deploy runs): nothing was done.
	postponed error
	// quarantined: not a restart but a quarantine done (its alert, routes noted).
	quarantined *GuardAlert
	// escalated: not a restart but an automatic rollback tried (guardrollback.go).
	escalated *escalation
	// dependents: restarted after the container, when it was (guarddependents.go).
	dependents []*dependentRestart
	// router: not a container's restart but a check of the router (guardrouter.go).
	router *routerOutcome
}

// follow handles events, finished restarts and deadlines until the stream ends (its
// error) or ctx does.
func (g *guard) follow(ctx context.Context, evs <-chan engine.Event, errs <-chan error, timer *time.Timer) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-evs:
			if !ok {
				err := <-errs
				if err == nil {
					err = errors.New("event stream ended")
				}
				return err
			}
			g.handle(ctx, e)
		case r := <-g.done:
			g.finished(ctx, r)
		case <-timer.C:
		}
		g.schedule(timer, time.Now())
	}
}

// resync lists the project's containers and inspects each running app container:
// trackers of containers that are gone are dropped, the others observe what the engine
// says now (their restart history stays).
func (g *guard) resync(ctx context.Context, now time.Time) error {
	cs, err := g.eng.ListContainers(ctx, map[string]string{compose.LabelProject: g.project.Project})
	if err != nil {
		return err
	}
	seen, exists := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		exists[c.ID] = true
		if c.State == "running" && c.Labels[compose.LabelRole] != compose.RoleApp {
			// Not a replica: judged only (guardsecurity.go).
			if err := g.check(ctx, c.ID); err != nil {
				return err
			}
			continue
		}
		if c.Labels[compose.LabelRole] != compose.RoleApp || c.State != "running" {
			continue
		}
		seen[c.ID] = true
		if w := g.watched[c.ID]; w != nil && w.busy {
			continue
		}
		if err := g.inspect(ctx, c.ID, now); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	for id, w := range g.watched {
		if !seen[id] && !w.busy {
			delete(g.watched, id)
		}
	}
	for id := range g.said {
		if !exists[id] {
			g.forget(id)
		}
	}
	for id := range g.baseline {
		if !exists[id] {
			g.forget(id)
		}
	}
	// A router that died or lost backends while the guard did not watch.
	for key := range g.routers {
		g.wantRouter(key, now)
	}
	if g.opts.Watching != nil {
		g.opts.Watching(len(g.watched))
	}
	return nil
}

// inspect (re)reads a container and feeds its health to its tracker, creating it.
func (g *guard) inspect(ctx context.Context, id string, now time.Time) error {
	d, err := g.eng.InspectContainer(ctx, id)
	if err != nil {
		return err
	}
	g.judge(d)
	if d.Labels[compose.LabelRole] != compose.RoleApp {
		return nil
	}
	w := g.watched[id]
	if w == nil {
		service := d.Labels[compose.LabelService]
		spec, ok := g.project.Services[service]
		if !ok {
			return nil // a service the compose file no longer has: not the guard's to judge
		}
		var interval time.Duration
		var retries int
		if d.Config != nil && d.Config.Healthcheck != nil {
			interval, retries = d.Config.Healthcheck.Interval, d.Config.Healthcheck.Retries
		}
		w = &watchedContainer{id: id, name: d.Name, service: service,
			tracker: newGuardTracker(newGuardPolicy(spec.Policy, interval, retries)), healthcheck: healthcheckCommand(d)}
		g.watched[id] = w
	}
	if d.HostConfig != nil {
		w.memory = d.HostConfig.Memory // as `docker update` may have changed it
	}
	w.joins = joinedNamespaces(d)
	health := d.Health
	if d.State != "running" {
		health = ""
	}
	w.tracker.observe(health, d.HealthFailingSince, now)
	return nil
}

// healthcheckCommand is the command line of the container's health probes as the
// engine writes it in exec events: entrypoint and arguments joined by spaces.
func healthcheckCommand(d engine.ContainerDetails) string {
	if d.Config == nil || d.Config.Healthcheck == nil || len(d.Config.Healthcheck.Test) < 2 {
		return ""
	}
	test := d.Config.Healthcheck.Test
	switch test[0] {
	case "CMD":
		return strings.Join(test[1:], " ")
	case "CMD-SHELL":
		return "/bin/sh -c " + strings.Join(test[1:], " ")
	}
	return ""
}

func (g *guard) handle(ctx context.Context, e engine.Event) {
	now := time.Now()
	g.routerEvent(e, now)
	w := g.watched[e.ContainerID]
	switch e.Action {
	case engine.EventStart, engine.EventHealthStatus:
		if w != nil && w.busy {
			return // the guard's own restart: finished reads the container again
		}
		if e.Action == engine.EventHealthStatus && e.Detail == "healthy" && w != nil {
			w.tracker.observe("healthy", time.Time{}, now)
			return
		}
		// New containers, and unhealthy ones (the start of the failing streak is in
		// the inspect, not the event).
		if err := g.inspect(ctx, e.ContainerID, now); err != nil && !errors.Is(err, engine.ErrNotFound) && ctx.Err() == nil {
			g.alert(GuardAlert{Kind: AlertGuard, Action: ActionReported, Container: e.Name, Reason: err.Error()})
		}
	case engine.EventDie:
		if w != nil && !w.busy {
			w.tracker.observe("", time.Time{}, now)
		}
	case engine.EventDestroy:
		g.forget(e.ContainerID)
		if w != nil && !w.busy {
			delete(g.watched, e.ContainerID)
		}
	case engine.EventConnect, engine.EventDisconnect:
		if w == nil {
			return // the engine's network events are every container's: only the watched replicas are judged
		}
		if err := g.check(ctx, e.ContainerID); err != nil && ctx.Err() == nil {
			g.alert(GuardAlert{Kind: AlertGuard, Action: ActionReported, Container: w.name, Reason: err.Error()})
		}
	case engine.EventUpdate:
		if err := g.check(ctx, e.ContainerID); err != nil && ctx.Err() == nil {
			g.alert(GuardAlert{Kind: AlertGuard, Action: ActionReported, Container: e.Name, Reason: err.Error()})
		}
	case engine.EventOOM:
		a := GuardAlert{Kind: AlertOOM, Action: ActionReported, Container: e.Name, Service: e.Attributes[compose.LabelService]}
		limit := int64(0)
		if w != nil {
			limit = w.memory
		} else if d, err := g.eng.InspectContainer(ctx, e.ContainerID); err == nil && d.HostConfig != nil {
			limit = d.HostConfig.Memory
		}
		a.MemoryLimit = &limit
		a.Reason = "the kernel killed a process of the container for want of memory"
		if limit > 0 {
			a.Reason += fmt.Sprintf(" (memory limit %d bytes)", limit)
		} else {
			a.Reason += " (no memory limit: the host ran out)"
		}
		g.alert(a)
	case engine.EventExecStart:
		if g.ownExec(ctx, e, w) {
			return
		}
		g.alert(GuardAlert{
			Kind: AlertExec, Action: ActionReported, Container: e.Name, Service: e.Attributes[compose.LabelService], Command: e.Detail,
			Reason: fmt.Sprintf("a process was started in the container with docker exec: %s (who started it is not known to the engine)", e.Detail),
		})
	}
}

// ownExec recognises the execs that are not someone at a shell: the engine's health
// probes, the plugin's control commands in its agent containers (router, secrets), and
// the service's compose hooks (post_start, pre_stop) that deploy runs.
func (g *guard) ownExec(ctx context.Context, e engine.Event, w *watchedContainer) bool {
	cmd := strings.TrimSpace(e.Detail)
	if w != nil && cmd == w.healthcheck {
		return true
	}
	role := e.Attributes[compose.LabelRole]
	if role != "" && role != compose.RoleApp && strings.HasPrefix(cmd, "/agent ") {
		return true
	}
	if slices.Contains(g.project.Services[e.Attributes[compose.LabelService]].Hooks, cmd) {
		return true
	}
	if w == nil && role == compose.RoleApp {
		// Not watched (yet): compare with its healthcheck as the engine has it.
		if d, err := g.eng.InspectContainer(ctx, e.ContainerID); err == nil && cmd == healthcheckCommand(d) {
			return true
		}
	}
	return false
}

// schedule asks every idle tracker what to do now, starts the restarts and reports the
// quarantines, and sets the timer to the nearest deadline.
func (g *guard) schedule(timer *time.Timer, now time.Time) {
	next := time.Time{}
	for _, w := range g.watched {
		if w.busy {
			continue
		}
		if now.Before(w.retryAt) {
			if next.IsZero() || w.retryAt.Before(next) {
				next = w.retryAt
			}
			continue
		}
		v, deadline := w.tracker.decide(now)
		switch v {
		case verdictRestart:
			g.restart(w)
		case verdictQuarantine:
			p := w.tracker.policy
			a := GuardAlert{
				Kind: AlertUnhealthy, Action: ActionQuarantined, Service: w.service, Container: w.name, Budget: p.budget, Restarts: len(w.tracker.restarts),
				Reason: fmt.Sprintf("still unhealthy after %d restarts within %s (x-lifecycle.guard budget): no more restarts; the container is kept for inspection", len(w.tracker.restarts), p.window),
			}
			g.escalate(w, a)
		default:
			if !deadline.IsZero() && (next.IsZero() || deadline.Before(next)) {
				next = deadline
			}
		}
	}
	for _, r := range g.routers {
		if at := g.scheduleRouter(r, now); !at.IsZero() && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	wait := time.Hour
	if !next.IsZero() {
		wait = max(next.Sub(now), 0)
	}
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	timer.Reset(wait)
}

// restart stops and starts w in the background, under the project lock; finished
// takes the result. A routed container leaves its routers first and comes back once
// healthy (guardroute.go). While a deploy holds the lock, the restart waits: the
// deploy may be replacing the container. Once w is healthy again (or runs, without a
// healthcheck), its dependents are restarted, under the same lock (guarddependents.go).
func (g *guard) restart(w *watchedContainer) {
	w.busy = true
	deps := g.dependentsOf(w)
	began := time.Now()
	spec := g.project.Services[w.service]
	g.wg.Go(func() {
		// Not the command's context: a restart, once begun, ends with a started container.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+time.Duration(spec.WaitTimeout))
		defer cancel()
		l, err := lock.Acquire(ctx, g.eng, g.project.Project, "guard", nil)
		if err != nil {
			g.done <- restartResult{id: w.id, began: began, postponed: err, dependents: deps}
			return
		}
		defer func() { _ = l.Release(context.WithoutCancel(ctx)) }()
		at, note, err := g.restartContainer(ctx, w.id, w.name, spec)
		if err == nil && len(deps) > 0 {
			// Dependents come back once their parent is healthy, as compose starts a
			// service after its dependency: a sidecar joined to a namespace whose app
			// is not serving yet would fail its own checks (and be restarted for it).
			// A parent with no healthcheck counts as healthy once it runs.
			if !waitHealthy(ctx, g.eng, w.id, time.Duration(spec.WaitTimeout)) {
				note += fmt.Sprintf("; its dependents were restarted although it was not healthy within %s (wait-timeout)", spec.WaitTimeout)
			}
			g.restartDependents(ctx, deps)
		}
		g.done <- restartResult{id: w.id, began: began, at: at, err: err, note: note, dependents: deps}
	})
}

// restartContainer stops and starts a container (the caller holds the project lock),
// a routed one out of its routers until it is healthy again. at: when it was started
// (or the attempt failed); note: what happened to its routes.
func (g *guard) restartContainer(ctx context.Context, id, name string, spec GuardTargetService) (at time.Time, note string, err error) {
	var hold *routeHold
	if spec.Routed {
		if hold, err = unroute(ctx, g.eng, g.project.Project, name, false); err != nil {
			note = fmt.Sprintf("; it stayed in the router (%v), whose passive checks skip it while it is down", err)
		} else if hold != nil {
			note = "; taken out of the router while it restarted"
		}
	}
	err = g.eng.StopContainer(ctx, id, "", nil)
	if err == nil {
		err = g.eng.StartContainer(ctx, id)
	}
	at = time.Now() // the backoff counts from the new start (or the failed attempt)
	if hold != nil {
		if err == nil && !waitHealthy(ctx, g.eng, id, time.Duration(spec.WaitTimeout)) {
			note += fmt.Sprintf(", and put back although not healthy within %s (wait-timeout)", spec.WaitTimeout)
		} else if err == nil {
			note += fmt.Sprintf(", back in it once healthy (%s after the start)", time.Since(at).Round(time.Millisecond))
		}
		if rerr := hold.restore(ctx); rerr != nil {
			note += fmt.Sprintf("; %v", rerr)
		}
	}
	return at, note, err
}

// quarantine takes a routed container out of its routers for good (the healthy
// replicas serve; the next deploy writes the routers' configs anew), under the project
// lock, and then alerts (through finished).
func (g *guard) quarantine(w *watchedContainer, a GuardAlert) {
	w.busy = true
	g.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		note := ""
		if l, err := lock.Acquire(ctx, g.eng, g.project.Project, "guard", nil); err != nil {
			note = fmt.Sprintf("; it stays in the router (the project lock: %v)", err)
		} else {
			hold, err := unroute(ctx, g.eng, g.project.Project, w.name, true)
			switch {
			case err != nil:
				note = fmt.Sprintf("; it stays in the router (%v)", err)
			case hold == nil:
			case len(hold.routers) > 0 && len(hold.lastBackend) == 0:
				note = "; taken out of the router: the healthy replicas serve"
			case len(hold.routers) > 0:
				note = fmt.Sprintf("; taken out of the router, except in %s, where it is the only backend", strings.Join(hold.lastBackend, ", "))
			default:
				note = fmt.Sprintf("; it stays in the router: it is the only backend of %s", strings.Join(hold.lastBackend, ", "))
			}
			if hold != nil {
				hold.release()
			}
			_ = l.Release(context.WithoutCancel(ctx))
		}
		a.Reason += note
		g.done <- restartResult{id: w.id, quarantined: &a}
	})
}

// finished records a restart's result, alerts, and reads the container again.
func (g *guard) finished(ctx context.Context, r restartResult) {
	if r.router != nil {
		g.routerFinished(*r.router)
		return
	}
	// After the container's own alert and inspection (deferred below).
	defer g.dependentsFinished(ctx, r.dependents, r.err != nil || r.postponed != nil)
	w := g.watched[r.id]
	if w == nil {
		return
	}
	w.busy = false
	if r.escalated != nil {
		g.escalated(ctx, w, *r.escalated)
		return
	}
	if r.quarantined != nil {
		g.alert(*r.quarantined)
		return
	}
	if r.postponed != nil {
		w.retryAt = time.Now().Add(lockRetry)
		if !w.postponed {
			w.postponed = true
			g.alert(GuardAlert{Kind: AlertUnhealthy, Action: ActionPostponed, Service: w.service, Container: w.name,
				Reason: fmt.Sprintf("restart postponed, tried again every %s: %v", lockRetry, r.postponed)})
		}
		return
	}
	w.postponed = false
	t := w.tracker
	failing := t.failingSince
	a := GuardAlert{Time: r.at, Kind: AlertUnhealthy, Service: w.service, Container: w.name, Budget: t.policy.budget, RestartBegan: &r.began}
	if !failing.IsZero() {
		a.FailingSince = &failing
	}
	defer func() {
		// Events of the restarted container were set aside while it restarted.
		if err := g.inspect(ctx, r.id, time.Now()); err != nil && errors.Is(err, engine.ErrNotFound) {
			delete(g.watched, r.id)
		}
	}()
	if r.err != nil {
		// Counted as a restart all the same, so a container the engine cannot restart
		// spends its budget instead of being retried in a loop.
		t.restarted(r.at)
		a.Action, a.Restarts = ActionRestartFailed, len(t.restarts)
		a.Reason = fmt.Sprintf("restart failed: %v%s", r.err, r.note)
		if len(r.dependents) > 0 {
			a.Reason += fmt.Sprintf("; its dependents (%s) were not restarted", dependentNames(r.dependents))
		}
		g.alert(a)
		return
	}
	t.restarted(r.at)
	a.Action, a.Restarts = ActionRestarted, len(t.restarts)
	a.Reason = fmt.Sprintf("failing its health check since %s, restart begun %s later (after: %s), took %s (%d of %d restarts within %s); the next one waits at least %s%s",
		failing.Format(time.RFC3339Nano), r.began.Sub(failing).Round(time.Millisecond), t.policy.after, r.at.Sub(r.began).Round(time.Millisecond),
		len(t.restarts), t.policy.budget, t.policy.window, t.delay, r.note)
	g.alert(a)
}

func (g *guard) alert(a GuardAlert) {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	a.Project = g.project.Project
	if g.opts.Alert != nil {
		g.opts.Alert(a)
	}
}
