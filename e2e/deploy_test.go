package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A project with every depends_on condition: db must be healthy before migrate runs,
// web starts after migrate completed, worker only needs db started.
const dependencyProject = `
services:
  db:
    image: {{image:v1}}
    environment: {READY_AFTER: 1s}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    volumes: [data:/data]
  migrate:
    image: {{image:v1}}
    environment: {EXIT_AFTER: 0s, EXIT_CODE: "0"}
    depends_on: {db: {condition: service_healthy}}
  web:
    image: {{image:%s}}
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  worker:
    image: {{image:v1}}
    command: ["sleep", "1h"]
    depends_on: [db]
    deploy: {replicas: 2}
volumes:
  data:
`

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return strings.TrimSpace(string(b))
}

func TestDeployConvergesAndIsIdempotent(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(dependencyProject, "v1", port))

	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name))
	assert.Check(t, is.DeepEqual(p.containers("status=running"),
		[]string{p.name + "-db-1", p.name + "-web-1", p.name + "-worker-1", p.name + "-worker-2"}, sortedCmp()))
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))

	// Dependency order is visible in the progress: db healthy before migrate starts,
	// migrate completed before web is created.
	order := []string{p.name + "-db-1  Healthy", p.name + "-migrate-1  Starting", p.name + "-migrate-1  Completed", p.name + "-web-1  Creating"}
	last := -1
	for _, line := range order {
		i := strings.Index(r.stderr, line)
		assert.Check(t, i > last, "%q out of order in progress:\n%s", line, r.stderr)
		last = i
	}

	// Labels that docker compose relies on, plus ours.
	labels := p.inspect(`{{index .Config.Labels "com.docker.compose.project"}} {{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.container-number"}} {{index .Config.Labels "com.docker.compose.oneoff"}} {{index .Config.Labels "io.lifecycle.revision"}}`, p.name+"-worker-2")
	assert.Check(t, is.Equal(labels, p.name+" worker 2 False 1"))

	// A second identical deploy changes nothing.
	before := p.inspect("{{.Id}}", p.name+"-web-1")
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stdout, "up to date: nothing to do"))
	assert.Check(t, is.Equal(p.inspect("{{.Id}}", p.name+"-web-1"), before))
	r = p.mustLifecycle("plan")
	assert.Check(t, is.Contains(r.stdout, "nothing to do"))
}

func TestChangedServiceIsRecreatedWithCause(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(dependencyProject, "v1", port))
	p.mustLifecycle("deploy")
	dbBefore := p.inspect("{{.Id}}", p.name+"-db-1")

	p.write(fmt.Sprintf(dependencyProject, "v2", port))
	plan := p.mustLifecycle("plan")
	assert.Check(t, is.Contains(plan.stdout, "image changed: "+imageRef("v1")+" -> "+imageRef("v2")))
	assert.Check(t, !strings.Contains(plan.stdout, p.name+"-db-1"), "db is unchanged:\n%s", plan.stdout)
	dry := p.mustLifecycle("deploy", "--dry-run")
	assert.Check(t, is.Equal(dry.stdout, plan.stdout), "--dry-run prints the same plan")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"), "dry run changed nothing")

	p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
	assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "io.lifecycle.revision"}}`, p.name+"-web-1"), "2"))
	assert.Check(t, is.Equal(p.inspect("{{.Id}}", p.name+"-db-1"), dbBefore), "unchanged db was not touched")

	// Scaling down removes the highest replica numbers.
	p.write(strings.Replace(fmt.Sprintf(dependencyProject, "v2", port), "replicas: 2", "replicas: 1", 1))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "scale down to 1"))
	assert.Check(t, is.DeepEqual(p.containers("label=com.docker.compose.service=worker"), []string{p.name + "-worker-1"}))
}

func TestDownRemovesProjectKeepsVolumesUnlessAsked(t *testing.T) {
	s := setup(t)
	p := s.newProject(t, fmt.Sprintf(dependencyProject, "v1", freePort(t)))
	p.mustLifecycle("deploy")

	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.containers(), 0))
	objects := p.objects()
	assert.Check(t, is.DeepEqual(kinds(objects), []string{"volume"}), "only the named volume stays: %v", objects)

	p.mustLifecycle("deploy")
	p.mustLifecycle("down", "--volumes", "--timeout", "2")
	assert.Check(t, is.Len(p.objects(), 0))
}

func kinds(objects []string) []string {
	var out []string
	for _, o := range objects {
		k, _, _ := strings.Cut(o, " ")
		out = append(out, k)
	}
	return out
}
