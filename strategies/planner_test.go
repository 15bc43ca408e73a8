package strategies

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

const demoCompose = `
name: demo
x-lifecycle: {strategy: recreate}
services:
  db:
    image: db:1
    healthcheck: {test: ["CMD", "true"]}
    volumes: [data:/data]
  migrate:
    image: app:1
    depends_on: {db: {condition: service_healthy}}
  web:
    image: app:1
    ports: ["127.0.0.1:8080:8080"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  worker:
    image: app:1
    depends_on: [db]
    deploy: {replicas: 2}
volumes:
  data:
`

func load(t *testing.T, yaml string) *compose.Project {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{WorkingDir: dir, ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	return p
}

var images = map[string]string{"db:1": "sha256:db1", "app:1": "sha256:app1", "app:2": "sha256:app2"}

// deployed returns the observed state of p fully converged at revision 1.
func deployed(t *testing.T, p *compose.Project) Observed {
	t.Helper()
	obs := Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true}, ImageIDs: images}
	for _, name := range p.ServiceNames() {
		hash, err := compose.ConfigHash(p, name)
		assert.NilError(t, err)
		svc := p.Project.Services[name]
		for n := 1; n <= svc.GetScale(); n++ {
			state, exit := "running", 0
			if name == "migrate" {
				state = "exited"
			}
			obs.Containers = append(obs.Containers, ObservedContainer{
				ID: "id-" + compose.ContainerName(p.Name, name, n), Name: compose.ContainerName(p.Name, name, n),
				Service: name, Number: n, Revision: 1, ConfigHash: hash, Image: svc.Image, ImageID: images[svc.Image],
				State: state, ExitCode: exit,
			})
		}
	}
	return obs
}

func planText(t *testing.T, plan Plan) string {
	t.Helper()
	var b bytes.Buffer
	assert.NilError(t, plan.WriteText(&b))
	return b.String()
}

func TestDeployFreshProject(t *testing.T) {
	p := load(t, demoCompose)
	plan, err := MakePlan(desire(t, p), Observed{ImageIDs: images}, Options{})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "fresh.golden")
	for _, s := range plan.Steps {
		if s.Action == Create {
			want, err := compose.ConfigHash(p, s.Service)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(s.ConfigHash, want), "create %s carries the hash its container gets", s.Target)
		}
	}
}

func TestDeployUpToDateIsEmpty(t *testing.T) {
	p := load(t, demoCompose)
	plan, err := MakePlan(desire(t, p), deployed(t, p), Options{})
	assert.NilError(t, err)
	assert.Check(t, plan.Empty(), planText(t, plan))
	assert.Check(t, is.Equal(planText(t, plan), "Project demo is up to date: nothing to do.\n"))
}

func TestDeployChangedDependencyStopsDependentsFirst(t *testing.T) {
	p := load(t, demoCompose)
	obs := deployed(t, p)
	// db gets a new image ID under the same tag, web a new configuration.
	obs.ImageIDs = map[string]string{"db:1": "sha256:db1-rebuilt", "app:1": "sha256:app1"}
	for i := range obs.Containers {
		if obs.Containers[i].Service == "web" {
			obs.Containers[i].ConfigHash = "old"
		}
	}
	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "changed-db-and-web.golden")
}

func TestDeployScaleAndRestart(t *testing.T) {
	p := load(t, demoCompose)
	obs := deployed(t, p)
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "id-w3", Name: "demo-worker-3", Service: "worker", Number: 3, Revision: 1, State: "running", Image: "app:1", ImageID: "sha256:app1"})
	for i := range obs.Containers {
		if obs.Containers[i].Name == "demo-web-1" {
			obs.Containers[i].State, obs.Containers[i].ExitCode = "exited", 137
		}
	}
	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "scale-and-restart.golden")
}

func TestDeploySelectedServiceIncludesDependencies(t *testing.T) {
	p := load(t, demoCompose)
	plan, err := MakePlan(desire(t, p), Observed{ImageIDs: images}, Options{Services: []string{"migrate"}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(plan.Services(), []string{"db", "migrate"}))

	_, err = MakePlan(desire(t, p), Observed{ImageIDs: images}, Options{Services: []string{"nope"}})
	assert.Check(t, errors.Is(err, ErrUnknownService))
	assert.Check(t, is.ErrorContains(err, `"nope"`))
}

func TestDeployOrphans(t *testing.T) {
	p := load(t, demoCompose)
	obs := deployed(t, p)
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "id-old", Name: "demo-old-1", Service: "old", Number: 1, State: "running"})

	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	assert.Check(t, plan.Empty())
	assert.Check(t, is.Len(plan.Warnings, 1))
	assert.Check(t, is.Contains(plan.Warnings[0], "demo-old-1"))

	plan, err = MakePlan(desire(t, p), obs, Options{RemoveOrphans: true})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "remove-orphans.golden")
}

func TestDeployMissingImageFailsBeforeAnyStep(t *testing.T) {
	p := load(t, demoCompose)
	obs := deployed(t, p)
	obs.ImageIDs = map[string]string{"db:1": "sha256:db1", "app:1": ""}
	for i := range obs.Containers {
		if obs.Containers[i].Service == "web" {
			obs.Containers[i].ConfigHash = "old"
		}
	}
	_, err := MakePlan(desire(t, p), obs, Options{})
	assert.Check(t, errors.Is(err, ErrImageMissing))
	assert.Check(t, is.ErrorContains(err, `service "web"`))
	assert.Check(t, is.ErrorContains(err, "app:1"))
}

// Every missing image is named at once.
func TestDeployMissingImagesAllNamed(t *testing.T) {
	p := load(t, demoCompose)
	_, err := MakePlan(desire(t, p), Observed{ImageIDs: map[string]string{}}, Options{})
	assert.Check(t, errors.Is(err, ErrImageMissing))
	for _, svc := range []string{"db", "migrate", "web", "worker"} {
		assert.Check(t, is.ErrorContains(err, `service "`+svc+`"`))
	}
}

func TestDeployPortTakenByAnotherContainer(t *testing.T) {
	p := load(t, demoCompose)
	obs := Observed{ImageIDs: images, PortOwners: []PortOwner{{Container: "someone-else", HostIP: "0.0.0.0", HostPort: 8080, Protocol: "tcp"}}}
	_, err := MakePlan(desire(t, p), obs, Options{})
	assert.Check(t, errors.Is(err, ErrPortTaken))
	assert.Check(t, is.ErrorContains(err, "someone-else"))

	// The service's own container holding the port is replaced, so it does not block.
	obs = deployed(t, p)
	obs.PortOwners = []PortOwner{{Container: "demo-web-1", HostIP: "127.0.0.1", HostPort: 8080, Protocol: "tcp"}}
	for i := range obs.Containers {
		if obs.Containers[i].Service == "web" {
			obs.Containers[i].ConfigHash = "old"
		}
	}
	_, err = MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
}

func TestDeployDuplicateReplicaFromKilledDeploy(t *testing.T) {
	p := load(t, demoCompose)
	obs := deployed(t, p)
	hash, _ := compose.ConfigHash(p, "worker")
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "id-dup", Name: "demo-worker-1-dup", Service: "worker", Number: 1, Revision: 0, ConfigHash: hash, Image: "app:1", ImageID: "sha256:app1", State: "created"})
	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(plan.Steps, 1), planText(t, plan))
	assert.Check(t, is.Equal(plan.Steps[0].Action, Remove))
	assert.Check(t, is.Equal(plan.Steps[0].Cause, "duplicate replica"))
}

func TestDeployFinishesWhatAKilledDeployLeft(t *testing.T) {
	p := load(t, demoCompose)
	obs := deployed(t, p)
	for i := range obs.Containers {
		switch obs.Containers[i].Name {
		case "demo-db-1":
			obs.Containers[i].Health = "starting" // killed during its health wait
		case "demo-web-1":
			obs.Containers[i].Health = "unhealthy"
		case "demo-worker-2":
			obs.Containers[i].State = "created" // killed between create and start
		}
	}
	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "killed-deploy.golden")
	for _, s := range plan.Steps {
		if s.Action == WaitHealthy && s.Target != "demo-web-1" {
			assert.Check(t, s.ContainerID != "", "wait on an existing container needs its ID: %+v", s)
		}
	}
}

// desire derives the desired state the planner reads, as rollout does before planning.
func desire(t testing.TB, p *compose.Project) *compose.Desired {
	t.Helper()
	d, err := compose.Desire(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestNetworkModeServiceFollowsItsService: a service in network_mode service:vpn gets
// the recreate strategy, a container_name keeps its fixed name, and when vpn gets a new
// container the joining ones are replaced after it (they would keep a dead namespace),
// also a rolling one that shares vpn's pid namespace.
func TestNetworkModeServiceFollowsItsService(t *testing.T) {
	p := load(t, `
name: demo
services:
  vpn:
    image: app:1
    container_name: vpn
  client:
    image: app:1
    network_mode: service:vpn
  monitor:
    image: app:1
    pid: service:vpn
    x-lifecycle: {strategy: rolling}
`)
	obs := deployed(t, p)
	for i := range obs.Containers {
		if obs.Containers[i].Service == "vpn" {
			obs.Containers[i].ConfigHash = "old"
		}
	}
	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "network-mode-service.golden")
}
