package compose

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// ErrUnsupported marks compose keys that docker lifecycle does not implement yet.
var ErrUnsupported = errors.New("not supported by docker lifecycle yet")

// ErrDependencyCycle marks a depends_on cycle.
var ErrDependencyCycle = errors.New("dependency cycle")

// supportedServiceKeys are the service keys the converter turns into engine options
// (docs/compose-keys.md lists each with its status). A set key that is neither here nor
// in refusedServiceKeys is an error too, so a setting is never ignored silently.
var supportedServiceKeys = []string{
	"name", "profiles", "deploy", "restart", "scale", "build", "pull_policy", "pull_refresh_after",
	"command", "entrypoint", "environment", "env_file", "image", "labels", "label_file",
	"ports", "expose", "volumes", "tmpfs", "networks", "healthcheck", "depends_on",
	"user", "working_dir", "hostname", "domainname", "cap_add", "cap_drop", "security_opt",
	"read_only", "privileged", "init", "ulimits", "sysctls", "shm_size", "extra_hosts",
	"dns", "dns_search", "dns_opt", "logging", "stop_signal", "stop_grace_period",
	"mem_limit", "mem_reservation", "cpus", "pids_limit", "tty", "stdin_open",
	"group_add", "oom_score_adj", "secrets", "#extensions", "-",
	// namespaces and identity
	"container_name", "network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup",
	"cgroup_parent", "mac_address", "links", "external_links", "volumes_from",
	// devices, runtime and platform
	"devices", "device_cgroup_rules", "gpus", "platform", "runtime", "isolation",
	// resources
	"cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
	"cpu_shares", "cpuset", "mem_swappiness", "memswap_limit", "blkio_config", "storage_opt",
	"oom_kill_disable",
	// metadata and files
	"annotations", "configs", "post_start", "pre_stop",
	// what `docker compose up` does not act on either: attach only chooses whose logs
	// `up` follows (deploy follows none), develop is read by `watch` alone.
	"attach", "develop",
}

// refusedServiceKeys are keys that cannot mean anything on one engine, or that this
// tool does not carry out, with the reason and what to do instead.
var refusedServiceKeys = map[string]string{
	"provider":        "a provider service is run by a compose plugin, not by the engine; deploy it with docker compose",
	"models":          "models are served by Docker Model Runner, which docker compose drives; deploy them with docker compose",
	"use_api_socket":  "it hands the Docker socket and the CLI's credentials to the container; mount /var/run/docker.sock as a volume if the service really needs the engine",
	"credential_spec": "gMSA credential specs exist only for Windows containers",
	"net":             "it is the version 1 spelling; write network_mode",
	"log_driver":      "it is the version 1 spelling; write logging.driver",
	"log_opt":         "it is the version 1 spelling; write logging.options",
	"dockerfile":      "it is the version 1 spelling; write build.dockerfile",
	"umask":           "the engine's create API has no umask; set it in the image's entrypoint",
	"pre_start":       "pre_start hooks run one-off containers before each start; run that step as a service that others depend on with condition service_completed_successfully",
}

// endpoint_mode is a no-op on one engine (a service name resolves to every replica,
// as with docker compose) and the Swarm service's endpoint mode on Swarm (compose/swarm.go).
var supportedDeployKeys = []string{"mode", "replicas", "resources", "restart_policy", "update_config", "rollback_config", "endpoint_mode", "#extensions"}

var refusedDeployKeys = map[string]string{
	"placement": "Swarm places tasks on nodes; one engine is one node: remove it",
	"labels":    "Swarm service labels are not container labels: use the service's labels",
}

// checkSupported lists every problem of a service at once, each wrapping ErrUnsupported
// when the key is refused, so one run names everything a file needs changed.
func checkSupported(p *types.Project, svc types.ServiceConfig) []error {
	var problems []error
	for _, key := range setKeys(reflect.ValueOf(svc), supportedServiceKeys) {
		problems = append(problems, unsupportedKey(key, refusedServiceKeys[key]))
	}
	if d := svc.Deploy; d != nil {
		for _, key := range setKeys(reflect.ValueOf(*d), supportedDeployKeys) {
			problems = append(problems, unsupportedKey("deploy."+key, refusedDeployKeys[key]))
		}
		if d.EndpointMode != "" && d.EndpointMode != "vip" && d.EndpointMode != "dnsrr" {
			problems = append(problems, fmt.Errorf("deploy.endpoint_mode %q: want vip or dnsrr", d.EndpointMode))
		}
		if d.Mode != "" && d.Mode != "replicated" {
			problems = append(problems, fmt.Errorf("deploy.mode %q is %w (only replicated): one engine is one node, so global is one replica", d.Mode, ErrUnsupported))
		}
		for _, r := range []*types.Resource{d.Resources.Limits, d.Resources.Reservations} {
			if r != nil && len(r.GenericResources) > 0 {
				problems = append(problems, fmt.Errorf("key \"deploy.resources\" generic_resources is %w: Swarm advertises generic resources of nodes; request devices with deploy.resources.reservations.devices", ErrUnsupported))
			}
		}
		if r := d.Resources.Reservations; r != nil && r.NanoCPUs != 0 {
			problems = append(problems, fmt.Errorf("key \"deploy.resources.reservations.cpus\" is %w: the engine has no CPU reservation for containers; use deploy.resources.limits.cpus", ErrUnsupported))
		}
	}
	for _, dns := range svc.DNS {
		if _, err := netip.ParseAddr(dns); err != nil {
			problems = append(problems, fmt.Errorf("dns %q is not an IP address: the engine accepts only IP addresses for dns", dns))
		}
	}
	if _, _, err := PullPolicyOf(svc); err != nil {
		problems = append(problems, err)
	}
	if svc.Image == "" && svc.Build == nil {
		problems = append(problems, errors.New("has neither image nor build: set image"))
	}
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeBind, types.VolumeTypeVolume, types.VolumeTypeTmpfs, types.VolumeTypeImage:
		default:
			problems = append(problems, fmt.Errorf("volume type %q (target %s) is %w: named pipes exist only on Windows engines, cluster volumes only in Swarm", v.Type, v.Target, ErrUnsupported))
		}
	}
	problems = append(problems, checkNamespaces(svc)...)
	problems = append(problems, checkConfigs(p, svc)...)
	return problems
}

func unsupportedKey(key, reason string) error {
	if reason == "" {
		return fmt.Errorf("key %q is %w", key, ErrUnsupported)
	}
	return fmt.Errorf("key %q is %w: %s", key, refused{}, reason)
}

// refused is ErrUnsupported for keys refused by design rather than not done yet.
type refused struct{}

func (refused) Error() string { return "not supported by docker lifecycle" }
func (refused) Unwrap() error { return ErrUnsupported }

// checkNamespaces checks the namespace keys beyond what compose-go checks (it refuses
// a service:NAME of no service, through the depends_on it adds for each).
func checkNamespaces(svc types.ServiceConfig) []error {
	var problems []error
	if svc.Uts != "" && svc.Uts != "host" {
		problems = append(problems, fmt.Errorf("uts %q: the engine knows only \"host\"", svc.Uts))
	}
	// With host networking the engine drops published ports (with a warning), as with
	// docker compose; sharing another container's network, it refuses them at create.
	if len(svc.Ports) > 0 && (svc.NetworkMode == "none" || strings.HasPrefix(svc.NetworkMode, types.ServicePrefix) || strings.HasPrefix(svc.NetworkMode, types.ContainerPrefix)) {
		problems = append(problems, fmt.Errorf("network_mode %q with ports: the container has no network of its own to publish from; publish the ports on the service that owns the network", svc.NetworkMode))
	}
	return problems
}

// checkConfigs refuses what compose refuses for configs: external ones (Swarm's) and
// Swarm's drivers.
func checkConfigs(p *types.Project, svc types.ServiceConfig) []error {
	var problems []error
	for _, ref := range svc.Configs {
		cfg, ok := p.Configs[ref.Source]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("config %q is not defined in the top-level configs", ref.Source))
		case bool(cfg.External):
			problems = append(problems, fmt.Errorf("config %q: external configs are %w (they are Swarm's); use file, environment or content", ref.Source, ErrUnsupported))
		case cfg.Driver != "" || cfg.TemplateDriver != "":
			problems = append(problems, fmt.Errorf("config %q: driver and template_driver are %w (they are Swarm's); use file, environment or content", ref.Source, ErrUnsupported))
		}
	}
	return problems
}

// setKeys returns the yaml names of the set fields of v that are not in allowed, sorted.
func setKeys(v reflect.Value, allowed []string) []string {
	t := v.Type()
	var found []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if f.Anonymous && len(tag) > 1 && tag[1] == "inline" {
			found = append(found, setKeys(v.Field(i), allowed)...)
			continue
		}
		if tag[0] == "" || slices.Contains(allowed, tag[0]) {
			continue
		}
		if !v.Field(i).IsZero() {
			found = append(found, tag[0])
		}
	}
	sort.Strings(found)
	return found
}

// checkDependencies refuses depends_on on unknown services and dependency cycles, and
// names the cycle.
func checkDependencies(tp *types.Project) error {
	for _, name := range sortedServiceNames(tp) {
		for dep := range tp.Services[name].DependsOn {
			if _, ok := tp.Services[dep]; !ok {
				if _, disabled := tp.DisabledServices[dep]; disabled {
					continue
				}
				return fmt.Errorf("service %q depends on undefined service %q: define it or remove it from depends_on", name, dep)
			}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) error
	visit = func(name string) error {
		switch state[name] {
		case visiting:
			i := slices.Index(stack, name)
			return fmt.Errorf("%w: %s", ErrDependencyCycle, strings.Join(append(stack[i:], name), " -> "))
		case done:
			return nil
		}
		state[name] = visiting
		stack = append(stack, name)
		deps := make([]string, 0, len(tp.Services[name].DependsOn))
		for d := range tp.Services[name].DependsOn {
			if _, ok := tp.Services[d]; ok {
				deps = append(deps, d)
			}
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		stack = stack[:len(stack)-1]
		state[name] = done
		return nil
	}
	for _, name := range sortedServiceNames(tp) {
		if err := visit(name); err != nil {
			return err
		}
	}
	return nil
}
