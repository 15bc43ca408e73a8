// Package layering checks that dependencies point one way (docs/architecture.md):
// commands → runtime → (compose, strategies, engine); the planners never reach the
// engine; the agent imports no CLI package.
package layering

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/docker-lifecycle/docker-lifecycle/"

// forbidden maps a package (relative to the module) to the prefixes it must not import,
// directly or through its dependencies.
var forbidden = map[string][]string{
	"compose":             {module + "engine", module + "strategies", module + "rollout", module + "plugin"},
	"strategies":          {module + "engine", module + "rollout", module + "plugin", "github.com/moby/moby/client"},
	"engine":              {module + "compose", module + "strategies", module + "rollout", module + "plugin"},
	"rollout":             {module + "plugin", "github.com/docker/cli", "github.com/spf13/cobra"},
	"policy":              {module + "engine", module + "rollout", module + "plugin"},
	"segments":            {module + "engine", module + "rollout", module + "plugin"},
	"alerting":            {module + "engine", module + "rollout", module + "plugin", "github.com/moby/moby/client"},
	"cmd/lifecycle-agent": {module + "plugin", module + "rollout", module + "compose", "github.com/docker/cli", "github.com/spf13/cobra", "github.com/compose-spec"},
	"agent/router":        {module + "plugin", module + "rollout", module + "compose", module + "engine"},
}

// forbiddenDirect are imports a package must not name itself (it may reach them through
// the packages it uses): commands use the engine only through package engine.
var forbiddenDirect = map[string][]string{
	"plugin": {"github.com/moby/moby/client"},
}

func TestDependenciesPointOneWay(t *testing.T) {
	args := []string{"list", "-json"}
	for pkg := range forbidden {
		args = append(args, "../../"+pkg)
	}
	for pkg := range forbiddenDirect {
		args = append(args, "../../"+pkg)
	}
	out, err := exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var info struct {
			ImportPath    string
			Imports, Deps []string
		}
		if err := dec.Decode(&info); err != nil {
			t.Fatal(err)
		}
		pkg := strings.TrimPrefix(info.ImportPath, module)
		check(t, pkg, info.Deps, forbidden[pkg])
		check(t, pkg, info.Imports, forbiddenDirect[pkg])
	}
}

func check(t *testing.T, pkg string, imports, bad []string) {
	t.Helper()
	for _, dep := range imports {
		for _, b := range bad {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("%s imports %s: see docs/architecture.md for the allowed direction", pkg, dep)
			}
		}
	}
}
