// Command composegopatch writes the Go workspace that builds the plugin against
// compose-go with internal/composegopatch's change (see that package). It prints the
// go.work path. Run it from the repository root with GOWORK=off; the Makefile does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/internal/composegopatch"
)

func main() {
	out := flag.String("out", "build/compose-go", "directory for the patched copy and go.work")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "composegopatch: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	var mod struct{ Version, Dir, Error string }
	if err := goJSON(&mod, "mod", "download", "-json", composegopatch.Module); err != nil {
		return err
	}
	if mod.Error != "" || mod.Dir == "" {
		return fmt.Errorf("go mod download %s: %s", composegopatch.Module, mod.Error)
	}
	var main struct{ Dir, GoVersion string }
	if err := goJSON(&main, "list", "-m", "-json"); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	work, err := composegopatch.Workspace(mod.Dir, mod.Version, main.Dir, main.GoVersion, out)
	if err != nil {
		return err
	}
	fmt.Println(work)
	return nil
}

// goJSON runs the go command outside any workspace and decodes its JSON output.
func goJSON(v any, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
