package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// quiet runs `docker lifecycle` with --progress quiet, so stderr holds only the error.
func (p *project) quiet(args ...string) result {
	p.t.Helper()
	return p.lifecycle(append([]string{"--progress", "quiet"}, args...)...)
}

// assertFailureRecorded checks what a failed deploy of a fresh project leaves: the
// revision record of the failed service (a volume), which history shows as failed and
// down removes; no container, network or other volume, and no lock.
func assertFailureRecorded(t *testing.T, p *project, service string) {
	t.Helper()
	records := p.volumes("io.lifecycle.history")
	assert.Check(t, is.Len(records, 1), "one revision record: %v", records)
	var want []string
	for _, v := range records {
		assert.Check(t, is.Contains(v, "_lifecycle-history-"+service+"-"))
		want = append(want, "volume "+v)
	}
	objects := p.objects()
	assert.Check(t, is.DeepEqual(objects, want), "a failed deploy leaves only its revision record: %v", objects)
	assertNoLock(t, p)
	h := p.mustLifecycle("history", service, "--format", "{{.Revision}} {{.Result}}")
	assert.Check(t, is.Equal(h.stdout, "1 failed\n"), h.String())
	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.objects(), 0), "down removes the revision record")
}

// assertNothingLeft checks that a failed deploy of a fresh project left no container,
// network or volume of the project, and no lock.
func assertNothingLeft(t *testing.T, p *project) {
	t.Helper()
	assert.Check(t, is.Len(p.objects(), 0), "a failed deploy must leave nothing behind")
	assertNoLock(t, p)
}

const webOnPort = `
services:
  web:
    image: %s
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
`

// TestMissingImageIsRefusedBeforeAnythingStops: a service whose image is not on the
// engine fails plan and `deploy --pull never` at planning, and a deploy whose pull
// fails stops before any write; each names the image and the service and says how to
// get the image, while the running version keeps running untouched. The image's
// registry is a closed port on 127.0.0.1, so the pull is refused at once.
func TestMissingImageIsRefusedBeforeAnythingStops(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(webOnPort, imageRef("v1"), port))
	p.mustLifecycle("deploy")
	before := p.runningIDs()
	_, web := before[p.name+"-web-r1-1"]
	_, router := before[p.router()]
	assert.Assert(t, len(before) == 2 && web && router, "web behind the router: %v", before)

	missing := fmt.Sprintf("127.0.0.1:%d/lifecycle-e2e:does-not-exist", freePort(t))
	p.write(fmt.Sprintf(webOnPort, missing, port))
	for _, args := range [][]string{{"plan"}, {"deploy", "--pull", "never"}} {
		r := p.quiet(args...)
		t.Logf("docker lifecycle %s:\n%s", args, r.stderr)
		assertOneMessage(t, r, 1, `service "web"`, "image not found on the engine", missing,
			"docker pull "+missing, "deploy pulls missing images itself unless pull_policy or --pull is never")
	}
	r := p.quiet("deploy")
	t.Logf("docker lifecycle deploy:\n%s", r.stderr)
	assertOneMessage(t, r, 1, `service "web"`, "pull "+missing, "the engine could not reach the registry", "insecure-registries")
	assert.Check(t, is.DeepEqual(p.runningIDs(), before), "the running container was touched")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
	assertNoLock(t, p)
}

// TestHostPortHeldByAnotherContainer: a host port that a container outside the project
// publishes fails the deploy before any write, naming that container, whether the
// service publishes it itself (recreate) or through the router (rolling).
func TestHostPortHeldByAnotherContainer(t *testing.T) {
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
			p := s.newProject(t, tc.yaml(fmt.Sprintf(webOnPort, imageRef("v1"), port)))

			other := p.name + "-other"
			t.Cleanup(func() { _ = exec.Command("docker", "rm", "-fv", other).Run() })
			r := s.docker(t, p.dir, nil, "run", "-d", "--name", other, "--label", "com.docker.compose.project="+other,
				"-p", fmt.Sprintf("127.0.0.1:%d:8080", port), imageRef("v1"))
			assert.Assert(t, r.code == 0, r.String())

			r = p.quiet("deploy")
			t.Logf("stderr:\n%s", r.stderr)
			assertOneMessage(t, r, 1, `service "web"`, fmt.Sprintf("127.0.0.1:%d/tcp", port),
				"host port already allocated", "container "+other, "stop it or change the published port")
			assertNothingLeft(t, p)
			assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", other), "running"), "the other container was touched")
		})
	}
}

// TestHostPortHeldByAProcess: a host port held by a plain process (here: this test)
// fails the deploy before any write, with a message that says the port is in use.
func TestHostPortHeldByAProcess(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	p := s.newProject(t, fmt.Sprintf(webOnPort, imageRef("v1"), port))

	r := p.quiet("deploy")
	t.Logf("stderr:\n%s", r.stderr)
	assertOneMessage(t, r, 1, `service "web"`, fmt.Sprintf("127.0.0.1:%d/tcp", port),
		"host port already allocated", "another process", "free it or change the published port")
	assertNothingLeft(t, p)
}

// TestUnreachableDaemon: an engine that cannot be reached gives one clear message naming
// the address, from every command that needs the engine, and no Go stack trace.
func TestUnreachableDaemon(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	const sock = "/tmp/lifecycle-e2e-does-not-exist.sock"
	p := s.newProject(t, validProject)
	p.env = []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONTEXT="}
	for _, args := range [][]string{{"plan"}, {"deploy"}, {"ps"}, {"down"}} {
		r := p.quiet(args...)
		t.Logf("docker lifecycle %s:\n%s", strings.Join(args, " "), r.stderr)
		assertOneMessage(t, r, 1, "cannot connect to the Docker engine at unix://"+sock, "is the daemon running?",
			"dial unix "+sock+": connect: no such file or directory")
		assert.Check(t, is.Equal(strings.Count(r.stderr, sock), 2), "the socket is named once as the host, once in the dial error")
	}
	p.env = nil
	assertNothingLeft(t, p)
}

// oldEngine is a fake Docker engine on 127.0.0.1 that speaks API 1.39 (Docker 18.09):
// it answers /_ping, and every other request the way such an engine does.
type oldEngine struct {
	mu       sync.Mutex
	requests []string
}

func (e *oldEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+r.URL.Path)
	e.mu.Unlock()
	w.Header().Set("Api-Version", "1.39")
	w.Header().Set("OSType", "linux")
	w.Header().Set("Docker-Experimental", "false")
	w.Header().Set("Server", "Docker/18.09.9 (linux)")
	if strings.HasSuffix(r.URL.Path, "/_ping") {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte("OK"))
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintf(w, `{"message":"client version %s is too new. Maximum supported API version is 1.39"}`,
		strings.TrimPrefix(strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0], "v"))
}

func (e *oldEngine) writes() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, r := range e.requests {
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			out = append(out, r)
		}
	}
	return out
}

// TestEngineTooOld: an engine older than API 1.40 is refused up front with a message
// that names both versions, not the client's "client version is too new".
func TestEngineTooOld(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	fake := &oldEngine{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	p := s.newProject(t, validProject)
	p.env = []string{"DOCKER_HOST=tcp://" + l.Addr().String(), "DOCKER_CONTEXT=", "DOCKER_TLS_VERIFY=", "DOCKER_API_VERSION="}
	for _, args := range [][]string{{"plan"}, {"deploy"}, {"ps"}, {"down"}} {
		r := p.quiet(args...)
		t.Logf("docker lifecycle %s:\n%s", strings.Join(args, " "), r.stderr)
		assertOneMessage(t, r, 1, "engine too old", "API 1.39", "API 1.40 or newer", "tcp://"+l.Addr().String(), "upgrade the engine")
		assert.Check(t, !strings.Contains(r.stderr, "too new"), "the client's misleading message leaked")
	}
	assert.Check(t, is.Len(fake.writes(), 0), "requests: %v", fake.requests)
	t.Logf("requests the fake engine saw: %v", fake.requests)
}

// watch polls the project's objects in the background while a command runs, and
// returns the kinds (container, network, volume) and the container names it saw, to
// prove that a cleanup check afterwards is not vacuous.
func watch(p *project) (stop func() (kinds, containers map[string]bool)) {
	kinds, containers := map[string]bool{}, map[string]bool{}
	done, finished := make(chan struct{}), make(chan struct{})
	f := "label=com.docker.compose.project=" + p.name
	go func() {
		defer close(finished)
		for {
			for kind, args := range map[string][]string{
				"container": {"ps", "-a", "--format", "{{.Names}}", "--filter", f},
				"network":   {"network", "ls", "-q", "--filter", f},
				"volume":    {"volume", "ls", "-q", "--filter", f},
			} {
				out, err := exec.Command("docker", args...).Output()
				if err != nil || strings.TrimSpace(string(out)) == "" {
					continue
				}
				kinds[kind] = true
				if kind == "container" {
					for _, name := range lines(string(out)) {
						containers[name] = true
					}
				}
			}
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() (map[string]bool, map[string]bool) {
		close(done)
		<-finished
		return kinds, containers
	}
}

// A dependency that never becomes healthy; web waits for it. db has an anonymous volume
// labelled with the project, so the test can see that it is removed too; its strategy is
// set on the service (a read-write anonymous volume makes recreate its default, whatever
// the project's).
const neverHealthyProject = `
services:
  db:
    image: {{image:v1}}
    environment: {NEVER_HEALTHY: "1", QUIET: "1"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: %d}
    x-lifecycle: {strategy: %s}
    volumes:
      - type: volume
        target: /data
        volume: {labels: {com.docker.compose.project: %s}}
  web:
    image: {{image:v1}}
    depends_on: {db: {condition: service_healthy}}
`

// TestDependencyNeverHealthy: the deploy fails naming the container and service with its
// last health check output and log lines; the dependent is never created, and
// everything the deploy created (containers, network, anonymous volume) is removed.
func TestDependencyNeverHealthy(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	for _, tc := range []struct {
		name        string
		retries     int
		waitTimeout string
		want        string
		strategy    string
		db          string // db's container, after the project name
	}{
		{"times out while starting", 1000, "5s", "not healthy within 5s (state running, health starting)", "recreate", "db-1"},
		{"times out while starting, rolling", 1000, "5s", "not healthy within 5s (state running, health starting)", "rolling", "db-r1-1"},
		// Fails as soon as the engine marks it unhealthy, long before the timeout.
		{"turns unhealthy", 2, "2m", "health check failing", "recreate", "db-1"},
		{"turns unhealthy, rolling", 2, "2m", "health check failing", "rolling", "db-r1-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := s.newProject(t, "")
			p.write("x-lifecycle: {strategy: " + tc.strategy + "}\n" + fmt.Sprintf(neverHealthyProject, tc.retries, tc.strategy, p.name))
			stop := watch(p)
			r := p.lifecycle("deploy", "--wait-timeout", tc.waitTimeout)
			kinds, containers := stop()
			t.Logf("stderr:\n%s", r.stderr)
			msg := errorMessage(t, r)
			db := p.name + "-" + tc.db
			for _, want := range []string{
				`deploy failed: service "db": wait-healthy ` + db + ": container failed its health gate: " + tc.want,
				"\n  last health check: exit 1: unhealthy: GET http://127.0.0.1:8080/healthz: 503 Service Unavailable: NEVER_HEALTHY is set",
				"\n  last log lines of " + db + ":\n    testapp: ", "listening on [::]:8080",
			} {
				assert.Check(t, is.Contains(msg, want))
			}
			assert.Check(t, is.DeepEqual(kinds, map[string]bool{"container": true, "network": true, "volume": true}))
			assert.Check(t, is.DeepEqual(containers, map[string]bool{db: true}), "only db may ever be created")
			assertFailureRecorded(t, p, "db")
		})
	}
}

// TestCrashingService: a container that exits, or crash-loops under restart: always,
// before it is healthy fails the deploy with its exit code and last log lines, and
// nothing is left.
func TestCrashingService(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	for _, tc := range []struct {
		name, restart string
		want          []string
	}{
		{"exits", "no", []string{"exited with code 3"}},
		{"crash-loops", "always", []string{"crash-looping: restarted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := s.newProject(t, fmt.Sprintf(`
services:
  app:
    image: {{image:v1}}
    restart: %s
    environment: {CRASH_AFTER: 1s, READY_AFTER: 1m}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 1000}
`, tc.restart))
			r := p.lifecycle("deploy", "--wait-timeout", "30s")
			t.Logf("stderr:\n%s", r.stderr)
			msg := errorMessage(t, r)
			app := p.name + "-app-r1-1" // rolling, the default
			for _, want := range append([]string{
				`deploy failed: service "app"`, "wait-healthy " + app,
				"last log lines of " + app + ":", "crashing: CRASH_AFTER=1s has passed, exiting with code 3",
			}, tc.want...) {
				assert.Check(t, is.Contains(msg, want))
			}
			assert.Check(t, !strings.Contains(msg, "exited with code 0"), "a crash is not an exit with code 0")
			assertFailureRecorded(t, p, "app")
		})
	}
}

// TestOOMKilledService: a container killed by the kernel for going over its memory
// limit fails the deploy with a message that says OOMKilled and what to do. Its health
// check GETs /hog, which allocates until the kill and answers nothing before, so the
// container can never pass its gate first (the test app used to answer 200 at once,
// and the check could win that race and report it healthy).
func TestOOMKilledService(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
services:
  hog:
    image: {{image:v1}}
    environment: {MEMORY_HOG: "1", QUIET: "1"}
    deploy: {resources: {limits: {memory: 32M}}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/hog"], interval: 500ms, retries: 1000}
`)
	r := p.lifecycle("deploy", "--wait-timeout", "30s")
	t.Logf("stderr:\n%s", r.stderr)
	msg := errorMessage(t, r)
	hog := p.name + "-hog-r1-1" // rolling, the default
	for _, want := range []string{
		`deploy failed: service "hog"`, "wait-healthy " + hog, "exited with code 137",
		"OOMKilled: raise its memory limit", "hog: allocating memory until killed",
	} {
		assert.Check(t, is.Contains(msg, want))
	}
	assertFailureRecorded(t, p, "hog")
}

// errorMessage checks a deploy that failed with --progress plain: stderr is progress
// lines followed by one error message, printed once, without stack trace; it returns
// that message.
func errorMessage(t *testing.T, r result) string {
	t.Helper()
	assert.Check(t, is.Equal(r.code, 1), "%s", r)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), ""), "stdout of a failed deploy")
	i := strings.LastIndex("\n"+r.stderr, "\ndeploy failed: ")
	assert.Assert(t, i >= 0, "no final error message in stderr:\n%s", r.stderr)
	msg := strings.TrimSpace(r.stderr[i:])
	for _, l := range lines(r.stderr[:i]) {
		ok := false
		for _, prefix := range []string{"Project ", "Network ", "Volume ", "Container ", "ERROR ", "WARN "} {
			ok = ok || strings.HasPrefix(l, prefix)
		}
		assert.Check(t, ok, "not a progress line before the error message: %q", l)
	}
	assertReadable(t, msg)
	for _, once := range []string{"last health check:", "last log lines of"} {
		assert.Check(t, strings.Count(r.stderr, once) <= 1, "%q printed more than once:\n%s", once, r.stderr)
	}
	return msg
}
