package scratchimage

import (
	"archive/tar"
	"errors"
	"io"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestContextHoldsDockerfileThenFiles(t *testing.T) {
	buf, err := Context("FROM scratch\n", File{Name: "state/", Mode: 0o755}, File{Name: "app", Mode: 0o755, Data: []byte("ELF")})
	assert.NilError(t, err)
	tr := tar.NewReader(buf)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		assert.NilError(t, err)
		data, err := io.ReadAll(tr)
		assert.NilError(t, err)
		got = append(got, string(h.Typeflag)+" "+h.Name+" "+string(data))
	}
	assert.Check(t, is.DeepEqual(got, []string{"0 Dockerfile FROM scratch\n", "5 state/ ", "0 app ELF"}))
}
