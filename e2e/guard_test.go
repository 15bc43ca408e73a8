package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The guard (docs/guard.md) on the real engine: an unhealthy container restarted
// within `after` + 2 s while the router keeps serving, a crash loop spaced by the
// backoff until the budget is spent, and a docker exec reported within 2 s.

// guardAlert is the part of the guard's JSON alert the tests read.
type guardAlert struct {
	Time         time.Time  `json:"time"`
	Project      string     `json:"project"`
	Service      string     `json:"service"`
	Container    string     `json:"container"`
	Kind         string     `json:"kind"`
	Action       string     `json:"action"`
	Reason       string     `json:"reason"`
	FailingSince *time.Time `json:"failing_since"`
	RestartBegan *time.Time `json:"restart_began"`
	Restarts     int        `json:"restarts"`
	Budget       int        `json:"budget"`
	Command      string     `json:"command"`
	// the automatic rollback (rolled-back, rollback-failed)
	Revision      int        `json:"revision"`
	RollbackTo    int        `json:"rollback_to"`
	RollbackBegan *time.Time `json:"rollback_began"`
	// the runtime security events (policy, drift, image-drift)
	Findings []struct {
		Rule string `json:"rule"`
	} `json:"findings"`
	Changes []struct {
		Setting, Deployed, Now string
	} `json:"changes"`
	Baseline string `json:"baseline"`
	// a dependent restarted after its parent (restarted-dependent)
	Parent     string `json:"parent"`
	Dependency string `json:"dependency"`

	received time.Time
}

// guardRun is a running `docker lifecycle guard --format json`.
type guardRun struct {
	t      *testing.T
	alerts chan guardAlert
	ready  chan struct{} // closed when the guard said it guards the project

	mu     sync.Mutex
	stderr []string
	done   chan struct{}
}

func (p *project) startGuard() *guardRun {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := execDocker(ctx, p.s, "lifecycle", "-p", p.name, "guard", "--format", "json")
	cmd.Dir = p.dir
	stdout, err := cmd.StdoutPipe()
	assert.NilError(p.t, err)
	stderr, err := cmd.StderrPipe()
	assert.NilError(p.t, err)
	assert.NilError(p.t, cmd.Start())
	g := &guardRun{t: p.t, alerts: make(chan guardAlert, 100), ready: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var a guardAlert
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				p.t.Errorf("guard stdout is not a JSON alert: %q: %v", sc.Text(), err)
				continue
			}
			a.received = time.Now()
			g.alerts <- a
		}
	})
	wg.Go(func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			g.mu.Lock()
			g.stderr = append(g.stderr, sc.Text())
			g.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "guarding project") {
				once.Do(func() { close(g.ready) })
			}
		}
	})
	go func() {
		wg.Wait()
		_ = cmd.Wait()
		cancel()
		close(g.done)
	}()
	p.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-g.done
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		p.t.Logf("guard stderr:\n%s", strings.Join(g.stderr, "\n"))
	})
	select {
	case <-g.ready:
	case <-g.done:
		p.t.Fatalf("the guard ended at start")
	case <-time.After(20 * time.Second):
		p.t.Fatalf("the guard did not start within 20s")
	}
	return g
}

// next returns the next alert of kind (others are logged and skipped).
func (g *guardRun) next(kind string, timeout time.Duration) (guardAlert, bool) {
	deadline := time.After(timeout)
	for {
		select {
		case a := <-g.alerts:
			if a.Kind == kind {
				return a, true
			}
			g.t.Logf("alert (skipped): %+v", a)
		case <-deadline:
			return guardAlert{}, false
		}
	}
}

// guardedProject is one service of 2 replicas (routed through the router on port
// %[2]d) whose second container turns unhealthy %[3]s after each start; %[4]s is the
// guard policy, %[1]s the count directory.
const guardedProject = `
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 2}
    restart: unless-stopped
    volumes: ["%[1]s:/count"]
    environment: {COUNT_DIR: /count, FAULT_FREE_FIRST: "1", UNHEALTHY_AFTER: %[3]s, QUIET: "1"}
    x-lifecycle:
      strategy: rolling # the replicas share the count directory on purpose
      guard: %[4]s
    deploy:
      replicas: 2
`

// TestGuardRestartsUnhealthyContainer: the second replica turns unhealthy 8 s after
// its start; the guard begins its restart within after (interval × retries = 600 ms) +
// 2 s of its first failing probe, takes it out of the router while it is down and puts
// it back once healthy; 8 s later it is unhealthy again, its budget (1) is spent, and
// the quarantine takes it out of the router for good; the load through the router
// sees no failed request.
func TestGuardRestartsUnhealthyContainer(t *testing.T) {
	s := setup(t)
	defer logDuration(t, time.Now())
	port, dir := freePort(t), countDir(t)
	p := s.newProject(t, fmt.Sprintf(guardedProject, dir, port, "8s", "{backoff: {start: 1s}, budget: 1}"))
	deployed := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("deploy took %s", time.Since(deployed).Round(100*time.Millisecond))
	waitAnswers(t, port, "v1", 30*time.Second)
	g := p.startGuard()
	load := startRateLoad(t, port, "/", loadRate, time.Minute)

	a, ok := g.next("unhealthy", 30*time.Second)
	assert.Assert(t, ok, "no restart within 30s")
	assert.Check(t, is.Equal(a.Action, "restarted"), "%+v", a)
	assert.Check(t, is.Equal(a.Project, p.name))
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, is.Equal(a.Restarts, 1))
	assert.Assert(t, a.FailingSince != nil && a.RestartBegan != nil, "%+v", a)
	lag := a.RestartBegan.Sub(*a.FailingSince)
	t.Logf("restart of %s begun %s after the first failing probe (after = 600ms, limit 2.6s); stop and start took %s",
		a.Container, lag.Round(time.Millisecond), a.Time.Sub(*a.RestartBegan).Round(time.Millisecond))
	assert.Check(t, lag <= 600*time.Millisecond+2*time.Second, "restart begun %s after the first failing probe", lag)
	assert.Check(t, is.Contains(a.Reason, "taken out of the router while it restarted, back in it once healthy"))
	started, err := time.Parse(time.RFC3339Nano, p.inspect("{{.State.StartedAt}}", a.Container))
	assert.NilError(t, err)
	assert.Check(t, started.After(*a.FailingSince), "the container was started again: %s", started)

	// Unhealthy again 8 s after its restart: the budget is spent, it leaves the router.
	q, ok := g.next("unhealthy", 30*time.Second)
	assert.Assert(t, ok, "no quarantine within 30s")
	assert.Check(t, is.Equal(q.Action, "quarantined"), "%+v", q)
	assert.Check(t, is.Equal(q.Container, a.Container))
	assert.Check(t, is.Contains(q.Reason, "taken out of the router: the healthy replicas serve"), q.Reason)
	cfg := p.s.docker(t, p.dir, nil, "exec", p.router(), "/agent", "ctl", "get-config")
	assert.Check(t, cfg.code == 0, cfg.String())
	assert.Check(t, !strings.Contains(cfg.stdout, a.Container), "still routed: %s", cfg.stdout)
	assert.Check(t, is.Contains(cfg.stdout, `"id": "`+p.name+"-web-r1-"), "the healthy replica still serves: %s", cfg.stdout)
	time.Sleep(time.Second)
	rep := load.stop()
	t.Logf("load through the router during the restart: %s", rep)
	p.logRouterErrors(rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, rep.Bodies["v1"] > 0, rep.String())
	// The project lock the guard held for the router change is released.
	r := p.s.docker(t, p.dir, nil, "volume", "inspect", "lifecycle-lock-"+p.name)
	assert.Check(t, r.code != 0, "the lock is still held: %s", r)
}

// TestGuardBacksOffCrashLoopAndQuarantines: a container whose health check fails for
// good (the file it reads is removed) is restarted with gaps of the backoff (2 s, then
// 4 s: the cap), and when the fourth restart is due the budget of 3 is spent:
// quarantined, no more restarts.
func TestGuardBacksOffCrashLoopAndQuarantines(t *testing.T) {
	s := setup(t)
	defer logDuration(t, time.Now())
	p, okFile := fileHealthProject(t, s, "{backoff: {start: 2s, cap: 4s}, budget: 3, window: 1m}")
	p.mustLifecycle("deploy")
	g := p.startGuard()
	assert.NilError(t, os.Remove(okFile))

	// began[i] and ended[i]: when the guard began restart i and when it was started again.
	var began, ended []time.Time
	for i := range 3 {
		a, ok := g.next("unhealthy", 20*time.Second)
		assert.Assert(t, ok, "restart %d missing", i+1)
		assert.Assert(t, is.Equal(a.Action, "restarted"), "%+v", a)
		assert.Assert(t, a.RestartBegan != nil, "%+v", a)
		assert.Check(t, is.Equal(a.Restarts, i+1))
		began, ended = append(began, *a.RestartBegan), append(ended, a.Time)
	}
	q, ok := g.next("unhealthy", 20*time.Second)
	assert.Assert(t, ok, "no quarantine")
	assert.Check(t, is.Equal(q.Action, "quarantined"), "%+v", q)
	assert.Check(t, is.Equal(q.Budget, 3))
	assert.Check(t, is.Contains(q.Reason, "no more restarts"))
	began = append(began, q.Time)

	// The backoff is the time a container is given from its restart (started again)
	// to the next one begun; the quarantine comes when the fourth restart would be due.
	want := []time.Duration{2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		gap := began[i+1].Sub(ended[i])
		t.Logf("gap %d: %s (backoff %s); restart %d took %s", i+1, gap.Round(time.Millisecond), w, i+1, ended[i].Sub(began[i]).Round(time.Millisecond))
		assert.Check(t, gap >= w-50*time.Millisecond && gap <= w+time.Second, "gap %d: %s, want %s", i+1, gap, w)
	}

	// Quarantined: the container stays as it is (unhealthy, not restarted again).
	container := q.Container
	startedAt := p.inspect("{{.State.StartedAt}}", container)
	if a, ok := g.next("unhealthy", 5*time.Second); ok { // longer than the cap
		t.Errorf("an alert after the quarantine: %+v", a)
	}
	assert.Check(t, is.Equal(p.inspect("{{.State.StartedAt}}", container), startedAt))
	assert.Check(t, is.Equal(p.inspect("{{.State.Health.Status}}", container), "unhealthy"))
}

// TestGuardRestartsNetworkModeSidecar: web's health check fails (its file removed);
// the guard restarts web, then — once web is healthy again — the sidecar that shares
// web's network namespace (network_mode: service:web), which without it would have no
// network: after it the sidecar reaches web's app on 127.0.0.1 again.
func TestGuardRestartsNetworkModeSidecar(t *testing.T) {
	s := setup(t)
	defer logDuration(t, time.Now())
	dir := countDir(t)
	okFile := filepath.Join(dir, "ok")
	assert.NilError(t, os.WriteFile(okFile, []byte("ok"), 0o644))
	p := s.newProject(t, fmt.Sprintf(`
services:
  web:
    image: {{image:v1}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/file?path=/health/ok"], interval: 300ms, retries: 2}
    volumes: ["%s:/health:ro"]
    environment: {QUIET: "1"}
    x-lifecycle:
      guard: {backoff: {start: 1h}, window: 2h}
  sidecar:
    image: {{image:v1}}
    command: ["sleep", "1h"]
    init: true
    network_mode: service:web
`, dir))
	p.mustLifecycle("deploy")
	webs, sidecars := p.containers("label=com.docker.compose.service=web"), p.containers("label=com.docker.compose.service=sidecar")
	assert.Assert(t, is.Len(webs, 1))
	assert.Assert(t, is.Len(sidecars, 1))
	web, sidecar := webs[0], sidecars[0]
	sidecarStarted := p.inspect("{{.State.StartedAt}}", sidecar)
	webStarted := p.inspect("{{.State.StartedAt}}", web)
	g := p.startGuard()
	assert.NilError(t, os.Remove(okFile))

	// The guard restarts web; while web is still unhealthy its sidecar is left alone.
	// Once web is healthy again (its file back), the sidecar is restarted.
	deadline := time.Now().Add(20 * time.Second)
	for p.inspect("{{.State.StartedAt}}", web) == webStarted {
		assert.Assert(t, time.Now().Before(deadline), "web was not restarted within 20s")
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // web runs, unhealthy: its dependents must wait
	assert.Check(t, is.Equal(p.inspect("{{.State.StartedAt}}", sidecar), sidecarStarted), "the sidecar was restarted before web was healthy")
	healthyAgain := time.Now()
	assert.NilError(t, os.WriteFile(okFile, []byte("ok"), 0o644))

	a, ok := g.next("unhealthy", 20*time.Second)
	assert.Assert(t, ok, "no alert of web's restart within 20s")
	assert.Assert(t, is.Equal(a.Action, "restarted"), "%+v", a)
	assert.Check(t, is.Equal(a.Container, web))
	d, ok := g.next("unhealthy", 20*time.Second)
	assert.Assert(t, ok, "the sidecar was not restarted within 20s")
	assert.Check(t, is.Equal(d.Action, "restarted-dependent"), "%+v", d)
	assert.Check(t, is.Equal(d.Container, sidecar))
	assert.Check(t, is.Equal(d.Parent, web))
	assert.Check(t, is.Equal(d.Dependency, "network_mode"))
	assert.Check(t, is.Contains(d.Reason, "shares the network namespace of "+web))
	assert.Assert(t, d.RestartBegan != nil, "%+v", d)
	t.Logf("sidecar restart begun %s after web was started again, took %s",
		d.RestartBegan.Sub(a.Time).Round(time.Millisecond), d.Time.Sub(*d.RestartBegan).Round(time.Millisecond))
	assert.Check(t, !d.RestartBegan.Before(a.Time), "the sidecar restarted before web ran again")
	assert.Check(t, d.RestartBegan.After(healthyAgain), "the sidecar restarted at %s, before web's health check could pass (file back at %s)", d.RestartBegan, healthyAgain)
	assert.Check(t, p.inspect("{{.State.StartedAt}}", sidecar) != sidecarStarted, "the sidecar was not started again")
	// Its network is web's again: web's app answers on the loopback they share.
	r := p.s.docker(t, p.dir, nil, "exec", sidecar, "/testapp", "healthcheck", "http://127.0.0.1:8080/")
	assert.Check(t, r.code == 0, "the sidecar does not reach web on 127.0.0.1: %s", r)
}

// TestGuardReportsExec: a docker exec into a project container is an alert within 2 s
// naming the container and the command line; the health probes' own execs are not.
func TestGuardReportsExec(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	p := s.newProject(t, `
services:
  web:
    image: {{image:v1}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 2}
    environment: {QUIET: "1"}
`)
	p.mustLifecycle("deploy")
	g := p.startGuard()
	c := p.appContainers("web")
	assert.Assert(t, is.Len(c, 1))
	time.Sleep(time.Second) // health probes run meanwhile: none of them is an alert

	ran := time.Now()
	r := p.s.docker(t, p.dir, nil, "exec", c[0], "/testapp", "healthcheck", "http://127.0.0.1:8080/")
	assert.Check(t, is.Equal(r.code, 0), r.String())
	a, ok := g.next("exec", 5*time.Second)
	assert.Assert(t, ok, "no exec alert")
	delay := a.received.Sub(ran)
	t.Logf("exec alert %s after docker exec started: %+v", delay.Round(time.Millisecond), a)
	assert.Check(t, delay <= 2*time.Second, "alert after %s", delay)
	assert.Check(t, is.Equal(a.Container, c[0]))
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, is.Equal(a.Command, "/testapp healthcheck http://127.0.0.1:8080/"))
	assert.Check(t, is.Equal(a.Action, "reported"))
	if a, ok := g.next("exec", 2*time.Second); ok {
		t.Errorf("a second exec alert (a health probe?): %+v", a)
	}
}

// logDuration logs how long the test ran after the suite's setup (the first test
// builds the plugin and the images), for the ≤ 40 s budget of an e2e test.
func logDuration(t *testing.T, start time.Time) {
	t.Logf("%s: %s after the suite's setup", t.Name(), time.Since(start).Round(100*time.Millisecond))
}

// TestGuardReportsOOMKill: a container killed for memory (the test app's /hog past its
// 64 MiB limit) is an alert naming the limit.
func TestGuardReportsOOMKill(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	p := s.newProject(t, `
services:
  web:
    image: {{image:v1}}
    environment: {MEMORY_HOG: "1", QUIET: "1"}
    deploy: {resources: {limits: {memory: 64M}}}
`)
	p.mustLifecycle("deploy")
	g := p.startGuard()
	c := p.appContainers("web")
	assert.Assert(t, is.Len(c, 1))
	// The hog answers nothing until killed: the exec ends with the container.
	r := p.s.docker(t, p.dir, nil, "exec", c[0], "/testapp", "healthcheck", "http://127.0.0.1:8080/hog")
	t.Logf("docker exec /hog: %s", r)
	a, ok := g.next("oom", 20*time.Second)
	assert.Assert(t, ok, "no oom alert")
	t.Logf("oom alert: %+v", a)
	assert.Check(t, is.Equal(a.Container, c[0]))
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, is.Equal(a.Action, "reported"))
	assert.Check(t, is.Contains(a.Reason, "memory limit 67108864 bytes"))
}

// fileHealthProject is a project of one web service whose health check reads /health/ok
// through the app, bound from okFile on the host: healthy while the file exists, so a
// test makes it unhealthy by removing okFile. guard is its x-lifecycle.guard policy.
func fileHealthProject(t *testing.T, s *suite, guard string) (p *project, okFile string) {
	t.Helper()
	dir := countDir(t)
	okFile = filepath.Join(dir, "ok")
	assert.NilError(t, os.WriteFile(okFile, []byte("ok"), 0o644))
	p = s.newProject(t, fmt.Sprintf(`
services:
  web:
    image: {{image:v1}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/file?path=/health/ok"], interval: 300ms, retries: 2}
    volumes: ["%s:/health:ro"]
    environment: {QUIET: "1"}
    x-lifecycle:
      guard: %s
`, dir, guard))
	return p, okFile
}
