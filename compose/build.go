package compose

import (
	"archive/tar"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/go-archive"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ClassicBuildable refuses the build keys only BuildKit implements, naming them: the
// Engine API's build endpoint runs the classic builder.
func ClassicBuildable(b *types.BuildConfig) error {
	var keys []string
	for key, set := range map[string]bool{
		"additional_contexts": len(b.AdditionalContexts) > 0, "ssh": len(b.SSH) > 0,
		"secrets": len(b.Secrets) > 0, "cache_to": len(b.CacheTo) > 0, "platforms": len(b.Platforms) > 1,
		"entitlements": len(b.Entitlements) > 0, "privileged": b.Privileged,
	} {
		if set {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return fmt.Errorf("build keys %s need BuildKit, which the engine's classic build endpoint lacks: build with `docker compose build` (or docker buildx), then deploy without --build", strings.Join(slices.Sorted(slices.Values(keys)), ", "))
}

// BuildContext streams a build: section's context as `docker build` does: the directory
// (relative to workingDir) as a tar without what .dockerignore excludes, and a
// Dockerfile given inline or from outside the context added under a generated name. It
// returns the Dockerfile's path in the context; the caller closes the stream.
func BuildContext(workingDir string, b *types.BuildConfig) (io.ReadCloser, string, error) {
	dir := b.Context
	if dir == "" {
		dir = "."
	}
	if strings.Contains(dir, "://") || strings.HasPrefix(dir, "git@") {
		return nil, "", fmt.Errorf("the remote context %s is not supported: clone it and point build.context at the directory", dir)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(workingDir, dir)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, "", fmt.Errorf("build context %s is not a directory", dir)
	}
	var dockerfile, rel string
	var content []byte // a Dockerfile that is not in the context: inline, or outside it
	if b.DockerfileInline != "" {
		content = []byte(b.DockerfileInline)
	} else {
		dockerfile = cmp.Or(b.Dockerfile, "Dockerfile")
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(dir, dockerfile) // compose: relative to the context
		}
		if _, err := os.Stat(dockerfile); err != nil {
			return nil, "", fmt.Errorf("Dockerfile: %w", err)
		}
		var err error
		if rel, err = filepath.Rel(dir, dockerfile); err != nil {
			return nil, "", err
		}
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if content, err = os.ReadFile(dockerfile); err != nil {
				return nil, "", err
			}
		}
		rel = filepath.ToSlash(rel)
	}
	excludes, err := readDockerignore(dir)
	if err != nil {
		return nil, "", err
	}
	// As docker build does: the daemon needs the Dockerfile and .dockerignore even
	// when .dockerignore excludes them (it leaves them out of the image itself).
	if m, _ := patternmatcher.Matches(".dockerignore", excludes); m {
		excludes = append(excludes, "!.dockerignore")
	}
	if m, _ := patternmatcher.Matches(rel, excludes); m && content == nil {
		excludes = append(excludes, "!"+rel)
	}
	tar, err := archive.TarWithOptions(dir, &archive.TarOptions{ExcludePatterns: excludes, ChownOpts: &archive.ChownOpts{UID: 0, GID: 0}})
	if err != nil {
		return nil, "", err
	}
	if content == nil {
		return tar, rel, nil
	}
	return addDockerfile(tar, content)
}

func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return patterns, nil
}

// addDockerfile adds a Dockerfile to a context under a generated name, which
// .dockerignore then lists so that it never reaches the image (docker build's way).
func addDockerfile(context io.ReadCloser, dockerfile []byte) (io.ReadCloser, string, error) {
	suffix := make([]byte, 10)
	if _, err := rand.Read(suffix); err != nil {
		return nil, "", err
	}
	name := ".dockerfile." + hex.EncodeToString(suffix)
	now := time.Now()
	header := func(name string) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o600, ModTime: now, Typeflag: tar.TypeReg, AccessTime: now, ChangeTime: now}
	}
	out := archive.ReplaceFileTarWrapper(context, map[string]archive.TarModifierFunc{
		name: func(string, *tar.Header, io.Reader) (*tar.Header, []byte, error) {
			return header(name), dockerfile, nil
		},
		".dockerignore": func(_ string, h *tar.Header, content io.Reader) (*tar.Header, []byte, error) {
			var b bytes.Buffer
			if h == nil {
				h = header(".dockerignore")
				b.WriteString(".dockerignore")
			} else if _, err := b.ReadFrom(content); err != nil {
				return nil, nil, err
			}
			b.WriteString("\n" + name + "\n")
			return h, b.Bytes(), nil
		},
	})
	return out, name, nil
}
