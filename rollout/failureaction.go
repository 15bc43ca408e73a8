package rollout

import (
	"context"
	"fmt"
	"slices"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// A routed service's update_config may tolerate failed new containers: with
// failure_action continue every failure is tolerated, otherwise up to
// max_failure_ratio of the service's new containers. A tolerated failure removes the new
// container and leaves its slot to the old container it was to replace (which keeps
// serving and is not stopped); the rollout goes on and ends with a warning.

// updateConfig is the config that governs the service's rollout in this run, and its
// compose key: rollback_config when `rollback` takes the service back, else
// update_config (the planner orders the batches by the same rule).
func (x *executor) updateConfig(service string) (compose.UpdateSpec, string) {
	spec := x.project.ServiceSpecs[service]
	if x.opts.Rollback[service] > 0 {
		return spec.Rollback, "rollback_config"
	}
	return spec.Update, "update_config"
}

// tolerates reports whether one more failed new container of the service is tolerated,
// and counts it if so.
func (x *executor) tolerates(s strategies.Step) bool {
	spec, ok := x.project.ServiceSpecs[s.Service]
	if !ok || !spec.Routed() || s.Action != strategies.WaitHealthy {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	failed := x.tolerated[s.Service] + 1
	update, _ := x.updateConfig(s.Service)
	ok = update.FailureAction == compose.FailureContinue ||
		float64(failed) <= update.MaxFailureRatio*float64(x.newContainers[s.Service])
	if ok {
		x.tolerated[s.Service] = failed
	}
	return ok
}

// tolerate removes a failed new container (archiving its logs first when
// x-lifecycle.logs.archive is set) and hands its slot to the one it replaces.
func (x *executor) tolerate(ctx context.Context, s strategies.Step, cause error) error {
	id := x.idOf(s)
	_, key := x.updateConfig(s.Service)
	progress.Emit(x.events, containerID(s.Target), progress.Warning, "Tolerated", fmt.Sprintf("%s (%s): %s", s.Service, key, firstLine(cause)))
	if id != "" {
		if x.archive != nil {
			archiveBeforeRemove(ctx, x.eng, x.archive, x.project.Name, s.Service, s.Revision, s.Target, id, x.events)
		}
		if err := x.eng.RemoveContainer(ctx, id, true); err != nil {
			return err
		}
	}
	x.removeSecretsOf(ctx, s.Target)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.warnings = append(x.warnings, fmt.Sprintf("service %q: new container %s failed and was removed; %s", s.Service, s.Target, keptText(s.Replaces)))
	if s.Replaces != "" {
		x.substitutes[s.Target] = s.Replaces
	} else {
		x.failedNew = append(x.failedNew, s.Target)
	}
	return nil
}

func keptText(old string) string {
	if old == "" {
		return "the service runs one replica fewer"
	}
	return old + " keeps its place"
}

// substitute routes to the kept old containers in place of failed new ones.
func (x *executor) substitute(backends []strategies.RouteBackend) []strategies.RouteBackend {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]strategies.RouteBackend, 0, len(backends))
	for _, b := range backends {
		old, replaced := x.substitutes[b.Container]
		if !replaced {
			if slices.Contains(x.failedNew, b.Container) {
				continue
			}
			out = append(out, b)
			continue
		}
		rev := b.Revision
		for _, c := range x.observed.Containers {
			if c.Name == old {
				rev = c.Revision
			}
		}
		if !slices.ContainsFunc(out, func(o strategies.RouteBackend) bool { return o.Container == old }) {
			out = append(out, strategies.RouteBackend{Container: old, Revision: rev, Weight: b.Weight})
		}
	}
	return out
}

// kept reports whether an old container keeps its place (its replacement failed).
func (x *executor) kept(name string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, old := range x.substitutes {
		if old == name {
			return true
		}
	}
	return false
}
