package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// swarmDownMargin is how long down waits, beyond the longest stop grace period of the
// project's services, for their tasks to shut down and their networks to be released.
var swarmDownMargin = 30 * time.Second

// terminalTaskStates are the states a task does not leave: its container has stopped.
var terminalTaskStates = []string{"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}

// DownSwarm removes a project deployed to Swarm, found by its namespace label alone (no
// compose file needed): its services, then, once their tasks have shut down, its
// networks (Swarm refuses to remove a network a task still uses), then its secrets and
// configs. Objects without the namespace label are never touched. Every failure is
// reported, together, at the end. With RemoveVolumes, the project's named volumes on the
// manager are removed too: the other nodes' volumes are not reachable from here.
func DownSwarm(ctx context.Context, eng engine.Engine, project string, events progress.Writer, opts DownOptions) error {
	l, err := lock.Acquire(ctx, eng, project, opts.Command, func(h lock.Holder) {
		progress.Emit(events, "Project "+project, progress.Warning, "Stale lock taken over", h.String())
	})
	if err != nil {
		return err
	}
	defer func() {
		releaseCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.Release(releaseCtx)
	}()
	ns := map[string]string{compose.LabelStackNamespace: project}
	services, err := eng.ListServices(ctx, ns)
	if err != nil {
		return err
	}
	var errs []error
	grace := 10 * time.Second // the engine's default stop grace period
	for _, s := range services {
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && cs.StopGracePeriod != nil {
			grace = max(grace, *cs.StopGracePeriod)
		}
	}
	if opts.Timeout != nil {
		grace = *opts.Timeout
	}
	deadline := time.Now().Add(grace + swarmDownMargin)
	for _, s := range services {
		id := "Swarm " + s.Name
		progress.Emit(events, id, progress.Working, "Removing service", "")
		if err := eng.RemoveService(ctx, s.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			errs = append(errs, err)
			continue
		}
		progress.Emit(events, id, progress.Done, "Removed", "")
	}
	if len(services) > 0 {
		if err := waitTasksDown(ctx, eng, project, deadline, events); err != nil {
			errs = append(errs, err)
		}
	}
	networks, err := eng.ListNetworks(ctx, ns)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, n := range networks {
		if err := removeSwarmNetwork(ctx, eng, n.Name, deadline, events); err != nil {
			errs = append(errs, err)
		}
	}
	for _, kind := range []string{engine.SwarmSecret, engine.SwarmConfig} {
		objs, err := eng.ListSwarmObjects(ctx, kind, ns)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range objs {
			id := "Swarm " + o.Name
			progress.Emit(events, id, progress.Working, "Removing "+kind, "")
			if err := eng.RemoveSwarmObject(ctx, kind, o.ID); err != nil && !errors.Is(err, engine.ErrNotFound) {
				progress.Emit(events, id, progress.Error, "Error", err.Error())
				errs = append(errs, fmt.Errorf("%s %s: %w", kind, o.Name, err))
				continue
			}
			progress.Emit(events, id, progress.Done, "Removed", "")
		}
	}
	verrs, err := removeProjectVolumes(ctx, eng, project, opts.RemoveVolumes, events)
	if err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, verrs...)
	if opts.RemoveVolumes {
		progress.Emit(events, "Project "+project, progress.Warning, "Volumes", "removed on the manager only: each node keeps its own volumes; remove them there (docker volume rm)")
	}
	if len(errs) > 0 {
		return fmt.Errorf("project %s on Swarm not fully removed (run down again once the cause is fixed): %w", project, errors.Join(errs...))
	}
	return nil
}

// waitTasksDown polls until the tasks of the project's removed services are gone (Swarm
// deletes a task once it shut down, then its node removes the container), or the
// deadline passes: tasks still running then are an error; tasks that shut down but are
// not deleted yet (e.g. on a node that is down) are a warning.
func waitTasksDown(ctx context.Context, eng engine.Engine, project string, deadline time.Time, events progress.Writer) error {
	ns := map[string]string{compose.LabelStackNamespace: project}
	id := "Project " + project
	progress.Emit(events, id, progress.Working, "Waiting for the tasks to shut down", "")
	for {
		tasks, err := eng.ListTasks(ctx, ns)
		if err != nil {
			return err
		}
		if len(tasks) == 0 {
			progress.Emit(events, id, progress.Done, "Tasks gone", "")
			return nil
		}
		if time.Now().After(deadline) {
			running := 0
			for _, t := range tasks {
				if !slices.Contains(terminalTaskStates, t.State) {
					running++
				}
			}
			if running == 0 {
				progress.Emit(events, id, progress.Warning, "Tasks shut down", fmt.Sprintf("%d not deleted by Swarm yet", len(tasks)))
				return nil
			}
			progress.Emit(events, id, progress.Error, "Tasks still running", fmt.Sprintf("%d", running))
			return fmt.Errorf("%d tasks of project %s still not shut down after the wait (see `docker stack ps %s`)", running, project, project)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(swarmPoll):
		}
	}
}

// removeSwarmNetwork removes a network, retrying until the deadline while Swarm refuses
// it: a task that just shut down may still hold it for a moment.
func removeSwarmNetwork(ctx context.Context, eng engine.Engine, name string, deadline time.Time, events progress.Writer) error {
	id := "Network " + name
	progress.Emit(events, id, progress.Working, "Removing", "")
	for {
		err := eng.RemoveNetwork(ctx, name)
		if err == nil || errors.Is(err, engine.ErrNotFound) {
			progress.Emit(events, id, progress.Done, "Removed", "")
			return nil
		}
		if time.Now().After(deadline) {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			return fmt.Errorf("network %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(swarmPoll):
		}
	}
}
