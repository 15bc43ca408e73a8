package strategies

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// ErrUnknownRevision means a rollback named a revision that has no retained containers.
var ErrUnknownRevision = errors.New("no such revision")

// replica is one desired container of a routed service.
type replica struct {
	number   int
	name     string
	revision int
	// existing is the container to reuse: running (kept) or stopped (started again);
	// nil means create.
	existing *ObservedContainer
	cause    string
}

func (r replica) ready() bool {
	c := r.existing
	return c != nil && c.Running() && c.State != "restarting" && (c.Health == "healthy" || c.Health == "")
}

// routedChange is what must happen to a service behind the router.
type routedChange struct {
	name     string
	spec     compose.ServiceSpec
	update   compose.UpdateSpec
	target   []replica
	old      []ObservedContainer // running containers that leave the service
	migrate  []ObservedContainer // containers that publish host ports the router takes over
	retained []ObservedContainer // stopped containers of other revisions
	routed   []RouteBackend      // the router's current backends for the service
	revision int
	hash     string
	rollback bool
	// behind is true when a router carries the service's traffic (routerKey says
	// which: "" the project's, else the service's own); other routed services roll
	// start-first without route steps.
	behind    bool
	routerKey string
	router    string // the router's container name
}

// diffRouted compares a routed service with its containers and the router's routes.
// With a rollback revision, the desired containers are that revision's retained ones.
func (pl *planner) diffRouted(name string, rollbackTo int) (*routedChange, error) {
	p := pl.project
	svc := p.Project.Services[name]
	spec := p.ServiceSpecs[name]
	ch := &routedChange{name: name, spec: spec, update: spec.Update, routed: pl.observed.Routes[name]}
	desired := pl.desired.Services[name]
	ch.routerKey, ch.behind, ch.router = desired.RouterKey, desired.Behind, desired.RouterName

	var mine []ObservedContainer
	highest := pl.observed.Revisions[name]
	for _, c := range pl.observed.Containers {
		if c.Service == name {
			mine = append(mine, c)
			highest = max(highest, c.Revision)
		}
	}
	ref := desired.Image
	imageID := pl.observed.ImageIDs[ref]
	var match func(c ObservedContainer) bool
	replicas := svc.GetScale()
	if rollbackTo > 0 {
		ch.rollback, ch.update = true, spec.Rollback
		match = func(c ObservedContainer) bool { return c.Revision == rollbackTo }
		numbers := map[int]bool{}
		var revisions []int
		for _, c := range mine {
			numbers[c.Number] = numbers[c.Number] || c.Revision == rollbackTo
			revisions = append(revisions, c.Revision)
		}
		replicas = 0
		for n, ok := range numbers {
			if ok {
				replicas = max(replicas, n)
			}
		}
		if replicas == 0 {
			slices.Sort(revisions)
			return nil, fmt.Errorf("service %q: %w %d: revisions with containers: %s", name, ErrUnknownRevision, rollbackTo, joinInts(slices.Compact(revisions)))
		}
	} else {
		hash := desired.ConfigHash
		ch.hash = hash
		match = func(c ObservedContainer) bool {
			return c.Image == ref && (imageID == "" || c.ImageID == imageID) && c.ConfigHash == hash && !c.PublishesPorts
		}
		if slices.Contains(pl.opts.Replace, name) || pl.joinsReplaced(svc) != "" {
			match = func(ObservedContainer) bool { return false }
		}
	}

	// The best candidate per number: running before stopped, healthy before starting,
	// then the newest revision.
	rank := func(c ObservedContainer) int {
		switch {
		case c.Running() && c.Health != "unhealthy" && c.Health != "starting":
			return 0
		case c.Running() && c.Health == "starting":
			return 1
		case !c.Running() && c.State != "dead" && c.State != "removing":
			return 2
		}
		return 3
	}
	best := map[int]*ObservedContainer{}
	for i := range mine {
		c := &mine[i]
		if !match(*c) || rank(*c) == 3 || c.Number < 1 || c.Number > replicas {
			continue
		}
		if b := best[c.Number]; b == nil || rank(*c) < rank(*b) || (rank(*c) == rank(*b) && c.Revision > b.Revision) {
			best[c.Number] = c
		}
	}
	ch.revision = 0
	for _, c := range best {
		ch.revision = max(ch.revision, c.Revision)
	}
	if ch.revision == 0 {
		ch.revision = highest + 1
	}
	if rollbackTo > 0 {
		ch.revision = rollbackTo
	}
	inTarget := map[string]bool{}
	for n := 1; n <= replicas; n++ {
		r := replica{number: n, revision: ch.revision}
		if c := best[n]; c != nil {
			r.existing, r.name, r.revision = c, c.Name, c.Revision
			inTarget[c.ID] = true
			switch {
			case rollbackTo > 0 && !c.Running():
				r.cause = fmt.Sprintf("rollback to revision %d", rollbackTo)
			case !c.Running():
				r.cause = "retained container matches the configuration"
			case c.Health == "starting":
				r.cause = "health check still starting"
			default:
				r.cause = "not yet routed"
			}
		} else {
			if rollbackTo > 0 {
				continue // the revision had fewer replicas
			}
			r.name = compose.RevisionContainerName(p.Name, name, ch.revision, n)
			r.cause = pl.createCause(mine, name)
		}
		ch.target = append(ch.target, r)
	}
	for _, c := range mine {
		if inTarget[c.ID] {
			continue
		}
		switch {
		case c.PublishesPorts && (c.Running() || c.State == "created" || c.State == "exited"):
			ch.migrate = append(ch.migrate, c)
		case c.Running():
			ch.old = append(ch.old, c)
		default:
			ch.retained = append(ch.retained, c)
		}
	}
	sort.Slice(ch.old, func(i, j int) bool {
		if ch.old[i].Number != ch.old[j].Number {
			return ch.old[i].Number < ch.old[j].Number
		}
		return ch.old[i].Name < ch.old[j].Name
	})
	sort.Slice(ch.migrate, func(i, j int) bool { return ch.migrate[i].Name < ch.migrate[j].Name })
	for _, r := range ch.target {
		if r.existing == nil && imageID == "" {
			return nil, imageMissingError(p, name, ref)
		}
	}
	return ch, nil
}

func (pl *planner) createCause(mine []ObservedContainer, name string) string {
	if slices.Contains(pl.opts.Replace, name) && len(mine) > 0 {
		return pl.opts.ReplaceCause
	}
	if joined := pl.joinsReplaced(pl.project.Project.Services[name]); joined != "" && len(mine) > 0 {
		return fmt.Sprintf("%s gets a new container, whose namespace this one joins", joined)
	}
	for _, c := range mine {
		if c.Running() {
			ref := pl.desired.Services[name].Image
			switch {
			case c.PublishesPorts:
				return "moves behind the router"
			case c.Image != ref:
				return fmt.Sprintf("image changed: %s -> %s", c.Image, ref)
			case c.ImageID != pl.observed.ImageIDs[ref]:
				return fmt.Sprintf("image %s changed: %s -> %s", ref, shortID(c.ImageID), shortID(pl.observed.ImageIDs[ref]))
			default:
				return "configuration changed"
			}
		}
	}
	if len(mine) == 0 {
		return "service not deployed"
	}
	return "no running container"
}

// converged reports whether the service already runs and routes exactly its target.
func (ch *routedChange) converged() bool {
	if len(ch.old) > 0 || len(ch.migrate) > 0 {
		return false
	}
	want := ch.backends(nil, 0)
	return (!ch.behind || sameBackends(want, ch.routed)) && !slices.ContainsFunc(ch.target, func(r replica) bool { return !r.ready() })
}

// backends is the route with the target replicas in want (all when want is nil), at
// weight per container.
func (ch *routedChange) backends(want []replica, weight int) []RouteBackend {
	if want == nil {
		want = ch.target
	}
	if weight == 0 {
		weight = 1
	}
	out := make([]RouteBackend, 0, len(want))
	for _, r := range want {
		out = append(out, RouteBackend{Container: r.name, Revision: r.revision, Weight: weight})
	}
	return out
}

func sameBackends(a, b []RouteBackend) bool {
	key := func(bs []RouteBackend) []string {
		out := make([]string, len(bs))
		for i, x := range bs {
			out[i] = fmt.Sprintf("%s/%d", x.Container, x.Weight)
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func oldBackends(cs []ObservedContainer, weight int) []RouteBackend {
	out := make([]RouteBackend, 0, len(cs))
	for _, c := range cs {
		out = append(out, RouteBackend{Container: c.Name, Revision: c.Revision, Weight: weight})
	}
	return out
}

func describeBackends(bs []RouteBackend) string {
	if len(bs) == 0 {
		return "no backends"
	}
	byRev := map[int][]string{}
	weights := map[int]int{}
	for _, b := range bs {
		byRev[b.Revision] = append(byRev[b.Revision], b.Container)
		weights[b.Revision] += b.Weight
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	revs := make([]int, 0, len(byRev))
	for r := range byRev {
		revs = append(revs, r)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	parts := make([]string, 0, len(revs))
	for _, r := range revs {
		share := ""
		if len(revs) > 1 && total > 0 {
			share = fmt.Sprintf(" %d%%", (weights[r]*100+total/2)/total)
		}
		parts = append(parts, fmt.Sprintf("r%d%s (%d)", r, share, len(byRev[r])))
	}
	return strings.Join(parts, " + ")
}

// planRouted adds the steps that roll a routed service to its target.
func (pl *planner) planRouted(ch *routedChange) {
	gates := append(pl.gates(ch.name), pl.setup...)
	if id := pl.routerSteps[ch.routerKey]; ch.behind && id != 0 {
		gates = append(gates, id)
	}
	gates = append(gates, pl.migrated[ch.name]...)

	var pending []replica
	for _, r := range ch.target {
		routed := !ch.behind || slices.ContainsFunc(ch.routed, func(b RouteBackend) bool { return b.Container == r.name })
		if !(r.ready() && routed) {
			pending = append(pending, r)
		}
	}
	serving := append(oldBackends(ch.old, 1), ch.servingTargets()...)
	verb := "roll"
	if ch.rollback {
		verb = "roll back"
	}
	var last []int
	switch ch.spec.Strategy {
	case compose.StrategyBlueGreen:
		last = pl.planBlueGreen(ch, pending, gates)
	case compose.StrategyCanary:
		last = pl.planCanary(ch, pending, gates)
	default:
		last = pl.planRolling(ch, pending, serving, gates, verb)
	}
	pl.planPrune(ch, last)
}

// servingTargets are the target containers the router already routes to.
func (ch *routedChange) servingTargets() []RouteBackend {
	var out []RouteBackend
	for _, r := range ch.target {
		if slices.ContainsFunc(ch.routed, func(b RouteBackend) bool { return b.Container == r.name }) && r.ready() {
			out = append(out, RouteBackend{Container: r.name, Revision: r.revision, Weight: 1})
		}
	}
	return out
}

// bringUp plans create/start/wait for replicas and returns the wait step IDs. Creates
// wait only for createAfter: a created container does not run, so later batches'
// containers are created up front and only their start waits for startAfter.
func (pl *planner) bringUp(ch *routedChange, rs []replica, createAfter, startAfter []int) []int {
	var waits []int
	for _, r := range rs {
		var startDeps []int
		switch {
		case r.existing == nil:
			created := pl.add(Step{Action: Create, Service: ch.name, Target: r.name, Number: r.number, Revision: r.revision, ConfigHash: ch.hash, Cause: r.cause, After: createAfter})
			startDeps = append(slices.Clone(startAfter), created)
		case !r.existing.Running():
			startDeps = slices.Clone(startAfter)
		}
		waitAfter := startAfter
		if r.existing == nil || !r.existing.Running() {
			step := Step{Action: Start, Service: ch.name, Target: r.name, Number: r.number, Revision: r.revision, Cause: r.cause, After: startDeps}
			if r.existing != nil {
				step.ContainerID = r.existing.ID
			}
			id := pl.add(step)
			pl.starts[ch.name] = append(pl.starts[ch.name], id)
			waitAfter = []int{id}
		}
		step := Step{Action: WaitHealthy, Service: ch.name, Target: r.name, Number: r.number, Revision: r.revision, Cause: r.cause, After: waitAfter}
		if r.existing != nil {
			step.ContainerID = r.existing.ID
		}
		w := pl.add(step)
		pl.waits[ch.name] = append(pl.waits[ch.name], w)
		waits = append(waits, w)
	}
	return waits
}

// route sets the service's backends and returns the step to wait for; a service not
// behind the router has no route, so the steps after wait for after directly.
func (pl *planner) route(ch *routedChange, backends []RouteBackend, cause string, after []int) []int {
	if !ch.behind {
		return after
	}
	return []int{pl.add(Step{Action: Route, Service: ch.name, Target: ch.router, Backends: backends,
		Cause: fmt.Sprintf("%s: %s", cause, describeBackends(backends)), After: after})}
}

func (pl *planner) stopOld(ch *routedChange, cs []ObservedContainer, cause string, after []int) []int {
	var ids []int
	for _, c := range cs {
		ids = append(ids, pl.add(Step{Action: Stop, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision,
			Cause: cause, After: after}))
	}
	return ids
}

// planMigrations stops and removes containers that publish host ports themselves
// (deployed before their service was behind the router), so the router can bind them.
func (pl *planner) planMigrations(changes map[string]*routedChange) {
	names := make([]string, 0, len(changes))
	for n := range changes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, c := range changes[n].migrate {
			cause := "publishes host ports the router takes over"
			var after []int
			if c.Running() {
				after = []int{pl.add(Step{Action: Stop, Service: n, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause})}
			}
			id := pl.add(Step{Action: Remove, Service: n, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: after})
			pl.migrated[n] = append(pl.migrated[n], id)
			pl.migrationSteps = append(pl.migrationSteps, id)
		}
	}
}
