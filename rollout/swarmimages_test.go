package rollout

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// An image missing on a one-node swarm stops the deploy, naming node, service and image;
// on a larger swarm what cannot be checked from the manager is a warning.
func TestSwarmImageProblems(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`
services:
  web: {image: acme/web:2}
  api: {image: acme/api:1}
  db: {image: postgres:16}
`), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	images := Images{
		"acme/api:1":  {ID: "sha256:a"},                                                // built here
		"postgres:16": {ID: "sha256:p", RepoDigests: []string{"postgres@sha256:0123"}}, // pulled
	}
	all := []string{"web", "api", "db"}

	errs, warnings := swarmImageProblems(p, all, images, engine.SwarmInfo{Nodes: 1, NodeName: "mgr"})
	assert.Check(t, is.Len(warnings, 0))
	assert.Assert(t, is.Len(errs, 1))
	assert.Check(t, is.Error(errs[0], `service "web": node mgr, the swarm's only node, lacks image acme/web:2: load it there (docker save acme/web:2 | docker load, on that engine) or push it to a registry the node can pull from`))

	errs, warnings = swarmImageProblems(p, all, images, engine.SwarmInfo{Nodes: 3, NodeName: "mgr"})
	assert.Check(t, is.Len(errs, 0))
	assert.Check(t, is.DeepEqual(warnings, []string{
		`service "api": image acme/api:1 was built or loaded here and is in no registry: the other 2 nodes have it only if it was loaded there too (tasks fail on a node without it)`,
		`service "web": this manager (mgr) lacks image acme/web:2, and the other 2 nodes cannot be checked from here: tasks fail on any node without it (load it there, or push it to a registry)`,
	}))

	_, warnings = swarmImageProblems(p, all, images, engine.SwarmInfo{Nodes: 2, NodeName: "mgr"})
	assert.Check(t, is.DeepEqual(warnings, []string{
		`service "api": image acme/api:1 was built or loaded here and is in no registry: the other node has it only if it was loaded there too (tasks fail on a node without it)`,
		`service "web": this manager (mgr) lacks image acme/web:2, and the other node cannot be checked from here: tasks fail on any node without it (load it there, or push it to a registry)`,
	}))

	errs, warnings = swarmImageProblems(p, []string{"api", "db"}, images, engine.SwarmInfo{Nodes: 1, NodeName: "mgr"})
	assert.Check(t, is.Len(errs, 0))
	assert.Check(t, is.Len(warnings, 0), "one node: an image here is all it needs")
}
