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

// supportedServiceKeys are the service keys the converter turns into engine options.
// Anything else that is set is an error, so a setting is never ignored silently.
var supportedServiceKeys = []string{
	"name", "profiles", "deploy", "restart", "scale", "build", "pull_policy",
	"command", "entrypoint", "environment", "env_file", "image", "labels", "label_file",
	"ports", "expose", "volumes", "tmpfs", "networks", "healthcheck", "depends_on",
	"user", "working_dir", "hostname", "domainname", "cap_add", "cap_drop", "security_opt",
	"read_only", "privileged", "init", "ulimits", "sysctls", "shm_size", "extra_hosts",
	"dns", "dns_search", "dns_opt", "logging", "stop_signal", "stop_grace_period",
	"mem_limit", "mem_reservation", "cpus", "pids_limit", "tty", "stdin_open",
	"group_add", "oom_score_adj", "secrets", "#extensions", "-",
}

var supportedDeployKeys = []string{"mode", "replicas", "resources", "restart_policy", "update_config", "rollback_config", "#extensions"}

// supportedPullPolicies: without --pull the deploy only uses local images.
var supportedPullPolicies = []string{"", types.PullPolicyMissing, types.PullPolicyIfNotPresent, types.PullPolicyNever, types.PullPolicyBuild}

func checkSupported(svc types.ServiceConfig) error {
	if key := firstUnsupported(reflect.ValueOf(svc), supportedServiceKeys); key != "" {
		return fmt.Errorf("key %q is %w", key, ErrUnsupported)
	}
	if d := svc.Deploy; d != nil {
		if key := firstUnsupported(reflect.ValueOf(*d), supportedDeployKeys); key != "" {
			return fmt.Errorf("key \"deploy.%s\" is %w", key, ErrUnsupported)
		}
		if d.Mode != "" && d.Mode != "replicated" {
			return fmt.Errorf("deploy.mode %q is %w (only replicated)", d.Mode, ErrUnsupported)
		}
		for _, r := range []*types.Resource{d.Resources.Limits, d.Resources.Reservations} {
			if r != nil && (len(r.Devices) > 0 || len(r.GenericResources) > 0) {
				return fmt.Errorf("key \"deploy.resources\" devices and generic_resources are %w", ErrUnsupported)
			}
		}
	}
	if d := svc.Deploy; d != nil && d.Resources.Reservations != nil && d.Resources.Reservations.NanoCPUs != 0 {
		return fmt.Errorf("key \"deploy.resources.reservations.cpus\" is %w: the engine has no CPU reservation for containers; use deploy.resources.limits.cpus", ErrUnsupported)
	}
	for _, dns := range svc.DNS {
		if _, err := netip.ParseAddr(dns); err != nil {
			return fmt.Errorf("dns %q is not an IP address: the engine accepts only IP addresses for dns", dns)
		}
	}
	if !slices.Contains(supportedPullPolicies, svc.PullPolicy) {
		return fmt.Errorf("pull_policy %q is %w: deploy uses images present on the engine; pull them first (docker compose pull)", svc.PullPolicy, ErrUnsupported)
	}
	if svc.Image == "" && svc.Build == nil {
		return errors.New("has neither image nor build: set image")
	}
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeBind, types.VolumeTypeVolume, types.VolumeTypeTmpfs:
		default:
			return fmt.Errorf("volume type %q (target %s) is %w", v.Type, v.Target, ErrUnsupported)
		}
	}
	return nil
}

// firstUnsupported returns the yaml name of the first set field of v that is not in allowed.
func firstUnsupported(v reflect.Value, allowed []string) string {
	t := v.Type()
	var found []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")
		if f.Anonymous && len(tag) > 1 && tag[1] == "inline" {
			if k := firstUnsupported(v.Field(i), allowed); k != "" {
				found = append(found, k)
			}
			continue
		}
		if tag[0] == "" || slices.Contains(allowed, tag[0]) {
			continue
		}
		if !v.Field(i).IsZero() {
			found = append(found, tag[0])
		}
	}
	if len(found) == 0 {
		return ""
	}
	sort.Strings(found)
	return found[0]
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
