package rollout

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// SwarmRevision is what Swarm keeps of a service's rollouts: its current spec, the spec
// before the last update (what `docker service rollback` returns to; none after Swarm
// rolled back by itself) and the last update's status. Swarm keeps no older revisions.
type SwarmRevision struct {
	// Service is the compose name (RouterService for the router), SwarmService the
	// Swarm one; Revision is the revision a blue-green or canary service's Swarm service
	// runs (0 for a rolling service and the router), Router marks the router.
	Project, Service, SwarmService string
	Revision                       int
	Router                         bool
	Image, PreviousImage           string
	// UpdateState is updating, paused, completed, rollback_started, rollback_paused or
	// rollback_completed; "" for a service never updated.
	UpdateState, UpdateMessage string
	UpdateStarted              time.Time
}

// SwarmHistory lists the project's Swarm services (compose names, sorted; a blue-green
// or canary service's revision services by revision), limited to services when given,
// with their current and previous image and last update.
func SwarmHistory(ctx context.Context, eng engine.Engine, project string, services []string) ([]SwarmRevision, error) {
	svcs, err := eng.ListServices(ctx, map[string]string{compose.LabelStackNamespace: project})
	if err != nil {
		return nil, err
	}
	var out []SwarmRevision
	found := map[string]bool{}
	for _, s := range svcs {
		m := swarmMemberOf(project, s)
		found[m.Service] = true
		if len(services) > 0 && !slices.Contains(services, m.Service) {
			continue
		}
		r := SwarmRevision{Project: project, Service: m.Service, SwarmService: s.Name, Revision: m.Revision, Router: m.Router, Image: specImage(&s.Spec), PreviousImage: specImage(s.PreviousSpec),
			UpdateState: s.UpdateState, UpdateMessage: s.UpdateMessage, UpdateStarted: s.UpdateStarted}
		out = append(out, r)
	}
	var unknown []string
	for _, name := range services {
		if !found[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no Swarm service %s in project %s (services: %s)", strings.Join(unknown, ", "), project, strings.Join(swarmServiceNames(project, svcs), ", "))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Router != b.Router {
			return b.Router
		}
		return a.Revision < b.Revision
	})
	return out, nil
}

func specImage(spec *swarm.ServiceSpec) string {
	if spec == nil || spec.TaskTemplate.ContainerSpec == nil {
		return ""
	}
	return spec.TaskTemplate.ContainerSpec.Image
}
