package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// ErrPolicy marks a deploy refused by the project's security and resource policy.
var ErrPolicy = errors.New("policy violations stop the deploy")

// PolicyConfig turns the project's x-lifecycle policy into the policy package's terms.
func PolicyConfig(p *compose.Project) policy.Config {
	cfg := policy.Config{
		Require: p.Spec.Policy.Require,
		Deny:    p.Spec.Policy.Deny,
		Allow:   map[string][]policy.Exception{},
		Defaults: policy.Defaults{
			Memory: p.Spec.Policy.Defaults.Memory > 0,
			CPUs:   p.Spec.Policy.Defaults.CPUs > 0,
			Pids:   p.Spec.Policy.Defaults.Pids > 0,
			// x-lifecycle.logs gives only drivers that rotate (compose.LogsSpec).
			LogRotation: p.Spec.Logs != nil,
		},
	}
	for name, spec := range p.ServiceSpecs {
		for _, e := range spec.Allow {
			cfg.Allow[name] = append(cfg.Allow[name], policy.Exception{Rule: e.Rule, Reason: e.Reason})
		}
	}
	return cfg
}

// ValidatePolicy checks the policy's rule names and exceptions without the engine, so a
// typo fails before any engine call.
func ValidatePolicy(p *compose.Project) error {
	if _, err := policy.Evaluate(p.Project, nil, PolicyConfig(p)); err != nil {
		return fmt.Errorf("x-lifecycle policy: %w", err)
	}
	return nil
}

// CheckPolicy evaluates every service. images come from InspectImages; nil means no
// engine, and the image-dependent checks then judge by the compose file alone.
func CheckPolicy(p *compose.Project, images Images) ([]policy.Finding, error) {
	findings, err := policy.Evaluate(p.Project, imageFacts(p, images), PolicyConfig(p))
	if err != nil {
		return nil, fmt.Errorf("x-lifecycle policy: %w", err)
	}
	return findings, nil
}

func imageFacts(p *compose.Project, images Images) map[string]policy.ImageFacts {
	facts := map[string]policy.ImageFacts{}
	if images == nil {
		return facts
	}
	for _, name := range p.ServiceNames() {
		ref := compose.ImageRef(p, name)
		img, found := images[ref]
		facts[ref] = policy.ImageFacts{Found: found, User: img.User, Healthcheck: img.Healthcheck}
	}
	return facts
}

// policyError lists every blocking finding at once, so one run shows all there is to fix.
func policyError(blocking []policy.Finding) error {
	var b strings.Builder
	for _, f := range blocking {
		cis := ""
		if f.CIS != "" {
			cis = " (CIS " + f.CIS + ")"
		}
		fmt.Fprintf(&b, "\n  service %q: %s%s: %s", f.Service, f.Rule, cis, f.Message)
	}
	return fmt.Errorf("%w: %d found; fix them, or add an exception with its reason under the service's x-lifecycle.allow:%s", ErrPolicy, len(blocking), b.String())
}

// ErrPolicyNotEnforced marks a container whose engine settings break the policy although
// its compose service passed it (e.g. a setting the engine ignored).
var ErrPolicyNotEnforced = errors.New("policy not enforced by the engine")

// VerifyPolicy inspects the given containers and evaluates the policy on what the engine
// actually runs (privileges, capabilities, user, read-only root, security options,
// limits, namespaces, binds, ports, healthcheck), so a deploy proves enforcement instead
// of trusting its own conversion.
func VerifyPolicy(ctx context.Context, eng engine.Engine, p *compose.Project, images Images, containerIDs []string) error {
	var inspected []engine.ContainerDetails
	for _, id := range containerIDs {
		d, err := eng.InspectContainer(ctx, id)
		if err != nil {
			return err
		}
		inspected = append(inspected, d)
	}
	return verifyInspected(p, images, inspected)
}

// verifyInspected is VerifyPolicy on containers already inspected.
func verifyInspected(p *compose.Project, images Images, inspected []engine.ContainerDetails) error {
	observed := &types.Project{Name: p.Name, Services: types.Services{}}
	owner := map[string]string{} // synthetic service name → container name
	for _, d := range inspected {
		if d.Config == nil || d.HostConfig == nil {
			continue
		}
		name := d.Labels[compose.LabelService] + "#" + d.Name
		owner[name] = d.Name
		observed.Services[name] = runningService(name, d)
	}
	cfg := PolicyConfig(p)
	cfg.Defaults = policy.Defaults{} // applied by now: the limits must be on the container
	allow := map[string][]policy.Exception{}
	for name := range observed.Services {
		service, _, _ := strings.Cut(name, "#")
		allow[name] = cfg.Allow[service]
	}
	cfg.Allow = allow
	findings, err := policy.Evaluate(observed, imageFacts(p, images), cfg)
	if err != nil {
		return err
	}
	blocking := policy.Blocking(findings)
	if len(blocking) == 0 {
		return nil
	}
	var b strings.Builder
	for _, f := range blocking {
		service, _, _ := strings.Cut(f.Service, "#")
		fmt.Fprintf(&b, "\n  service %q, container %s: %s: %s", service, owner[f.Service], f.Rule, f.Message)
	}
	return fmt.Errorf("%w:%s\nthe engine did not apply these settings (see the warnings of `docker info`); the new containers keep running: fix the engine or the settings, or go back with `docker lifecycle rollback`", ErrPolicyNotEnforced, b.String())
}

// createdInspections inspects each container a deploy creates as soon as it is created,
// while the deploy starts it and waits for its gate, so that the policy check on the
// new containers adds no engine calls after the last step. What the policy reads (the
// host config, the mounts) is fixed when the container is created: the engine drops a
// setting it cannot apply at create time, with a warning.
type createdInspections struct {
	ctx context.Context
	eng engine.Engine
	wg  sync.WaitGroup

	mu        sync.Mutex
	inspected []engine.ContainerDetails
	errs      []error
}

func newCreatedInspections(ctx context.Context, eng engine.Engine) *createdInspections {
	return &createdInspections{ctx: ctx, eng: eng}
}

// add inspects the container id in the background (ExecOptions.Created).
func (c *createdInspections) add(id string) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		d, err := c.eng.InspectContainer(c.ctx, id)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case errors.Is(err, engine.ErrNotFound):
			return // removed within the run (a failed replica given up): nothing runs with it
		case err != nil:
			c.errs = append(c.errs, fmt.Errorf("inspect new container %s: %w", id, err))
			return
		}
		c.inspected = append(c.inspected, d)
	}()
}

// wait returns the inspections once every one has ended.
func (c *createdInspections) wait() ([]engine.ContainerDetails, error) {
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inspected, errors.Join(c.errs...)
}

// verifyCreated checks the policy on the containers this deploy created, as the engine
// runs them.
func verifyCreated(p *compose.Project, images Images, created *createdInspections, events progress.Writer) error {
	inspected, err := created.wait()
	if err != nil {
		return err
	}
	if len(inspected) == 0 {
		return nil
	}
	if err := verifyInspected(p, images, inspected); err != nil {
		return err
	}
	progress.Emit(events, "Project "+p.Name, progress.Done, "Policy verified", fmt.Sprintf("%d new containers run as the policy requires", len(inspected)))
	return nil
}

// runningService describes a container's effective settings as a compose service, so
// the same rules judge the file and the engine.
func runningService(name string, d engine.ContainerDetails) types.ServiceConfig {
	c, h := d.Config, d.HostConfig
	svc := types.ServiceConfig{Name: name}
	svc.Image = c.Image
	svc.User = c.User
	svc.Privileged = h.Privileged
	svc.ReadOnly = h.ReadonlyRootfs
	svc.Logging = &types.LoggingConfig{Driver: h.LogConfig.Type, Options: h.LogConfig.Config}
	svc.CapAdd = h.CapAdd
	svc.SecurityOpt = h.SecurityOpt
	svc.MemLimit = types.UnitBytes(h.Memory)
	svc.CPUS = float32(float64(h.NanoCPUs) / 1e9)
	if h.PidsLimit != nil {
		svc.PidsLimit = *h.PidsLimit
	}
	for mode, key := range map[string]*string{string(h.NetworkMode): &svc.NetworkMode, string(h.PidMode): &svc.Pid, string(h.IpcMode): &svc.Ipc, string(h.UTSMode): &svc.Uts} {
		if mode == "host" {
			*key = "host"
		}
	}
	for _, bind := range h.Binds {
		source, rest, _ := strings.Cut(bind, ":")
		target, options, _ := strings.Cut(rest, ":")
		readOnly := slices.Contains(strings.Split(options, ","), "ro")
		svc.Volumes = append(svc.Volumes, types.ServiceVolumeConfig{Type: types.VolumeTypeBind, Source: source, Target: target, ReadOnly: readOnly})
	}
	// `docker run --mount` (and the API's Mounts) lands here, not in Binds; the mount
	// types are compose's volume types (bind, volume, tmpfs, npipe).
	for _, m := range h.Mounts {
		svc.Volumes = append(svc.Volumes, types.ServiceVolumeConfig{Type: string(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	for port, bindings := range h.PortBindings {
		for _, bnd := range bindings {
			hostIP := ""
			if bnd.HostIP.IsValid() {
				hostIP = bnd.HostIP.String()
			}
			svc.Ports = append(svc.Ports, types.ServicePortConfig{HostIP: hostIP, Published: bnd.HostPort, Target: uint32(port.Num()), Protocol: string(port.Proto())})
		}
	}
	if hc := c.Healthcheck; hc != nil && len(hc.Test) > 0 {
		svc.HealthCheck = &types.HealthCheckConfig{Test: hc.Test, Disable: hc.Test[0] == "NONE"}
	}
	return svc
}

// RuntimeSocketFindings judges the project's containers that are not replicas of its
// compose services (the detached guard, agent containers, containers started by hand
// with the project's labels) with the docker-socket rule: lint's view of what the
// compose file does not show. The project's own guard is recognised and not reported.
func RuntimeSocketFindings(ctx context.Context, eng engine.Engine, p *compose.Project) ([]policy.Finding, error) {
	cs, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: p.Name})
	if err != nil {
		return nil, err
	}
	var runtime []policy.RuntimeContainer
	for _, c := range cs {
		if _, ok := p.Services[c.Labels[compose.LabelService]]; ok && c.Labels[compose.LabelRole] == compose.RoleApp {
			continue // judged by its compose service
		}
		d, err := eng.InspectContainer(ctx, c.ID)
		if errors.Is(err, engine.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if d.Config == nil || d.HostConfig == nil {
			continue // not what the engine returns for a container; nothing to judge
		}
		rc := policy.RuntimeContainer{Name: d.Name, DetachedAgent: compose.IsDetachedAgent(p.Name, d.Name, d.Labels)}
		for _, v := range runningService(d.Name, d).Volumes {
			rc.Mounts = append(rc.Mounts, policy.RuntimeMount{Type: v.Type, Source: v.Source, Target: v.Target})
		}
		runtime = append(runtime, rc)
	}
	return policy.CheckRuntimeSocket(runtime), nil
}
