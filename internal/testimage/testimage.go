// Package testimage builds the test application (./internal/testapp) into a FROM scratch image
// on the engine, through the engine API, so tests and the demo need no registry.
package testimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/internal/scratchimage"
)

// Binary compiles the test app for linux/goarch into dir and returns its path.
func Binary(ctx context.Context, moduleRoot, dir, goarch string) (string, error) {
	out := filepath.Join(dir, "testapp-"+goarch)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./internal/testapp")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build testapp: %w: %s", err, b)
	}
	return out, nil
}

// Build creates image tag from the test app binary. VERSION in the image's environment
// is version, and the image carries labels, so images of different versions differ.
func Build(ctx context.Context, eng engine.Engine, binary, tag, version string, labels map[string]string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	dockerfile := strings.Join([]string{
		"FROM scratch",
		"COPY testapp /testapp",
		"ENV VERSION=" + version,
		"USER 65534:65534",
		`ENTRYPOINT ["/testapp"]`,
		"",
	}, "\n")
	buf, err := scratchimage.Context(dockerfile, scratchimage.File{Name: "testapp", Mode: 0o755, Data: bin})
	if err != nil {
		return err
	}
	all := map[string]string{"io.lifecycle.testapp.version": version}
	for k, v := range labels {
		all[k] = v
	}
	return eng.BuildImage(ctx, buf, tag, all)
}

// GOARCH is the architecture to build for: the engine's, which for a local engine is ours.
func GOARCH() string {
	if a := os.Getenv("TESTAPP_GOARCH"); a != "" {
		return a
	}
	return runtime.GOARCH
}
