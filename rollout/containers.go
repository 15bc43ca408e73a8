package rollout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// ProjectContainers lists a project's containers by name: the running ones (all of
// them with all), of the services asked for (their own containers: not the routers
// filed under them for Compose), and never the one-offs (secrets holders, verify
// probes), as `docker compose ps` does.
func ProjectContainers(ctx context.Context, eng engine.Engine, project string, services []string, all bool) ([]engine.Container, error) {
	containers, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project})
	if err != nil {
		return nil, err
	}
	var out []engine.Container
	for _, c := range containers {
		if c.Labels[compose.LabelOneoff] == "True" || (!all && c.State != "running" && c.State != "restarting") {
			continue
		}
		if len(services) > 0 && (!slices.Contains(services, c.Labels[compose.LabelService]) || c.Labels[compose.LabelRole] == compose.RoleRouter) {
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Traffic is one container's network counters at the start and the end of an interval.
type Traffic struct {
	Container     engine.Container
	First, Second engine.NetworkCounters
}

// SampleTraffic reads the network counters of the project's running containers (of
// services, when named) twice, interval apart (`network top`).
func SampleTraffic(ctx context.Context, eng engine.Engine, project string, services []string, interval time.Duration) ([]Traffic, error) {
	running, err := ProjectContainers(ctx, eng, project, services, false)
	if err != nil {
		return nil, err
	}
	first, err := sampleCounters(ctx, eng, running)
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(interval):
	}
	second, err := sampleCounters(ctx, eng, running)
	if err != nil {
		return nil, err
	}
	out := make([]Traffic, len(running))
	for i, c := range running {
		out[i] = Traffic{Container: c, First: first[i], Second: second[i]}
	}
	return out, nil
}

// sampleCounters reads every container's counters at once, so the samples line up.
func sampleCounters(ctx context.Context, eng engine.Engine, cs []engine.Container) ([]engine.NetworkCounters, error) {
	out := make([]engine.NetworkCounters, len(cs))
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() { out[i], errs[i] = eng.NetworkCounters(ctx, c.ID) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RevisionStates says what remains of each service's revisions: "running" (current),
// "retained" (stopped, kept for rollback); a revision with no container is absent.
func RevisionStates(ctx context.Context, eng engine.Engine, project string) (map[string]map[int]string, error) {
	containers, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project})
	if err != nil {
		return nil, err
	}
	state := map[string]map[int]string{}
	for _, c := range containers {
		svc := c.Labels[compose.LabelService]
		rev, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
		if state[svc] == nil {
			state[svc] = map[int]string{}
		}
		if c.State == "running" || c.State == "restarting" {
			state[svc][rev] = "running"
		} else if state[svc][rev] == "" {
			state[svc][rev] = "retained"
		}
	}
	return state, nil
}

// ErrNoSuchService: a service named on the command line has no container in the project.
var ErrNoSuchService = errors.New("no such service")

// checkServicesExist fails, naming every unknown one at once, when a service asked for
// has no container in the project: stats and logs would otherwise print nothing. The
// routers count as the pseudo-service RouterService.
func checkServicesExist(ctx context.Context, eng engine.Engine, project string, services []string) error {
	if len(services) == 0 {
		return nil
	}
	listed, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project})
	if err != nil {
		return fmt.Errorf("list the containers of project %s: %w", project, err)
	}
	known := map[string]bool{}
	for _, c := range listed {
		if c.Labels[compose.LabelRole] == compose.RoleRouter {
			known[RouterService] = true
		} else if s := c.Labels[compose.LabelService]; s != "" {
			known[s] = true
		}
	}
	var unknown []string
	for _, s := range services {
		if !known[s] {
			unknown = append(unknown, strconv.Quote(s))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	if len(known) == 0 {
		return fmt.Errorf("%w: %s: project %q has no containers on this engine (deploy it first, or name the project with -p)", ErrNoSuchService, strings.Join(unknown, ", "), project)
	}
	names := slices.Sorted(maps.Keys(known))
	return fmt.Errorf("%w: %s in project %q (services with containers: %s)", ErrNoSuchService, strings.Join(unknown, ", "), project, strings.Join(names, ", "))
}
