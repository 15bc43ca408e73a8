package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// GuardStatusReport is `guard --status` (docs/guard.md: the JSON schema).
type GuardStatusReport struct {
	Project string `json:"project"`
	// Running: the guard container runs (the command's exit code is 0).
	Running   bool                    `json:"running"`
	Container DetachedContainerStatus `json:"container"`
	// Services are what the guard was given (its target) and the project's running
	// containers of each, as the engine has them now.
	Services []GuardServiceStatus `json:"services"`
	// Actions are the guard's last alerts, oldest first, read from its container's log.
	Actions []GuardAlert `json:"actions"`
}

// GuardServiceStatus is one guarded service.
type GuardServiceStatus struct {
	Service    string                   `json:"service"`
	Policy     compose.GuardSpec        `json:"policy"`
	Routed     bool                     `json:"routed,omitempty"`
	Containers []GuardedContainerStatus `json:"containers"`
}

// GuardedContainerStatus is one running app container of a guarded service.
type GuardedContainerStatus struct {
	Name   string `json:"name"`
	Health string `json:"health,omitempty"`
}

// GuardStatus reports project's detached guard: its container, what it watches and its
// last actions (at most last). ErrNoGuard when the project has no guard container.
func GuardStatus(ctx context.Context, eng engine.Engine, project string, last int) (GuardStatusReport, error) {
	r := GuardStatusReport{Project: project, Services: []GuardServiceStatus{}, Actions: []GuardAlert{}}
	d, st, err := detachedStatus(ctx, eng, project, compose.RoleGuard)
	if err != nil {
		return r, err
	}
	if d == nil {
		return r, fmt.Errorf("%w runs for project %s: start one with `docker lifecycle guard --detach --mount-docker-socket` in the project's directory", ErrNoGuard, project)
	}
	r.Running, r.Container = st.State == "running", st
	var target GuardTarget
	if arg := targetArg(*d); arg != "" {
		if target, err = DecodeGuardTarget([]byte(arg)); err != nil {
			return r, fmt.Errorf("guard container %s: %w", d.Name, err)
		}
	}
	apps, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project, compose.LabelRole: compose.RoleApp})
	if err != nil {
		return r, err
	}
	r.Services = guardedServices(target, apps)
	var lines []string
	err = eng.ContainerLogs(ctx, d.ID, engine.LogOptions{Tail: 4 * max(last, 1)}, func(l engine.LogLine) error {
		if l.Stream == "stdout" {
			lines = append(lines, l.Text)
		}
		return nil
	})
	if err != nil && !errors.Is(err, engine.ErrNotFound) {
		return r, fmt.Errorf("logs of the guard container %s: %w", d.Name, err)
	}
	r.Actions = lastActions(lines, last)
	return r, nil
}

// guardedServices joins the guard's target and the project's running app containers.
func guardedServices(t GuardTarget, apps []engine.Container) []GuardServiceStatus {
	out := []GuardServiceStatus{}
	for name, s := range t.Services {
		st := GuardServiceStatus{Service: name, Policy: s.Policy, Routed: s.Routed, Containers: []GuardedContainerStatus{}}
		for _, c := range apps {
			if c.Labels[compose.LabelService] == name && c.State == "running" {
				st.Containers = append(st.Containers, GuardedContainerStatus{Name: c.Name, Health: c.Health})
			}
		}
		sort.Slice(st.Containers, func(i, j int) bool { return st.Containers[i].Name < st.Containers[j].Name })
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}

// lastActions parses the guard's JSON alert lines (other lines are skipped) and keeps
// the last n.
func lastActions(lines []string, n int) []GuardAlert {
	out := []GuardAlert{}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var a GuardAlert
		if json.Unmarshal([]byte(l), &a) == nil && a.Kind != "" {
			out = append(out, a)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
