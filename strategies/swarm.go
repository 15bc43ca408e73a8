package strategies

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// Swarm plan actions.
const (
	SwarmCreateNetwork = "create-network"
	SwarmCreateService = "create-service"
	SwarmUpdateService = "update-service"
)

// SwarmStep is one write of a deploy to a Swarm manager. Swarm itself then schedules
// and rolls the tasks; the runtime waits for it (rollout/swarm.go).
type SwarmStep struct {
	Action  string `json:"action"`
	Name    string `json:"name"`              // Swarm name: <project>_<service> or <project>_<network>
	Service string `json:"service,omitempty"` // compose service
	Cause   string `json:"cause"`
	// Rollout says how Swarm will roll the tasks of an updated service.
	Rollout string `json:"rollout,omitempty"`
	// ID and Version are the observed service's, for an update.
	ID      string                `json:"-"`
	Version uint64                `json:"-"`
	Spec    swarm.ServiceSpec     `json:"-"`
	Network compose.NetworkCreate `json:"-"`
}

// SwarmPlan is what a deploy to Swarm does: networks and services to create, services to
// update, in that order; services already at their spec are listed as up to date.
type SwarmPlan struct {
	Project  string      `json:"project"`
	Steps    []SwarmStep `json:"steps"`
	UpToDate []string    `json:"up_to_date,omitempty"`
}

// Empty reports whether the project is already deployed as asked.
func (p SwarmPlan) Empty() bool { return len(p.Steps) == 0 }

// Services lists the compose services the plan creates or updates.
func (p SwarmPlan) Services() []string {
	var out []string
	for _, s := range p.Steps {
		if s.Service != "" {
			out = append(out, s.Service)
		}
	}
	return out
}

// ObservedSwarmService is a service of the project found on the manager.
type ObservedSwarmService struct {
	ID       string
	Version  uint64
	SpecHash string // compose.LabelSwarmSpec
	Image    string
}

// SwarmObserved is the project's part of the Swarm: its networks and services by name.
type SwarmObserved struct {
	Networks map[string]bool
	Services map[string]ObservedSwarmService
}

// PlanSwarm compares the desired services (by compose service name) and networks with
// what the manager has: a missing network or service is created, a service whose spec
// hash differs is updated (Swarm rolls it by its UpdateConfig), any other is up to date.
func PlanSwarm(project string, networks []compose.NetworkCreate, services map[string]swarm.ServiceSpec, observed SwarmObserved) SwarmPlan {
	plan := SwarmPlan{Project: project}
	for _, n := range networks {
		if !observed.Networks[n.Name] {
			plan.Steps = append(plan.Steps, SwarmStep{Action: SwarmCreateNetwork, Name: n.Name, Cause: "missing", Network: n})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		spec := services[name]
		image := spec.TaskTemplate.ContainerSpec.Image
		obs, ok := observed.Services[spec.Name]
		switch {
		case !ok:
			plan.Steps = append(plan.Steps, SwarmStep{Action: SwarmCreateService, Name: spec.Name, Service: name, Spec: spec,
				Cause: fmt.Sprintf("missing: %s of %s", replicas(spec), image)})
		case obs.SpecHash != spec.Labels[compose.LabelSwarmSpec]:
			cause := "the service's configuration changed"
			if obs.Image != image {
				cause = fmt.Sprintf("image %s → %s", obs.Image, image)
			}
			plan.Steps = append(plan.Steps, SwarmStep{Action: SwarmUpdateService, Name: spec.Name, Service: name, Spec: spec,
				ID: obs.ID, Version: obs.Version, Cause: cause, Rollout: rolloutText(spec)})
		default:
			plan.UpToDate = append(plan.UpToDate, spec.Name)
		}
	}
	return plan
}

func replicas(spec swarm.ServiceSpec) string {
	if r := spec.Mode.Replicated; r != nil && r.Replicas != nil {
		if *r.Replicas == 1 {
			return "1 replica"
		}
		return fmt.Sprintf("%d replicas", *r.Replicas)
	}
	return "global"
}

func rolloutText(spec swarm.ServiceSpec) string {
	u := spec.UpdateConfig
	if u == nil {
		return "Swarm's defaults"
	}
	at := fmt.Sprintf("%d at a time", u.Parallelism)
	if u.Parallelism == 0 {
		at = "all at once"
	}
	s := fmt.Sprintf("%s, %s, monitor %s, on failure %s", at, u.Order, u.Monitor, u.FailureAction)
	if u.Delay > 0 {
		s += fmt.Sprintf(", delay %s", u.Delay)
	}
	return s
}

// Text renders the plan for people, one line per step.
func (p SwarmPlan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Swarm plan for project %s:\n", p.Project)
	if p.Empty() {
		b.WriteString("  up to date: nothing to do\n")
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  %-15s %s: %s\n", s.Action, s.Name, s.Cause)
		if s.Rollout != "" {
			fmt.Fprintf(&b, "  %-15s Swarm rolls it %s\n", "", s.Rollout)
		}
	}
	for _, n := range p.UpToDate {
		fmt.Fprintf(&b, "  %-15s %s\n", "up-to-date", n)
	}
	return b.String()
}
