// Command build-testapp-image builds test app images on the engine of the current
// Docker context: build-testapp-image lifecycle-demo:v1=v1 lifecycle-demo:v2=v2
package main

import (
	"context"
	"fmt"
	"os"
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
	api, err := client.New(client.FromEnv)
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
