package strategies

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// Blue-green on Swarm (docs/swarm.md): the router is a Swarm service, each revision of a
// blue-green service another; a deploy creates the new revision, waits for its tasks,
// switches the router to it and removes the old one.
const (
	SwarmCreateRouter = "create-router"
	// Swarm replaces the router's task: its connections drop.
	SwarmUpdateRouter = "update-router"
	// The router sends the service's traffic to the new revision only and waits until
	// the old one drained.
	SwarmSwitch        = "switch-traffic"
	SwarmRemoveService = "remove-service"
	// A canary step: the new revision gets Weight percent of the traffic for Pause, then
	// is judged on the router's counters of that window.
	SwarmCanaryStep = "canary-step"
)

// BlueGreen reports whether the step belongs to a blue-green service or the router: the
// runtime runs those after the Swarm-rolled services converged (rollout/swarmbluegreen.go).
func (s SwarmStep) BlueGreen() bool {
	switch s.Action {
	case SwarmCreateRouter, SwarmUpdateRouter, SwarmSwitch, SwarmRemoveService, SwarmCanaryStep:
		return true
	}
	return s.Revision > 0
}

// ObservedSwarmRevision is a Swarm service of a blue-green service found on the manager.
type ObservedSwarmRevision struct {
	Name     string
	ID       string
	Revision int
	SpecHash string
	Image    string
	// Routed: the router sends it traffic. A revision not routed was left by a deploy
	// that was interrupted before it switched or removed it.
	Routed bool
}

// SwarmBlueGreenObserved is the router and the revisions of the blue-green services.
type SwarmBlueGreenObserved struct {
	// Router is the router's service, nil when there is none.
	Router *ObservedSwarmService
	// Revisions by compose service.
	Revisions map[string][]ObservedSwarmRevision
}

// PlanSwarmBlueGreen plans the router and the services behind it (desired: their
// revision specs, by compose service, as compose.SwarmRevisionService builds them; the
// revision number is the planner's; canary: the canary steps of the canary services):
// the router is created (or replaced when its spec hash changed) first; a service whose
// routed revision runs the desired spec is up to date; any other gets revision max+1,
// created, for a canary service with a serving revision given each step's weight (below
// 100) and judged, switched to entirely once its tasks run (and its canary steps
// passed), then its old revisions removed. Revisions of a service that no longer deploys
// behind the router are left to the caller (it refuses the change).
func PlanSwarmBlueGreen(project string, router swarm.ServiceSpec, desired map[string]swarm.ServiceSpec, canary map[string][]compose.CanaryStep, observed SwarmBlueGreenObserved) (steps []SwarmStep, upToDate []string) {
	if len(desired) == 0 {
		return nil, nil
	}
	routes := strings.Join(routeNames(router), ", ")
	switch r := observed.Router; {
	case r == nil:
		steps = append(steps, SwarmStep{Action: SwarmCreateRouter, Name: router.Name, Spec: router,
			Cause: "missing: publishes " + routes})
	case r.SpecHash != router.Labels[compose.LabelSwarmSpec]:
		steps = append(steps, SwarmStep{Action: SwarmUpdateRouter, Name: router.Name, Spec: router, ID: r.ID, Version: r.Version,
			Cause: "its ports, networks, node or agent changed (publishes " + routes + "): Swarm replaces its task, open connections drop"})
	}
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		spec := desired[name]
		revs := observed.Revisions[name]
		var live []ObservedSwarmRevision
		last := 0
		for _, r := range revs {
			last = max(last, r.Revision)
			if r.Routed {
				live = append(live, r)
			}
		}
		if len(live) == 1 && live[0].SpecHash == spec.Labels[compose.LabelSwarmSpec] {
			upToDate = append(upToDate, live[0].Name)
			for _, r := range revs {
				if !r.Routed {
					steps = append(steps, removeRevision(name, r, "not routed: left by an interrupted deploy"))
				}
			}
			continue
		}
		rev := last + 1
		spec = compose.WithRevision(spec, project, name, rev)
		image := spec.TaskTemplate.ContainerSpec.Image
		strategy := compose.StrategyBlueGreen
		if _, ok := canary[name]; ok {
			strategy = compose.StrategyCanary
		}
		cause := fmt.Sprintf("%s %s, revision %d: %s of %s", strategy, name, rev, replicas(spec), image)
		from := "nothing"
		if len(live) > 0 {
			var was []string
			for _, r := range live {
				was = append(was, fmt.Sprintf("revision %d", r.Revision))
				if r.Image != image {
					cause += fmt.Sprintf(" (was %s)", r.Image)
				}
			}
			from = strings.Join(was, ", ")
		}
		steps = append(steps, SwarmStep{Action: SwarmCreateService, Name: spec.Name, Service: name, Revision: rev, Spec: spec, Cause: cause})
		after := "once its tasks run (healthy)"
		for _, st := range canary[name] {
			if len(live) == 0 || st.Weight >= 100 {
				break // nothing to compare with, or the last step: the switch
			}
			steps = append(steps, SwarmStep{Action: SwarmCanaryStep, Name: router.Name, Service: name, Revision: rev, Weight: st.Weight, Pause: time.Duration(st.Pause),
				Cause: fmt.Sprintf("%s: %d%% to revision %d for %s, then judge it on the router's counters", name, st.Weight, rev, time.Duration(st.Pause))})
			after = "once its canary steps passed"
		}
		steps = append(steps, SwarmStep{Action: SwarmSwitch, Name: router.Name, Service: name, Revision: rev,
			Cause: fmt.Sprintf("%s: %s → revision %d, %s", name, from, rev, after)})
		for _, r := range revs {
			why := "not routed: left by an interrupted deploy"
			if r.Routed {
				why = fmt.Sprintf("old colour of %s: removed once drained", name)
				if strategy == compose.StrategyCanary {
					why = "replaced by the canary: removed once drained"
				}
			}
			steps = append(steps, removeRevision(name, r, why))
		}
	}
	return steps, upToDate
}

func removeRevision(service string, r ObservedSwarmRevision, why string) SwarmStep {
	return SwarmStep{Action: SwarmRemoveService, Name: r.Name, Service: service, Revision: r.Revision, ID: r.ID,
		Cause: fmt.Sprintf("revision %d, %s", r.Revision, why)}
}

// routeNames lists the router's published ports, "8080/tcp" each.
func routeNames(router swarm.ServiceSpec) []string {
	var out []string
	if e := router.EndpointSpec; e != nil {
		for _, p := range e.Ports {
			out = append(out, fmt.Sprintf("%d/%s", p.PublishedPort, cmp.Or(string(p.Protocol), "tcp")))
		}
	}
	if len(out) == 0 {
		return []string{"no port"}
	}
	return out
}

// WithBlueGreen adds the steps of PlanSwarmBlueGreen before the plan's removals of
// secret and config versions (which run once every service is done).
func (p *SwarmPlan) WithBlueGreen(steps []SwarmStep, upToDate []string) {
	i := slices.IndexFunc(p.Steps, SwarmStep.Removal)
	if i < 0 {
		i = len(p.Steps)
	}
	p.Steps = slices.Concat(p.Steps[:i:i], steps, p.Steps[i:])
	p.UpToDate = append(p.UpToDate, upToDate...)
	slices.Sort(p.UpToDate)
}
