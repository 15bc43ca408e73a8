package agentimage

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func TestTagIsContentDigest(t *testing.T) {
	a, b := Tag([]byte("agent v1")), Tag([]byte("agent v2"))
	assert.Check(t, a != b)
	assert.Check(t, is.Equal(a, Tag([]byte("agent v1"))))
	assert.Check(t, is.Regexp(`^docker-lifecycle-agent:[0-9a-f]{16}$`, a))
}

func TestBuildContextIsScratchImageWithTheBinary(t *testing.T) {
	buf, err := buildContext([]byte("\x7fELF fake"))
	assert.NilError(t, err)
	files := map[string]string{}
	tr := tar.NewReader(buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		assert.NilError(t, err)
		b, err := io.ReadAll(tr)
		assert.NilError(t, err)
		files[h.Name] = string(b)
	}
	assert.Check(t, is.Contains(files["Dockerfile"], "FROM scratch"))
	assert.Check(t, is.Contains(files["Dockerfile"], `ENTRYPOINT ["/agent"]`))
	assert.Check(t, is.Equal(files["agent"], "\x7fELF fake"))
}

func TestEnsureBuildsOnlyWhenMissing(t *testing.T) {
	if _, err := Binary("amd64"); err != nil {
		t.Skip("plugin built without agent binaries: run `make agent` (make test does)")
	}
	builds := 0
	present := false
	eng := &engine.Fake{
		InspectImageFn: func(_ context.Context, ref string) (engine.Image, error) {
			if present {
				return engine.Image{ID: "sha256:x"}, nil
			}
			return engine.Image{}, engine.ErrNotFound
		},
		BuildImageFn: func(_ context.Context, _ io.Reader, tag string, labels map[string]string) error {
			builds++
			present = true
			assert.Check(t, is.Equal(labels[LabelAgent], "true"))
			return nil
		},
	}
	tag, err := Ensure(context.Background(), eng, "x86_64")
	assert.NilError(t, err)
	again, err := Ensure(context.Background(), eng, "amd64")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(tag, again))
	assert.Check(t, is.Equal(builds, 1))
}

func TestEnsureUnknownArchitecture(t *testing.T) {
	_, err := Ensure(context.Background(), &engine.Fake{}, "s390x")
	assert.Check(t, errors.Is(err, ErrNoBinary))
	assert.Check(t, is.ErrorContains(err, "linux/s390x"))
}
