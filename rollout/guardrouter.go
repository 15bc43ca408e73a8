package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// The guard keeps the project's router and the internal services' own routers
// (docs/guard.md, "The router"), each the same way: when a router container starts (the engine's restart policy, `docker start`, the guard itself), and
// whenever the guard (re)synchronises, the router's routes are checked against the
// containers' labels: a backend whose container no longer runs is dropped, a running
// healthy container of a routed revision that the router lacks is added. A router that
// died and that the engine does not restart (stopped, killed by hand) is started; a
// removed one is created again as a deploy creates it. Every change is made under the
// project lock, so a deploy, which writes the router's whole config, never races it.

// Router alerts.
const (
	AlertRouter = "router" // a router (the project's, or a service's own): reconciled, started, recreated
	// ActionRouterReconciled: the router's routes were corrected from the labels.
	ActionRouterReconciled = "reconciled"
	// ActionRouterStarted: the router was not running and the engine did not restart it.
	ActionRouterStarted = "router-started"
	// ActionRouterRecreated: the router container was removed; the guard created it.
	ActionRouterRecreated = "router-recreated"
	// ActionRouterFailed: one of those failed (Reason says why); tried again later.
	ActionRouterFailed = "router-failed"
)

// routerGrace is how long the guard leaves a dead router to the engine's restart
// policy (whose first restart comes after 100 ms) before it starts it itself.
const routerGrace = 2 * time.Second

// errRouterGone: the router stopped or was removed while the guard worked on it.
var errRouterGone = errors.New("the router stopped or was removed meanwhile")

// routerGoneRetry is how soon a check that found the router going is made again.
const routerGoneRetry = 200 * time.Millisecond

// routerRetryCap bounds the wait between attempts when keeping the router fails.
const routerRetryCap = time.Minute

// keptRouter is one router the guard keeps: its target, and when it is to be checked
// next (zero: not asked), whether a check is in flight, and the failed attempts in a
// row (their backoff).
type keptRouter struct {
	target   GuardTargetRouter
	due      time.Time
	busy     bool
	failures int
}

// keepRouters sets up the routers of the guard's target to be kept.
func (g *guard) keepRouters() {
	g.routers, g.routerOf = map[string]*keptRouter{}, map[string]string{}
	for _, t := range g.project.routers() {
		g.routers[t.Service] = &keptRouter{target: t}
		for _, p := range t.Ports {
			g.routerOf[p.Service] = t.Service
		}
	}
}

// routerOutcome is what keepRouter did, handed from the background to the guard's loop.
type routerOutcome struct {
	key   string      // the router's (GuardTargetRouter.Service)
	alert *GuardAlert // nil: nothing to say (the router was as it should be)
	// postponed: the project lock was held (a deploy or down runs); err: an attempt failed.
	postponed, err error
}

// wantRouter asks for a check of the router with the given key at (or before) at.
func (g *guard) wantRouter(key string, at time.Time) {
	r := g.routers[key]
	if r == nil {
		return // not a router of the guard's target
	}
	if r.due.IsZero() || at.Before(r.due) {
		r.due = at
	}
}

// routerEvent notes a kept router's start, die and destroy events, and the removal of
// a container of a routed service (it may be one of its router's backends).
func (g *guard) routerEvent(e engine.Event, now time.Time) {
	if e.Action == engine.EventDestroy && e.Attributes[compose.LabelRole] == compose.RoleApp {
		if key, ok := g.routerOf[e.Attributes[compose.LabelService]]; ok {
			g.wantRouter(key, now)
		}
		return
	}
	if e.Attributes[compose.LabelRole] != compose.RoleRouter {
		return
	}
	key := e.Attributes[compose.LabelRouterService] // "" for the project's router
	switch e.Action {
	case engine.EventStart, engine.EventDestroy:
		g.wantRouter(key, now)
	case engine.EventDie:
		g.wantRouter(key, now.Add(routerGrace))
	}
}

// scheduleRouter starts a due router check in the background; it returns the time of a
// check still to come (zero: none).
func (g *guard) scheduleRouter(r *keptRouter, now time.Time) time.Time {
	if r.due.IsZero() || r.busy {
		return time.Time{} // finished schedules it again
	}
	if now.Before(r.due) {
		return r.due
	}
	r.due, r.busy = time.Time{}, true
	t := r.target
	g.wg.Go(func() {
		// Not the command's context: a router being recreated ends up created.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		o := g.keepRouter(ctx, t)
		o.key = t.Service
		g.done <- restartResult{router: &o}
	})
	return time.Time{}
}

// routerFinished reports a router check and schedules the next one when it could not
// be done.
func (g *guard) routerFinished(o routerOutcome) {
	r := g.routers[o.key]
	r.busy = false
	switch {
	case o.postponed != nil:
		g.wantRouter(o.key, time.Now().Add(lockRetry))
		return // the deploy that holds the lock writes the routes itself
	case errors.Is(o.err, errRouterGone):
		// The router stopped or went while it was looked at (`docker rm -f`, `docker
		// stop`): nothing failed; look again once the engine is done with it.
		g.wantRouter(o.key, time.Now().Add(routerGoneRetry))
		return
	case o.err != nil:
		r.failures++
		wait := min(lockRetry<<min(r.failures-1, 6), routerRetryCap)
		g.wantRouter(o.key, time.Now().Add(wait))
		a := routerAlert(g.project.Project, o.key)
		a.Action, a.Reason = ActionRouterFailed, fmt.Sprintf("%v; tried again in %s", o.err, wait)
		g.alert(*a)
		return
	}
	r.failures = 0
	if o.alert != nil {
		g.alert(*o.alert)
	}
}

// routerAlert is the start of an alert about the router with the given key: named by
// its container, and for a service's own router by that service too.
func routerAlert(project, key string) *GuardAlert {
	return &GuardAlert{Kind: AlertRouter, Container: compose.RouterNameOf(project, key), Service: key}
}

// keepRouter looks at a router and, when it is not as it should be, takes the project
// lock, looks again and corrects it. Only reads happen without the lock, so a guard
// that finds nothing to do never keeps a deploy waiting.
func (g *guard) keepRouter(ctx context.Context, t GuardTargetRouter) routerOutcome {
	if need, err := g.routerCheck(ctx, t, false); err != nil || need == nil {
		return routerOutcome{err: err}
	}
	// Something to correct: under the project lock.
	l, err := lock.Acquire(ctx, g.eng, g.project.Project, "guard", nil)
	if err != nil {
		var locked *lock.LockedError
		if errors.As(err, &locked) {
			return routerOutcome{postponed: err}
		}
		return routerOutcome{err: err}
	}
	defer func() { _ = l.Release(context.WithoutCancel(ctx)) }()
	a, err := g.routerCheck(ctx, t, true)
	return routerOutcome{alert: a, err: err}
}

// goneOr is err, or errRouterGone when the router id no longer runs (the engine's
// error then says only "not running" or "no such container").
func (g *guard) goneOr(ctx context.Context, id string, err error) error {
	if err != nil && ctx.Err() == nil && !isRunning(ctx, g.eng, id) {
		return fmt.Errorf("%w: %w", errRouterGone, err)
	}
	return err
}

// routerCheck compares the router t with the containers; with act it corrects what
// differs and returns the alert saying so. Without act, a non-nil alert only means
// that there is something to correct.
func (g *guard) routerCheck(ctx context.Context, t GuardTargetRouter, act bool) (*GuardAlert, error) {
	project := g.project.Project
	name := compose.RouterNameOf(project, t.Service)
	cs, err := g.eng.ListContainers(ctx, map[string]string{compose.LabelProject: project})
	if err != nil {
		return nil, err
	}
	var r *engine.Container
	routedServices := map[string]bool{}
	for _, p := range t.Ports {
		routedServices[p.Service] = true
	}
	serving := false // a container of a routed service runs: the project is up
	for i, c := range cs {
		switch {
		case c.Labels[compose.LabelRole] == compose.RoleRouter && c.Labels[compose.LabelRouterService] == t.Service:
			r = &cs[i]
		case c.Labels[compose.LabelRole] == compose.RoleApp && routedServices[c.Labels[compose.LabelService]] && (c.State == "running" || c.State == "restarting"):
			serving = true
		}
	}
	a := routerAlert(project, t.Service)
	began := time.Now()
	var id string
	switch {
	case r != nil && r.State == "running":
		id = r.ID
	case r != nil && (r.State == "restarting" || r.State == "removing"):
		return nil, nil // the engine is on it; its start (or destroy) event comes
	case r != nil && r.State == "paused":
		return nil, nil // someone paused it on purpose; `docker unpause` is theirs
	case !serving:
		// The project is down (or going): a router without backends serves nothing,
		// and `down` may be removing the networks it needs.
		return nil, nil
	case !act:
		return a, nil
	case r != nil:
		if err := g.eng.StartContainer(ctx, r.ID); err != nil {
			return nil, fmt.Errorf("start the router %s (%s, the engine did not restart it): %w", name, r.State, startHint(err))
		}
		a.Action, a.Reason, id = ActionRouterStarted, fmt.Sprintf("the router was %s and the engine did not restart it: started", r.State), r.ID
	default:
		if id, err = g.recreateRouter(ctx, t); err != nil {
			return nil, fmt.Errorf("create the router %s again: %w", name, err)
		}
		a.Action, a.Reason = ActionRouterRecreated, "the router container was removed: created again as deploy creates it"
	}
	if err := waitControlSocket(ctx, g.eng, id); err != nil {
		return nil, g.goneOr(ctx, id, fmt.Errorf("router %s: %w", name, err))
	}
	client := newRouterClient(g.eng, id)
	defer client.Close()
	out, err := client.do(ctx, "get-config", nil, 0)
	if err != nil {
		return nil, g.goneOr(ctx, id, fmt.Errorf("%w: read config of %s: %w", ErrRouter, name, err))
	}
	current, err := router.DecodeConfig(out)
	if err != nil {
		return nil, fmt.Errorf("%w: config of %s: %w", ErrRouter, name, err)
	}
	var records []Record
	if slices.ContainsFunc(current.Routes, func(r router.Route) bool { return len(r.Backends) == 0 }) || len(current.Routes) == 0 {
		// Some route has no backend to take its revision from: the history says which
		// revision the last deploy made current.
		if records, err = History(ctx, g.eng, project); err != nil {
			return nil, fmt.Errorf("revision history of project %s: %w", project, err)
		}
	}
	want, changes := reconcileRoutes(t, current, cs, records)
	if len(changes) == 0 {
		if a.Action == "" {
			return nil, nil
		}
	} else {
		if !act {
			return a, nil
		}
		body, err := json.Marshal(want)
		if err == nil {
			_, err = client.do(ctx, "put-config", body, 0)
		}
		if err != nil {
			return nil, g.goneOr(ctx, id, fmt.Errorf("%w: apply the reconciled routes to %s: %w", ErrRouter, name, err))
		}
		if a.Action == "" {
			a.Action, a.Reason = ActionRouterReconciled, "the router's routes did not match the containers"
		}
		a.Reason += ": " + strings.Join(changes, "; ")
	} // else: started or recreated, and its routes were right
	if a.Action != ActionRouterReconciled {
		a.Reason += fmt.Sprintf("; serving its routes %s after the guard began", time.Since(began).Round(time.Millisecond))
	}
	return a, nil
}

// recreateRouter creates and starts a router as ensureRouter does, from the guard's
// target (the compose file's ports and networks; a service router's endpoints).
func (g *guard) recreateRouter(ctx context.Context, t GuardTargetRouter) (string, error) {
	arch, err := g.eng.Arch(ctx)
	if err != nil {
		return "", err
	}
	image, err := agentimage.Ensure(ctx, g.eng, arch)
	if err != nil {
		return "", err
	}
	spec, err := routerSpec(g.project.Project, image, t)
	if err != nil {
		return "", err
	}
	id, err := g.eng.CreateContainer(ctx, engineSpec(spec))
	if err != nil {
		return "", err
	}
	if err := g.eng.StartContainer(ctx, id); err != nil {
		return "", startHint(err)
	}
	return id, nil
}

// routerSpec is the create spec of the router t, as the deploy's.
func routerSpec(project, image string, t GuardTargetRouter) (compose.ContainerCreate, error) {
	if t.Service == "" {
		return compose.ProjectRouterContainer(project, image, t.Ports, t.Networks)
	}
	var ports []int
	for _, p := range t.Ports {
		ports = append(ports, p.Target)
	}
	return compose.ServiceRouterContainer(project, t.Service, image, ports, container.NetworkMode(t.NetworkMode), t.Endpoints)
}

// reconcileRoutes is the router config the containers' labels call for, from the
// router's current one (its routes' settings, and the revisions and weights the last
// deploy gave it) or, when it has no routes (a recreated router), the compose file's
// routes; changes says what differs, empty when nothing does.
//
// For each service behind the router: its backends whose container no longer runs are
// dropped; the running containers of the revisions the route still has (or, for a
// route left without backends, of the revision the history says is current) that are
// healthy, or have no healthcheck, and that the route lacks, are added at the weight
// of their revision's other backends (1 when none is left). A preview route
// (blue-green) only loses backends: which colour it shows is the deploy's to say.
func reconcileRoutes(t GuardTargetRouter, current router.Config, containers []engine.Container, records []Record) (router.Config, []string) {
	base := current
	if len(base.Routes) == 0 {
		base = t.Routes
	}
	want := base
	want.Routes = slices.Clone(base.Routes)
	running := map[string]engine.Container{}
	for _, c := range containers {
		if c.Labels[compose.LabelRole] == compose.RoleApp && (c.State == "running" || c.State == "restarting") {
			running[c.Name] = c
		}
	}
	targets := map[string]int{}
	for _, p := range t.Ports {
		targets[p.Route] = p.Target
	}
	backends := map[string][]strategies.RouteBackend{}
	routesFromConfig(base, backends)
	var changes []string
	reconciled := map[string][]strategies.RouteBackend{}
	for key, bs := range backends {
		service, preview := strings.CutSuffix(key, compose.PreviewKey(""))
		var kept []strategies.RouteBackend
		var dropped, added []string
		weights := map[int]int{} // a revision's weight, from a backend kept
		for _, b := range bs {
			if _, ok := running[b.Container]; !ok {
				dropped = append(dropped, b.Container)
				continue
			}
			kept = append(kept, b)
			weights[b.Revision] = b.Weight
		}
		revisions := map[int]bool{}
		for _, b := range bs {
			revisions[b.Revision] = true
		}
		if len(bs) == 0 {
			if rev := currentRevision(service, containers, records); rev > 0 {
				revisions[rev] = true
			}
		}
		if !preview {
			var names []string
			for n, c := range running {
				rev, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
				if c.Labels[compose.LabelService] == service && revisions[rev] && (c.Health == "healthy" || c.Health == "") &&
					!slices.ContainsFunc(kept, func(b strategies.RouteBackend) bool { return b.Container == n }) {
					names = append(names, n)
				}
			}
			sort.Strings(names)
			for _, n := range names {
				rev, _ := strconv.Atoi(running[n].Labels[compose.LabelRevision])
				w, ok := weights[rev]
				if !ok {
					w = 1
				}
				kept = append(kept, strategies.RouteBackend{Container: n, Revision: rev, Weight: w})
				added = append(added, n)
			}
		}
		if len(dropped) > 0 {
			changes = append(changes, fmt.Sprintf("%s: dropped %s (no longer running)", key, strings.Join(dropped, ", ")))
		}
		if len(added) > 0 {
			changes = append(changes, fmt.Sprintf("%s: added %s", key, strings.Join(added, ", ")))
		}
		reconciled[key] = kept
	}
	if len(changes) == 0 {
		return current, nil
	}
	for i, r := range want.Routes {
		target, ok := targets[r.Name]
		if !ok {
			target = backendPort(r.Backends)
		}
		if target == 0 {
			continue // a route the guard cannot place a backend in: left as it is
		}
		want.Routes[i].Backends = routeBackends(target, reconciled[compose.ServiceOfRoute(r.Name)])
	}
	if len(current.Routes) == 0 {
		changes = append(changes, "routes written from the compose file (the router had none)")
	}
	return want, changes
}

// backendPort is the container port a route's backends listen on (0: no backend).
func backendPort(bs []router.Backend) int {
	for _, b := range bs {
		if i := strings.LastIndex(b.Address, ":"); i >= 0 {
			if p, err := strconv.Atoi(b.Address[i+1:]); err == nil {
				return p
			}
		}
	}
	return 0
}

// currentRevision is the service's revision the last deploy made current: the newest
// history record that served (deployed, or made current by a rollback) whose
// containers run, else the newest revision with running containers (0: none).
func currentRevision(service string, containers []engine.Container, records []Record) int {
	runs := map[int]bool{}
	newest := 0
	for _, c := range containers {
		if c.Labels[compose.LabelService] != service || c.Labels[compose.LabelRole] != compose.RoleApp || (c.State != "running" && c.State != "restarting") {
			continue
		}
		rev, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
		runs[rev] = true
		newest = max(newest, rev)
	}
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if r.Service == service && runs[r.Revision] && (r.Result == ResultDeployed || r.Result == ResultRollback) {
			return r.Revision
		}
	}
	return newest
}
