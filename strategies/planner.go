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
	desired  *compose.Desired
	project  *compose.Project // desired.Project: the compose services and their specs
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
	// replaced are the services that get new containers, for the services that join
	// their namespaces (network_mode service:NAME), which must follow
	replaced map[string]bool
}

func (pl *planner) add(s Step) int {
	s.ID = len(pl.plan.Steps) + 1
	sort.Ints(s.After)
	s.After = slices.Compact(s.After)
	pl.plan.Steps = append(pl.plan.Steps, s)
	return s.ID
}

// MakePlan plans the convergence of the project: each service is compared with its
// containers (recreate.go for services that run one copy at a time, routed.go for the
// routed strategies), the setup, router and orphan steps are added, and each service's
// strategy orders its steps (recreate.go, rolling.go, bluegreen.go, canary.go). Pure:
// the observed state comes in as data.
func MakePlan(d *compose.Desired, observed Observed, opts Options) (Plan, error) {
	p := d.Project
	pl := &planner{
		desired: d, project: p, observed: observed, opts: opts, plan: Plan{Project: p.Name},
		stops: map[string][]int{}, removes: map[string][]int{}, starts: map[string][]int{}, waits: map[string][]int{},
		migrated: map[string][]int{}, routerSteps: map[string]int{}, replaced: map[string]bool{},
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
	var missing []error // every missing image at once, not the first
	for _, name := range order {
		if p.ServiceSpecs[name].Routed() {
			ch, err := pl.diffRouted(name, opts.Rollback[name])
			if errors.Is(err, ErrImageMissing) {
				missing = append(missing, err)
				continue
			}
			if err != nil {
				return Plan{}, err
			}
			if !ch.converged() {
				routed[name] = ch
				pl.replaced[name] = true
			} else {
				pl.planPrune(ch, nil)
			}
			continue
		}
		diff := pl.diffService
		if to := opts.Rollback[name]; to > 0 {
			diff = func(name string) (*serviceChange, error) { return pl.diffRecreateRollback(name, to) }
		}
		ch, err := diff(name)
		if errors.Is(err, ErrImageMissing) {
			missing = append(missing, err)
			continue
		}
		if err != nil {
			return Plan{}, err
		}
		changes[name] = ch
		pl.replaced[name] = len(ch.create) > 0 || ch.rollback > 0 && len(ch.start) > 0
	}
	if len(missing) > 0 {
		return Plan{}, errors.Join(missing...)
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
			pl.planRetention(ch)
		}
		if ch := routed[name]; ch != nil {
			pl.planRouted(ch)
		}
	}
	for _, name := range pl.plan.Services() {
		if spec, ok := p.ServiceSpecs[name]; ok {
			pl.plan.Strategies = append(pl.plan.Strategies, ServiceStrategy{Service: name, Strategy: spec.Strategy, Reason: spec.StrategyReason})
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

func imageMissingError(p *compose.Project, service, ref string) error {
	if p.Project.Services[service].Build != nil {
		return fmt.Errorf("service %q: %w: %s; `docker lifecycle deploy` builds it (deploy --build rebuilds it)", service, ErrImageMissing, ref)
	}
	return fmt.Errorf("service %q: %w: %s; pull it (docker pull %s); deploy pulls missing images itself unless pull_policy or --pull is never", service, ErrImageMissing, ref, ref)
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
	for _, n := range pl.desired.Networks {
		if !pl.observed.Networks[n.Name] {
			pl.setup = append(pl.setup, pl.add(Step{Action: CreateNetwork, Target: n.Name, Cause: "network missing"}))
		}
	}
	for _, v := range pl.desired.Volumes {
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
