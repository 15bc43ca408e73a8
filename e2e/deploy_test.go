package e2e

import (
	"encoding/json"
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

// TestDeployConvergesAndIsIdempotent deploys the dependency project twice, once with
// every service on recreate and once with the defaults: db (a read-write named volume)
// and migrate (a one-shot that web waits for) stay on recreate, web and worker roll, web
// behind the project's router. Either way the dependency order holds and a second
// deploy changes nothing.
func TestDeployConvergesAndIsIdempotent(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	for _, tc := range []struct {
		name    string
		yaml    func(string) string
		web     string   // web's container, after the project name
		running []string // the running containers, after the project name
		worker2 string   // worker's second replica
	}{
		{"recreate", recreate, "web-1", []string{"db-1", "web-1", "worker-1", "worker-2"}, "worker-2"},
		{"rolling", func(y string) string { return y }, "web-r1-1",
			[]string{"db-1", "lifecycle-router", "web-r1-1", "worker-r1-1", "worker-r1-2"}, "worker-r1-2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			p := s.newProject(t, tc.yaml(fmt.Sprintf(dependencyProject, "v1", port)))
			web := p.name + "-" + tc.web

			r := p.mustLifecycle("deploy")
			assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name))
			var running []string
			for _, c := range tc.running {
				running = append(running, p.name+"-"+c)
			}
			assert.Check(t, is.DeepEqual(p.containers("status=running"), running, sortedCmp()))
			assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))

			// Dependency order is visible in the progress: db healthy before migrate starts,
			// migrate completed before web is created.
			order := []string{p.name + "-db-1  Healthy", p.name + "-migrate-1  Starting", p.name + "-migrate-1  Completed", web + "  Creating"}
			last := -1
			for _, line := range order {
				i := strings.Index(r.stderr, line)
				assert.Check(t, i > last, "%q out of order in progress:\n%s", line, r.stderr)
				last = i
			}

			// Labels that docker compose relies on, plus ours.
			labels := p.inspect(`{{index .Config.Labels "com.docker.compose.project"}} {{index .Config.Labels "com.docker.compose.service"}} {{index .Config.Labels "com.docker.compose.container-number"}} {{index .Config.Labels "com.docker.compose.oneoff"}} {{index .Config.Labels "io.lifecycle.revision"}}`, p.name+"-"+tc.worker2)
			assert.Check(t, is.Equal(labels, p.name+" worker 2 False 1"))

			if tc.name == "rolling" {
				// The strategies resolved as documented.
				r := p.mustLifecycle("config", "--format", "json")
				var cfg struct {
					Services map[string]struct {
						Lifecycle struct{ Strategy string } `json:"x-lifecycle"`
					} `json:"services"`
				}
				assert.NilError(t, json.Unmarshal([]byte(r.stdout), &cfg), r.stdout)
				strategies := map[string]string{}
				for name, svc := range cfg.Services {
					strategies[name] = svc.Lifecycle.Strategy
				}
				assert.Check(t, is.DeepEqual(strategies, map[string]string{"db": "recreate", "migrate": "recreate", "web": "rolling", "worker": "rolling"}))
				// The router owns the host port; web publishes nothing.
				assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "com.docker.compose.project"}} {{index .Config.Labels "io.lifecycle.role"}} {{index .Config.Labels "com.docker.compose.service"}}`, p.router()), p.name+" router web"))
				assert.Check(t, is.Contains(p.inspect("{{json .HostConfig.PortBindings}}", p.router()), fmt.Sprintf(`"HostPort":"%d"`, port)))
				assert.Check(t, is.Equal(p.inspect("{{len .HostConfig.PortBindings}}", web), "0"))
			}

			// A second identical deploy changes nothing.
			before := p.runningIDs()
			r = p.mustLifecycle("deploy")
			assert.Check(t, is.Contains(r.stdout, "up to date: nothing to do"))
			assert.Check(t, is.DeepEqual(p.runningIDs(), before))
			r = p.mustLifecycle("plan")
			assert.Check(t, is.Contains(r.stdout, "nothing to do"))
		})
	}
}

func TestChangedServiceIsRecreatedWithCause(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, recreate(fmt.Sprintf(dependencyProject, "v1", port)))
	p.mustLifecycle("deploy")
	dbBefore := p.inspect("{{.Id}}", p.name+"-db-1")

	p.write(recreate(fmt.Sprintf(dependencyProject, "v2", port)))
	plan := p.mustLifecycle("plan")
	assert.Check(t, is.Contains(plan.stdout, "image changed: "+imageRef("v1")+" -> "+imageRef("v2")))
	assert.Check(t, !strings.Contains(plan.stdout, p.name+"-db-1"), "db is unchanged:\n%s", plan.stdout)
	dry := p.mustLifecycle("deploy", "--dry-run")
	assert.Check(t, is.Equal(dry.stdout, plan.stdout), "--dry-run prints the same plan")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"), "dry run changed nothing")

	p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
	assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "io.lifecycle.revision"}}`, p.name+"-web-1"), "2"))
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", p.name+"-web-r1-1"), "exited"), "revision 1 is kept for a rollback")
	assert.Check(t, is.Equal(p.inspect("{{.Id}}", p.name+"-db-1"), dbBefore), "unchanged db was not touched")

	// Scaling down removes the highest replica numbers.
	p.write(recreate(strings.Replace(fmt.Sprintf(dependencyProject, "v2", port), "replicas: 2", "replicas: 1", 1)))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "scale down to 1"))
	assert.Check(t, is.DeepEqual(p.containers("label=com.docker.compose.service=worker"), []string{p.name + "-worker-1"}))
}

// TestDownRemovesProjectKeepsVolumesUnlessAsked: down removes the containers and the
// networks and keeps the named volume; with the rolling default it also removes the
// router, its state volume, the revision records and the retained old revisions.
func TestDownRemovesProjectKeepsVolumesUnlessAsked(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	for _, tc := range []struct {
		name string
		yaml func(string) string
	}{
		{"recreate", recreate},
		{"rolling", func(y string) string { return y }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := freePort(t)
			p := s.newProject(t, tc.yaml(fmt.Sprintf(dependencyProject, "v1", port)))
			p.mustLifecycle("deploy")
			if tc.name == "rolling" {
				// A second revision, so that down also meets a retained one.
				p.write(tc.yaml(fmt.Sprintf(dependencyProject, "v2", port)))
				p.mustLifecycle("deploy")
				assert.Check(t, is.DeepEqual(p.containers("status=exited", "label=com.docker.compose.service=web"), []string{p.name + "-web-r1-1"}))
				assert.Check(t, len(p.volumes("io.lifecycle.history")) > 0, "revision records exist")
			}

			p.mustLifecycle("down")
			assert.Check(t, is.Len(p.containers(), 0))
			objects := p.objects()
			assert.Check(t, is.DeepEqual(objects, []string{"volume " + p.name + "_data"}), "only the named volume stays: %v", objects)
			assert.Check(t, is.Len(p.volumes("io.lifecycle.history"), 0), "no revision record stays")
			assertNoLock(t, p)

			p.mustLifecycle("deploy")
			p.mustLifecycle("down", "--volumes", "--timeout", "2")
			assert.Check(t, is.Len(p.objects(), 0))
		})
	}
}

// volumes lists the project's volumes that carry a label (any value), whatever their
// other labels.
func (p *project) volumes(label string) []string {
	p.t.Helper()
	r := p.s.docker(p.t, p.dir, nil, "volume", "ls", "-q", "--filter", "label="+label, "--filter", "name="+p.name+"_")
	assert.Equal(p.t, r.code, 0, r.String())
	return lines(r.stdout)
}

func kinds(objects []string) []string {
	var out []string
	for _, o := range objects {
		k, _, _ := strings.Cut(o, " ")
		out = append(out, k)
	}
	return out
}
