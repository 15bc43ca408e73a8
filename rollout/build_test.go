package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// Which services Build builds, and what it asks of the engine.
func TestBuildSelectsAndPassesOptions(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`
name: shop
services:
  present:
    build: .
  missing:
    image: acme/missing:1
    build:
      context: .
      args: {V: "7", FROM_ENV: null}
      target: prod
      labels: {team: web}
      network: host
      extra_hosts: ["db.local=10.0.0.2"]
      shm_size: 64m
      tags: ["acme/missing:extra"]
  always:
    build: .
    pull_policy: build
  pulled:
    image: redis:7
  buildkit:
    build: {context: ., ssh: [default]}
    profiles: [bk]
`), 0o644))
	t.Setenv("FROM_ENV", "from-env")
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	specs := map[string]engine.BuildSpec{}
	fake := &engine.Fake{
		InspectImageFn: func(_ context.Context, ref string) (engine.Image, error) {
			if ref == "shop-present" || ref == "shop-always" {
				return engine.Image{ID: "sha256:1"}, nil
			}
			return engine.Image{}, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
		},
		ImageBuildFn: func(_ context.Context, spec engine.BuildSpec, output func(string)) error {
			_, _ = io.Copy(io.Discard, spec.Context)
			spec.Context = nil
			specs[spec.Tags[0]] = spec
			output("Step 1/1 : FROM scratch")
			return nil
		},
	}
	built, err := Build(context.Background(), fake, p, inspected(t, fake, p), nil, false, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(slices.Sorted(slices.Values(built)), []string{"always", "missing"}))
	v, fromEnv := "7", "from-env"
	assert.Check(t, is.DeepEqual(specs["acme/missing:1"], engine.BuildSpec{
		Dockerfile: "Dockerfile", Tags: []string{"acme/missing:1", "acme/missing:extra"},
		Args: map[string]*string{"V": &v, "FROM_ENV": &fromEnv}, Target: "prod",
		Labels:  map[string]string{"team": "web", compose.LabelProject: "shop", compose.LabelService: "missing"},
		Network: "host", ExtraHosts: []string{"db.local:10.0.0.2"}, ShmSize: 64 << 20,
	}))

	clear(specs)
	built, err = Build(context.Background(), fake, p, inspected(t, fake, p), []string{"present"}, true, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(built, []string{"present"}), "--build rebuilds a present image; only the selected services")

	fake.ImageBuildFn = func(context.Context, engine.BuildSpec, func(string)) error { return errors.New("step 2 failed") }
	_, err = Build(context.Background(), fake, p, inspected(t, fake, p), nil, true, progress.Nop)
	assert.Check(t, is.ErrorContains(err, `service "always": step 2 failed`))
	assert.Check(t, is.ErrorContains(err, `service "present": step 2 failed`), "every failed build is reported")

	bk, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}, Profiles: []string{"bk"}})
	assert.NilError(t, err)
	_, err = Build(context.Background(), fake, bk, inspected(t, fake, bk), []string{"buildkit"}, true, progress.Nop)
	assert.Check(t, is.ErrorContains(err, "build keys ssh need BuildKit"))
}
