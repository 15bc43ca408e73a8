package testimage

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// File is one file of a FROM scratch image.
type File struct {
	Path string // absolute path in the image, e.g. /etc/app/config.env
	Mode int64
	Data []byte
}

// BuildFiles creates image tag FROM scratch with files and the Dockerfile lines in
// extra (ENTRYPOINT, USER…), through the engine API.
func BuildFiles(ctx context.Context, eng engine.Engine, tag string, files []File, extra []string, labels map[string]string) error {
	dockerfile := []string{"FROM scratch"}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i, f := range files {
		name := fmt.Sprintf("f%d", i)
		dockerfile = append(dockerfile, fmt.Sprintf("COPY %s %s", name, f.Path))
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: f.Mode, Size: int64(len(f.Data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	df := []byte(strings.Join(append(dockerfile, extra...), "\n") + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(df))}); err != nil {
		return err
	}
	if _, err := tw.Write(df); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return eng.BuildImage(ctx, &buf, tag, labels)
}

// GoProgram builds main.go (a single-file program) as a static linux binary in its own
// module with the given requirements ("golang.org/x/text@v0.3.7"), fetched through the
// module proxy; the binary's build info names them, as scanners read it.
func GoProgram(ctx context.Context, dir, goarch, mainGo string, requires ...string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.invalid/app\n\ngo 1.21\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
		return "", err
	}
	goCmd := func(env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off"), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if len(requires) > 0 {
		if err := goCmd(nil, append([]string{"get"}, requires...)...); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, "app")
	if err := goCmd([]string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goarch}, "build", "-trimpath", "-o", out, "."); err != nil {
		return "", err
	}
	return out, nil
}
