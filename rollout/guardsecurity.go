package rollout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
)

// The guard's runtime security events (docs/guard.md): every running container of the
// project it reads (at each re-synchronisation, and on the engine's start and update
// events) is judged three ways, and what is wrong is reported, never acted on:
//
//   - policy: the security rules of lint (securityRules, policy/rules.go) on what the
//     engine runs (runningService, as VerifyPolicy judges a deploy's containers);
//   - drift: a container no deploy created, or whose settings that `docker update`
//     changes (DriftSettings) differ from the deployed ones;
//   - image drift: a container whose image is not the one its deploy recorded.

// Alert kinds of the runtime security events.
const (
	AlertPolicy     = "policy"      // a running container breaks lint's security rules
	AlertDrift      = "drift"       // a container no deploy created, or settings changed since the deploy
	AlertImageDrift = "image-drift" // a container's image is not the one its deploy recorded
)

// securityRules are the rules of lint the guard judges running containers by: what a
// container can do to its host. The others (limits, read-only, non-root, …) are the
// deploy's to enforce; a hand-started container breaking them is reported as drift.
var securityRules = []string{"privileged", "cap-add", "docker-socket", "host-network", "host-pid", "host-ipc", "host-uts", "host-dirs"}

// DriftSettings are the settings of a container that can change while it runs: those of
// `docker update`, and its networks (`docker network connect`, `disconnect`); the others
// need a new container, which the config hash label covers.
type DriftSettings struct {
	Memory            int64  `json:"memory,omitempty"`
	MemoryReservation int64  `json:"memory_reservation,omitempty"`
	NanoCPUs          int64  `json:"nano_cpus,omitempty"`
	CPUShares         int64  `json:"cpu_shares,omitempty"`
	CPUQuota          int64  `json:"cpu_quota,omitempty"`
	CPUPeriod         int64  `json:"cpu_period,omitempty"`
	CpusetCpus        string `json:"cpuset_cpus,omitempty"`
	CpusetMems        string `json:"cpuset_mems,omitempty"`
	PidsLimit         int64  `json:"pids_limit,omitempty"` // 0: none
	BlkioWeight       uint16 `json:"blkio_weight,omitempty"`
	Restart           string `json:"restart,omitempty"` // "no", "always", "on-failure:3", …
	// Networks are the names of the container's networks, sorted: "host", "none" or
	// "bridge" for those network modes, none for another container's namespace.
	Networks []string `json:"networks,omitempty"`
}

// DriftChange is one setting that differs from the deployed configuration.
type DriftChange struct {
	Setting  string `json:"setting"`
	Deployed string `json:"deployed"`
	Now      string `json:"now"`
}

// driftSettingsOf reads a host config's DriftSettings, the engine's equivalent spellings
// made one (no pids limit: nil, 0 or -1; no restart policy: "" or "no").
func driftSettingsOf(h *container.HostConfig, networks []string) DriftSettings {
	r := h.Resources
	s := DriftSettings{Memory: r.Memory, MemoryReservation: r.MemoryReservation, NanoCPUs: r.NanoCPUs, CPUShares: r.CPUShares,
		CPUQuota: r.CPUQuota, CPUPeriod: r.CPUPeriod, CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems, BlkioWeight: r.BlkioWeight}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		s.PidsLimit = *r.PidsLimit
	}
	s.Restart = string(h.RestartPolicy.Name)
	if s.Restart == "" {
		s.Restart = string(container.RestartPolicyDisabled)
	}
	if h.RestartPolicy.MaximumRetryCount > 0 {
		s.Restart += ":" + strconv.Itoa(h.RestartPolicy.MaximumRetryCount)
	}
	if len(networks) > 0 {
		s.Networks = networks
	}
	return s
}

// diff lists the settings of now that differ from deployed, in a stable order.
func (deployed DriftSettings) diff(now DriftSettings) []DriftChange {
	var out []DriftChange
	add := func(setting string, d, n any) {
		if d != n {
			out = append(out, DriftChange{Setting: setting, Deployed: fmt.Sprint(d), Now: fmt.Sprint(n)})
		}
	}
	add("memory", deployed.Memory, now.Memory)
	add("memory-reservation", deployed.MemoryReservation, now.MemoryReservation)
	add("cpus", cpus(deployed.NanoCPUs), cpus(now.NanoCPUs))
	add("cpu-shares", deployed.CPUShares, now.CPUShares)
	add("cpu-quota", deployed.CPUQuota, now.CPUQuota)
	add("cpu-period", deployed.CPUPeriod, now.CPUPeriod)
	add("cpuset-cpus", deployed.CpusetCpus, now.CpusetCpus)
	add("cpuset-mems", deployed.CpusetMems, now.CpusetMems)
	add("pids-limit", deployed.PidsLimit, now.PidsLimit)
	add("blkio-weight", deployed.BlkioWeight, now.BlkioWeight)
	add("restart", deployed.Restart, now.Restart)
	add("networks", strings.Join(deployed.Networks, ","), strings.Join(now.Networks, ","))
	return out
}

func cpus(nano int64) string { return strconv.FormatFloat(float64(nano)/1e9, 'f', -1, 64) }

// deployedSettings is what a deploy of the service creates its containers with
// (compose.Container), nil when the service cannot be converted.
func deployedSettings(p *compose.Project, service string) *DriftSettings {
	c, err := compose.Container(p, service, compose.ReplicaLabels{Number: 1, Revision: 1})
	if err != nil || c.HostConfig == nil {
		return nil
	}
	s := driftSettingsOf(c.HostConfig, createdNetworks(c))
	return &s
}

// createdNetworks are the networks a container created from c is on, as the engine's
// inspect names them.
func createdNetworks(c compose.ContainerCreate) []string {
	if c.Networking != nil && len(c.Networking.EndpointsConfig) > 0 {
		return slices.Sorted(maps.Keys(c.Networking.EndpointsConfig))
	}
	switch mode := string(c.HostConfig.NetworkMode); mode {
	case "host", "none", "bridge":
		return []string{mode}
	case "", "default":
		return []string{"bridge"}
	}
	return nil // container:…: another container's namespace, no network of its own
}

// ownContainer: the plugin's own helper containers of the project (router, secrets,
// accounts; the detached guard and monitor by their names and labels), which are not
// deploys' replicas and are not judged.
func (g *guard) ownContainer(d engine.ContainerDetails) bool {
	role := d.Labels[compose.LabelRole]
	if slices.Contains(compose.DetachedRoles, role) {
		return compose.IsDetachedAgent(g.project.Project, d.Name, d.Labels)
	}
	return role != "" && role != compose.RoleApp && d.Labels[compose.LabelManagedBy] == compose.ManagedByValue
}

// deployed: the container carries the labels a deploy writes on a replica.
func deployed(d engine.ContainerDetails) bool {
	l := d.Labels
	return l[compose.LabelManagedBy] == compose.ManagedByValue && l[compose.LabelRole] == compose.RoleApp &&
		l[compose.LabelService] != "" && l[compose.LabelRevision] != "" && l[compose.LabelConfigHash] != ""
}

// judge reports what is wrong with a running container of the project: the policy, the
// drift, the image drift. An alert is said once per container and content (the next
// re-synchronisation does not repeat it); a container back to normal may be reported
// again when it drifts anew.
func (g *guard) judge(d engine.ContainerDetails) {
	if d.State != "running" || d.Config == nil || d.HostConfig == nil || g.ownContainer(d) {
		return
	}
	service := d.Labels[compose.LabelService]
	isDeployed := deployed(d)
	base := GuardAlert{Service: service, Container: d.Name, Kind: AlertPolicy, Action: ActionReported}

	if findings := g.securityFindings(d, isDeployed); len(findings) > 0 {
		var msgs []string
		for _, f := range findings {
			msgs = append(msgs, f.Rule+": "+f.Message)
		}
		a := base
		a.Findings = findings
		a.Reason = fmt.Sprintf("the container breaks lint's security rules: %s", strings.Join(msgs, "; "))
		g.report(d.ID, a, strings.Join(msgs, "\n"))
	} else {
		g.clear(d.ID, AlertPolicy)
	}

	if !isDeployed {
		a := base
		a.Kind = AlertDrift
		a.Reason = "a container with the project's label that no deploy created (it lacks the labels a deploy writes: " +
			compose.LabelManagedBy + ", " + compose.LabelRole + "=app, " + compose.LabelRevision + ", " + compose.LabelConfigHash + ")"
		g.report(d.ID, a, "unmanaged")
		return
	}

	now := driftSettingsOf(d.HostConfig, d.Networks)
	want, baseline := g.baseline[d.ID], "first-seen"
	if spec, ok := g.project.Services[service]; ok && spec.Settings != nil && spec.ConfigHash == d.Labels[compose.LabelConfigHash] {
		want, baseline = *spec.Settings, "deployed"
	} else if _, seen := g.baseline[d.ID]; !seen {
		g.baseline[d.ID] = now
		want = now
	}
	if changes := want.diff(now); len(changes) > 0 {
		var msgs []string
		for _, c := range changes {
			msgs = append(msgs, fmt.Sprintf("%s %s → %s", c.Setting, c.Deployed, c.Now))
		}
		a := base
		a.Kind, a.Changes, a.Baseline = AlertDrift, changes, baseline
		from := "the deployed configuration (the compose file's, same config hash)"
		if baseline == "first-seen" {
			from = "what the guard first saw of the container (the compose file no longer has its configuration)"
		}
		a.Reason = fmt.Sprintf("settings differ from %s: %s (changed with docker update or docker network connect?); the guard does not change them back", from, strings.Join(msgs, ", "))
		g.report(d.ID, a, strings.Join(msgs, "\n"))
	} else {
		g.clear(d.ID, AlertDrift)
	}

	if label := d.Labels[compose.LabelImageDigest]; label != "" && d.ImageID != "" && label != d.ImageID {
		a := base
		a.Kind, a.ImageID, a.DeployedImageID = AlertImageDrift, d.ImageID, label
		a.Reason = fmt.Sprintf("the container runs image %s, its deploy recorded %s (label %s): it was not created by that deploy", d.ImageID, label, compose.LabelImageDigest)
		g.report(d.ID, a, d.ImageID)
	}
}

// securityFindings judges a container with lint's security rules. A deploy's replica
// gets its service's allow exceptions and is reported only for what would stop a deploy
// (x-lifecycle.policy may have been tightened since); any other container for every
// finding.
func (g *guard) securityFindings(d engine.ContainerDetails, isDeployed bool) []policy.Finding {
	name := d.Name
	observed := &types.Project{Name: g.project.Project, Services: types.Services{name: runningService(name, d)}}
	cfg := policy.Config{Deny: g.project.Deny, Allow: map[string][]policy.Exception{}}
	if isDeployed {
		for _, rule := range g.project.Services[d.Labels[compose.LabelService]].Allow {
			cfg.Allow[name] = append(cfg.Allow[name], policy.Exception{Rule: rule, Reason: "x-lifecycle.allow"})
		}
	}
	findings, err := policy.Evaluate(observed, nil, cfg)
	if err != nil {
		// A rule name the target does not know (a newer plugin's): judge without the project's lists.
		findings, _ = policy.Evaluate(observed, nil, policy.Config{})
	}
	var out []policy.Finding
	for _, f := range findings {
		if !slices.Contains(securityRules, f.Rule) || f.Allowed != "" || (isDeployed && f.Level != policy.Error) {
			continue
		}
		f.Service = d.Labels[compose.LabelService]
		out = append(out, f)
	}
	return out
}

// report alerts a unless the same content was said for the container already.
func (g *guard) report(id string, a GuardAlert, content string) {
	said := g.said[id]
	if said == nil {
		said = map[string]string{}
		g.said[id] = said
	}
	if c, ok := said[a.Kind]; ok && c == content {
		return
	}
	said[a.Kind] = content
	g.alert(a)
}

func (g *guard) clear(id, kind string) { delete(g.said[id], kind) }

// forget drops what the guard knows of a container that is gone.
func (g *guard) forget(id string) {
	delete(g.said, id)
	delete(g.baseline, id)
}

// check re-reads a container and judges it (an update event, a container that is not a
// replica at a re-synchronisation); a container gone meanwhile is no error.
func (g *guard) check(ctx context.Context, id string) error {
	d, err := g.eng.InspectContainer(ctx, id)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if w := g.watched[id]; w != nil && d.HostConfig != nil {
		w.memory = d.HostConfig.Memory // the OOM alert's limit, as updated
	}
	g.judge(d)
	return nil
}
