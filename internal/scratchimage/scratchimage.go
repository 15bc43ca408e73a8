// Package scratchimage writes the build context of a FROM scratch image: a Dockerfile and
// the few files it copies (a static binary, an empty directory), as the tar stream the
// Engine API's build endpoint takes. The agent image, the detached guard's image and the
// tests' app image are built this way: no registry, no base image, no files on disk.
package scratchimage

import (
	"archive/tar"
	"bytes"
	"strings"
)

// File is one entry of the context; a Name ending in "/" is a directory (Data unused).
type File struct {
	Name string
	Mode int64
	Data []byte
}

// Context is the tar of the Dockerfile followed by files.
func Context(dockerfile string, files ...File) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range append([]File{{Name: "Dockerfile", Mode: 0o644, Data: []byte(dockerfile)}}, files...) {
		h := &tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Data))}
		if strings.HasSuffix(f.Name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeDir {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}
