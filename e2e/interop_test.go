package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// builtTool is a program the tests run beside the plugin: the path in its environment
// variable, or built (and cached) by its script under scripts/ on first use, then
// checked by running it with checkArgs.
type builtTool struct {
	env, script string
	checkArgs   []string
	once        sync.Once
	path        string
	err         error
}

func (b *builtTool) get(s *suite) (string, error) {
	b.once.Do(func() {
		b.path = os.Getenv(b.env)
		if b.path == "" {
			cmd := exec.Command("bash", filepath.Join(s.moduleDir, "scripts", b.script))
			cmd.Dir = s.moduleDir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				b.err = fmt.Errorf("scripts/%s: %v: %s", b.script, err, stderr.String())
				return
			}
			b.path = strings.TrimSpace(string(out))
		}
		if out, err := exec.Command(b.path, b.checkArgs...).CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s %s: %v: %s", b.path, strings.Join(b.checkArgs, " "), err, out)
		}
	})
	return b.path, b.err
}

// Real Docker Compose v2, for the interoperability tests.
var composeTool = builtTool{env: "LIFECYCLE_COMPOSE_BIN", script: "build-compose.sh", checkArgs: []string{"version", "--short"}}

func dockerCompose(t *testing.T, s *suite) string {
	t.Helper()
	bin, err := composeTool.get(s)
	if err != nil {
		skipFor(t, "Docker Compose v2", "set LIFECYCLE_COMPOSE_BIN=/path/to/docker-compose (v2.40.3 is tested), or let scripts/build-compose.sh build it (needs the Go module proxy)", err)
	}
	return bin
}

// compose runs `docker-compose -p NAME ARGS…` in the project directory.
func (p *project) compose(args ...string) result {
	p.t.Helper()
	bin := dockerCompose(p.t, p.s)
	return p.s.run(p.t, bin, p.dir, []string{"COMPOSE_ANSI=never", "COMPOSE_PROGRESS=plain"}, append([]string{"-p", p.name}, args...)...)
}

func (p *project) mustCompose(args ...string) result {
	p.t.Helper()
	r := p.compose(args...)
	assert.Equal(p.t, r.code, 0, "docker-compose %s\n%s", strings.Join(args, " "), r)
	return r
}

const interopProject = `
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    volumes: [data:/data]
  worker:
    image: {{image:v1}}
    command: ["sleep", "1h"]
    depends_on: {web: {condition: service_healthy}}
volumes:
  data:
`

type composePsRow struct {
	Name, Service, State, Health, Project string
}

func composePs(t *testing.T, p *project) []composePsRow {
	t.Helper()
	r := p.mustCompose("ps", "--format", "json")
	var rows []composePsRow
	for _, line := range lines(r.stdout) {
		var row composePsRow
		assert.NilError(t, json.Unmarshal([]byte(line), &row), line)
		rows = append(rows, row)
	}
	return rows
}

// interopRolling is interopProject with the volume mounted read-only, so that web rolls
// behind the project's router (the default strategy) instead of falling back to
// recreate for a read-write volume.
func interopRolling(port int) string {
	return strings.Replace(fmt.Sprintf(interopProject, port), "[data:/data]", "[data:/data:ro]", 1)
}

// TestComposeSeesLifecycleDeploys: docker compose ps, logs and down work on a project that
// docker lifecycle deployed, because the containers carry the labels compose reads; with
// the rolling default that includes the router and the retained old revision.
func TestComposeSeesLifecycleDeploys(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	dockerCompose(t, s)
	t.Run("recreate", func(t *testing.T) {
		port := freePort(t)
		p := s.newProject(t, recreate(fmt.Sprintf(interopProject, port)))
		p.mustLifecycle("deploy")

		rows := composePs(t, p)
		assert.Check(t, is.DeepEqual(rows, []composePsRow{
			{Name: p.name + "-web-1", Service: "web", State: "running", Health: "healthy", Project: p.name},
			{Name: p.name + "-worker-1", Service: "worker", State: "running", Health: "", Project: p.name},
		}))

		r := p.mustCompose("logs", "--no-color", "web")
		assert.Check(t, is.Contains(r.stdout, "web-1  | testapp: "), "the app's log lines, prefixed by compose")
		assert.Check(t, is.Contains(r.stdout, "listening on"))
		assert.Check(t, !strings.Contains(r.stdout, "worker-1"), "only web's logs")

		r = p.mustCompose("down")
		assert.Check(t, is.Len(p.containers(), 0), "compose down removes our containers:\n%s", r)
		assertOnlyVolumesLeft(t, p)
		r = p.s.docker(t, p.dir, nil, "network", "inspect", p.name+"_default")
		assert.Check(t, r.code != 0, "network %s_default is gone", p.name)

		// docker lifecycle sees that nothing runs any more and brings it back.
		p.mustLifecycle("deploy")
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
	})
	t.Run("rolling", func(t *testing.T) {
		port := freePort(t)
		p := s.newProject(t, interopRolling(port))
		p.mustLifecycle("deploy")
		// A second revision of web, so that a stopped old one is retained.
		p.write(strings.Replace(interopRolling(port), "image: {{image:v1}}", "image: {{image:v2}}", 1))
		p.mustLifecycle("deploy")
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))

		rows := composePs(t, p)
		t.Logf("docker compose ps: %+v", rows)
		var services []composePsRow
		for _, row := range rows {
			if row.Name == p.router() {
				// Filed under the first service it routes, so compose removes it.
				assert.Check(t, is.Equal(row.Service, "web"))
				continue
			}
			services = append(services, row)
		}
		assert.Check(t, is.Len(rows, 3), "compose lists the router too: %+v", rows)
		assert.Check(t, is.DeepEqual(services, []composePsRow{
			{Name: p.name + "-web-r2-1", Service: "web", State: "running", Health: "healthy", Project: p.name},
			{Name: p.name + "-worker-r1-1", Service: "worker", State: "running", Health: "", Project: p.name},
		}))

		r := p.mustCompose("logs", "--no-color", "web")
		assert.Check(t, regexp.MustCompile(`web-r2-1 +\| testapp: `).MatchString(r.stdout), "the app's log lines, prefixed by compose")
		assert.Check(t, is.Contains(r.stdout, "version v2 listening on"))
		assert.Check(t, !strings.Contains(r.stdout, "worker-r1-1"), "only web's logs")

		r = p.mustCompose("down")
		t.Logf("docker compose down:\n%s", r)
		assert.Check(t, is.Len(p.containers(), 0), "compose down removes our containers, the router and the retained revision:\n%s", r)
		assert.Check(t, !strings.Contains(r.stderr, "orphan"), "the router is no orphan to compose:\n%s", r.stderr)
		assertOnlyVolumesLeft(t, p)
		r = p.s.docker(t, p.dir, nil, "network", "inspect", p.name+"_default")
		assert.Check(t, r.code != 0, "network %s_default is gone", p.name)

		// docker lifecycle sees that nothing runs any more and brings it back.
		p.mustLifecycle("deploy")
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
	})
}

// assertOnlyVolumesLeft checks what compose down (without --volumes) leaves of a project:
// volumes only (the named one among them, and our revision records and router state),
// no container, no network.
func assertOnlyVolumesLeft(t *testing.T, p *project) {
	t.Helper()
	objects := p.objects()
	for _, o := range objects {
		assert.Check(t, strings.HasPrefix(o, "volume "), "compose down removes our containers and network, keeps the volumes: %v", objects)
	}
	assert.Check(t, is.Contains(objects, "volume "+p.name+"_data"))
}

// assertOnlyHistoryLeft: after `docker compose down --volumes` only docker lifecycle's
// revision records may remain (volumes compose does not know of); `docker lifecycle
// down` removes them.
func assertOnlyHistoryLeft(t *testing.T, p *project) {
	t.Helper()
	for _, o := range p.objects() {
		if !strings.HasPrefix(o, "volume ") {
			t.Errorf("compose down --volumes left %s", o)
			continue
		}
		labels := p.inspect(`{{index .Labels "io.lifecycle.history"}}`, strings.TrimPrefix(o, "volume "))
		assert.Check(t, labels != "", "compose down --volumes left %s, which is no revision record", o)
	}
	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.objects(), 0))
}

// TestLifecycleTakesOverComposeProject: a project started with `docker compose up` is
// converged by docker lifecycle from the same files, without duplicates; with the rolling
// default web moves behind the router and compose's containers are kept, stopped.
func TestLifecycleTakesOverComposeProject(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	dockerCompose(t, s)
	t.Run("recreate", func(t *testing.T) {
		port := freePort(t)
		p := s.newProject(t, recreate(fmt.Sprintf(interopProject, port)))
		p.mustCompose("up", "-d", "--wait")
		composeIDs := map[string]string{}
		for _, n := range []string{"web", "worker"} {
			composeIDs[n] = p.inspect("{{.Id}}", p.name+"-"+n+"-1")
		}
		networksBefore := p.s.docker(t, p.dir, nil, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name).stdout

		r := p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name), r.String())
		assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-web-1", p.name + "-worker-1"}, sortedCmp()), "no duplicate containers")
		assert.Check(t, is.DeepEqual(p.containers("status=running"), []string{p.name + "-web-1", p.name + "-worker-1"}, sortedCmp()))
		assert.Check(t, is.Equal(p.inspect("{{.State.Health.Status}}", p.name+"-web-1"), "healthy"))
		for n, id := range composeIDs {
			if p.inspect("{{.Id}}", p.name+"-"+n+"-1") == id {
				// Not replaced: then it must at least be running.
				assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", id), "running"))
			}
		}
		assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "io.lifecycle.revision"}}`, p.name+"-web-1"), "1"))
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
		networksAfter := p.s.docker(t, p.dir, nil, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name).stdout
		assert.Check(t, is.Equal(networksAfter, networksBefore), "compose's network is reused")

		r = p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stdout, "up to date: nothing to do"))

		// And compose still understands the project afterwards.
		rows := composePs(t, p)
		assert.Check(t, is.Len(rows, 2))
		p.mustCompose("down", "--volumes")
		assertOnlyHistoryLeft(t, p)
	})
	t.Run("rolling", func(t *testing.T) {
		port := freePort(t)
		p := s.newProject(t, interopRolling(port))
		p.mustCompose("up", "-d", "--wait")
		networksBefore := p.s.docker(t, p.dir, nil, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name).stdout

		r := p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name), r.String())
		running := []string{p.router(), p.name + "-web-r1-1", p.name + "-worker-r1-1"}
		assert.Check(t, is.DeepEqual(p.containers("status=running"), running, sortedCmp()), "no duplicate containers")
		for _, c := range p.containers("status=exited") {
			assert.Check(t, c == p.name+"-web-1" || c == p.name+"-worker-1", "only compose's old containers are stopped: %s", c)
		}
		assert.Check(t, is.Equal(p.inspect("{{.State.Health.Status}}", p.name+"-web-r1-1"), "healthy"))
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
		networksAfter := p.s.docker(t, p.dir, nil, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name).stdout
		assert.Check(t, is.Equal(networksAfter, networksBefore), "compose's network is reused")

		r = p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stdout, "up to date: nothing to do"))

		// And compose still understands the project afterwards, down --volumes included.
		rows := composePs(t, p)
		t.Logf("docker compose ps: %+v", rows)
		r = p.mustCompose("down", "--volumes")
		t.Logf("docker compose down --volumes:\n%s", r)
		assertOnlyHistoryLeft(t, p)
	})
}

// TestConfigOutputLoadsInCompose: `docker lifecycle config` writes a compose file that
// real Compose v2 loads and reads as the project the original file is (once our
// x-lifecycle blocks and the update configs we write out are set aside), and that docker
// lifecycle loads back to the same output.
func TestConfigOutputLoadsInCompose(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	dockerCompose(t, s)
	p := s.newProject(t, `
x-lifecycle:
  wait-timeout: 45s
  scan: {fail-on: high}
services:
  web:
    image: {{image:v1}}
    command: ["sh", "-c", "echo $$HOME $${PATH}"]
    environment: {PRICE: "$$5", PLAIN: "x"}
    labels: {cost: "$$1"}
    ports: ["127.0.0.1:18080:8080"]
    secrets: [token]
    x-lifecycle: {strategy: canary, network: {talks-to: [db]}}
  db:
    image: {{image:v1}}
    volumes: [data:/data]
    deploy:
      update_config: {parallelism: 2, order: stop-first}
secrets:
  token:
    file: ./token.txt
    x-lifecycle: {exec: "echo $$TOKEN"}
volumes:
  data:
`)
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "token.txt"), []byte("t"), 0o600))
	resolved := p.mustLifecycle("config").stdout
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "resolved.yaml"), []byte(resolved), 0o644))

	again := p.mustLifecycle("-f", "resolved.yaml", "config").stdout
	assert.Check(t, is.Equal(again, resolved), "docker lifecycle reads its config output back to the same project")

	composeView := func(file string) map[string]any {
		r := p.mustCompose("-f", file, "config", "--format", "json")
		var doc map[string]any
		assert.NilError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
		delete(doc, "x-lifecycle")
		services, _ := doc["services"].(map[string]any)
		for _, svc := range services {
			m := svc.(map[string]any)
			delete(m, "x-lifecycle")
			if d, ok := m["deploy"].(map[string]any); ok {
				delete(d, "update_config")
				delete(d, "rollback_config")
				for k, v := range d {
					if e, ok := v.(map[string]any); ok && len(e) == 0 {
						delete(d, k) // compose writes placement: {} once deploy is set
					}
				}
				if len(d) == 0 {
					delete(m, "deploy")
				}
			}
		}
		return doc
	}
	original, fromConfig := composeView("compose.yaml"), composeView("resolved.yaml")
	assert.Check(t, is.DeepEqual(fromConfig, original), "compose config of our output vs of the original file")
	web := fromConfig["services"].(map[string]any)["web"].(map[string]any)
	assert.Check(t, is.DeepEqual(web["environment"], map[string]any{"PRICE": "$$5", "PLAIN": "x"}), "a literal dollar stays one")
}
