package compose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// LabelRouterService marks a service's own router (internal services); the project's
// router, which owns the published ports, has none.
const LabelRouterService = "io.lifecycle.router-service"

// An internal service (a routed strategy, no published port, but ports other services
// use: `expose` or unpublished `ports`) gets a router of its own that owns the service's
// name on its networks, while its containers answer to their own names only. A rollout
// then changes the router's backends, and the name keeps answering throughout; an
// alias cannot be taken from a container without cutting its connections, so the
// containers never get it. One router per internal service, because two services may
// well listen on the same port.

// InternalPorts are the TCP ports an internal service listens on for other services.
func InternalPorts(p *Project, service string) []int {
	svc := p.Project.Services[service]
	var out []int
	for _, e := range svc.Expose {
		port, proto, _ := strings.Cut(e, "/")
		if proto != "" && proto != "tcp" {
			continue
		}
		if n, err := strconv.Atoi(port); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	for _, port := range svc.Ports {
		if port.Published == "" && (port.Protocol == "" || port.Protocol == "tcp") {
			out = append(out, int(port.Target))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// InternalRouted reports whether the service runs behind a router of its own.
func InternalRouted(p *Project, service string) bool {
	return p.ServiceSpecs[service].Routed() && !BehindRouter(p, service) && len(InternalPorts(p, service)) > 0
}

// RouterKey names the router that carries a service's traffic: "" for the project's
// router, the service's name for its own router. ok is false when no router does.
func RouterKey(p *Project, service string) (key string, ok bool) {
	switch {
	case BehindRouter(p, service):
		return "", true
	case InternalRouted(p, service):
		return service, true
	}
	return "", false
}

// RouterNameOf is the container name of the router with the given key.
func RouterNameOf(project, key string) string {
	if key == "" {
		return RouterName(project)
	}
	return project + "-" + key + "-lifecycle-router"
}

// InternalRouteName is the route of an internal service's port.
func InternalRouteName(service string, port int) string { return fmt.Sprintf("%s:%d", service, port) }

// ServiceOfRoute reads the service from a route name ("<service>:<port>").
func ServiceOfRoute(route string) string {
	i := strings.LastIndex(route, ":")
	if i < 0 {
		return route
	}
	return route[:i]
}

// internalRouterEndpoints are the service's endpoints with the router's name: the
// service name and the user's aliases, which its containers do not get.
func internalRouterEndpoints(p *Project, service string) (container.NetworkMode, *network.NetworkingConfig) {
	mode, cfg := networking(p, p.Project.Services[service], RouterNameOf(p.Name, service))
	if cfg != nil {
		for _, ep := range cfg.EndpointsConfig {
			ep.IPAMConfig = nil // a static address belongs to the service's container
		}
	}
	return mode, cfg
}

// withoutServiceAliases keeps only the container's own name on each network of an
// internal service's container: its router answers to the service's name.
func withoutServiceAliases(cfg *network.NetworkingConfig, containerName string) {
	if cfg == nil {
		return
	}
	for _, ep := range cfg.EndpointsConfig {
		ep.Aliases = []string{containerName}
	}
}

// InternalRouterHash identifies an internal router's ports and endpoints.
func InternalRouterHash(p *Project, service string) string {
	mode, cfg := internalRouterEndpoints(p, service)
	return ServiceRouterHash(service, InternalPorts(p, service), mode, cfg)
}

// ServiceRouterHash is InternalRouterHash by parts: the service, its internal ports
// and the router's endpoints (what the guard, which may run without the compose files,
// keeps in its target).
func ServiceRouterHash(service string, ports []int, mode container.NetworkMode, cfg *network.NetworkingConfig) string {
	type endpoint struct {
		Network string
		Aliases []string
	}
	var eps []endpoint
	if cfg != nil {
		for name, ep := range cfg.EndpointsConfig {
			eps = append(eps, endpoint{name, ep.Aliases})
		}
	}
	slices.SortFunc(eps, func(a, b endpoint) int { return strings.Compare(a.Network, b.Network) })
	var routed []RoutedPort
	for _, port := range ports {
		routed = append(routed, RoutedPort{Route: InternalRouteName(service, port), Service: service, Published: port, Target: port})
	}
	names := []string{string(mode)}
	for _, e := range eps {
		names = append(names, e.Network+"="+strings.Join(e.Aliases, ","))
	}
	return RouterHash(routed, names)
}

// InternalRouterEndpoints are the network mode and endpoints of an internal service's
// router (the service's name and aliases on its networks).
func InternalRouterEndpoints(p *Project, service string) (container.NetworkMode, *network.NetworkingConfig) {
	return internalRouterEndpoints(p, service)
}

// InternalRouterContainer is the create spec of an internal service's router: the
// agent image, listening on the service's ports under its name, publishing nothing.
func InternalRouterContainer(p *Project, service, image string) (ContainerCreate, error) {
	mode, netCfg := internalRouterEndpoints(p, service)
	return ServiceRouterContainer(p.Name, service, image, InternalPorts(p, service), mode, netCfg)
}

// ServiceRouterContainer is InternalRouterContainer by parts: what the guard recreates
// a removed service router with, exactly as the deploy creates it.
func ServiceRouterContainer(project, service, image string, ports []int, mode container.NetworkMode, netCfg *network.NetworkingConfig) (ContainerCreate, error) {
	name := RouterNameOf(project, service)
	exposed := network.PortSet{}
	for _, port := range ports {
		pp, err := network.ParsePort(fmt.Sprintf("%d/tcp", port))
		if err != nil {
			return ContainerCreate{}, err
		}
		exposed[pp] = struct{}{}
	}
	hash := ServiceRouterHash(service, ports, mode, netCfg)
	cfg := &container.Config{
		Image:        image,
		Cmd:          []string{"router", "-config", RouterStateDir + "/router.json", "-control", RouterStateDir + "/control.sock", "-access-log"},
		ExposedPorts: exposed,
		Labels: map[string]string{
			LabelProject: project, LabelOneoff: "False", LabelRole: RoleRouter, LabelManagedBy: ManagedByValue,
			LabelRouterHash: hash, LabelImageRef: image, LabelRouterService: service,
			LabelAgentFeatures: agentFeatures,
			// Filed under the service, so `docker compose down` removes it with it.
			LabelService: service, LabelConfigHash: hash,
		},
	}
	pids := int64(256)
	host := &container.HostConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		CapDrop:       []string{"ALL"},
		SecurityOpt:   []string{"no-new-privileges:true"},
		Resources:     container.Resources{Memory: 256 << 20, PidsLimit: &pids},
		LogConfig:     container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
	host.NetworkMode = mode
	return ContainerCreate{Name: name, Config: cfg, HostConfig: host, Networking: netCfg}, nil
}
