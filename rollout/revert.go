package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ErrRolledBack marks a deploy that failed and was rolled back automatically: the
// previous revision serves again. The plugin exits with its own code for it.
var ErrRolledBack = errors.New("rolled back")

// RolledBackError says which services were rolled back and why.
type RolledBackError struct {
	Services []string
	Cause    error
	// Swarm: Swarm rolled the services back to their previous spec (rollout/swarm.go).
	Swarm bool
}

func (e *RolledBackError) Error() string {
	return fmt.Sprintf("%s; the cause: %s", e.Summary(), e.Cause)
}

// Summary says what was rolled back and what serves now, without the cause: for an
// interrupted deploy the plugin says "interrupted" instead of "context canceled".
func (e *RolledBackError) Summary() string {
	if e.Swarm {
		return fmt.Sprintf("%s %s by Swarm: the previous spec runs again", strings.Join(e.Services, ", "), ErrRolledBack)
	}
	return fmt.Sprintf("%s %s: the previous revision serves again and the new containers were removed",
		strings.Join(e.Services, ", "), ErrRolledBack)
}

func (e *RolledBackError) Unwrap() []error { return []error{ErrRolledBack, e.Cause} }

// revert rolls back every routed service whose rollout this run started and did not
// finish, when its failure_action is rollback (the default): the containers it stopped
// start again, the router gets the service's previous backends back (draining the new
// ones), and the new containers are removed.
func (x *executor) revert(plan strategies.Plan, cause error) ([]string, error) {
	total := map[string]int{}
	for _, s := range plan.Steps {
		total[s.Service]++
	}
	var services []string
	x.mu.Lock()
	for name, spec := range x.project.ServiceSpecs {
		n := x.done[name]
		unfinished := (n > 0 && n < total[name]) || name == x.failed
		if update, _ := x.updateConfig(name); !unfinished || !spec.Routed() || update.FailureAction != compose.FailureRollback {
			continue
		}
		// With nothing served before (a first deploy), there is nothing to go back to:
		// cleanup removes the new containers and the deploy simply failed.
		if len(x.observed.Routes[name]) == 0 && len(x.stopped[name]) == 0 && !x.hadRunning(name) {
			continue
		}
		services = append(services, name)
	}
	x.mu.Unlock()
	sort.Strings(services)
	services = slices.Compact(services)
	if len(services) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	var errs []error
	for _, name := range services {
		if err := x.revertService(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("service %q: %w", name, err))
		}
	}
	return services, errors.Join(errs...)
}

// hadRunning reports whether the service had running containers before this run.
func (x *executor) hadRunning(service string) bool {
	return slices.ContainsFunc(x.observed.Containers, func(c strategies.ObservedContainer) bool {
		return c.Service == service && c.Running()
	})
}

func (x *executor) revertService(ctx context.Context, service string) error {
	id := "Service " + service
	progress.Emit(x.events, id, progress.Working, "Rolling back", "the deploy failed: restoring the previous revision")
	x.mu.Lock()
	stopped := slices.Clone(x.stopped[service])
	started := slices.Clone(x.started[service])
	x.mu.Unlock()
	previous := x.observed.Routes[service]

	// Start what this run stopped and wait for it, so it can serve again.
	for _, s := range stopped {
		if s.ContainerID == "" {
			continue
		}
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Starting", "rollback")
		if err := x.eng.StartContainer(ctx, s.ContainerID); err != nil {
			return err
		}
		wait := strategies.Step{Action: strategies.WaitHealthy, Service: service, Target: s.Target, ContainerID: s.ContainerID}
		if err := x.waitGate(ctx, wait, false); err != nil {
			return err
		}
	}
	if ds := x.desired.Services[service]; ds.Behind && x.routerClient(ds.RouterKey) != nil {
		key := ds.RouterKey
		x.routeMu.Lock()
		x.routes[service] = previous
		if _, ok := x.routes[compose.PreviewKey(service)]; ok {
			x.routes[compose.PreviewKey(service)] = x.observed.Routes[compose.PreviewKey(service)]
		}
		x.routeMu.Unlock()
		if err := x.pushRoutes(ctx, key); err != nil {
			return err
		}
		progress.Emit(x.events, id, progress.Done, "Routed", "back to "+describeRoute(previous))
	}
	// The new revision goes: containers this run created are removed by cleanup
	// (marked unhealthy here); retained containers it started stop again.
	x.mu.Lock()
	for name := range x.ids {
		if x.createdFor[name] == service {
			delete(x.healthy, name)
		}
	}
	x.mu.Unlock()
	for _, s := range started {
		if s.ContainerID == "" || slices.ContainsFunc(stopped, func(st strategies.Step) bool { return st.ContainerID == s.ContainerID }) {
			continue
		}
		if err := x.eng.StopContainer(ctx, s.ContainerID, "", nil); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	progress.Emit(x.events, id, progress.Done, "Rolled back", "")
	return nil
}

func describeRoute(bs []strategies.RouteBackend) string {
	if len(bs) == 0 {
		return "no backends"
	}
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Container
	}
	return strings.Join(names, ", ")
}
