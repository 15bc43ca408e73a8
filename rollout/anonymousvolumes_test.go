package rollout

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

var (
	cacheVolume = strings.Repeat("c", 64)
	dataVolume  = strings.Repeat("d", 64)
	otherVolume = strings.Repeat("e", 64)
)

func TestAnonymousPaths(t *testing.T) {
	svc := loadProject(t, `
name: demo
services:
  x:
    image: app:1
    volumes:
      - /cache
      - data:/named # a named volume wins over the image's VOLUME
      - /host:/bound
      - {type: tmpfs, target: /tmpfs}
    tmpfs: ["/run:size=1m"]
volumes:
  data:
`).Project.Services["x"]
	got := anonymousPaths(svc, []string{"/bound", "/cache", "/data", "/named", "/run", "/tmpfs"})
	assert.Check(t, is.DeepEqual(got, []string{"/cache", "/data"}))
}

func TestInheritMounts(t *testing.T) {
	hc := &container.HostConfig{Mounts: []mount.Mount{
		{Type: mount.TypeVolume, Target: "/cache"},
		{Type: mount.TypeVolume, Source: "demo_data", Target: "/named"},
	}}
	old := []engine.Mount{
		{Type: "volume", Name: cacheVolume, Destination: "/cache", RW: true},
		{Type: "volume", Name: dataVolume, Destination: "/data", RW: true},
		{Type: "volume", Name: otherVolume, Destination: "/named", RW: true}, // the service mounts a named volume there now
		{Type: "volume", Name: otherVolume, Destination: "/gone", RW: true},  // no longer an anonymous path
		{Type: "tmpfs", Destination: "/tmp"},
	}
	got := inheritMounts(hc, old, []string{"/cache", "/data", "/named"})
	assert.Check(t, is.DeepEqual(got, []mount.Mount{
		{Type: mount.TypeVolume, Source: cacheVolume, Target: "/cache"},
		{Type: mount.TypeVolume, Source: dataVolume, Target: "/data"},
	}))
	assert.Check(t, is.DeepEqual(hc.Mounts, []mount.Mount{
		{Type: mount.TypeVolume, Source: cacheVolume, Target: "/cache"},
		{Type: mount.TypeVolume, Source: "demo_data", Target: "/named"},
		{Type: mount.TypeVolume, Source: dataVolume, Target: "/data"},
	}))
}

// warningLog keeps the progress events of a run.
type warningLog struct {
	mu     sync.Mutex
	events []progress.Event
}

func (l *warningLog) Event(e progress.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *warningLog) Close() error { return nil }

func (l *warningLog) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if e.Status == progress.Warning {
			out = append(out, e.ID+": "+e.Text+": "+e.Detail)
		}
	}
	return out
}

// anonWorld is a world whose image declares VOLUME /data and whose containers get
// anonymous volumes at /cache and /data when created without a volume's name, as the
// engine does; it records the removals' removeAnonymousVolumes flag.
func anonWorld() (*world, *engine.Fake, *[]string) {
	w := newWorld()
	f := w.fake()
	var removals []string
	made := 0
	create := f.CreateContainerFn
	f.CreateContainerFn = func(ctx context.Context, spec engine.ContainerSpec) (string, error) {
		id, err := create(ctx, spec)
		if err != nil {
			return id, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		c := w.containers[id]
		given := map[string]string{}
		for _, m := range spec.HostConfig.Mounts {
			given[m.Target] = m.Source
		}
		for _, path := range []string{"/cache", "/data"} {
			name := given[path]
			if name == "" {
				made++
				name = strings.Repeat(string(rune('0'+made)), 64)
				w.volumes[name] = engine.Volume{Name: name}
			}
			c.Mounts = append(c.Mounts, engine.Mount{Type: "volume", Name: name, Destination: path, RW: true})
		}
		return id, nil
	}
	inspect := f.InspectContainerFn
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		d, err := inspect(ctx, id)
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, c := range w.containers {
			if c.ID == d.ID {
				d.Mounts = c.Mounts
			}
		}
		return d, err
	}
	remove := f.RemoveContainerFn
	f.RemoveContainerFn = func(ctx context.Context, id string, anon bool) error {
		w.mu.Lock()
		name := w.containers[id].Name
		w.mu.Unlock()
		if anon {
			removals = append(removals, name+" -v")
		} else {
			removals = append(removals, name)
		}
		return remove(ctx, id, anon)
	}
	f.InspectImageFn = func(_ context.Context, ref string) (engine.Image, error) {
		return engine.Image{ID: "sha256:" + ref, Volumes: []string{"/data"}}, nil
	}
	return w, f, &removals
}

func mountsOf(w *world, name string) map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for _, c := range w.containers {
		if c.Name == name {
			for _, m := range c.HostConfig.Mounts {
				out[m.Target] = m.Source
			}
		}
	}
	return out
}

const anonCompose = `
name: demo
services:
  cache:
    image: app:1
    environment: {V: "%s"}
    volumes: ["/cache"]
`

// TestRecreateInheritsAnonymousVolumes: the new container of a recreate service mounts
// the old one's anonymous volumes by name, at the path the service declares and at the
// image's VOLUME; the old one is kept (history) and holds them too.
func TestRecreateInheritsAnonymousVolumes(t *testing.T) {
	w, f, _ := anonWorld()
	run := func(version string) {
		p := loadProject(t, strings.Replace(anonCompose, "%s", version, 1))
		_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
		assert.NilError(t, err)
	}
	run("1")
	first := mountsOf(w, "demo-cache-1")
	assert.Check(t, is.DeepEqual(first, map[string]string{"/cache": ""}), "the first container gets fresh volumes")
	var old map[string]string
	w.mu.Lock()
	for _, c := range w.containers {
		old = map[string]string{}
		for _, m := range c.Mounts {
			old[m.Destination] = m.Name
		}
	}
	w.mu.Unlock()
	run("2")
	assert.Check(t, is.DeepEqual(mountsOf(w, "demo-cache-1"), old), "the new container takes over /cache and /data")
	assert.Check(t, is.DeepEqual(mountsOf(w, "demo-cache-r1-1"), first), "the old one is kept for a rollback")
}

// TestRecreateWithoutHistoryKeepsTheVolumesForTheReplacement: without history the old
// container is removed before its replacement is created: its anonymous volumes are kept
// for the replacement (removeAnonymousVolumes false), and those it does not take over
// are removed after its create.
func TestRecreateWithoutHistoryKeepsTheVolumesForTheReplacement(t *testing.T) {
	w, f, removals := anonWorld()
	yaml := strings.Replace(anonCompose, `volumes: ["/cache"]`, `volumes: ["/cache"]`+"\n    x-lifecycle: {history: 0}", 1)
	run := func(version, img string) {
		p := loadProject(t, strings.Replace(strings.Replace(yaml, "%s", version, 1), "app:1", img, 1))
		_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
		assert.NilError(t, err)
	}
	run("1", "app:1")
	var cache, data string
	w.mu.Lock()
	for _, c := range w.containers {
		for _, m := range c.Mounts {
			if m.Destination == "/cache" {
				cache = m.Name
			} else {
				data = m.Name
			}
		}
	}
	w.mu.Unlock()
	// The new image no longer declares /data: that volume goes, /cache stays.
	f.InspectImageFn = func(_ context.Context, ref string) (engine.Image, error) {
		return engine.Image{ID: "sha256:" + ref}, nil
	}
	run("2", "app:2")
	assert.Check(t, is.DeepEqual(*removals, []string{"demo-cache-1"}), "removed without its volumes")
	assert.Check(t, is.DeepEqual(mountsOf(w, "demo-cache-1"), map[string]string{"/cache": cache}))
	w.mu.Lock()
	defer w.mu.Unlock()
	_, hasCache := w.volumes[cache]
	_, hasData := w.volumes[data]
	assert.Check(t, hasCache, "the inherited volume stays")
	assert.Check(t, !hasData, "the volume nobody took over is removed")
}

// TestStartFirstWarnsOfFreshAnonymousVolumes: a rolling (start-first) service, set
// explicitly, does not share its anonymous volumes between old and new: the new
// container gets fresh ones and the deploy says so, with the path and the fix.
func TestStartFirstWarnsOfFreshAnonymousVolumes(t *testing.T) {
	w, f, _ := anonWorld()
	yaml := strings.Replace(anonCompose, `volumes: ["/cache"]`, `volumes: ["/cache"]`+"\n    x-lifecycle: {strategy: rolling}", 1)
	p := loadProject(t, strings.Replace(yaml, "%s", "1", 1))
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	log := &warningLog{}
	p = loadProject(t, strings.Replace(yaml, "%s", "2", 1))
	_, err = Deploy(context.Background(), f, p, log, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(mountsOf(w, "demo-cache-r2-1"), map[string]string{"/cache": ""}), "fresh volumes")
	got := strings.Join(log.warnings(), "\n")
	for _, want := range []string{
		"Service cache: Anonymous volume: /cache is an anonymous volume: its data is not carried to the new container",
		"set x-lifecycle strategy: recreate, or mount a named volume at /cache",
		"Service cache: Anonymous volume: /data is an anonymous volume",
	} {
		assert.Check(t, is.Contains(got, want))
	}
}

// TestFailedReplacementKeepsTheOnlyCopy: without history, a replacement that fails its
// gate holds the only copy of the data (the old container is gone): the cleanup removes
// it but keeps its inherited volumes, and says so.
func TestFailedReplacementKeepsTheOnlyCopy(t *testing.T) {
	w, f, removals := anonWorld()
	yaml := strings.Replace(anonCompose, `volumes: ["/cache"]`, `volumes: ["/cache"]`+"\n    x-lifecycle: {history: 0}", 1)
	p := loadProject(t, strings.Replace(yaml, "%s", "1", 1))
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	w.health = func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "exited", ExitCode: 1}
	}
	log := &warningLog{}
	p = loadProject(t, strings.Replace(yaml, "%s", "2", 1))
	_, err = Deploy(context.Background(), f, p, log, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.Check(t, err != nil)
	assert.Check(t, is.DeepEqual(*removals, []string{"demo-cache-1", "demo-cache-1"}), "neither removal takes the volumes")
	assert.Check(t, is.Contains(strings.Join(log.warnings(), "\n"), "Volumes kept: the anonymous volumes "+strings.Repeat("1", 64)))
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.volumes[strings.Repeat("1", 64)]
	assert.Check(t, ok, "the data is kept")
}

// TestRollingStopFirstInherits: rolling with order stop-first stops the old container
// before the new one starts, so the new one takes its anonymous volumes over, no warning.
func TestRollingStopFirstInherits(t *testing.T) {
	w, f, _ := anonWorld()
	yaml := strings.Replace(anonCompose, `volumes: ["/cache"]`, `volumes: ["/cache"]`+
		"\n    x-lifecycle: {strategy: rolling}\n    deploy: {update_config: {order: stop-first}}", 1)
	p := loadProject(t, strings.Replace(yaml, "%s", "1", 1))
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	old := map[string]string{}
	w.mu.Lock()
	for _, c := range w.containers {
		for _, m := range c.Mounts {
			old[m.Destination] = m.Name
		}
	}
	w.mu.Unlock()
	log := &warningLog{}
	p = loadProject(t, strings.Replace(yaml, "%s", "2", 1))
	_, err = Deploy(context.Background(), f, p, log, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(mountsOf(w, "demo-cache-r2-1"), old))
	assert.Check(t, is.Len(log.warnings(), 0))
}
