package rollout

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// SwarmTask is one task of a project deployed to Swarm, as `ps` shows it.
type SwarmTask struct {
	engine.Task
	Project string
	// Service is the compose name (web; RouterService for the router); SwarmService the
	// Swarm one (shop_web, shop_web-r2, shop_lifecycle-router).
	Service, SwarmService string
	// Revision is the revision a blue-green or canary service's Swarm service runs (0
	// for a rolling service and the router); Router marks the router's tasks.
	Revision int
	Router   bool
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
			if !slices.ContainsFunc(svcs, func(s engine.Service) bool { return swarmMemberOf(project, s).Service == name }) {
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
		m := swarmMemberOf(project, s)
		if len(services) > 0 && !slices.Contains(services, m.Service) {
			continue
		}
		if !all && t.DesiredState != string(swarm.TaskStateRunning) {
			continue
		}
		out = append(out, SwarmTask{Task: t, Project: project, Service: m.Service, SwarmService: s.Name, Revision: m.Revision, Router: m.Router, ServicePorts: s.Ports})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Router != b.Router {
			return b.Router // a real service named router before the router
		}
		if a.Revision != b.Revision {
			return a.Revision < b.Revision
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

// swarmComposeName is the compose name of a Swarm service of the project, from its
// name alone (<project>_<service>); swarmMemberOf reads the labels first.
func swarmComposeName(project, service string) string {
	return strings.TrimPrefix(service, project+"_")
}

// swarmMember is what a Swarm service of the project is in compose terms: the compose
// service it runs, and its revision when it is one of a blue-green or canary service's
// revision services (<project>_<service>-r<N>); the router shows as the pseudo-service
// RouterService, as in logs and stats on one engine.
type swarmMember struct {
	Service  string
	Revision int
	Router   bool
}

// swarmMemberOf reads the labels deploy sets (LabelRole on the router,
// LabelSwarmService and LabelSwarmRevision on each revision service, set since
// blue-green on Swarm exists): names are not parsed, so a rolling service called
// web-r2 stays web-r2. A service without them is a rolling one, named by stack
// convention.
func swarmMemberOf(project string, s engine.Service) swarmMember {
	if s.Labels[compose.LabelRole] == compose.RoleRouter || s.Name == compose.SwarmRouterName(project) {
		return swarmMember{Service: RouterService, Router: true}
	}
	if name := s.Labels[compose.LabelSwarmService]; name != "" {
		if rev, err := strconv.Atoi(s.Labels[compose.LabelSwarmRevision]); err == nil {
			return swarmMember{Service: name, Revision: rev}
		}
	}
	return swarmMember{Service: swarmComposeName(project, s.Name)}
}

// swarmServiceNames are the compose names of the project's Swarm services, each once
// (a blue-green service's two revisions during a switch are one service).
func swarmServiceNames(project string, svcs []engine.Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, swarmMemberOf(project, s).Service)
	}
	sort.Strings(out)
	return slices.Compact(out)
}
