package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// Labels of the Swarm services of a blue-green service (docs/swarm.md, "Blue-green on
// Swarm"): each revision is a Swarm service of its own.
const (
	// LabelSwarmRevision is the revision number of a blue-green service's Swarm service.
	LabelSwarmRevision = "io.lifecycle.swarm.revision"
	// LabelSwarmService is the compose service a revision's Swarm service runs.
	LabelSwarmService = "io.lifecycle.swarm.service"
)

// SwarmRouterName is the Swarm service of the project's router on Swarm. Not
// <project>_router: a compose service may be called router.
func SwarmRouterName(project string) string { return project + "_lifecycle-router" }

// SwarmRevisionName is the Swarm service of one revision of a blue-green service.
func SwarmRevisionName(project, service string, revision int) string {
	return fmt.Sprintf("%s_%s-r%d", project, service, revision)
}

// SwarmBehindRouter reports whether the service is deployed as revisions behind the
// router on Swarm: blue-green and canary.
func SwarmBehindRouter(p *Project, service string) bool {
	s := p.ServiceSpecs[service].Strategy
	return s == StrategyBlueGreen || s == StrategyCanary
}

// swarmBlueGreenRefused names what of a blue-green service the Swarm slice does not do.
func swarmBlueGreenRefused(p *Project, service string) error {
	bg := p.ServiceSpecs[service].BlueGreen
	var refused []string
	if bg.PreviewPort != "" {
		refused = append(refused, "blue-green.preview-port")
	}
	if bg.Promote == PromoteManual {
		refused = append(refused, "blue-green.promote: manual")
	}
	if bg.ScaleDownDelay > 0 {
		refused = append(refused, "blue-green.scale-down-delay")
	}
	if len(refused) > 0 {
		return fmt.Errorf("service %s: %s not yet available for blue-green on Swarm (docs/swarm.md): remove them, or use rolling", service, strings.Join(refused, ", "))
	}
	if !slices.ContainsFunc(p.Project.Services[service].Ports, func(port types.ServicePortConfig) bool { return port.Published != "" }) {
		return fmt.Errorf("service %s: %s on Swarm switches the router's published ports, and the service publishes none: publish a port (ports: [\"8080:8080\"]), or use rolling", service, p.ServiceSpecs[service].Strategy)
	}
	return nil
}

// SwarmRevisionService is the Swarm service of revision rev of a blue-green service: the
// service's Swarm spec without published ports (the router publishes them) and without
// network aliases (two revisions run side by side during a switch: the router reaches
// each by its Swarm service name), hashed (LabelSwarmSpec: what the revision runs, not
// which revision it is), then named and labelled as revision rev (WithRevision).
func SwarmRevisionService(p *Project, service string, versions SwarmVersions, rev int) (swarm.ServiceSpec, error) {
	if err := swarmBlueGreenRefused(p, service); err != nil {
		return swarm.ServiceSpec{}, err
	}
	spec, err := swarmService(p, service, versions, true)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	return WithRevision(spec, p.Name, service, rev), nil
}

// WithRevision names and labels a blue-green service's spec as revision rev.
func WithRevision(spec swarm.ServiceSpec, project, service string, rev int) swarm.ServiceSpec {
	spec.Name = SwarmRevisionName(project, service, rev)
	spec.Labels = maps.Clone(spec.Labels)
	spec.Labels[LabelSwarmRevision] = strconv.Itoa(rev)
	spec.Labels[LabelSwarmService] = service
	return spec
}

// SwarmRoutedPorts are the ports the router publishes on Swarm: those of the blue-green
// services (rolling services publish their own through Swarm).
func SwarmRoutedPorts(p *Project) ([]RoutedPort, error) {
	all, err := RoutedPorts(p)
	if err != nil {
		return nil, err
	}
	var out []RoutedPort
	for _, rp := range all {
		if SwarmBehindRouter(p, rp.Service) && !rp.Preview {
			out = append(out, rp)
		}
	}
	return out, nil
}

// SwarmRouterNetworks are the Swarm names of the networks of the blue-green services:
// the router joins each, so it reaches every revision by its service name.
func SwarmRouterNetworks(p *Project) []string {
	seen := map[string]bool{}
	var out []string
	for _, name := range p.ServiceNames() {
		if !SwarmBehindRouter(p, name) {
			continue
		}
		for key := range p.Project.Services[name].Networks {
			if n := p.Networks[key].Name; !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// SwarmRouterService is the Swarm service of the project's router: the agent image
// running `router`, one replica pinned to the manager node the plugin talks to (nodeID:
// the plugin drives the router with `docker exec` into its task's container, which only
// that node's engine can reach), publishing the blue-green services' ports in host mode
// on that node (the router is one task on a known node; Swarm's ingress would need the
// kernel's IPVS), its name resolving to its task (dnsrr, same reason). Its spec carries
// LabelSwarmSpec, so a change of ports, networks, node or agent recreates it.
func SwarmRouterService(p *Project, image, nodeID string, ports []RoutedPort, networks []string) swarm.ServiceSpec {
	name := SwarmRouterName(p.Name)
	labels := map[string]string{LabelStackNamespace: p.Name, LabelStackImage: image, LabelRole: RoleRouter, LabelAgentFeatures: agentFeatures}
	var pcs []swarm.PortConfig
	for _, rp := range ports {
		pcs = append(pcs, swarm.PortConfig{TargetPort: uint32(rp.Published), PublishedPort: uint32(rp.Published), Protocol: network.TCP, PublishMode: swarm.PortConfigPublishModeHost})
	}
	var nets []swarm.NetworkAttachmentConfig
	for _, n := range networks {
		nets = append(nets, swarm.NetworkAttachmentConfig{Target: n, Aliases: []string{name}})
	}
	replicas := uint64(1)
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:  image,
				Labels: map[string]string{LabelStackNamespace: p.Name, LabelRole: RoleRouter},
				Args:   []string{"router", "-config", RouterStateDir + "/router.json", "-control", RouterStateDir + "/control.sock", "-access-log"},
				// A task Swarm restarts is a new container: the config survives on a
				// volume of the node the router is pinned to (filled from the image's
				// /state, owned by the agent's user, on first use).
				Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: name + "-state", Target: RouterStateDir,
					VolumeOptions: &mount.VolumeOptions{Labels: map[string]string{LabelStackNamespace: p.Name, LabelProject: p.Name}}}},
				// The router drains its connections on SIGTERM: as long as the longest drain.
				StopGracePeriod: new(swarmRouterStopGrace(p)),
			},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny},
			Resources:     &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 256 << 20, Pids: 256}},
			Placement:     &swarm.Placement{Constraints: []string{"node.id==" + nodeID}},
			Networks:      nets,
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		// One task on one node, with its ports bound there: the old task must be gone
		// before the new one binds them.
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: swarm.UpdateOrderStopFirst, FailureAction: swarm.UpdateFailureActionPause},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: pcs},
	}
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	labels[LabelSwarmSpec] = hex.EncodeToString(sum[:])
	return spec
}

func swarmRouterStopGrace(p *Project) time.Duration {
	grace := 10 * time.Second
	for _, name := range p.ServiceNames() {
		if SwarmBehindRouter(p, name) {
			grace = max(grace, time.Duration(p.ServiceSpecs[name].Drain))
		}
	}
	return grace
}
