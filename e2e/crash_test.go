package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// The recreate steps (stop, rename, create, start) on containers named <service>-1 (an
// update keeps the previous revision as <service>-r1-1); TestKilledRolloutConverges
// covers the routed steps.
const crashProject = `
x-lifecycle: {strategy: recreate}
services:
  db:
    image: {{image:%[1]s}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    volumes: [data:/data]
  web:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    depends_on: {db: {condition: service_healthy}}
volumes:
  data:
`

// TestKilledDeployConverges SIGKILLs the plugin before a step of each kind (the
// LIFECYCLE_TEST_CRASH_BEFORE checkpoint), then runs deploy again: it must take over the
// dead process's lock and converge to exactly the desired containers.
func TestKilledDeployConverges(t *testing.T) {
	t.Parallel() // no load and no timing: each case in its own project (e2e/doc.go)
	s := setup(t)
	for _, tc := range []struct {
		checkpoint string
		update     bool // crash during a v1 → v2 update rather than a fresh deploy
	}{
		{"create-network", false},
		{"create-volume", false},
		{"create", false},
		{"start", false},
		{"wait-healthy", false},
		{"stop", true},
		{"rename", true},
		{"create", true},
		{"start", true},
		{"wait-healthy", true},
	} {
		name := tc.checkpoint
		if tc.update {
			name = "update-" + name
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			p := s.newProject(t, fmt.Sprintf(crashProject, "v1", port))
			want := "v1"
			if tc.update {
				p.mustLifecycle("deploy")
				p.write(fmt.Sprintf(crashProject, "v2", port))
				want = "v2"
			}

			p.env = []string{"LIFECYCLE_TEST_CRASH_BEFORE=" + tc.checkpoint}
			r := p.lifecycle("deploy")
			assert.Assert(t, r.code != 0, "the plugin was killed before %s:\n%s", tc.checkpoint, r)

			p.env = nil
			r = p.mustLifecycle("deploy")
			assert.Check(t, is.Contains(r.stderr, "Stale lock taken over"), r.String())
			containers := []string{p.name + "-db-1", p.name + "-web-1"}
			if tc.update {
				containers = append(containers, p.name+"-db-r1-1", p.name+"-web-r1-1") // revision 1, kept for a rollback
			}
			assert.Check(t, is.DeepEqual(p.containers(), containers, sortedCmp()))
			for _, c := range []string{p.name + "-db-1", p.name + "-web-1"} {
				assert.Check(t, is.Equal(p.inspect("{{.State.Health.Status}}", c), "healthy"), c)
			}
			assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), want))
			r = p.mustLifecycle("deploy")
			assert.Check(t, is.Contains(r.stdout, "up to date"))
		})
	}
}

// TestCreateNetworkKeepsOneOfTwoNamesakes is the engine side of a killed deploy's
// network create that lands after the next deploy observed the project: this engine
// (API before 1.44) accepts a second network of the same name, and every container that
// joins it by name would then fail with "network … is ambiguous". The second create
// keeps the oldest of the namesakes with the same labels.
func TestCreateNetworkKeepsOneOfTwoNamesakes(t *testing.T) {
	t.Parallel() // no load and no timing
	s := setup(t)
	ctx := context.Background()
	name := fmt.Sprintf("e2e-namesakes-%d", os.Getpid())
	labels := map[string]string{testLabel: "e2e", compose.LabelProject: name}
	t.Cleanup(func() {
		networks, _ := s.engine.ListNetworks(context.Background(), labels)
		for _, n := range networks {
			_ = s.engine.RemoveNetwork(context.Background(), n.ID)
		}
	})
	spec := engine.NetworkSpec{Name: name, Labels: labels}
	assert.NilError(t, s.engine.CreateNetwork(ctx, spec))
	first, err := s.engine.ListNetworks(ctx, labels)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(first, 1))

	if err := s.engine.CreateNetwork(ctx, spec); err != nil {
		t.Skipf("this engine refuses a second network of the same name itself: %v", err)
	}
	after, err := s.engine.ListNetworks(ctx, labels)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(after, 1), "namesakes left: %+v", after)
	assert.Check(t, is.Equal(after[0].ID, first[0].ID), "the oldest is not the one kept")
}
