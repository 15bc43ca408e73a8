package rollout

import (
	"archive/tar"
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

// tarFiles reads a build context: file name → content.
func tarFiles(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		assert.NilError(t, err)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			assert.NilError(t, err)
			out[h.Name] = string(b)
		}
	}
}

// The build context is what `docker build` sends: .dockerignore honoured (the
// Dockerfile and .dockerignore themselves kept), an inline Dockerfile or one outside
// the context added under a generated name.
func TestBuildContext(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"compose.yaml":          "services:\n  app:\n    build: app\n",
		"app/Dockerfile":        "FROM scratch\nCOPY app.txt /\n",
		"app/app.txt":           "app",
		"app/secret.env":        "TOKEN=x",
		"app/logs/a.log":        "log",
		"app/.dockerignore":     "secret.env\nlogs\nDockerfile\n.dockerignore\n",
		"docker/app.Dockerfile": "FROM scratch\n",
	} {
		assert.NilError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	b := *p.Project.Services["app"].Build

	rc, dockerfile, err := buildContext(p.WorkingDir, &b)
	assert.NilError(t, err)
	files := tarFiles(t, rc)
	assert.Check(t, is.Equal(dockerfile, "Dockerfile"))
	assert.Check(t, is.DeepEqual(keys(files), []string{".dockerignore", "Dockerfile", "app.txt"}))

	inline := b
	inline.DockerfileInline = "FROM scratch\nCOPY app.txt /inline\n"
	rc, dockerfile, err = buildContext(p.WorkingDir, &inline)
	assert.NilError(t, err)
	files = tarFiles(t, rc)
	assert.Check(t, is.Equal(files[dockerfile], inline.DockerfileInline), "%s in %v", dockerfile, keys(files))
	assert.Check(t, is.Contains(files[".dockerignore"], dockerfile), "the generated Dockerfile does not end up in the image")

	outside := b
	outside.Dockerfile = "../docker/app.Dockerfile"
	rc, dockerfile, err = buildContext(p.WorkingDir, &outside)
	assert.NilError(t, err)
	files = tarFiles(t, rc)
	assert.Check(t, is.Equal(files[dockerfile], "FROM scratch\n"), "%s in %v", dockerfile, keys(files))

	missing := b
	missing.Dockerfile = "Nope.Dockerfile"
	_, _, err = buildContext(p.WorkingDir, &missing)
	assert.Check(t, is.ErrorContains(err, "Nope.Dockerfile"))
	remote := b
	remote.Context = "https://github.com/acme/app.git"
	_, _, err = buildContext(p.WorkingDir, &remote)
	assert.Check(t, is.ErrorContains(err, "remote context"))
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sortedCopy(out)
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }

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
	built, err := Build(context.Background(), fake, p, nil, false, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(sortedCopy(built), []string{"always", "missing"}))
	v, fromEnv := "7", "from-env"
	assert.Check(t, is.DeepEqual(specs["acme/missing:1"], engine.BuildSpec{
		Dockerfile: "Dockerfile", Tags: []string{"acme/missing:1", "acme/missing:extra"},
		Args: map[string]*string{"V": &v, "FROM_ENV": &fromEnv}, Target: "prod",
		Labels:  map[string]string{"team": "web", compose.LabelProject: "shop", compose.LabelService: "missing"},
		Network: "host", ExtraHosts: []string{"db.local:10.0.0.2"}, ShmSize: 64 << 20,
	}))

	clear(specs)
	built, err = Build(context.Background(), fake, p, []string{"present"}, true, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(built, []string{"present"}), "--build rebuilds a present image; only the selected services")

	fake.ImageBuildFn = func(context.Context, engine.BuildSpec, func(string)) error { return errors.New("step 2 failed") }
	_, err = Build(context.Background(), fake, p, nil, true, progress.Nop)
	assert.Check(t, is.ErrorContains(err, `service "always": step 2 failed`))
	assert.Check(t, is.ErrorContains(err, `service "present": step 2 failed`), "every failed build is reported")

	bk, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}, Profiles: []string{"bk"}})
	assert.NilError(t, err)
	_, err = Build(context.Background(), fake, bk, []string{"buildkit"}, true, progress.Nop)
	assert.Check(t, is.ErrorContains(err, "build keys ssh need BuildKit"))
}
