package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// The rollout scenarios of the zero-downtime issue: each runs a constant-rate load of
// loadRate req/s through the project's router on 127.0.0.1 and counts every failure.
const loadRate = 200

// exitRolledBack is the plugin's documented exit code for an automatic rollback.
const exitRolledBack = 3

// rolloutProject is one web service behind the router; %[1]s is the image version,
// %[2]d the published port, %[3]s extra service keys (indented 4 spaces).
const rolloutProject = `
services:
  web:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    restart: unless-stopped
    deploy:
      replicas: 3
%[3]s
`

func rolloutYAML(version string, port int, extra ...string) string {
	return fmt.Sprintf(rolloutProject, version, port, strings.Join(extra, "\n"))
}

// TestRollingDeploysUnderLoad: v1 → v2 → v3 → v4 with 3 replicas, one at a time:
// no failed request, never more than replicas+parallelism containers running and
// never fewer than replicas healthy.
func TestRollingDeploysUnderLoad(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)

	sm := startSampler(t, s, p.name, 100*time.Millisecond)
	load := startRateLoad(t, port, "/", loadRate, 3*time.Minute)
	for _, v := range []string{"v2", "v3", "v4"} {
		p.write(rolloutYAML(v, port))
		r := p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stderr, "roll web batch 3/3"), r.String())
	}
	time.Sleep(time.Second)
	rep := load.stop()
	samples := sm.stop()
	t.Logf("rolling v1->v4: %s; %s", rep, samples)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, rep.Bodies["v4"] > 0, rep.String())
	assert.Check(t, samples.maxRunning("web") <= 4, "at most replicas+parallelism running; saw %d", samples.maxRunning("web"))
	assert.Check(t, samples.minHealthy("web") >= 3, "at least replicas healthy; saw %d", samples.minHealthy("web"))
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v4"))

	// Revisions 1-3 are kept (stopped) for rollback; history lists all four.
	running := p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app")
	assert.Check(t, is.DeepEqual(running, []string{p.name + "-web-r4-1", p.name + "-web-r4-2", p.name + "-web-r4-3"}, sortedCmp()))
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "4 deployed running\n3 deployed retained\n2 deployed retained\n1 deployed retained\n"))
}

// asyncRun is a plugin command running in the background whose stderr lines are
// timestamped as they arrive, to find when a rollout reached a step.
type asyncRun struct {
	cmd  *exec.Cmd
	done chan struct{}
	code int

	mu    sync.Mutex
	lines []timedLine
}

type timedLine struct {
	at   time.Time
	text string
}

func (p *project) startTimedLifecycle(args ...string) *asyncRun {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := execDocker(ctx, p.s, append([]string{"lifecycle", "-p", p.name, "--progress", "plain"}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(cmd.Env, p.env...)
	stderr, err := cmd.StderrPipe()
	assert.NilError(p.t, err)
	assert.NilError(p.t, cmd.Start())
	a := &asyncRun{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer cancel()
		defer close(a.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			a.mu.Lock()
			a.lines = append(a.lines, timedLine{time.Now(), sc.Text()})
			a.mu.Unlock()
		}
		_ = cmd.Wait()
		a.code = cmd.ProcessState.ExitCode()
	}()
	p.t.Cleanup(func() { _ = cmd.Process.Kill(); <-a.done })
	return a
}

func (a *asyncRun) wait() (int, string) {
	<-a.done
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	for _, l := range a.lines {
		b.WriteString(l.text + "\n")
	}
	return a.code, b.String()
}

// when returns the time of the first line containing text.
func (a *asyncRun) when(text string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, l := range a.lines {
		if strings.Contains(l.text, text) {
			return l.at, true
		}
	}
	return time.Time{}, false
}

// TestBlueGreenAndCanaryUnderLoad: a blue-green switch, then a canary 10% → 50% →
// 100%, with no failed request; during each canary step the observed share of the new
// version is within 5 points of the step's weight, over at least 1000 requests.
func TestBlueGreenAndCanaryUnderLoad(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port, "    x-lifecycle: {strategy: blue-green}"))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)

	load := startRateLoad(t, port, "/", loadRate, 4*time.Minute)
	p.write(rolloutYAML("v2", port, "    x-lifecycle: {strategy: blue-green}"))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "switch web"), r.String())
	waitAnswers(t, port, "v2", 10*time.Second)

	canary := `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 10, pause: 6s}, {weight: 50, pause: 6s}]
        analysis: {max-error-rate: 0.01, min-requests: 50}`
	p.write(rolloutYAML("v3", port, canary))
	run := p.startTimedLifecycle("deploy")
	code, out := run.wait()
	assert.Assert(t, is.Equal(code, 0), out)
	time.Sleep(time.Second)
	rep := load.stop()
	t.Logf("blue-green v1->v2 and canary v2->v3: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())

	for _, step := range []struct {
		text   string
		weight float64
	}{{"canary 10%", 10}, {"canary 50%", 50}} {
		from, ok1 := run.when("Analyzing: " + step.text)
		to, ok2 := run.when("Analysis passed")
		if step.weight == 50 {
			to, ok2 = run.when("Routing: promote web")
		}
		assert.Assert(t, ok1 && ok2, "progress lines for %s not found:\n%s", step.text, out)
		// Leave a margin for the router's config to apply and the poller's delay.
		w := load.window(from.Add(200*time.Millisecond), to.Add(-200*time.Millisecond))
		share := 100 * float64(w.Bodies["v3"]) / float64(max(w.Total, 1))
		t.Logf("%s: %d requests, v3 share %.1f%% (%v)", step.text, w.Total, share, w.Bodies)
		assert.Check(t, w.Total >= 1000, "%s saw only %d requests", step.text, w.Total)
		assert.Check(t, share >= step.weight-5 && share <= step.weight+5, "%s: v3 share %.1f%%", step.text, share)
	}
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v3"))
}

// TestAutomaticRollback: a never-healthy version and a crash-looping version are rolled
// back automatically with the rollback exit code; v1 serves throughout and the new
// containers are gone.
func TestAutomaticRollback(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 3*time.Minute)

	for _, tc := range []struct {
		name, env, reason string
	}{
		{"never-healthy", "NEVER_HEALTHY: \"true\"", "not healthy within 10s"},
		{"crash-loop", "CRASH_AFTER: 200ms", "crash-looping"},
	} {
		p.write(rolloutYAML("v2", port, "    environment: {"+tc.env+"}", "    x-lifecycle: {wait-timeout: 10s}"))
		r := p.lifecycle("deploy")
		assert.Check(t, is.Equal(r.code, exitRolledBack), "%s: %s", tc.name, r)
		assert.Check(t, is.Contains(r.stderr, tc.reason), tc.name)
		assert.Check(t, is.Contains(r.stderr, "rolled back"), tc.name)
		running := p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app")
		assert.Check(t, is.DeepEqual(running, []string{p.name + "-web-r1-1", p.name + "-web-r1-2", p.name + "-web-r1-3"}, sortedCmp()), tc.name)
		for _, c := range p.containers("label=com.docker.compose.service=web", "label=io.lifecycle.role=app") {
			assert.Check(t, strings.Contains(c, "-web-r1-"), "%s: new container %s left behind", tc.name, c)
		}
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"), tc.name)
	}
	rep := load.stop()
	t.Logf("two automatic rollbacks: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.DeepEqual(rep.Bodies, map[string]int{"v1": rep.Total}))
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}}")
	assert.Check(t, is.Equal(h.stdout, "3 rolled-back\n2 rolled-back\n1 deployed\n"))
}

// TestCanaryWithErrorsAborts: a canary answering 500 to 20% of its requests fails the
// analysis; traffic goes back to the stable version and the deploy exits with the
// rollback code.
func TestCanaryWithErrorsAborts(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	canary := func(env string) string {
		return rolloutYAML("v1", port, env, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 50, pause: 4s}]
        analysis: {max-error-rate: 0.05, min-requests: 50}`)
	}
	p := s.newProject(t, canary(""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 2*time.Minute)

	p.write(strings.Replace(canary("    environment: {ERROR_RATE: \"0.2\"}"), "{{image:v1}}", "{{image:v2}}", 1))
	r := p.lifecycle("deploy")
	aborted := time.Now()
	assert.Check(t, is.Equal(r.code, exitRolledBack), r.String())
	assert.Check(t, is.Contains(r.stderr, "canary analysis failed"), r.String())
	time.Sleep(2 * time.Second)
	rep := load.stop()
	after := load.window(aborted, time.Now())
	t.Logf("canary with 20%% errors: during %s; after the abort %s", rep, after)
	assert.Check(t, rep.Bodies["v2"] > 0, "the canary got traffic: %s", rep)
	assert.Check(t, after.Total > 0 && after.Failed == 0, after.String())
	assert.Check(t, is.DeepEqual(after.Bodies, map[string]int{"v1": after.Total}))

	// The rolled-back record keeps the timeline that explains it: the verdict, and the
	// router's counters of the canary's 5xx.
	tl := p.mustLifecycle("history", "web", "--rev", "2", "--timeline", "--format", "json")
	var doc struct {
		Result string `json:"result"`
		Events []struct {
			Kind, Detail string
		} `json:"events"`
		Samples []struct {
			Revision  int    `json:"revision"`
			Errors5xx uint64 `json:"errors_5xx"`
		} `json:"samples"`
	}
	assert.NilError(t, json.Unmarshal([]byte(tl.stdout), &doc), tl.stdout)
	assert.Check(t, is.Equal(doc.Result, "rolled-back"))
	verdict, errs := false, uint64(0)
	for _, e := range doc.Events {
		verdict = verdict || e.Kind == "analysis" && strings.Contains(e.Detail, "canary analysis failed")
	}
	for _, s := range doc.Samples {
		if s.Revision == 2 {
			errs += s.Errors5xx
		}
	}
	assert.Check(t, verdict, "no analysis verdict in the timeline:\n%s", tl.stdout)
	assert.Check(t, errs > 0, "no 5xx of revision 2 in the timeline's samples:\n%s", tl.stdout)
}

// TestSlowRequestsDrain: requests of 2 s in flight when the old containers leave the
// router all complete, because a container is stopped only once it is drained.
func TestSlowRequestsDrain(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)

	slow := startRateLoad(t, port, "/slow?d=2s", 20, 2*time.Minute)
	fast := startRateLoad(t, port, "/", loadRate, 2*time.Minute)
	time.Sleep(2500 * time.Millisecond) // ~40 slow requests in flight at any time
	p.write(rolloutYAML("v2", port))
	p.mustLifecycle("deploy")
	time.Sleep(500 * time.Millisecond)
	slowRep, fastRep := slow.stop(), fast.stop()
	t.Logf("slow: %s; fast: %s", slowRep, fastRep)
	assert.Check(t, is.Equal(slowRep.Failed, 0), slowRep.String())
	assert.Check(t, is.Equal(fastRep.Failed, 0), fastRep.String())
	assert.Check(t, is.Equal(slowRep.Bodies["slept 2s"], slowRep.Total), slowRep.String())
	assert.Check(t, fastRep.Bodies["v1"] > 0 && fastRep.Bodies["v2"] > 0, fastRep.String())
}

// TestKilledRolloutConverges SIGKILLs the plugin before each kind of rollout step, then
// runs deploy again under load: the re-run converges to exactly the new revision (the
// old one retained) without a failed request.
func TestKilledRolloutConverges(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	version := 1
	for _, checkpoint := range []string{"create@2", "start@2", "wait-healthy@2", "route@2", "stop@2"} {
		version = version%4 + 1
		v := fmt.Sprintf("v%d", version)
		p.write(rolloutYAML(v, port))
		p.env = []string{"LIFECYCLE_TEST_CRASH_BEFORE=" + checkpoint}
		r := p.lifecycle("deploy")
		assert.Assert(t, r.code != 0, "the plugin was killed before %s:\n%s", checkpoint, r)
		p.env = nil

		load := startRateLoad(t, port, "/", loadRate, time.Minute)
		r = p.mustLifecycle("deploy")
		time.Sleep(300 * time.Millisecond)
		rep := load.stop()
		t.Logf("re-run after a kill before %s: %s", checkpoint, rep)
		assert.Check(t, is.Equal(rep.Failed, 0), "%s: %s", checkpoint, rep)
		assert.Check(t, is.Contains(r.stderr, "Stale lock taken over"), checkpoint)
		running := p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app")
		assert.Check(t, is.Len(running, 3), "%s: %v", checkpoint, running)
		for _, c := range running {
			assert.Check(t, is.Equal(p.inspect("{{.Config.Image}}", c), imageRef(v)), "%s: %s", checkpoint, c)
		}
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), v), checkpoint)
		r = p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stdout, "up to date"), checkpoint)
	}
}

// waitLine waits until a line containing text arrived, or the run ended.
func (a *asyncRun) waitLine(t *testing.T, text string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, ok := a.when(text); ok {
			return
		}
		select {
		case <-a.done:
			code, out := a.wait()
			t.Fatalf("the command ended (exit %d) before printing %q:\n%s", code, text, out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	a.mu.Lock()
	var sofar strings.Builder
	for _, l := range a.lines {
		sofar.WriteString(l.text + "\n")
	}
	a.mu.Unlock()
	t.Fatalf("no line %q within %s; the output so far:\n%s", text, timeout, sofar.String())
}

func (a *asyncRun) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// TestCanaryControls drives a running canary from another command: pause holds it
// past its step, resume lets it go on, promote skips the remaining analysis, abort
// rolls it back.
func TestCanaryControls(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	canary := func(version, pause string) string {
		return rolloutYAML(version, port, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 10, pause: `+pause+`}]`)
	}
	p := s.newProject(t, canary("v1", "3s"))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 3*time.Minute)

	// pause / resume: a 3 s step held for 5 s more.
	p.write(canary("v2", "3s"))
	run := p.startTimedLifecycle("deploy")
	run.waitLine(t, "Analyzing", time.Minute)
	p.mustLifecycle("pause", "web")
	time.Sleep(5 * time.Second)
	assert.Check(t, run.running(), "the paused canary must still be running")
	p.mustLifecycle("resume", "web")
	code, out := run.wait()
	assert.Check(t, is.Equal(code, 0), out)
	assert.Check(t, is.Contains(out, "Paused"))

	// promote: a 2-minute step ends at once.
	p.write(canary("v3", "2m"))
	run = p.startTimedLifecycle("deploy")
	run.waitLine(t, "Analyzing", time.Minute)
	started := time.Now()
	r := p.mustLifecycle("promote", "web")
	assert.Check(t, is.Contains(r.stdout, "Promoting the canary of web"))
	code, out = run.wait()
	assert.Check(t, is.Equal(code, 0), out)
	assert.Check(t, time.Since(started) < time.Minute, "promote did not end the step")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v3"))

	// abort: back to v3, exit code 3.
	p.write(canary("v4", "2m"))
	run = p.startTimedLifecycle("deploy")
	run.waitLine(t, "Analyzing", time.Minute)
	p.mustLifecycle("abort", "web")
	code, out = run.wait()
	assert.Check(t, is.Equal(code, exitRolledBack), out)
	assert.Check(t, is.Contains(out, "canary aborted"))
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v3"))

	// No canary running: a clear error.
	r = p.lifecycle("abort", "web")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stderr, "no canary in progress"))

	rep := load.stop()
	t.Logf("canary controls: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
}

// TestInternalServiceNameKeepsAnswering: an internal service (no published port) is
// reached by name by another container on the project network; during rolling deploys
// of it that name keeps answering every request, because the service's own router
// owns the name and its containers never carry it.
func TestInternalServiceNameKeepsAnswering(t *testing.T) {
	s := setup(t)
	internal := func(version string) string {
		return fmt.Sprintf(`
services:
  api:
    image: {{image:%s}}
    expose: ["8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy: {replicas: 2}
`, version)
	}
	p := s.newProject(t, internal("v1"))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, p.name+"-api-lifecycle-router"), r.String())
	// The name belongs to the router; the containers answer to their own names only.
	aliases := p.inspect(`{{range $n, $e := .NetworkSettings.Networks}}{{join $e.Aliases ","}}{{end}}`, p.name+"-api-r1-1")
	assert.Check(t, !strings.Contains(","+aliases+",", ",api,"), "container aliases: %s", aliases)

	// A client on the project network, 100 req/s for 20 s, by the service's name.
	client := p.name + "-client"
	r = p.s.docker(t, p.dir, nil, "run", "-d", "--name", client, "--label", "com.docker.compose.project="+p.name,
		"--network", p.name+"_default", imageRef("v1"), "load", "http://api:8080/", "100", "20s")
	assert.Assert(t, r.code == 0, r.String())
	time.Sleep(2 * time.Second)
	for _, v := range []string{"v2", "v3"} {
		p.write(internal(v))
		r = p.mustLifecycle("deploy")
		assert.Check(t, is.Contains(r.stderr, "roll api batch 2/2"), r.String())
	}
	r = p.s.docker(t, p.dir, nil, "wait", client)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), "0"), r.String())
	logs := p.s.docker(t, p.dir, nil, "logs", client).stdout
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	var rep struct {
		Sent, Failed int
		Bodies       map[string]int
		Errors       map[string]int
	}
	assert.NilError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &rep), logs)
	t.Logf("internal service by name during two rolling deploys: %+v", rep)
	assert.Check(t, rep.Sent >= 1500, "sent %d", rep.Sent)
	assert.Check(t, is.Equal(rep.Failed, 0), "%+v", rep)
	assert.Check(t, rep.Bodies["v1"] > 0 && rep.Bodies["v3"] > 0, "%+v", rep.Bodies)
}

// TestBlueGreenManualPromotionWithPreview: with promote: manual the deploy brings the
// new colour up on the preview port and stops; the main port keeps the old colour
// until `docker lifecycle promote`, with no failed request.
func TestBlueGreenManualPromotionWithPreview(t *testing.T) {
	s := setup(t)
	port, preview := freePort(t), freePort(t)
	bg := func(version string) string {
		return rolloutYAML(version, port, fmt.Sprintf(`    x-lifecycle:
      strategy: blue-green
      blue-green: {promote: manual, preview-port: "127.0.0.1:%d"}`, preview))
	}
	p := s.newProject(t, bg("v1"))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	waitAnswers(t, preview, "v1", 10*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 3*time.Minute)

	p.write(bg("v2"))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "waits for promotion"), r.String())
	waitAnswers(t, preview, "v2", 10*time.Second)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"), "the main port keeps the old colour")
	assert.Check(t, is.Len(p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app"), 6), "both colours run")

	r = p.mustLifecycle("promote", "web")
	assert.Check(t, is.Contains(r.stdout, "Promoted web"), r.String())
	waitAnswers(t, port, "v2", 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rep := load.stop()
	t.Logf("blue-green with manual promotion: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.Len(p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app"), 3), "the old colour stopped")
}

// TestRollbackCommand: `rollback` goes back to the previous revision, a second one
// returns to where it started (rollback of a rollback), an unknown revision changes
// nothing, and a restarted router serves the same routes.
func TestRollbackCommand(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	p.write(rolloutYAML("v2", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v2", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 3*time.Minute)

	r := p.mustLifecycle("rollback")
	assert.Check(t, is.Contains(r.stdout, "Rolled back web to revision 1"), r.String())
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
	r = p.mustLifecycle("rollback")
	assert.Check(t, is.Contains(r.stdout, "Rolled back web to revision 2"), "a rollback of a rollback: %s", r)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))

	before := p.containers("status=running")
	r = p.lifecycle("rollback", "web", "--to", "9")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stderr, "no such revision 9"), r.String())
	assert.Check(t, is.DeepEqual(p.containers("status=running"), before, sortedCmp()), "an unknown revision changes nothing")

	// The router keeps its config across a restart (it is saved in the container).
	p.s.docker(t, p.dir, nil, "restart", "-t", "1", p.router())
	waitAnswers(t, port, "v2", 10*time.Second)
	load.stop()

	h := p.mustLifecycle("history", "web", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "2 rollback running\n1 rollback retained\n2 deployed running\n1 deployed retained\n"))
}

// TestFailureActionContinueKeepsOldContainers: with failure_action continue a version
// that never becomes healthy is tolerated container by container: each failed new
// container is removed and the old one keeps its place, the deploy ends with exit 0
// and a warning per container, and no request fails.
func TestFailureActionContinueKeepsOldContainers(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	cont := func(version, env string) string {
		return rolloutYAML(version, port, "      update_config: {failure_action: continue}", env, "    x-lifecycle: {wait-timeout: 5s}")
	}
	p := s.newProject(t, cont("v1", ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 2*time.Minute)

	p.write(cont("v2", "    environment: {NEVER_HEALTHY: \"true\"}"))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(strings.Count(r.stderr, "failed and was removed"), 3), r.String())
	rep := load.stop()
	t.Logf("failure_action continue with a never-healthy v2: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.DeepEqual(rep.Bodies, map[string]int{"v1": rep.Total}))
	running := p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app")
	assert.Check(t, is.DeepEqual(running, []string{p.name + "-web-r1-1", p.name + "-web-r1-2", p.name + "-web-r1-3"}, sortedCmp()))
}

// TestInterruptedRollingUpdateRollsBack: Ctrl-C (SIGINT to the process group, as a
// terminal sends it) in the middle of a rolling update under load: the update is rolled
// back, the command exits 130 (interrupted, not 3) saying so, v1 serves afterwards and
// no request fails. The interrupt comes after the first batch, while the second new
// container waits for health, so the rollback has to start a stopped v1 container again.
func TestInterruptedRollingUpdateRollsBack(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 5*time.Minute) // the most it allows: a loaded box makes the first batch slow

	// READY_AFTER keeps each new container unhealthy for 4s: a window for the interrupt.
	p.write(rolloutYAML("v2", port, `    environment: {READY_AFTER: 4s}`))
	d := p.startLifecycle("deploy")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if d.exited() {
			return poll.Error(fmt.Errorf("deploy exited before the interrupt:\nstdout:\n%s\nstderr:\n%s", d.stdout.String(), d.stderr.String()))
		}
		if stopped := p.containers("status=exited", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app"); len(stopped) > 0 {
			return poll.Success()
		}
		return poll.Continue("no v1 container stopped yet")
	}, poll.WithTimeout(4*time.Minute), poll.WithDelay(100*time.Millisecond))
	assert.NilError(t, syscall.Kill(-d.cmd.Process.Pid, syscall.SIGINT))
	sent := time.Now()
	r, _ := d.wait(t, 3*time.Minute) // the rollback waits for the restarted v1 container's health
	ended := d.ended
	time.Sleep(time.Second)
	rep := load.stop()
	after := load.window(ended, time.Now())
	t.Logf("interrupted %s after SIGINT; load %s; after the exit %s", ended.Sub(sent), rep, after)

	assert.Check(t, is.Equal(r.code, 130), r.String())
	assert.Check(t, is.Contains(r.stderr, "interrupted: web rolled back: the previous revision serves again"), r.String())
	assert.Check(t, !strings.Contains(r.stderr, "the cause: context canceled"), r.String())
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, rep.Bodies["v2"] > 0, "v2 served before the interrupt: %s", rep)
	assert.Check(t, after.Total > 0 && after.Failed == 0, after.String())
	assert.Check(t, is.DeepEqual(after.Bodies, map[string]int{"v1": after.Total}))
	running := p.containers("status=running", "label=com.docker.compose.service=web", "label=io.lifecycle.role=app")
	assert.Check(t, is.DeepEqual(running, []string{p.name + "-web-r1-1", p.name + "-web-r1-2", p.name + "-web-r1-3"}, sortedCmp()))
	for _, c := range p.containers("label=com.docker.compose.service=web", "label=io.lifecycle.role=app") {
		assert.Check(t, strings.Contains(c, "-web-r1-"), "new container %s left behind", c)
	}
	assert.Check(t, !p.lockExists(), "the lock is released")
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}}")
	assert.Check(t, is.Equal(h.stdout, "2 rolled-back\n1 deployed\n"))
}
