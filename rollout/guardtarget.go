package rollout

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// GuardTarget is all the guard needs of a compose project, resolved: the detached
// guard runs in a container without the compose files, so the plugin resolves the
// project on the user's side and passes this (JSON) to it. The foreground guard uses
// the same value, so both guards judge by the same data.
type GuardTarget struct {
	Project  string                        `json:"project"`
	Services map[string]GuardTargetService `json:"services"`
	// Deny are the rules x-lifecycle.policy requires or denies (errors besides lint's
	// default denials): a deploy's replica breaking one of the security rules among them
	// is reported (guardsecurity.go).
	Deny []string `json:"deny,omitempty"`
	// Router is the project's router as the compose file describes it (nil: no routed
	// port): what the guard recreates a removed router with and reconciles a
	// (re)started one against (guardrouter.go).
	Router *GuardTargetRouter `json:"router,omitempty"`
	// ServiceRouters are the internal services' own routers (compose.InternalRouted:
	// routed, reached by other services on the project's networks under the service's
	// name, no published port), kept the same way, sorted by service.
	ServiceRouters []GuardTargetRouter `json:"service_routers,omitempty"`
}

// routers are the routers the guard keeps: the project's first, then the services' own.
func (t GuardTarget) routers() []GuardTargetRouter {
	var out []GuardTargetRouter
	if t.Router != nil {
		out = append(out, *t.Router)
	}
	return append(out, t.ServiceRouters...)
}

// GuardTargetRouter is a router as a deploy creates it: the project's (Service "") or
// an internal service's own.
type GuardTargetRouter struct {
	// Service is the router's key (compose.RouterKey): "" for the project's router,
	// the internal service whose router it is otherwise.
	Service string `json:"service,omitempty"`
	// Ports and Networks are what the project's router container is created with
	// (compose.RouterHash); a service's router listens on Ports (Published = Target,
	// nothing published) with NetworkMode and Endpoints (the service's name and aliases
	// on its networks, compose.ServiceRouterHash).
	Ports       []compose.RoutedPort      `json:"ports"`
	Networks    []string                  `json:"networks,omitempty"`
	NetworkMode string                    `json:"network_mode,omitempty"`
	Endpoints   *network.NetworkingConfig `json:"endpoints,omitempty"`
	// Routes is the router's config as the deploy writes it, without backends: the
	// guard adds those from the containers' labels.
	Routes router.Config `json:"routes"`
}

// GuardTargetService is one service as the guard sees it.
type GuardTargetService struct {
	// Policy is the service's resolved x-lifecycle.guard (project defaults overlaid).
	Policy compose.GuardSpec `json:"policy"`
	// Routed: the service is behind the project's router (a restart leaves it first).
	Routed bool `json:"routed,omitempty"`
	// WaitTimeout bounds the wait for a restarted routed container to be healthy.
	WaitTimeout compose.Duration `json:"wait_timeout,omitempty"`
	// Hooks are the command lines of the service's post_start and pre_stop hooks: execs
	// that are deploy's, not someone's at a shell.
	Hooks []string `json:"hooks,omitempty"`
	// Allow are the rules the service's x-lifecycle.allow exempts it from.
	Allow []string `json:"allow,omitempty"`
	// ConfigHash is the service's config hash in the compose file, and Settings what a
	// deploy of it creates its containers with (the drift baseline of containers with
	// that hash).
	ConfigHash string         `json:"config_hash,omitempty"`
	Settings   *DriftSettings `json:"settings,omitempty"`
	// Dependents are the services restarted after a container of this one is
	// (guarddependents.go): those joining its namespaces (network_mode, ipc, pid
	// service:NAME) and those with depends_on.restart on it.
	Dependents []GuardDependent `json:"dependents,omitempty"`
}

// NewGuardTarget resolves what the guard needs of p.
func NewGuardTarget(p *compose.Project) GuardTarget {
	t := GuardTarget{Project: p.Name, Services: map[string]GuardTargetService{}, Deny: slices.Concat(p.Spec.Policy.Require, p.Spec.Policy.Deny)}
	if ports, err := compose.RoutedPorts(p); err == nil && len(ports) > 0 {
		// An error here is the deploy's to report; the guard then has no router to keep.
		if routes, err := routerConfig(p, "", nil); err == nil {
			t.Router = &GuardTargetRouter{Ports: ports, Networks: compose.RouterNetworks(p), Routes: routes}
		}
	}
	for _, service := range slices.Sorted(maps.Keys(p.ServiceSpecs)) {
		if !compose.InternalRouted(p, service) {
			continue
		}
		ports, err := routerPorts(p, service)
		routes, err2 := routerConfig(p, service, nil)
		if err != nil || err2 != nil {
			continue // the deploy's to report, as above
		}
		mode, endpoints := compose.InternalRouterEndpoints(p, service)
		t.ServiceRouters = append(t.ServiceRouters, GuardTargetRouter{Service: service, Ports: ports, NetworkMode: string(mode), Endpoints: endpoints, Routes: routes})
	}
	for name, spec := range p.ServiceSpecs {
		s := GuardTargetService{Policy: spec.Guard, Routed: spec.Routed(), WaitTimeout: spec.WaitTimeout, Dependents: guardDependents(p, name)}
		if svc, ok := p.Services[name]; ok {
			for _, h := range slices.Concat(svc.PostStart, svc.PreStop) {
				s.Hooks = append(s.Hooks, strings.Join(h.Command, " "))
			}
			if hash, err := compose.ConfigHash(p, name); err == nil {
				s.ConfigHash, s.Settings = hash, deployedSettings(p, name)
			}
		}
		for _, e := range spec.Allow {
			s.Allow = append(s.Allow, e.Rule)
		}
		t.Services[name] = s
	}
	return t
}

// DecodeGuardTarget reads a target written by EncodeGuardTarget, strictly.
func DecodeGuardTarget(b []byte) (GuardTarget, error) {
	var t GuardTarget
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return GuardTarget{}, fmt.Errorf("guard target (the resolved project the detached guard is given): %w", err)
	}
	if t.Project == "" {
		return GuardTarget{}, fmt.Errorf("guard target: no project name")
	}
	return t, nil
}

// Encode is the target's JSON (the detached guard's --target argument).
func (t GuardTarget) Encode() string {
	b, _ := json.Marshal(t) // plain data: cannot fail
	return string(b)
}
