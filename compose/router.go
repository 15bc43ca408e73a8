package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
)

// RoleRouter marks the project's traffic router container (label LabelRole).
const RoleRouter = "router"

// LabelRouterHash identifies the router container's ports and networks: a change means
// the router must be recreated.
const LabelRouterHash = "io.lifecycle.router-hash"

// LabelAgentFeatures lists, comma-separated, what a router's agent understands beyond
// config version 1 (router.Features). A router created before the label existed has
// none of them: the runtime sends it only what version 1 routers read.
const LabelAgentFeatures = "io.lifecycle.agent.features"

// agentFeatures is the LabelAgentFeatures value of the routers this plugin creates.
var agentFeatures = strings.Join(router.Features, ",")

// RouterStateDir is where the router keeps its config and control socket, so a
// restarted router serves what it served before.
const RouterStateDir = "/state"

// RouterName is the engine name of the project's router container.
func RouterName(project string) string { return project + "-lifecycle-router" }

// RevisionContainerName names a replica of a routed service: old and new revisions run
// side by side, and previous revisions stay (stopped) for rollback, so the revision is
// part of the name.
func RevisionContainerName(project, service string, revision, number int) string {
	return fmt.Sprintf("%s-%s-r%d-%d", project, service, revision, number)
}

// ReplicaName is the name of a service replica: its container_name when set (such a
// service has one replica and the recreate strategy), with its revision for routed
// services.
func ReplicaName(p *Project, service string, revision, number int) string {
	if name := p.Project.Services[service].ContainerName; name != "" {
		return name
	}
	if p.ServiceSpecs[service].Routed() {
		return RevisionContainerName(p.Name, service, revision, number)
	}
	return ContainerName(p.Name, service, number)
}

// RoutedPort is one published port of a routed service, which the router owns.
type RoutedPort struct {
	// Route is the router's route name, "<service>:<published port>".
	Route   string
	Service string
	HostIP  string
	// Published is the host port; the router listens on the same port inside its
	// container, which keeps `docker port` readable.
	Published int
	// Target is the service containers' port the router forwards to.
	Target int
	// Preview marks a blue-green service's preview port, which reaches the newest
	// colour before promotion (its backends are kept under PreviewKey).
	Preview bool `json:",omitempty"`
}

// PreviewKey is where the backends of a service's preview route are kept.
func PreviewKey(service string) string { return service + "#preview" }

// RoutedPorts lists the published ports that the router owns, sorted by route name.
func RoutedPorts(p *Project) ([]RoutedPort, error) {
	var out []RoutedPort
	taken := map[int]string{}
	for _, name := range p.ServiceNames() {
		if !p.ServiceSpecs[name].Routed() {
			continue
		}
		for _, port := range p.Project.Services[name].Ports {
			if port.Published == "" {
				continue // an ephemeral host port cannot stay stable across revisions
			}
			published, err := strconv.Atoi(port.Published)
			if err != nil {
				return nil, fmt.Errorf("service %q: published port %q: %w", name, port.Published, err)
			}
			if other, ok := taken[published]; ok {
				return nil, fmt.Errorf("services %q and %q both publish port %d; the router listens on one port per route", other, name, published)
			}
			taken[published] = name
			out = append(out, RoutedPort{
				Route: fmt.Sprintf("%s:%d", name, published), Service: name, HostIP: port.HostIP,
				Published: published, Target: int(port.Target),
			})
		}
		if preview := p.ServiceSpecs[name].BlueGreen.PreviewPort; preview != "" && len(out) > 0 && out[len(out)-1].Service == name {
			host, port, err := SplitHostPort(preview)
			if err != nil {
				return nil, fmt.Errorf("service %q: blue-green.preview-port: %w", name, err)
			}
			if other, ok := taken[port]; ok {
				return nil, fmt.Errorf("service %q: blue-green.preview-port %d is published by service %q too", name, port, other)
			}
			taken[port] = name
			out = append(out, RoutedPort{
				Route: fmt.Sprintf("%s:%d", PreviewKey(name), port), Service: name, HostIP: host,
				Published: port, Target: out[len(out)-1].Target, Preview: true,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out, nil
}

// RouterNetworks are the engine names of the networks the router joins: every network
// of a routed service, so it reaches each backend by container name.
func RouterNetworks(p *Project) []string {
	seen := map[string]bool{}
	var out []string
	for _, name := range p.ServiceNames() {
		if !BehindRouter(p, name) {
			continue
		}
		if segs, ok := routerSegments(p, name); ok { // an isolated service: its ingress network
			for _, n := range segs {
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
			continue
		}
		for key := range p.Project.Services[name].Networks {
			if n := p.Networks[key].Name; !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

// RouterHash identifies what the router container is created with (ports, networks).
func RouterHash(ports []RoutedPort, networks []string) string {
	b, _ := json.Marshal(struct {
		Ports    []RoutedPort
		Networks []string
	}{ports, networks})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// RouterContainer is the create spec of the project's router: the agent image running
// `router`, publishing the routed ports, with its state on a volume and no
// privileges.
func RouterContainer(p *Project, image string, ports []RoutedPort, networks []string) (ContainerCreate, error) {
	return ProjectRouterContainer(p.Name, image, ports, networks)
}

// ProjectRouterContainer is RouterContainer by the project's name: what the guard,
// which may run without the compose files, recreates a removed router with.
func ProjectRouterContainer(project, image string, ports []RoutedPort, networks []string) (ContainerCreate, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, rp := range ports {
		port, err := network.ParsePort(fmt.Sprintf("%d/tcp", rp.Published))
		if err != nil {
			return ContainerCreate{}, err
		}
		exposed[port] = struct{}{}
		b := network.PortBinding{HostPort: strconv.Itoa(rp.Published)}
		if rp.HostIP != "" {
			ip, err := netip.ParseAddr(rp.HostIP)
			if err != nil {
				return ContainerCreate{}, fmt.Errorf("service %q: host_ip %q: %w", rp.Service, rp.HostIP, err)
			}
			b.HostIP = ip
		}
		bindings[port] = append(bindings[port], b)
	}
	name := RouterName(project)
	cfg := &container.Config{
		Image:        image,
		Cmd:          []string{"router", "-config", RouterStateDir + "/router.json", "-control", RouterStateDir + "/control.sock", "-access-log"},
		ExposedPorts: exposed,
		Labels: map[string]string{
			LabelProject:       project,
			LabelOneoff:        "False",
			LabelRole:          RoleRouter,
			LabelManagedBy:     ManagedByValue,
			LabelRouterHash:    RouterHash(ports, networks),
			LabelImageRef:      image,
			LabelAgentFeatures: agentFeatures,
		},
	}
	if len(ports) > 0 {
		// Compose removes a project's containers service by service and leaves
		// unlabelled ones (which then keep the networks in use): filed under the first
		// routed service, `docker compose down` removes the router with that service.
		// Compose lists only containers with a config hash.
		cfg.Labels[LabelService] = ports[0].Service
		cfg.Labels[LabelConfigHash] = cfg.Labels[LabelRouterHash]
	}
	pids := int64(256)
	host := &container.HostConfig{
		PortBindings:  bindings,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		// Unprivileged: the engine lets any user bind ports below 1024 in a container
		// (net.ipv4.ip_unprivileged_port_start=0 since Docker 20.10).
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges:true"},
		// The config is saved in the container's own layer (/state, the only path the
		// agent user may write in its scratch image): it survives a restart of the
		// router and goes with the container, so no volume outlives the project. A new
		// router gets its config from the deploy that creates it.
		Resources: container.Resources{Memory: 256 << 20, PidsLimit: &pids},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
	}
	var netCfg *network.NetworkingConfig
	if len(networks) > 0 {
		host.NetworkMode = container.NetworkMode(networks[0])
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
		for _, n := range networks {
			netCfg.EndpointsConfig[n] = &network.EndpointSettings{Aliases: []string{name}}
		}
	}
	return ContainerCreate{Name: name, Config: cfg, HostConfig: host, Networking: netCfg}, nil
}

// BehindRouter reports whether the router carries the service's traffic: it runs old
// and new containers side by side and publishes ports. Other routed services (internal
// ones) roll start-first and are reached by name.
func BehindRouter(p *Project, service string) bool {
	if !p.ServiceSpecs[service].Routed() {
		return false
	}
	for _, port := range p.Project.Services[service].Ports {
		if port.Published != "" {
			return true
		}
	}
	return false
}

// SplitHostPort reads "[HOST:]PORT" as written in a compose ports entry.
func SplitHostPort(s string) (host string, port int, err error) {
	portText := s
	if i := strings.LastIndex(s, ":"); i >= 0 {
		host, portText = s[:i], s[i+1:]
	}
	port, err = strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("want [HOST:]PORT, got %q", s)
	}
	return host, port, nil
}
