package strategies

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

var (
	// ErrImageMissing means a service needs new containers and its image is not on the engine.
	ErrImageMissing = errors.New("image not found on the engine")
	// ErrPortTaken means a host port the project publishes is held by another container.
	ErrPortTaken = errors.New("host port already allocated")
	// ErrUnknownService means a service named on the command line is not in the project.
	ErrUnknownService = errors.New("no such service")
)

// Options tune a deploy plan.
type Options struct {
	// Services limits the deploy to these services and their dependencies (empty: all).
	Services []string
	// RemoveOrphans removes containers of services that are no longer in the project.
	RemoveOrphans bool
	// Rollback names, per service, the revision to go back to: its retained containers
	// are started again through the service's strategy, with rollback_config.
	Rollback map[string]int
	// Promote lets blue-green services with manual promotion switch to the new colour.
	Promote bool
	// Replace gives these services new containers even when nothing changed (their
	// secrets were rotated: the new containers get the new values), each with its
	// strategy; ReplaceCause says why.
	Replace      []string
	ReplaceCause string
}

// planner accumulates steps; its methods keep IDs and dependencies consistent.
type planner struct {
	project  *compose.Project
	observed Observed
	opts     Options
	plan     Plan
	// routed services: the router step, and the migrations each service waits for
	routerSteps    map[string]int // by router key: "" the project's, else the service's
	migrated       map[string][]int
	migrationSteps []int
	// per service: the steps other services may wait for
	stops, removes, starts, waits map[string][]int
	setup                         []int // network and volume creation
}

func (pl *planner) add(s Step) int {
	s.ID = len(pl.plan.Steps) + 1
	sort.Ints(s.After)
	s.After = slices.Compact(s.After)
	pl.plan.Steps = append(pl.plan.Steps, s)
	return s.ID
}

// serviceChange is what must happen to one service's containers.
type serviceChange struct {
	name     string
	replace  []ObservedContainer // stop (if running) and remove
	create   []int               // replica numbers to create
	start    []ObservedContainer // up to date but not running
	pending  []ObservedContainer // up to date, running, health not yet known
	revision int                 // revision of the containers to create
	hash     string              // configuration hash of the containers to create
	causes   map[string]string   // container name or number → cause
}

// Deploy plans the convergence of the project with the recreate strategy: the old
// containers of a changed service are stopped (dependents first) before the new ones
// start (dependencies first, gated on their depends_on conditions).
func Deploy(p *compose.Project, observed Observed, opts Options) (Plan, error) {
	pl := &planner{
		project: p, observed: observed, opts: opts, plan: Plan{Project: p.Name},
		stops: map[string][]int{}, removes: map[string][]int{}, starts: map[string][]int{}, waits: map[string][]int{},
		migrated: map[string][]int{}, routerSteps: map[string]int{},
	}
	order, err := deployOrder(p, opts.Services)
	if err != nil {
		return Plan{}, err
	}
	for name := range opts.Rollback {
		if !slices.Contains(order, name) {
			return Plan{}, fmt.Errorf("%w: %q in project %s", ErrUnknownService, name, p.Name)
		}
	}

	changes := map[string]*serviceChange{}
	routed := map[string]*routedChange{}
	for _, name := range order {
		if p.ServiceSpecs[name].Routed() {
			ch, err := pl.diffRouted(name, opts.Rollback[name])
			if err != nil {
				return Plan{}, err
			}
			if !ch.converged() {
				routed[name] = ch
			} else {
				pl.planPrune(ch, nil)
			}
			continue
		}
		if opts.Rollback[name] > 0 {
			return Plan{}, fmt.Errorf("service %q uses the recreate strategy, which keeps no previous revision to roll back to", name)
		}
		ch, err := pl.diffService(name)
		if err != nil {
			return Plan{}, err
		}
		changes[name] = ch
	}
	if err := pl.checkPorts(changes); err != nil {
		return Plan{}, err
	}

	pl.planSetup(changes, routed)
	pl.planOrphans(opts)
	pl.planMigrations(routed)
	if err := pl.planRouter(routed); err != nil {
		return Plan{}, err
	}
	// Stop dependents before their dependencies: walk the order backwards.
	for i := len(order) - 1; i >= 0; i-- {
		if ch := changes[order[i]]; ch != nil {
			pl.planStops(ch)
		}
	}
	for _, name := range order {
		if ch := changes[name]; ch != nil {
			pl.planStarts(ch)
		}
		if ch := routed[name]; ch != nil {
			pl.planRouted(ch)
		}
	}
	return pl.plan, nil
}

// DeployOrder returns the selected services (all when none) and their dependencies,
// dependencies first: the services a deploy of selected touches.
func DeployOrder(p *compose.Project, selected []string) ([]string, error) {
	return deployOrder(p, selected)
}

// deployOrder returns the selected services and their dependencies, dependencies first.
func deployOrder(p *compose.Project, selected []string) ([]string, error) {
	want := map[string]bool{}
	var mark func(string)
	mark = func(name string) {
		if want[name] {
			return
		}
		want[name] = true
		for dep := range p.Project.Services[name].DependsOn {
			if _, ok := p.Project.Services[dep]; ok {
				mark(dep)
			}
		}
	}
	if len(selected) == 0 {
		for name := range p.Project.Services {
			mark(name)
		}
	}
	for _, name := range selected {
		if _, ok := p.Project.Services[name]; !ok {
			return nil, fmt.Errorf("%w: %q in project %s (services: %s)", ErrUnknownService, name, p.Name, joinSorted(p.ServiceNames()))
		}
		mark(name)
	}
	var order []string
	done := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if done[name] {
			return
		}
		done[name] = true
		deps := make([]string, 0)
		for dep := range p.Project.Services[name].DependsOn {
			if want[dep] {
				deps = append(deps, dep)
			}
		}
		sort.Strings(deps)
		for _, d := range deps {
			visit(d)
		}
		order = append(order, name)
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		visit(n)
	}
	return order, nil
}

func joinSorted(s []string) string {
	s = slices.Clone(s)
	sort.Strings(s)
	return strings.Join(s, ", ")
}

func shortID(id string) string {
	if len(id) > 7+12 && id[:7] == "sha256:" {
		return id[7 : 7+12]
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// diffService compares the desired service with its containers.
func (pl *planner) diffService(name string) (*serviceChange, error) {
	p := pl.project
	svc := p.Project.Services[name]
	hash, err := compose.ConfigHash(p, name)
	if err != nil {
		return nil, err
	}
	ref := compose.ImageRef(p, name)
	imageID := pl.observed.ImageIDs[ref]

	ch := &serviceChange{name: name, hash: hash, causes: map[string]string{}}
	byNumber := map[int][]ObservedContainer{}
	current := 0
	for _, c := range pl.observed.Containers {
		if c.Service != name {
			continue
		}
		byNumber[c.Number] = append(byNumber[c.Number], c)
		current = max(current, c.Revision)
	}
	replicas := svc.GetScale()
	outdated := false
	for n := 1; n <= replicas; n++ {
		cs := byNumber[n]
		if len(cs) == 0 {
			ch.create = append(ch.create, n)
			if len(byNumber) == 0 {
				ch.causes[strconv.Itoa(n)] = "service not deployed"
			} else {
				ch.causes[strconv.Itoa(n)] = fmt.Sprintf("scale up to %d", replicas)
			}
			continue
		}
		// Keep the newest; older duplicates (e.g. left by a killed deploy) go.
		sort.Slice(cs, func(i, j int) bool { return cs[i].Revision > cs[j].Revision })
		for _, dup := range cs[1:] {
			ch.replace = append(ch.replace, dup)
			ch.causes[dup.Name+"#"+dup.ID] = "duplicate replica"
		}
		c := cs[0]
		cause := ""
		switch {
		case c.Image != ref:
			cause = fmt.Sprintf("image changed: %s -> %s", c.Image, ref)
		case imageID != "" && c.ImageID != imageID:
			cause = fmt.Sprintf("image %s changed: %s -> %s", ref, shortID(c.ImageID), shortID(imageID))
		case c.ConfigHash != hash:
			cause = "configuration changed"
		case slices.Contains(pl.opts.Replace, name):
			cause = pl.opts.ReplaceCause
		}
		if cause != "" {
			outdated = true
			ch.replace = append(ch.replace, c)
			ch.causes[c.Name+"#"+c.ID] = cause
			ch.create = append(ch.create, n)
			ch.causes[strconv.Itoa(n)] = cause
			continue
		}
		switch {
		case !c.Running() && !completed(c, svc):
			ch.start = append(ch.start, c)
			ch.causes[c.Name+"#"+c.ID] = notRunningCause(c)
		case c.Running() && c.Health == "unhealthy":
			// Same configuration, but broken: a fresh container is the recreate answer.
			ch.replace = append(ch.replace, c)
			ch.causes[c.Name+"#"+c.ID] = "container unhealthy"
			ch.create = append(ch.create, n)
			ch.causes[strconv.Itoa(n)] = "container unhealthy"
		case c.Running() && c.Health == "starting":
			// E.g. a deploy killed during its health wait: finish the wait it could not.
			ch.pending = append(ch.pending, c)
			ch.causes[c.Name+"#"+c.ID] = "health check still starting"
		}
	}
	for n, cs := range byNumber {
		if n >= 1 && n <= replicas {
			continue
		}
		for _, c := range cs {
			ch.replace = append(ch.replace, c)
			ch.causes[c.Name+"#"+c.ID] = fmt.Sprintf("scale down to %d", replicas)
		}
	}
	sort.Slice(ch.replace, func(i, j int) bool { return ch.replace[i].Name+ch.replace[i].ID < ch.replace[j].Name+ch.replace[j].ID })
	sort.Ints(ch.create)
	ch.revision = max(current, 1)
	if outdated {
		ch.revision = current + 1
	}
	if len(ch.create) > 0 && imageID == "" {
		return nil, imageMissingError(p, name, ref)
	}
	return ch, nil
}

func imageMissingError(p *compose.Project, service, ref string) error {
	if p.Project.Services[service].Build != nil {
		return fmt.Errorf("service %q: %w: %s; build it first with `docker compose build %s`", service, ErrImageMissing, ref, service)
	}
	return fmt.Errorf("service %q: %w: %s; pull or build it first (docker pull %s, or docker compose pull %s)", service, ErrImageMissing, ref, ref, service)
}

// completed reports whether a one-shot container finished successfully and should not be
// started again (restart policy never brings it back either).
func completed(c ObservedContainer, svc types.ServiceConfig) bool {
	if c.State != "exited" || c.ExitCode != 0 {
		return false
	}
	restart := svc.Restart
	if restart == "" && svc.Deploy != nil && svc.Deploy.RestartPolicy != nil {
		restart = svc.Deploy.RestartPolicy.Condition
	}
	return restart == "" || restart == "no" || restart == "none" || strings.HasPrefix(restart, "on-failure")
}

func notRunningCause(c ObservedContainer) string {
	if c.State == "exited" {
		return fmt.Sprintf("container not running (exited with code %d)", c.ExitCode)
	}
	return fmt.Sprintf("container not running (%s)", c.State)
}

// checkPorts refuses a plan whose new containers publish a host port that a container
// outside the plan's removals holds, before anything is stopped.
func (pl *planner) checkPorts(changes map[string]*serviceChange) error {
	leaving := map[string]bool{}
	for _, ch := range changes {
		for _, c := range ch.replace {
			leaving[c.Name] = true
		}
	}
	for _, c := range pl.observed.Containers {
		if _, inProject := pl.project.Project.Services[c.Service]; !inProject {
			leaving[c.Name] = true // orphans may be removed; never block on them here
		}
	}
	names := make([]string, 0, len(changes))
	for n := range changes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		ch := changes[name]
		if len(ch.create) == 0 {
			continue
		}
		mine := map[string]bool{}
		for _, c := range pl.observed.Containers {
			if c.Service == name {
				mine[c.Name] = true
			}
		}
		for _, port := range pl.project.Project.Services[name].Ports {
			if port.Published == "" {
				continue
			}
			proto := port.Protocol
			if proto == "" {
				proto = "tcp"
			}
			for _, owner := range pl.observed.PortOwners {
				if strconv.Itoa(int(owner.HostPort)) != port.Published || owner.Protocol != proto {
					continue
				}
				if leaving[owner.Container] || (mine[owner.Container] && !slices.ContainsFunc(ch.start, func(c ObservedContainer) bool { return c.Name == owner.Container })) {
					continue
				}
				if !ipsOverlap(port.HostIP, owner.HostIP) {
					continue
				}
				return fmt.Errorf("service %q publishes %s:%s/%s: %w by container %s; stop it or change the published port",
					name, hostIPOrAll(port.HostIP), port.Published, proto, ErrPortTaken, owner.Container)
			}
		}
	}
	return nil
}

func hostIPOrAll(ip string) string {
	if ip == "" {
		return "0.0.0.0"
	}
	return ip
}

func ipsOverlap(a, b string) bool {
	isAny := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return isAny(a) || isAny(b) || a == b
}

func (pl *planner) planSetup(changes map[string]*serviceChange, routed map[string]*routedChange) {
	anyCreate := len(routed) > 0
	for _, ch := range changes {
		anyCreate = anyCreate || len(ch.create) > 0 || len(ch.start) > 0
	}
	if !anyCreate {
		return
	}
	networks, _ := compose.Networks(pl.project)
	for _, n := range networks {
		if !pl.observed.Networks[n.Name] {
			pl.setup = append(pl.setup, pl.add(Step{Action: CreateNetwork, Target: n.Name, Cause: "network missing"}))
		}
	}
	volumes, _ := compose.Volumes(pl.project)
	for _, v := range volumes {
		if !pl.observed.Volumes[v.Name] {
			pl.setup = append(pl.setup, pl.add(Step{Action: CreateVolume, Target: v.Name, Cause: "volume missing"}))
		}
	}
}

func (pl *planner) planOrphans(opts Options) {
	var orphans []ObservedContainer
	for _, c := range pl.observed.Containers {
		if _, ok := pl.project.Project.Services[c.Service]; ok {
			continue
		}
		if _, disabled := pl.project.DisabledServices[c.Service]; disabled && !opts.RemoveOrphans {
			continue
		}
		orphans = append(orphans, c)
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].Name < orphans[j].Name })
	for _, c := range orphans {
		if !opts.RemoveOrphans {
			pl.plan.Warnings = append(pl.plan.Warnings, fmt.Sprintf("found orphan container %s of service %q, which is not in the project; use --remove-orphans to remove it", c.Name, c.Service))
			continue
		}
		cause := fmt.Sprintf("orphan: service %q is not in the project", c.Service)
		var after []int
		if c.Running() {
			after = append(after, pl.add(Step{Action: Stop, Service: c.Service, Target: c.Name, ContainerID: c.ID, Cause: cause}))
		}
		pl.add(Step{Action: Remove, Service: c.Service, Target: c.Name, ContainerID: c.ID, Cause: cause, After: after})
	}
}

// dependents returns the planned services that depend on name.
func (pl *planner) dependents(name string) []string {
	var out []string
	for other, svc := range pl.project.Project.Services {
		if _, ok := svc.DependsOn[name]; ok {
			out = append(out, other)
		}
	}
	sort.Strings(out)
	return out
}

func (pl *planner) planStops(ch *serviceChange) {
	var after []int
	for _, dep := range pl.dependents(ch.name) {
		after = append(after, pl.stops[dep]...)
		after = append(after, pl.removes[dep]...)
	}
	for _, c := range ch.replace {
		cause := ch.causes[c.Name+"#"+c.ID]
		removeAfter := slices.Clone(after)
		if c.Running() {
			id := pl.add(Step{Action: Stop, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: after})
			pl.stops[ch.name] = append(pl.stops[ch.name], id)
			removeAfter = []int{id}
		}
		id := pl.add(Step{Action: Remove, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: removeAfter})
		pl.removes[ch.name] = append(pl.removes[ch.name], id)
	}
}

// gates returns the steps a service's new containers wait for, per depends_on condition.
func (pl *planner) gates(name string) []int {
	var after []int
	deps := pl.project.Project.Services[name].DependsOn
	keys := make([]string, 0, len(deps))
	for k := range deps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, dep := range keys {
		switch deps[dep].Condition {
		case types.ServiceConditionStarted:
			after = append(after, pl.starts[dep]...)
		default: // service_healthy, service_completed_successfully
			after = append(after, pl.waits[dep]...)
		}
	}
	return after
}

// needsCompletion reports whether a dependent waits for this service to exit successfully.
func (pl *planner) needsCompletion(name string) bool {
	for _, svc := range pl.project.Project.Services {
		if d, ok := svc.DependsOn[name]; ok && d.Condition == types.ServiceConditionCompletedSuccessfully {
			return true
		}
	}
	return false
}

func (pl *planner) planStarts(ch *serviceChange) {
	if len(ch.create) == 0 && len(ch.start) == 0 && len(ch.pending) == 0 {
		return
	}
	wait := WaitHealthy
	if pl.needsCompletion(ch.name) {
		wait = WaitCompleted
	}
	gates := pl.gates(ch.name)
	for _, c := range ch.pending {
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: ch.causes[c.Name+"#"+c.ID]}))
	}
	for _, c := range ch.start {
		cause := ch.causes[c.Name+"#"+c.ID]
		after := append(slices.Clone(gates), pl.setup...)
		id := pl.add(Step{Action: Start, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: after})
		pl.starts[ch.name] = append(pl.starts[ch.name], id)
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: []int{id}}))
	}
	for _, n := range ch.create {
		name := compose.ContainerName(pl.project.Name, ch.name, n)
		cause := ch.causes[strconv.Itoa(n)]
		after := append(append(slices.Clone(gates), pl.setup...), pl.removes[ch.name]...)
		created := pl.add(Step{Action: Create, Service: ch.name, Target: name, Number: n, Revision: ch.revision, ConfigHash: ch.hash, Cause: cause, After: after})
		started := pl.add(Step{Action: Start, Service: ch.name, Target: name, Number: n, Revision: ch.revision, Cause: cause, After: []int{created}})
		pl.starts[ch.name] = append(pl.starts[ch.name], started)
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: name, Number: n, Revision: ch.revision, Cause: cause, After: []int{started}}))
	}
}
