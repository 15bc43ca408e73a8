package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

// Anonymous volumes across a replacement, as `docker compose up` recreates a container:
// a stop-first replacement (recreate, rolling with order stop-first) mounts the volumes
// the old container had at the paths its image declares with VOLUME, or that the service
// mounts without a source, by name; so a redis (VOLUME /data) or a service with
// `volumes: ["/cache"]` keeps its data. A volume the service mounts with a source at that
// path wins, and tmpfs is never inherited. Compose's --renew-anon-volumes, which turns
// this off, has no equivalent here. Start-first strategies run old and new together:
// sharing the volume would make two writers, so the new container gets fresh ones and the
// deploy warns (docs/compose-keys.md, "Anonymous volumes").
//
// The volume is then mounted by name, so `docker rm -v` no longer removes it with either
// container: engine.RemoveAnonymousVolumes does, once its last holder is gone.

// anonymousVolumes is what the executor knows of the old containers' anonymous
// volumes, guarded by the executor's mu.
type anonymousVolumes struct {
	// replaced is, by service and replica number, the old container a new one of the
	// plan replaces.
	replaced map[string]strategies.ObservedContainer
	// removedMounts are the mounts of replaced containers that this run removed before
	// their replacement was created (recreate without history), by container ID.
	removedMounts map[string][]engine.Mount
	// held are, by new container name, the volumes it inherited from a container that
	// is gone: the only copy of the data, which a failed deploy's cleanup keeps.
	held map[string][]string
	// created are the replicas (by service and number) whose new container was created:
	// the old one's removal afterwards takes its volumes, those the new one holds stay.
	created map[string]bool
	// warned are the services warned about already in this run.
	warned map[string]bool
}

func replicaKey(service string, number int) string { return service + "#" + strconv.Itoa(number) }

// newAnonymousVolumes finds, for each container the plan creates, the container it
// replaces: the service's container of the same number that the plan stops, removes or
// renames (the newest, should there be several).
func newAnonymousVolumes(plan strategies.Plan, observed strategies.Observed) *anonymousVolumes {
	a := &anonymousVolumes{replaced: map[string]strategies.ObservedContainer{}, removedMounts: map[string][]engine.Mount{},
		held: map[string][]string{}, created: map[string]bool{}, warned: map[string]bool{}}
	creates := map[string]bool{}
	for _, s := range plan.Steps {
		if s.Action == strategies.Create {
			creates[replicaKey(s.Service, s.Number)] = true
		}
	}
	for _, s := range plan.Steps {
		if s.ContainerID == "" || (s.Action != strategies.Stop && s.Action != strategies.Remove && s.Action != strategies.Rename) {
			continue
		}
		i := slices.IndexFunc(observed.Containers, func(c strategies.ObservedContainer) bool { return c.ID == s.ContainerID })
		if i < 0 {
			continue
		}
		c := observed.Containers[i]
		key := replicaKey(c.Service, c.Number)
		if old, ok := a.replaced[key]; creates[key] && (!ok || c.Revision > old.Revision) {
			a.replaced[key] = c
		}
	}
	return a
}

// stopFirst reports whether the service's old container is stopped before its
// replacement starts, so the replacement may take its anonymous volumes over.
func (x *executor) stopFirst(service string) bool {
	if !x.project.ServiceSpecs[service].Routed() {
		return true
	}
	update, _ := x.updateConfig(service)
	return update.Order == compose.OrderStopFirst
}

// beforeRemove is called before a remove step: when the container is one a stop-first
// replacement not yet created inherits from, it records its mounts and reports that the
// container's anonymous volumes must stay (the replacement, created next, mounts them).
func (x *executor) beforeRemove(ctx context.Context, s strategies.Step) (keepVolumes bool) {
	x.mu.Lock()
	var old strategies.ObservedContainer
	for key, c := range x.anon.replaced {
		if c.ID == s.ContainerID && !x.anon.created[key] {
			old = c
		}
	}
	x.mu.Unlock()
	if old.ID == "" || !x.stopFirst(old.Service) {
		return false
	}
	d, err := x.eng.InspectContainer(ctx, old.ID)
	if err != nil {
		return false
	}
	x.mu.Lock()
	x.anon.removedMounts[old.ID] = d.Mounts
	x.mu.Unlock()
	return true
}

// inheritAnonymousVolumes makes the new container of step s mount the anonymous volumes
// of the container it replaces, for a stop-first service, or warns, for a start-first
// one, that they are not carried over.
func (x *executor) inheritAnonymousVolumes(ctx context.Context, s strategies.Step, spec *compose.ContainerCreate) error {
	x.mu.Lock()
	old, ok := x.anon.replaced[replicaKey(s.Service, s.Number)]
	removed, wasRemoved := x.anon.removedMounts[old.ID]
	x.anon.created[replicaKey(s.Service, s.Number)] = true
	x.mu.Unlock()
	if !ok {
		return nil
	}
	svc := x.project.Project.Services[s.Service]
	img, err := x.eng.InspectImage(ctx, spec.Config.Image)
	if err != nil {
		return fmt.Errorf("read the VOLUMEs of image %s: %w", spec.Config.Image, err)
	}
	paths := anonymousPaths(svc, img.Volumes)
	if len(paths) == 0 {
		return nil
	}
	if !x.stopFirst(s.Service) {
		x.warnFreshVolumes(s.Service, paths)
		return nil
	}
	mounts := removed
	if !wasRemoved {
		d, err := x.eng.InspectContainer(ctx, old.ID)
		switch {
		case errors.Is(err, engine.ErrNotFound):
			// Removed behind the deploy's back: its volumes went with it (docker rm -v) or
			// are unknown now; the new container starts with fresh ones.
			progress.Emit(x.events, containerID(s.Target), progress.Warning, "Fresh volumes",
				fmt.Sprintf("%s, which it replaces, is gone: its anonymous volumes at %s are not carried over", old.Name, strings.Join(paths, ", ")))
			return nil
		case err != nil:
			return fmt.Errorf("read the anonymous volumes of %s, which it replaces: %w", old.Name, err)
		}
		mounts = d.Mounts
	}
	inherited := inheritMounts(spec.HostConfig, mounts, paths)
	for _, m := range inherited {
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Creating", fmt.Sprintf("keeps the anonymous volume at %s of %s", m.Target, old.Name))
	}
	if !wasRemoved {
		return nil
	}
	// The old container is gone and its volumes were kept for this one: those it does
	// not take over are removed now, those it does are the only copy of the data.
	var names []string
	for _, m := range inherited {
		names = append(names, m.Source)
	}
	var rest []engine.Mount
	for _, m := range removed {
		if !slices.Contains(names, m.Name) {
			rest = append(rest, m)
		}
	}
	engine.RemoveAnonymousVolumes(ctx, x.eng, rest)
	x.mu.Lock()
	x.anon.held[s.Target] = names
	x.mu.Unlock()
	return nil
}

// anonymousPaths are the paths where a new container of svc gets an anonymous volume:
// its image's VOLUMEs and its own volumes without a source, minus the paths the service
// mounts something else at (a named volume, a bind, a tmpfs), which win.
func anonymousPaths(svc types.ServiceConfig, imageVolumes []string) []string {
	taken := map[string]bool{}
	var paths []string
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "" {
			paths = append(paths, v.Target)
			continue
		}
		taken[v.Target] = true
	}
	for _, t := range svc.Tmpfs {
		target, _, _ := strings.Cut(t, ":")
		taken[target] = true
	}
	for _, p := range imageVolumes {
		if !slices.Contains(paths, p) && !slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == p }) {
			paths = append(paths, p)
		}
	}
	paths = slices.DeleteFunc(paths, func(p string) bool { return taken[p] })
	slices.Sort(paths)
	return paths
}

// inheritMounts adds to hc the old container's volumes at paths, by name: a mount the
// spec has at that path without a source (the service's anonymous volume) gets the name,
// else a mount is added (a VOLUME of the image). It returns the mounts it set.
func inheritMounts(hc *container.HostConfig, old []engine.Mount, paths []string) []mount.Mount {
	var out []mount.Mount
	for _, om := range old {
		if om.Type != string(mount.TypeVolume) || om.Name == "" || !slices.Contains(paths, om.Destination) {
			continue
		}
		i := slices.IndexFunc(hc.Mounts, func(m mount.Mount) bool { return m.Target == om.Destination })
		switch {
		case i >= 0 && (hc.Mounts[i].Type != mount.TypeVolume || hc.Mounts[i].Source != ""):
			continue
		case i >= 0:
			hc.Mounts[i].Source = om.Name
			out = append(out, hc.Mounts[i])
		default:
			m := mount.Mount{Type: mount.TypeVolume, Source: om.Name, Target: om.Destination}
			hc.Mounts = append(hc.Mounts, m)
			out = append(out, m)
		}
	}
	return out
}

// warnFreshVolumes says, once per service and run, that a start-first replacement does
// not carry the anonymous volumes' data over.
func (x *executor) warnFreshVolumes(service string, paths []string) {
	x.mu.Lock()
	warned := x.anon.warned[service]
	x.anon.warned[service] = true
	x.mu.Unlock()
	if warned {
		return
	}
	strategy := x.project.ServiceSpecs[service].Strategy
	for _, p := range paths {
		progress.Emit(x.events, "Service "+service, progress.Warning, "Anonymous volume",
			fmt.Sprintf("%s is an anonymous volume: its data is not carried to the new container (%s runs old and new side by side); set x-lifecycle strategy: recreate, or mount a named volume at %s", p, strategy, p))
	}
}
