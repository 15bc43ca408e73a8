package strategies

import (
	"errors"
	"fmt"
	"maps"
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
}

// diffRouted compares a routed service with its containers and the router's routes.
// With a rollback revision, the desired containers are that revision's retained ones.
func (pl *planner) diffRouted(name string, rollbackTo int) (*routedChange, error) {
	p := pl.project
	svc := p.Project.Services[name]
	spec := p.ServiceSpecs[name]
	ch := &routedChange{name: name, spec: spec, update: spec.Update, routed: pl.observed.Routes[name]}
	ch.routerKey, ch.behind = compose.RouterKey(p, name)

	var mine []ObservedContainer
	highest := pl.observed.Revisions[name]
	for _, c := range pl.observed.Containers {
		if c.Service == name {
			mine = append(mine, c)
			highest = max(highest, c.Revision)
		}
	}
	ref := compose.ImageRef(p, name)
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
		hash, err := compose.ConfigHash(p, name)
		if err != nil {
			return nil, err
		}
		ch.hash = hash
		match = func(c ObservedContainer) bool {
			return c.Image == ref && (imageID == "" || c.ImageID == imageID) && c.ConfigHash == hash && !c.PublishesPorts
		}
		if slices.Contains(pl.opts.Replace, name) {
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
	for _, c := range mine {
		if c.Running() {
			ref := compose.ImageRef(pl.project, name)
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

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
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
	return []int{pl.add(Step{Action: Route, Service: ch.name, Target: compose.RouterNameOf(pl.project.Name, ch.routerKey), Backends: backends,
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

func (pl *planner) planRolling(ch *routedChange, pending []replica, serving []RouteBackend, gates []int, verb string) []int {
	p := max(ch.update.Parallelism, 1)
	if len(ch.old) == 0 {
		p = max(len(pending), 1) // nothing serves yet: no reason to go one by one
	}
	batches := max((len(pending)+p-1)/p, (len(ch.old)+p-1)/p)
	prev := gates
	remove := func(bs []RouteBackend, cs []ObservedContainer) []RouteBackend {
		return slices.DeleteFunc(slices.Clone(bs), func(b RouteBackend) bool {
			return slices.ContainsFunc(cs, func(c ObservedContainer) bool { return c.Name == b.Container })
		})
	}
	if batches == 0 && ch.behind && !sameBackends(serving, ch.routed) {
		return pl.route(ch, serving, "route "+ch.name, prev)
	}
	for b := range batches {
		news := pending[min(b*p, len(pending)):min((b+1)*p, len(pending))]
		olds := ch.old[min(b*p, len(ch.old)):min((b+1)*p, len(ch.old))]
		batch := fmt.Sprintf("%s %s batch %d/%d", verb, ch.name, b+1, batches)
		if b > 0 && ch.update.Delay > 0 {
			prev = []int{pl.add(Step{Action: Delay, Service: ch.name, Target: ch.name, Duration: ch.update.Delay, Cause: "update_config.delay", After: prev})}
		}
		if ch.update.Order == compose.OrderStopFirst {
			after := prev
			if len(olds) > 0 {
				serving = remove(serving, olds)
				r := pl.route(ch, serving, batch+": drain old", prev)
				after = pl.stopOld(ch, olds, batch+": replaced (kept for rollback)", r)
			}
			waits := pl.bringUp(ch, news, gates, after)
			pl.pair(waits, olds)
			serving = append(serving, ch.backends(news, 1)...)
			prev = pl.route(ch, serving, batch, append(waits, after...))
			continue
		}
		waits := pl.bringUp(ch, news, gates, prev)
		pl.pair(waits, olds)
		serving = append(remove(serving, olds), ch.backends(news, 1)...)
		r := pl.route(ch, serving, batch, append(waits, prev...))
		prev = r
		if len(olds) > 0 {
			prev = pl.stopOld(ch, olds, batch+": replaced (kept for rollback)", r)
		}
	}
	return prev
}

// pair marks each new container's wait step with the old container it replaces.
func (pl *planner) pair(waits []int, olds []ObservedContainer) {
	for i, id := range waits {
		if i < len(olds) {
			pl.plan.Steps[id-1].Replaces = olds[i].Name
		}
	}
}

func (pl *planner) planBlueGreen(ch *routedChange, pending []replica, gates []int) []int {
	waits := pl.bringUp(ch, pending, gates, gates)
	after := append(waits, gates...)
	if ch.behind && ch.spec.BlueGreen.PreviewPort != "" && !ch.rollback {
		backends := ch.backends(nil, 1)
		after = []int{pl.add(Step{Action: Route, Service: ch.name, Target: compose.RouterNameOf(pl.project.Name, ch.routerKey),
			Backends: backends, Preview: true, After: after,
			Cause: fmt.Sprintf("preview %s on %s: %s", ch.name, ch.spec.BlueGreen.PreviewPort, describeBackends(backends))})}
	}
	if len(ch.old) > 0 && ch.spec.BlueGreen.Promote == compose.PromoteManual && !pl.opts.Promote && !ch.rollback {
		pl.plan.Warnings = append(pl.plan.Warnings, fmt.Sprintf(
			"service %q: the new colour (revision %d) waits for promotion: run `docker lifecycle promote %s`", ch.name, ch.revision, ch.name))
		return after
	}
	last := pl.route(ch, ch.backends(nil, 1), "switch "+ch.name, after)
	if len(ch.old) > 0 && ch.spec.BlueGreen.ScaleDownDelay > 0 && !ch.rollback {
		last = []int{pl.add(Step{Action: Delay, Service: ch.name, Target: ch.name, Duration: ch.spec.BlueGreen.ScaleDownDelay, Cause: "blue-green.scale-down-delay", After: last})}
	}
	if len(ch.old) > 0 {
		last = pl.stopOld(ch, ch.old, "old colour (kept for rollback)", last)
	}
	return last
}

func (pl *planner) planCanary(ch *routedChange, pending []replica, gates []int) []int {
	waits := pl.bringUp(ch, pending, gates, gates)
	prev := append(waits, gates...)
	if len(ch.old) > 0 && !ch.rollback && ch.behind {
		for _, st := range ch.spec.Canary.Steps {
			if st.Weight >= 100 {
				break
			}
			// Per-container weights that give the new revision st.Weight percent in all.
			newW, oldW := st.Weight*len(ch.old), (100-st.Weight)*len(ch.target)
			bs := append(oldBackends(ch.old, oldW), ch.backends(nil, newW)...)
			r := pl.route(ch, bs, fmt.Sprintf("canary %s %d%%", ch.name, st.Weight), prev)
			a := pl.add(Step{Action: Analyze, Service: ch.name, Target: ch.name, Revision: ch.revision, Duration: st.Pause,
				Cause: fmt.Sprintf("canary %d%%: judge revision %d on the router's counters", st.Weight, ch.revision), After: r})
			prev = []int{a}
		}
	}
	last := pl.route(ch, ch.backends(nil, 1), "promote "+ch.name, prev)
	if len(ch.old) > 0 {
		last = pl.stopOld(ch, ch.old, "replaced by the canary (kept for rollback)", last)
	}
	return last
}

// planPrune removes stopped revisions beyond x-lifecycle.history once the rollout is done.
func (pl *planner) planPrune(ch *routedChange, after []int) {
	keep := *ch.spec.History
	leaving := append(slices.Clone(ch.retained), ch.old...)
	var revs []int
	for _, c := range leaving {
		if c.Revision != ch.revision {
			revs = append(revs, c.Revision)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	revs = slices.Compact(revs)
	if len(revs) <= keep {
		return
	}
	drop := map[int]bool{}
	for _, r := range revs[keep:] {
		drop[r] = true
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i].Name < leaving[j].Name })
	for _, c := range leaving {
		if !drop[c.Revision] {
			continue
		}
		removeAfter := after
		for _, s := range pl.plan.Steps {
			if s.Action == Stop && s.ContainerID == c.ID {
				removeAfter = []int{s.ID}
			}
		}
		pl.add(Step{Action: Remove, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision,
			Cause: fmt.Sprintf("history: keep %d previous revisions", keep), After: removeAfter})
	}
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

// planRouter creates the router when a routed service needs it and it is missing or
// was created for other ports or networks.
func (pl *planner) planRouter(changes map[string]*routedChange) error {
	for _, name := range slices.Sorted(maps.Keys(changes)) {
		if ch := changes[name]; ch.behind && ch.routerKey != "" {
			pl.planServiceRouter(name)
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(changes)), func(ch *routedChange) bool { return ch.behind && ch.routerKey == "" }) {
		return nil
	}
	ports, err := compose.RoutedPorts(pl.project)
	if err != nil {
		return err
	}
	hash := compose.RouterHash(ports, compose.RouterNetworks(pl.project))
	r := pl.observed.Router
	cause := ""
	switch {
	case r == nil:
		cause = "router missing"
	case pl.observed.RouterHash != hash:
		cause = "router ports or networks changed (recreate: open connections are cut)"
	case !r.Running():
		cause = "router not running"
	default:
		return nil
	}
	if err := pl.checkRouterPorts(ports, changes); err != nil {
		return err
	}
	pl.routerSteps[""] = pl.add(Step{Action: EnsureRouter, Target: compose.RouterName(pl.project.Name), Cause: cause,
		After: append(slices.Clone(pl.setup), pl.migrationSteps...)})
	return nil
}

// planServiceRouter creates an internal service's own router when it is missing or
// was created for other ports or networks.
func (pl *planner) planServiceRouter(service string) {
	r := pl.observed.ServiceRouters[service]
	cause := ""
	switch {
	case r == nil:
		cause = "router of the service's name missing"
	case r.ConfigHash != compose.InternalRouterHash(pl.project, service):
		cause = "router ports or networks changed (recreate: open connections are cut)"
	case !r.Running():
		cause = "router not running"
	default:
		return
	}
	pl.routerSteps[service] = pl.add(Step{Action: EnsureRouter, Service: service, Target: compose.RouterNameOf(pl.project.Name, service),
		Cause: cause, After: slices.Clone(pl.setup)})
}

// checkRouterPorts refuses a router whose host ports another container holds, before
// anything changes; the project's own router and the containers moving behind it
// (which leave first) do not count.
func (pl *planner) checkRouterPorts(ports []compose.RoutedPort, changes map[string]*routedChange) error {
	leaving := map[string]bool{compose.RouterName(pl.project.Name): true}
	for _, ch := range changes {
		for _, c := range ch.migrate {
			leaving[c.Name] = true
		}
	}
	for _, rp := range ports {
		for _, owner := range pl.observed.PortOwners {
			if leaving[owner.Container] || int(owner.HostPort) != rp.Published || owner.Protocol != "tcp" || !ipsOverlap(rp.HostIP, owner.HostIP) {
				continue
			}
			return fmt.Errorf("service %q publishes %s:%d/tcp (through the router): %w by container %s; stop it or change the published port",
				rp.Service, hostIPOrAll(rp.HostIP), rp.Published, ErrPortTaken, owner.Container)
		}
	}
	return nil
}
