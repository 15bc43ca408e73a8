package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// DownOptions are the down command's choices.
type DownOptions struct {
	RemoveVolumes bool
	// Timeout overrides each container's stop grace period when set.
	Timeout *time.Duration
	Command string
}

// Down removes a project by its labels alone (no compose file needed): containers in
// reverse dependency order (dependents first), then networks, then named volumes if asked.
func Down(ctx context.Context, eng engine.Engine, project string, events progress.Writer, opts DownOptions) error {
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

	// The detached agents (guard, monitor) go first: they would watch, and report, the
	// teardown.
	agents, err := RemoveDetached(ctx, eng, project)
	for _, g := range agents {
		progress.Emit(events, "Container "+g, progress.Done, "Removed", "the project's detached agent")
	}
	if err != nil {
		return err
	}
	containers, err := eng.ListContainers(ctx, projectFilter(project))
	if err != nil {
		return err
	}
	if err := removeInDependencyOrder(ctx, eng, containers, events, opts.Timeout); err != nil {
		return err
	}

	networks, err := eng.ListNetworks(ctx, projectFilter(project))
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range networks {
		progress.Emit(events, "Network "+n.Name, progress.Working, "Removing", "")
		if err := eng.RemoveNetwork(ctx, n.Name); err != nil && !errors.Is(err, engine.ErrNotFound) {
			progress.Emit(events, "Network "+n.Name, progress.Error, "Error", err.Error())
			errs = append(errs, err)
			continue
		}
		progress.Emit(events, "Network "+n.Name, progress.Done, "Removed", "")
	}
	verrs, err := removeProjectVolumes(ctx, eng, project, opts.RemoveVolumes, events)
	if err != nil {
		return err
	}
	return errors.Join(append(errs, verrs...)...)
}

// removeProjectVolumes removes docker lifecycle's own volumes of the project (router
// state, revision records: they go with the project) and, with data, its named volumes.
func removeProjectVolumes(ctx context.Context, eng engine.Engine, project string, data bool, events progress.Writer) ([]error, error) {
	volumes, err := eng.ListVolumes(ctx, projectFilter(project))
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, v := range volumes {
		if !isLifecycleVolume(v) && !data {
			continue
		}
		progress.Emit(events, "Volume "+v.Name, progress.Working, "Removing", "")
		if err := eng.RemoveVolume(ctx, v.Name); err != nil && !errors.Is(err, engine.ErrNotFound) {
			progress.Emit(events, "Volume "+v.Name, progress.Error, "Error", err.Error())
			errs = append(errs, err)
			continue
		}
		progress.Emit(events, "Volume "+v.Name, progress.Done, "Removed", "")
	}
	return errs, nil
}

// removeInDependencyOrder stops and removes containers, a service only after every
// service that depends on it (read from Compose's depends_on label) is gone.
func removeInDependencyOrder(ctx context.Context, eng engine.Engine, containers []engine.Container, events progress.Writer, timeout *time.Duration) error {
	byService := map[string][]engine.Container{}
	dependents := map[string][]string{}
	for _, c := range containers {
		svc := c.Labels[compose.LabelService]
		byService[svc] = append(byService[svc], c)
	}
	for svc, cs := range byService {
		for _, dep := range strings.Split(cs[0].Labels[compose.LabelDependsOn], ",") {
			name, _, _ := strings.Cut(dep, ":")
			if _, ok := byService[name]; ok && name != "" && name != svc {
				dependents[name] = append(dependents[name], svc)
			}
		}
	}
	services := make([]string, 0, len(byService))
	for s := range byService {
		services = append(services, s)
	}
	sort.Strings(services)

	done := map[string]chan struct{}{}
	for _, s := range services {
		done[s] = make(chan struct{})
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, svc := range services {
		wg.Add(1)
		go func(svc string) {
			defer wg.Done()
			defer close(done[svc])
			for _, d := range dependents[svc] {
				select {
				case <-done[d]:
				case <-ctx.Done():
					return
				}
			}
			var inner sync.WaitGroup
			for _, c := range byService[svc] {
				inner.Add(1)
				go func(c engine.Container) {
					defer inner.Done()
					if err := stopAndRemove(ctx, eng, c, events, timeout); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}(c)
			}
			inner.Wait()
		}(svc)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}

func stopAndRemove(ctx context.Context, eng engine.Engine, c engine.Container, events progress.Writer, timeout *time.Duration) error {
	id := containerID(c.Name)
	if c.State == "running" || c.State == "restarting" || c.State == "paused" {
		progress.Emit(events, id, progress.Working, "Stopping", "")
		if err := eng.StopContainer(ctx, c.ID, "", timeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			return fmt.Errorf("stop container %s: %w", c.Name, err)
		}
		progress.Emit(events, id, progress.Done, "Stopped", "")
	}
	progress.Emit(events, id, progress.Working, "Removing", "")
	if err := eng.RemoveContainer(ctx, c.ID, true); err != nil && !errors.Is(err, engine.ErrNotFound) {
		progress.Emit(events, id, progress.Error, "Error", err.Error())
		return fmt.Errorf("remove container %s: %w", c.Name, err)
	}
	progress.Emit(events, id, progress.Done, "Removed", "")
	return nil
}
