// Command build-testapp-image builds test app images on the engine of the current
// Docker context: build-testapp-image lifecycle-demo:v1=v1 lifecycle-demo:v2=v2
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/moby/moby/client"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/internal/testimage"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "build-testapp-image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: build-testapp-image TAG=VERSION...")
	}
	ctx := context.Background()
	opts := []client.Opt{client.FromEnv}
	if host := currentContextHost(); host != "" {
		opts = append(opts, client.WithHost(host))
	}
	api, err := client.New(opts...)
	if err != nil {
		return err
	}
	eng := engine.NewMoby(api)
	if _, err := eng.Ping(ctx); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "testapp")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	bin, err := testimage.Binary(ctx, root, dir, testimage.GOARCH())
	if err != nil {
		return err
	}
	for _, a := range args {
		tag, version, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("argument %q: want TAG=VERSION", a)
		}
		if err := testimage.Build(ctx, eng, bin, tag, version, nil); err != nil {
			return err
		}
		fmt.Println(tag)
	}
	return nil
}

// currentContextHost is the engine of the docker CLI's current context, as the plugin
// uses it, unless DOCKER_HOST says otherwise ("" then). Contexts with TLS or ssh:// need
// DOCKER_HOST and friends set instead.
func currentContextHost() string {
	if os.Getenv("DOCKER_HOST") != "" {
		return ""
	}
	out, err := exec.Command("docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}").Output()
	host := strings.TrimSpace(string(out))
	if err != nil || !(strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "tcp://")) {
		return ""
	}
	return host
}
