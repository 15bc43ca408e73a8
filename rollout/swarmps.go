package rollout

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// SwarmTask is one task of a project deployed to Swarm, as `ps` shows it.
type SwarmTask struct {
	engine.Task
	Project string
	// Service is the compose name (web); SwarmService the Swarm one (shop_web).
	Service, SwarmService string
	// ServicePorts are the ports the service publishes through the ingress (every
	// node); the task's own Ports are those it publishes in host mode.
	ServicePorts []swarm.PortConfig
}

// SwarmTasks lists the tasks of a project deployed to Swarm (its services carry the
// namespace label), limited to services (compose names) when given. Without all, only
// the tasks Swarm wants running: the history of replaced and failed tasks is left out.
// Sorted by service, slot, the wanted task first, then the newest.
func SwarmTasks(ctx context.Context, eng engine.Engine, project string, services []string, all bool) ([]SwarmTask, error) {
	ns := map[string]string{compose.LabelStackNamespace: project}
	svcs, err := eng.ListServices(ctx, ns)
	if err != nil {
		return nil, err
	}
	byID := map[string]engine.Service{}
	for _, s := range svcs {
		byID[s.ID] = s
	}
	if len(services) > 0 {
		var unknown []string
		for _, name := range services {
			if !slices.ContainsFunc(svcs, func(s engine.Service) bool { return swarmComposeName(project, s.Name) == name }) {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("no Swarm service %s in project %s (services: %s)", strings.Join(unknown, ", "), project, strings.Join(swarmServiceNames(project, svcs), ", "))
		}
	}
	tasks, err := eng.ListTasks(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []SwarmTask
	for _, t := range tasks {
		s, ok := byID[t.ServiceID]
		if !ok {
			continue // a service removed meanwhile
		}
		name := swarmComposeName(project, s.Name)
		if len(services) > 0 && !slices.Contains(services, name) {
			continue
		}
		if !all && t.DesiredState != string(swarm.TaskStateRunning) {
			continue
		}
		out = append(out, SwarmTask{Task: t, Project: project, Service: name, SwarmService: s.Name, ServicePorts: s.Ports})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		if ar, br := a.DesiredState == string(swarm.TaskStateRunning), b.DesiredState == string(swarm.TaskStateRunning); ar != br {
			return ar
		}
		return a.Since.After(b.Since)
	})
	return out, nil
}

// swarmComposeName is the compose name of a Swarm service of the project.
func swarmComposeName(project, service string) string {
	return strings.TrimPrefix(service, project+"_")
}

func swarmServiceNames(project string, svcs []engine.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, swarmComposeName(project, s.Name))
	}
	sort.Strings(out)
	return out
}
