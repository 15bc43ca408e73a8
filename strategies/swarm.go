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

// Swarm plan actions.
const (
	SwarmCreateNetwork = "create-network"
	SwarmCreateService = "create-service"
	SwarmUpdateService = "update-service"
	// Back to the service's previous spec, which Swarm keeps (`rollback` on Swarm).
	SwarmRollbackService = "rollback-service"
	// A new version of a secret or config (compose.SwarmObjectName), created before the
	// services that reference it.
	SwarmCreateSecret = "create-secret"
	SwarmCreateConfig = "create-config"
	// A version no service of the project references any more, removed once the services
	// converged (Swarm refuses while a service uses it: kept for the next deploy).
	SwarmRemoveSecret = "remove-secret"
	SwarmRemoveConfig = "remove-config"
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
	// Revision is the revision of a blue-green service the step creates, switches to or
	// removes (strategies/swarmbluegreen.go).
	Revision int `json:"revision,omitempty"`
	// Weight is the new revision's percentage of a canary step, which the runtime keeps
	// for Pause before it judges the revision on the router's counters.
	Weight int           `json:"weight,omitempty"`
	Pause  time.Duration `json:"-"`
	// ID and Version are the observed service's, for an update.
	ID      string                `json:"-"`
	Version uint64                `json:"-"`
	Spec    swarm.ServiceSpec     `json:"-"`
	Network compose.NetworkCreate `json:"-"`
	// Object is the secret or config version to create (never its value); ObjectID the
	// observed one to remove.
	Object   compose.SwarmObject `json:"-"`
	ObjectID string              `json:"-"`
}

// Kind is the Swarm object kind (compose.SwarmSecret, compose.SwarmConfig) of a create or
// remove step of a secret or config, "" for any other step.
func (s SwarmStep) Kind() string {
	switch s.Action {
	case SwarmCreateSecret, SwarmRemoveSecret:
		return compose.SwarmSecret
	case SwarmCreateConfig, SwarmRemoveConfig:
		return compose.SwarmConfig
	}
	return ""
}

// Removal reports whether the step removes a version, which runs after the services
// converged.
func (s SwarmStep) Removal() bool {
	return s.Action == SwarmRemoveSecret || s.Action == SwarmRemoveConfig
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
		if s.Service != "" && !slices.Contains(out, s.Service) {
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
	// Secrets and Configs are the Swarm names its spec references.
	Secrets, Configs []string
}

// ObservedSwarmObject is a secret or config of the project found on the manager.
type ObservedSwarmObject struct {
	Kind, Name, ID string
	// Logical is its compose name (label compose.LabelSwarmObject), "" on an object docker
	// lifecycle did not create (e.g. by docker stack deploy): such an object is never
	// removed.
	Logical string
}

// SwarmObserved is the project's part of the Swarm: its networks and services by name,
// its secrets and configs.
type SwarmObserved struct {
	Networks map[string]bool
	Services map[string]ObservedSwarmService
	Objects  []ObservedSwarmObject
}

// PlanSwarm compares the desired services (by compose service name), networks and
// secret and config versions with what the manager has: a missing network, version or
// service is created, a service whose spec hash differs is updated (Swarm rolls it by its
// UpdateConfig), any other is up to date; the versions of the project's secrets and
// configs no service references any more are removed last.
func PlanSwarm(project string, networks []compose.NetworkCreate, objects []compose.SwarmObject, services map[string]swarm.ServiceSpec, observed SwarmObserved) SwarmPlan {
	plan := SwarmPlan{Project: project}
	for _, n := range networks {
		if !observed.Networks[n.Name] {
			plan.Steps = append(plan.Steps, SwarmStep{Action: SwarmCreateNetwork, Name: n.Name, Cause: "missing", Network: n})
		}
	}
	logical := map[string]string{} // Swarm name → kind and compose name, desired and observed
	present := map[string]bool{}
	for _, o := range observed.Objects {
		present[o.Kind+"/"+o.Name] = true
		logical[o.Kind+"/"+o.Name] = cmp.Or(o.Logical, objectLogical(project, o.Name))
	}
	for _, o := range objects {
		logical[o.Kind+"/"+o.SwarmName] = o.Name
		if present[o.Kind+"/"+o.SwarmName] {
			continue
		}
		action, cause := SwarmCreateSecret, "(new)"
		if o.Kind == compose.SwarmConfig {
			action = SwarmCreateConfig
		}
		for _, obs := range observed.Objects {
			if obs.Kind == o.Kind && logical[obs.Kind+"/"+obs.Name] == o.Name {
				cause = "changed"
			}
		}
		plan.Steps = append(plan.Steps, SwarmStep{Action: action, Name: o.SwarmName, Object: o,
			Cause: fmt.Sprintf("%s %s %s, used by %s", o.Kind, o.Name, cause, strings.Join(o.Services, ", "))})
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
			var causes []string
			if obs.Image != image {
				causes = append(causes, fmt.Sprintf("image %s → %s", obs.Image, image))
			}
			causes = append(causes, objectChanges(project, compose.SwarmSecret, obs.Secrets, SecretNames(spec), logical)...)
			causes = append(causes, objectChanges(project, compose.SwarmConfig, obs.Configs, ConfigNames(spec), logical)...)
			cause := cmp.Or(strings.Join(causes, "; "), "the service's configuration changed")
			plan.Steps = append(plan.Steps, SwarmStep{Action: SwarmUpdateService, Name: spec.Name, Service: name, Spec: spec,
				ID: obs.ID, Version: obs.Version, Cause: cause, Rollout: rolloutText(spec)})
		default:
			plan.UpToDate = append(plan.UpToDate, spec.Name)
		}
	}
	plan.Steps = append(plan.Steps, UnusedSwarmObjects(objects, services, observed)...)
	return plan
}

// UnusedSwarmObjects are the versions docker lifecycle created that no service of the project
// references once the deploy is done: not a desired version, and not referenced by an
// observed service the deploy leaves as it is (one not deployed this time).
func UnusedSwarmObjects(objects []compose.SwarmObject, services map[string]swarm.ServiceSpec, observed SwarmObserved) []SwarmStep {
	used := map[string]bool{}
	for _, o := range objects {
		used[o.Kind+"/"+o.SwarmName] = true
	}
	deployed := map[string]bool{}
	for _, spec := range services {
		deployed[spec.Name] = true
	}
	for name, obs := range observed.Services {
		if deployed[name] {
			continue
		}
		for _, n := range obs.Secrets {
			used[compose.SwarmSecret+"/"+n] = true
		}
		for _, n := range obs.Configs {
			used[compose.SwarmConfig+"/"+n] = true
		}
	}
	var steps []SwarmStep
	for _, o := range observed.Objects {
		if o.Logical == "" || used[o.Kind+"/"+o.Name] {
			continue
		}
		action := SwarmRemoveSecret
		if o.Kind == compose.SwarmConfig {
			action = SwarmRemoveConfig
		}
		steps = append(steps, SwarmStep{Action: action, Name: o.Name, ObjectID: o.ID,
			Cause: fmt.Sprintf("old version of %s %s, used by no service: removed after the services converged", o.Kind, o.Logical)})
	}
	slices.SortFunc(steps, func(a, b SwarmStep) int { return cmp.Or(cmp.Compare(a.Action, b.Action), cmp.Compare(a.Name, b.Name)) })
	return steps
}

// objectChanges says which secrets (or configs) of a service changed value, were added or
// were removed, by compose name, between the Swarm names it references and those it will.
func objectChanges(project, kind string, before, after []string, logical map[string]string) []string {
	name := func(n string) string { return cmp.Or(logical[kind+"/"+n], objectLogical(project, n)) }
	was := map[string]string{}
	for _, n := range before {
		was[name(n)] = n
	}
	var out []string
	for _, n := range after {
		old, ok := was[name(n)]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s %s added", kind, name(n)))
		case old != n:
			out = append(out, fmt.Sprintf("%s %s changed", kind, name(n)))
		}
		delete(was, name(n))
	}
	for _, l := range slices.Sorted(maps.Keys(was)) {
		out = append(out, fmt.Sprintf("%s %s removed", kind, l))
	}
	return out
}

// objectLogical reads the compose name out of a Swarm name <project>_<name>[_<hash8>].
func objectLogical(project, name string) string {
	n := strings.TrimPrefix(name, project+"_")
	if i := strings.LastIndexByte(n, '_'); i > 0 && len(n)-i-1 == 8 && strings.Trim(n[i+1:], "0123456789abcdef") == "" {
		n = n[:i]
	}
	return n
}

// SecretNames are the Swarm names of the secrets a service spec references.
func SecretNames(spec swarm.ServiceSpec) []string {
	var out []string
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Secrets {
			out = append(out, r.SecretName)
		}
	}
	return out
}

// ConfigNames are the Swarm names of the configs a service spec references.
func ConfigNames(spec swarm.ServiceSpec) []string {
	var out []string
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Configs {
			out = append(out, r.ConfigName)
		}
	}
	return out
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
