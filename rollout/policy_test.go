package rollout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// lint's look at the running containers that are not replicas: a socket mounted by
// -v or by --mount is reported, the project's own guard and the replicas are not.
func TestRuntimeSocketFindings(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  web: {image: acme/web:1}\n"), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}, ProjectName: "shop"})
	assert.NilError(t, err)
	project := map[string]string{compose.LabelProject: "shop"}
	guardLabels := map[string]string{compose.LabelProject: "shop", compose.LabelRole: compose.RoleGuard, "io.lifecycle.managed-by": "docker-lifecycle"}
	socket := []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
	details := map[string]engine.ContainerDetails{
		"replica": {Name: "/shop-web-r1-1", Labels: map[string]string{compose.LabelProject: "shop", compose.LabelService: "web", compose.LabelRole: compose.RoleApp},
			Config: &container.Config{}, HostConfig: &container.HostConfig{Binds: []string{"/var/run/docker.sock:/s"}}},
		"guard":         {Name: "/shop-guard", Labels: guardLabels, Config: &container.Config{}, HostConfig: &container.HostConfig{Mounts: socket}},
		"by-hand-mount": {Name: "/debug", Labels: project, Config: &container.Config{}, HostConfig: &container.HostConfig{Mounts: socket}},
		"by-hand-bind":  {Name: "/tools", Labels: project, Config: &container.Config{}, HostConfig: &container.HostConfig{Binds: []string{"/run:/host-run:ro"}}},
	}
	fake := &engine.Fake{
		ListContainersFn: func(context.Context, map[string]string) ([]engine.Container, error) {
			var out []engine.Container
			for id, d := range details {
				out = append(out, engine.Container{ID: id, Name: d.Name[1:], Labels: d.Labels})
			}
			return out, nil
		},
		InspectContainerFn: func(_ context.Context, id string) (engine.ContainerDetails, error) {
			assert.Check(t, id != "replica", "a replica is judged by its compose service, not inspected here")
			return details[id], nil
		},
	}
	findings, err := RuntimeSocketFindings(context.Background(), fake, p)
	assert.NilError(t, err)
	var got []string
	for _, f := range findings {
		got = append(got, f.Service+": "+f.Message)
	}
	slices.Sort(got)
	assert.Check(t, is.DeepEqual(got, []string{
		`debug: running container, not a service of the compose file: "/var/run/docker.sock:/var/run/docker.sock" mounts the Docker socket, which gives control of the host`,
		`tools: running container, not a service of the compose file: "/run:/host-run" mounts the host's /run, which holds the Docker socket`,
	}))
}

// What the engine runs, read back as compose volumes: a bind's ro option and a mount's
// read-only flag survive, so a read-only bind below /etc is not judged read-write.
func TestRunningServiceVolumes(t *testing.T) {
	d := engine.ContainerDetails{Config: &container.Config{}, HostConfig: &container.HostConfig{
		Binds:  []string{"/etc/app:/app:ro", "/srv/data:/data", "/srv/z:/z:rw,z"},
		Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/etc/cfg", Target: "/cfg", ReadOnly: true}, {Type: mount.TypeVolume, Source: "shop_db", Target: "/db"}},
	}}
	var got []string
	for _, v := range runningService("web", d).Volumes {
		got = append(got, fmt.Sprintf("%s %s:%s ro=%t", v.Type, v.Source, v.Target, v.ReadOnly))
	}
	assert.Check(t, is.DeepEqual(got, []string{
		"bind /etc/app:/app ro=true", "bind /srv/data:/data ro=false", "bind /srv/z:/z ro=false",
		"bind /etc/cfg:/cfg ro=true", "volume shop_db:/db ro=false",
	}))
}
