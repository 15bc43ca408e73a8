// Command modulepatch writes the Go workspace that builds the plugin against the modules
// internal/modulepatch changes (see that package). It prints the go.work path. Run it from
// the repository root with GOWORK=off; the Makefile does.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/internal/modulepatch"
)

func main() {
	out := flag.String("out", "build/modulepatch", "directory for the patched copies and go.work")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintf(os.Stderr, "modulepatch: %v\n", err)
		os.Exit(1)
	}
}

func run(out string) error {
	var located []modulepatch.Located
	for _, p := range modulepatch.Patches {
		// The version go.mod's build list selects, and its directory in the module cache.
		var mod struct{ Version, Dir, Error string }
		if err := goJSON(&mod, "mod", "download", "-json", p.Module); err != nil {
			return err
		}
		if mod.Error != "" || mod.Dir == "" {
			return fmt.Errorf("go mod download %s: %s", p.Module, mod.Error)
		}
		located = append(located, modulepatch.Located{Patch: p, ModuleDir: mod.Dir, Version: mod.Version})
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
	work, err := modulepatch.Workspace(located, main.Dir, main.GoVersion, out)
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
