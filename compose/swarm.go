package compose

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// The labels `docker stack deploy` puts on what it creates: `docker stack ps`,
// `services` and `rm` find a stack's services and networks by the namespace label.
const (
	LabelStackNamespace = "com.docker.stack.namespace"
	LabelStackImage     = "com.docker.stack.image"
	// LabelSwarmSpec is the hash of the service spec docker lifecycle asked for: the
	// manager fills in defaults, so its copy of the spec cannot be compared with ours.
	LabelSwarmSpec = "io.lifecycle.swarm.spec-hash"
)

// defaultSwarmMonitor is Swarm's own default update monitor.
const defaultSwarmMonitor = 5 * time.Second

// SwarmServiceName is the Swarm name of a project service, as `docker stack deploy`
// names it.
func SwarmServiceName(project, service string) string { return project + "_" + service }

// swarmServiceKeys are the service keys a Swarm service carries over; any other key set
// on a service is refused on Swarm (SwarmServices), rather than silently dropped.
var swarmServiceKeys = []string{
	"name", "image", "command", "entrypoint", "environment", "working_dir", "user", "hostname",
	"healthcheck", "labels", "networks", "ports", "deploy", "stop_grace_period", "stop_signal",
	"init", "read_only", "tty", "stdin_open", "depends_on", "cpus", "mem_limit", "scale",
	"pull_policy", "extends", "secrets", "configs",
}

// SwarmProjectRefused says what of the project's own x-lifecycle a Swarm deploy cannot
// honour: the network allow-lists (x-lifecycle.network). Swarm connects every task
// that publishes a port to its shared ingress network, so segment overlays alone would
// not isolate a service; deploying without them would silently drop the isolation the
// file asks for, so the deploy is refused instead.
func SwarmProjectRefused(p *Project) error {
	if Segmented(p) {
		return fmt.Errorf("x-lifecycle.network (talks-to allow-lists) is %w on Swarm: its services would be connected without the isolation the file asks for (docs/swarm.md#what-is-missing); remove x-lifecycle.network (and every service's x-lifecycle.network block), or deploy to a non-Swarm engine", ErrUnsupported)
	}
	return nil
}

// SwarmNetworks is the overlay networks of the project, named and labelled as `docker
// stack deploy` does (<project>_<network>, com.docker.stack.namespace), plus the
// external ones a service uses, which must exist already.
func SwarmNetworks(p *Project) (create []NetworkCreate, external []string) {
	for _, k := range slices.Sorted(maps.Keys(p.Networks)) {
		n := p.Networks[k]
		if bool(n.External) {
			external = append(external, n.Name)
			continue
		}
		labels := maps.Clone(n.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelStackNamespace] = p.Name
		driver := n.Driver
		if driver == "" {
			driver = "overlay"
		}
		create = append(create, NetworkCreate{Name: n.Name, Driver: driver, Internal: n.Internal, Attachable: n.Attachable, Options: n.DriverOpts, Labels: labels})
	}
	return create, external
}

// SwarmService converts a project service into the Swarm service spec `docker lifecycle
// deploy` creates or updates on a Swarm manager: names and labels as `docker stack
// deploy` gives them, and the rollout of the service's strategy as Swarm's native
// update_config and rollback_config (SwarmUpdate). The spec carries LabelSwarmSpec, the
// hash of everything else in it. The service's secrets and configs are referenced by the
// Swarm names of their versions in versions (SwarmObjectName); their IDs are left to fill
// in, so the hash does not depend on them.
func SwarmService(p *Project, service string, versions SwarmVersions) (swarm.ServiceSpec, error) {
	return swarmService(p, service, versions, false)
}

// swarmService is SwarmService; behindRouter leaves out what the router does for a
// blue-green revision: the published ports and the service's network aliases.
func swarmService(p *Project, service string, versions SwarmVersions, behindRouter bool) (swarm.ServiceSpec, error) {
	svc, ok := p.Services[service]
	if !ok {
		return swarm.ServiceSpec{}, fmt.Errorf("no service %q in project %s", service, p.Name)
	}
	if err := swarmRefused(svc); err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", service, err)
	}
	spec := p.ServiceSpecs[service]
	update, rollback, err := SwarmUpdate(svc, spec)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", service, err)
	}
	image := ImageRef(p, service)
	labels := map[string]string{}
	containerLabels := map[string]string{LabelStackNamespace: p.Name}
	maps.Copy(containerLabels, svc.Labels)
	labels[LabelStackNamespace] = p.Name
	labels[LabelStackImage] = image

	cs := &swarm.ContainerSpec{
		Image: image, Labels: containerLabels,
		Command: svc.Entrypoint, Args: svc.Command,
		Env: environment(svc.Environment), Dir: svc.WorkingDir, User: svc.User, Hostname: svc.Hostname,
		Healthcheck: healthcheck(svc.HealthCheck), StopSignal: svc.StopSignal,
		Init: svc.Init, ReadOnly: svc.ReadOnly, TTY: svc.Tty, OpenStdin: svc.StdinOpen,
	}
	secrets, configs, err := swarmFileRefs(svc, versions)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", service, err)
	}
	cs.Secrets, cs.Configs = secrets, configs
	if svc.StopGracePeriod != nil {
		cs.StopGracePeriod = new(time.Duration(*svc.StopGracePeriod))
	}
	task := swarm.TaskSpec{ContainerSpec: cs, RestartPolicy: swarmRestart(svc), Resources: swarmResources(svc)}
	for _, key := range slices.Sorted(maps.Keys(svc.Networks)) {
		n, ok := p.Networks[key]
		if !ok {
			return swarm.ServiceSpec{}, fmt.Errorf("service %s: network %q is not declared in the project's networks", service, key)
		}
		aliases := []string{service}
		if c := svc.Networks[key]; c != nil {
			aliases = append(aliases, c.Aliases...)
		}
		if behindRouter {
			aliases = nil // two revisions run side by side: the router names each by its service
		}
		task.Networks = append(task.Networks, swarm.NetworkAttachmentConfig{Target: n.Name, Aliases: aliases})
	}
	endpoint := swarmEndpoint(svc)
	if behindRouter && endpoint != nil {
		endpoint = &swarm.EndpointSpec{Mode: endpoint.Mode} // the router publishes the ports
		if endpoint.Mode == swarm.ResolutionModeVIP {
			endpoint = nil
		}
	}
	if endpoint != nil && endpoint.Mode == swarm.ResolutionModeDNSRR && slices.ContainsFunc(endpoint.Ports, func(pc swarm.PortConfig) bool { return pc.PublishMode == swarm.PortConfigPublishModeIngress }) {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: deploy.endpoint_mode dnsrr and a port published through Swarm's ingress exclude each other (Swarm refuses it): publish with mode: host, or use endpoint_mode vip", service)
	}
	out := swarm.ServiceSpec{
		Annotations:    swarm.Annotations{Name: SwarmServiceName(p.Name, service), Labels: labels},
		TaskTemplate:   task,
		UpdateConfig:   update,
		RollbackConfig: rollback,
		EndpointSpec:   endpoint,
	}
	// deploy.labels and mode global are refused by the loader for every target (validate.go).
	out.Mode.Replicated = &swarm.ReplicatedService{Replicas: new(uint64(svc.GetScale()))}
	b, err := json.Marshal(out)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("hash the Swarm spec of service %s: %w", service, err)
	}
	sum := sha256.Sum256(b)
	labels[LabelSwarmSpec] = hex.EncodeToString(sum[:])
	return out, nil
}

// SwarmUpdate maps the service's strategy and compose's deploy.update_config and
// rollback_config onto Swarm's: start-first and failure_action rollback by default (Swarm's
// own defaults are stop-first and pause), a monitor (default Swarm's 5s) at least as long
// as the healthcheck needs to call a task unhealthy (interval × retries), so a task that
// never becomes healthy fails within the update; recreate is stop-first, all tasks at once.
// blue-green and canary are a Swarm service per revision behind the router
// (SwarmRevisionService), never updated in place (its update config is kept: `docker
// service update` by hand then rolls it safely).
func SwarmUpdate(svc types.ServiceConfig, spec ServiceSpec) (update, rollback *swarm.UpdateConfig, err error) {
	var minMonitor time.Duration
	if hc := svc.HealthCheck; hc != nil && !hc.Disable {
		interval, retries := 30*time.Second, uint64(3) // the engine's defaults
		if hc.Interval != nil {
			interval = time.Duration(*hc.Interval)
		}
		if hc.Retries != nil {
			retries = *hc.Retries
		}
		minMonitor = max(minMonitor, interval*time.Duration(retries))
	}
	conv := func(u UpdateSpec, rollbackConfig bool) *swarm.UpdateConfig {
		c := &swarm.UpdateConfig{
			Parallelism:     uint64(u.Parallelism),
			Delay:           time.Duration(u.Delay),
			Monitor:         max(cmp.Or(time.Duration(u.Monitor), defaultSwarmMonitor), minMonitor),
			MaxFailureRatio: float32(u.MaxFailureRatio),
			Order:           swarm.UpdateOrder(u.Order),
			FailureAction:   swarm.FailureAction(u.FailureAction),
		}
		if rollbackConfig && c.FailureAction == swarm.FailureAction(FailureRollback) {
			c.FailureAction = swarm.FailureAction(FailurePause) // a rollback cannot roll back: it stops where it failed
		}
		if spec.Strategy == StrategyRecreate {
			c.Order, c.Parallelism = swarm.UpdateOrder(OrderStopFirst), 0
		}
		return c
	}
	return conv(spec.Update, false), conv(spec.Rollback, true), nil
}

// swarmRefused names the keys set on svc that a Swarm service would not carry.
func swarmRefused(svc types.ServiceConfig) error {
	b, err := json.Marshal(svc)
	if err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	var refused []string
	for k, v := range keys {
		if strings.HasPrefix(k, "x-") || slices.Contains(swarmServiceKeys, k) || isZeroJSON(v) {
			continue
		}
		refused = append(refused, k)
	}
	if svc.Build != nil && svc.Image == "" {
		refused = append(refused, "build (without image: Swarm nodes cannot build)")
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return fmt.Errorf("keys not yet supported on Swarm: %s (see docs/swarm.md); remove them, or deploy to a non-Swarm engine", strings.Join(refused, ", "))
	}
	return nil
}

func isZeroJSON(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "null", "false", "0", `""`, "{}", "[]":
		return true
	}
	return false
}

func swarmRestart(svc types.ServiceConfig) *swarm.RestartPolicy {
	rp := &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	if svc.Deploy == nil || svc.Deploy.RestartPolicy == nil {
		return rp
	}
	c := svc.Deploy.RestartPolicy
	if c.Condition != "" {
		rp.Condition = swarm.RestartPolicyCondition(c.Condition)
	}
	if c.Delay != nil {
		rp.Delay = new(time.Duration(*c.Delay))
	}
	rp.MaxAttempts = c.MaxAttempts
	if c.Window != nil {
		rp.Window = new(time.Duration(*c.Window))
	}
	return rp
}

func swarmResources(svc types.ServiceConfig) *swarm.ResourceRequirements {
	r := resources(svc, ResourceDefaults{})
	if r.NanoCPUs == 0 && r.Memory == 0 {
		return nil
	}
	return &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: r.NanoCPUs, MemoryBytes: r.Memory}}
}

func swarmEndpoint(svc types.ServiceConfig) *swarm.EndpointSpec {
	var ports []swarm.PortConfig
	for _, p := range svc.Ports {
		pc := swarm.PortConfig{TargetPort: p.Target, Protocol: network.IPProtocol(cmp.Or(p.Protocol, "tcp")), PublishMode: swarm.PortConfigPublishModeIngress}
		if p.Mode == "host" {
			pc.PublishMode = swarm.PortConfigPublishModeHost
		}
		if p.Published != "" {
			var n uint32
			if _, err := fmt.Sscan(p.Published, &n); err == nil {
				pc.PublishedPort = n
			}
		}
		ports = append(ports, pc)
	}
	mode := swarm.ResolutionModeVIP
	if svc.Deploy != nil && svc.Deploy.EndpointMode != "" {
		mode = swarm.ResolutionMode(svc.Deploy.EndpointMode)
	}
	if len(ports) == 0 && mode == swarm.ResolutionModeVIP {
		return nil // Swarm's default
	}
	return &swarm.EndpointSpec{Mode: mode, Ports: ports}
}
