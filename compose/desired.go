package compose

import (
	"errors"
	"fmt"
)

// Desired is the state a deploy converges to, derived once from the loaded project:
// every name, hash and router layout the planner compares the engine with, so that
// planning (strategies) and execution (rollout) read one value instead of deriving
// the topology again at each step. Build it with Desire once the engine's networks
// were observed (segment subnets, and with them the hashes, depend on them).
type Desired struct {
	Project *Project
	// Services holds every service of the project, by name.
	Services map[string]DesiredService
	// RoutedPorts are the host ports the project's router owns; RouterNetworks are
	// the networks it joins; RouterHash identifies both (the router's config label).
	RoutedPorts    []RoutedPort
	RouterNetworks []string
	RouterHash     string
	// Networks and Volumes are what the project creates (external ones excluded).
	Networks []NetworkCreate
	Volumes  []VolumeCreate
}

// DesiredService is one service's desired facts.
type DesiredService struct {
	Name string
	// Image is the image reference its containers run (ImageRef).
	Image string
	// ConfigHash identifies its container configuration (ConfigHash).
	ConfigHash string
	// Routed: the strategy runs old and new containers side by side.
	Routed bool
	// Behind: a router carries its traffic; RouterKey says which ("" the project's,
	// else the service's own router) and RouterName is that router's container.
	Behind     bool
	RouterKey  string
	RouterName string
	// InternalRouterHash identifies the service's own router (RouterKey != "").
	InternalRouterHash string
}

// Desire derives the desired state of p. Every service's error is reported, not the first.
func Desire(p *Project) (*Desired, error) {
	d := &Desired{Project: p, Services: make(map[string]DesiredService, len(p.Project.Services))}
	var errs []error
	for _, name := range p.ServiceNames() {
		hash, err := ConfigHash(p, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s := DesiredService{Name: name, Image: ImageRef(p, name), ConfigHash: hash, Routed: p.ServiceSpecs[name].Routed()}
		s.RouterKey, s.Behind = RouterKey(p, name)
		if s.Behind {
			s.RouterName = RouterNameOf(p.Name, s.RouterKey)
		}
		if s.RouterKey != "" {
			s.InternalRouterHash = InternalRouterHash(p, name)
		}
		d.Services[name] = s
	}
	ports, err := RoutedPorts(p)
	if err != nil {
		errs = append(errs, err)
	}
	d.RoutedPorts = ports
	d.RouterNetworks = RouterNetworks(p)
	d.RouterHash = RouterHash(d.RoutedPorts, d.RouterNetworks)
	d.Networks, _ = Networks(p)
	d.Volumes, _ = Volumes(p)
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("project %s: %w", p.Name, err)
	}
	return d, nil
}
