package compose

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
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
	p, err := Load(context.Background(), LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	b := *p.Project.Services["app"].Build

	rc, dockerfile, err := BuildContext(p.WorkingDir, &b)
	assert.NilError(t, err)
	files := tarFiles(t, rc)
	assert.Check(t, is.Equal(dockerfile, "Dockerfile"))
	assert.Check(t, is.DeepEqual(fileNames(files), []string{".dockerignore", "Dockerfile", "app.txt"}))

	inline := b
	inline.DockerfileInline = "FROM scratch\nCOPY app.txt /inline\n"
	rc, dockerfile, err = BuildContext(p.WorkingDir, &inline)
	assert.NilError(t, err)
	files = tarFiles(t, rc)
	assert.Check(t, is.Equal(files[dockerfile], inline.DockerfileInline), "%s in %v", dockerfile, fileNames(files))
	assert.Check(t, is.Contains(files[".dockerignore"], dockerfile), "the generated Dockerfile does not end up in the image")

	outside := b
	outside.Dockerfile = "../docker/app.Dockerfile"
	rc, dockerfile, err = BuildContext(p.WorkingDir, &outside)
	assert.NilError(t, err)
	files = tarFiles(t, rc)
	assert.Check(t, is.Equal(files[dockerfile], "FROM scratch\n"), "%s in %v", dockerfile, fileNames(files))

	missing := b
	missing.Dockerfile = "Nope.Dockerfile"
	_, _, err = BuildContext(p.WorkingDir, &missing)
	assert.Check(t, is.ErrorContains(err, "Nope.Dockerfile"))
	remote := b
	remote.Context = "https://github.com/acme/app.git"
	_, _, err = BuildContext(p.WorkingDir, &remote)
	assert.Check(t, is.ErrorContains(err, "remote context"))
}

func fileNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return slices.Sorted(slices.Values(out))
}

func sortedCopy(s []string) []string { return slices.Sorted(slices.Values(s)) }
