package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// healthyWeb is one web service with a healthcheck; %s is READY_AFTER.
const healthyWeb = `
services:
  web:
    image: {{image:v1}}
    environment: {READY_AFTER: %s}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 200}
`

// bg is a docker CLI process running in the background.
type bg struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	started        time.Time
	ended          time.Time
	err            error
	done           chan struct{}
}

// startDocker starts the docker CLI with the harness environment (DOCKER_CONFIG, NO_COLOR)
// in its own process group, as a shell would run a foreground job.
func (s *suite) startDocker(t *testing.T, dir string, env []string, args ...string) *bg {
	t.Helper()
	b := &bg{cmd: exec.Command("docker", args...), done: make(chan struct{})}
	b.cmd.Dir = dir
	b.cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+s.configDir, "NO_COLOR=1"), env...)
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.started = time.Now()
	assert.NilError(t, b.cmd.Start())
	go func() {
		b.err = b.cmd.Wait()
		b.ended = time.Now()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
	})
	return b
}

// exited reports whether the process has ended.
func (b *bg) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// wait waits for the process (at most timeout, then kills its group) and returns its
// result and how long it ran.
func (b *bg) wait(t *testing.T, timeout time.Duration) (result, time.Duration) {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
		t.Fatalf("docker %s did not exit within %s\nstdout:\n%s\nstderr:\n%s", strings.Join(b.cmd.Args[1:], " "), timeout, b.stdout.String(), b.stderr.String())
	}
	r := result{stdout: b.stdout.String(), stderr: b.stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(b.err, &exit):
		r.code = exit.ExitCode()
	case b.err != nil:
		t.Fatalf("docker %s: %v", strings.Join(b.cmd.Args[1:], " "), b.err)
	}
	return r, b.ended.Sub(b.started)
}

func (p *project) startLifecycle(args ...string) *bg {
	p.t.Helper()
	return p.s.startDocker(p.t, p.dir, p.env, append([]string{"lifecycle", "-p", p.name, "--progress", "plain"}, args...)...)
}

func (p *project) lockExists() bool {
	p.t.Helper()
	return p.s.docker(p.t, p.dir, nil, "volume", "inspect", "lifecycle-lock-"+p.name).code == 0
}

// createLock creates the lock volume by hand, as another holder would have.
func (p *project) createLock(host string, pid int) {
	p.t.Helper()
	r := p.s.docker(p.t, p.dir, nil, "volume", "create",
		"--label", "io.lifecycle.lock="+p.name,
		"--label", "io.lifecycle.lock.host="+host,
		"--label", "io.lifecycle.lock.pid="+strconv.Itoa(pid),
		"--label", "io.lifecycle.lock.since=2026-01-01T00:00:00Z",
		"--label", "io.lifecycle.lock.command=docker lifecycle deploy",
		"--label", "io.lifecycle.lock.token=abc",
		"lifecycle-lock-"+p.name)
	assert.Equal(p.t, r.code, 0, r.String())
}

// --- 1. plugin shape -------------------------------------------------------------------

func TestPluginShape(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	dir := t.TempDir()

	help := s.docker(t, dir, nil, "lifecycle", "--help")
	assert.Equal(t, help.code, 0, help.String())
	assert.Check(t, is.Contains(help.stdout, "Usage:  docker lifecycle"))
	for _, c := range []string{"config", "plan", "deploy", "ps", "down", "unlock", "version"} {
		assert.Check(t, regexpLine(help.stdout, `^\s+`+c+`\s+\S`), "command %s not listed in help:\n%s", c, help.stdout)
	}

	// The plugin is known to the CLI with its metadata.
	info := s.docker(t, dir, nil, "info", "--format", "{{json .ClientInfo.Plugins}}")
	assert.Equal(t, info.code, 0, info.String())
	var plugins []struct {
		Name, Version, Vendor, ShortDescription, Path string
		Err                                           any
	}
	assert.NilError(t, json.Unmarshal([]byte(strings.TrimSpace(info.stdout)), &plugins), info.stdout)
	found := false
	for _, pl := range plugins {
		if pl.Name == "lifecycle" {
			found = true
			assert.Check(t, is.Equal(pl.Version, "v0.0.0-e2e"))
			assert.Check(t, is.Equal(pl.Vendor, "docker lifecycle"))
			assert.Check(t, is.Nil(pl.Err))
		}
	}
	assert.Check(t, found, "plugin lifecycle not in docker info: %s", info.stdout)

	// `docker --help` lists it among the management commands.
	top := s.docker(t, dir, nil, "--help")
	assert.Check(t, regexpLine(top.stdout, `^\s+lifecycle\*?\s+Production deploys of compose projects`), top.stdout)

	v := s.docker(t, dir, nil, "lifecycle", "version", "--short")
	assert.Equal(t, v.code, 0, v.String())
	assert.Check(t, is.Equal(v.stdout, "v0.0.0-e2e\n"))
	v = s.docker(t, dir, nil, "lifecycle", "version")
	assert.Check(t, is.Contains(v.stdout, "docker lifecycle v0.0.0-e2e ("))

	// An unknown command is a usage error.
	bad := s.docker(t, dir, nil, "lifecycle", "nosuchcommand")
	assert.Check(t, is.Equal(bad.code, 125), bad.String())
}

func regexpLine(text, pattern string) bool {
	re := regexp.MustCompile(pattern)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if re.MatchString(sc.Text()) {
			return true
		}
	}
	return false
}

// --- 2. --context and DOCKER_HOST -----------------------------------------------------------

func TestContextFlagAndDockerHost(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, fmt.Sprintf(healthyWeb, "0s"))

	// A context of the suite's own DOCKER_CONFIG, pointing at the engine under test (the
	// current context's, or DOCKER_HOST: not always /var/run/docker.sock).
	ctxName := fmt.Sprintf("e2e-%08x", rand.Uint32())
	r := s.docker(t, p.dir, nil, "context", "create", ctxName, "--docker", "host="+s.host)
	assert.Equal(t, r.code, 0, r.String())
	t.Cleanup(func() { _ = s.docker(t, p.dir, nil, "context", "rm", "-f", ctxName) })

	r = s.docker(t, p.dir, nil, "--context", ctxName, "lifecycle", "-p", p.name, "--progress", "plain", "deploy")
	assert.Equal(t, r.code, 0, r.String())
	assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name))
	r = s.docker(t, p.dir, nil, "--context", ctxName, "lifecycle", "-p", p.name, "ps", "--format", "{{.Name}} {{.Health}}")
	assert.Equal(t, r.code, 0, r.String())
	assert.Check(t, is.Equal(r.stdout, p.name+"-web-r1-1 healthy\n"))

	// DOCKER_HOST reaches the same engine: the project is up to date there.
	env := []string{"DOCKER_HOST=" + s.host}
	r = s.docker(t, p.dir, env, "lifecycle", "-p", p.name, "--progress", "plain", "deploy")
	assert.Equal(t, r.code, 0, r.String())
	assert.Check(t, is.Contains(r.stdout, "up to date"))
	r = s.docker(t, p.dir, env, "lifecycle", "-p", p.name, "ps", "--format", "{{.Name}}")
	assert.Check(t, is.Equal(r.stdout, p.name+"-web-r1-1\n"), r.String())

	// A context that points nowhere fails with a clear error, not a hang.
	r = s.docker(t, p.dir, []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"}, "lifecycle", "-p", p.name, "ps")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "/nonexistent/docker.sock"))
}

// --- 3. lock ----------------------------------------------------------------------------

func TestLockHeldByAnotherHost(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, fmt.Sprintf(healthyWeb, "0s"))
	p.createLock("other-host", 4242)

	start := time.Now()
	r := p.lifecycle("deploy")
	elapsed := time.Since(start)
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, elapsed < 3*time.Second, "a locked deploy fails at once, took %s", elapsed)
	for _, want := range []string{"is locked by", "docker lifecycle deploy (pid 4242 on host other-host", "docker lifecycle -p " + p.name + " unlock"} {
		assert.Check(t, is.Contains(r.stderr, want))
	}
	assert.Check(t, is.Len(p.objects(), 0), "a locked deploy creates nothing")
	assert.Check(t, p.lockExists(), "the foreign lock stays")

	// plan does not need the lock.
	r = p.mustLifecycle("plan")
	assert.Check(t, is.Contains(r.stdout, "Plan for project "+p.name))

	r = p.mustLifecycle("unlock")
	assert.Check(t, is.Contains(r.stdout, "Removed the lock of project "+p.name+" held by docker lifecycle deploy (pid 4242 on host other-host"))
	assert.Check(t, !p.lockExists())
	r = p.mustLifecycle("unlock")
	assert.Check(t, is.Equal(r.stdout, "Project "+p.name+" is not locked.\n"))

	p.mustLifecycle("deploy")
	assert.Check(t, is.DeepEqual(p.containers("status=running"), []string{p.name + "-web-r1-1"}))
	assert.Check(t, !p.lockExists(), "deploy releases its lock")
}

func TestLockStaleOnThisHostIsTakenOver(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, fmt.Sprintf(healthyWeb, "0s"))
	host, err := os.Hostname()
	assert.NilError(t, err)
	pid := deadPID(t)
	p.createLock(host, pid)

	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Stale lock taken over"))
	assert.Check(t, is.Contains(r.stderr, fmt.Sprintf("pid %d on host %s", pid, host)))
	assert.Check(t, is.DeepEqual(p.containers("status=running"), []string{p.name + "-web-r1-1"}))
	assert.Check(t, !p.lockExists())

	// A lock of this host whose process is alive is not stale: it is respected.
	p.createLock(host, os.Getpid())
	r = p.lifecycle("deploy")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, fmt.Sprintf("pid %d on host %s", os.Getpid(), host)))
}

// deadPID returns a PID that no process has right now.
func deadPID(t *testing.T) int {
	for pid := 999999; pid > 900000; pid-- {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return pid
		}
	}
	t.Fatal("no free PID found")
	return 0
}

func TestLockRaceOneDeployWins(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, fmt.Sprintf(healthyWeb, "3s"))

	a := p.startLifecycle("deploy")
	b := p.startLifecycle("deploy")
	ra, ta := a.wait(t, 2*time.Minute)
	rb, tb := b.wait(t, 2*time.Minute)

	winner, loser, loserTime := ra, rb, tb
	if ra.code != 0 {
		winner, loser, loserTime = rb, ra, ta
	}
	assert.Equal(t, winner.code, 0, "one deploy succeeds:\nA: %s\nB: %s", ra, rb)
	assert.Check(t, loser.code != 0, "the other fails:\nA: %s\nB: %s", ra, rb)
	assert.Check(t, is.Contains(loser.stderr, "is locked by"))
	assert.Check(t, is.Contains(loser.stderr, "docker lifecycle deploy (pid "))
	assert.Check(t, loserTime < 3*time.Second, "the loser fails fast, took %s", loserTime)
	assert.Check(t, is.Contains(winner.stdout, "Deployed project "+p.name))
	assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-web-r1-1"}), "no duplicate container")
	assert.Check(t, is.Equal(p.inspect("{{.State.Health.Status}}", p.name+"-web-r1-1"), "healthy"))
	assert.Check(t, !p.lockExists())
}

// --- 4. Ctrl-C --------------------------------------------------------------------------------

// TestInterruptedDeployCleansUpAndConverges interrupts a deploy that waits for health.
// cli-only: SIGINT to the docker CLI process alone. Its stdout is no terminal, so the CLI
// closes the plugin socket; the plugin's command context (socket.ConnectAndWait) is
// cancelled and the deploy stops. process-group: SIGINT to the whole group, as a terminal's
// Ctrl-C does; the plugin's own signal handler cancels it as well. Either way the plugin
// cleans up and exits 130, which the CLI passes on.
func TestInterruptedDeployCleansUpAndConverges(t *testing.T) {
	t.Parallel() // no load and no timing bound but the 30 s wait: each case in its own project (e2e/doc.go)
	for _, tc := range []struct {
		name  string
		group bool
	}{{"cli-only", false}, {"process-group", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := setup(t)
			p := s.newProject(t, fmt.Sprintf(healthyWeb, "60s"))
			d := p.startLifecycle("deploy")

			poll.WaitOn(t, func(poll.LogT) poll.Result {
				if d.exited() {
					return poll.Error(fmt.Errorf("deploy exited early"))
				}
				if len(p.containers("status=running")) == 1 {
					return poll.Success()
				}
				return poll.Continue("web container not running yet")
			}, poll.WithTimeout(30*time.Second), poll.WithDelay(100*time.Millisecond))
			assert.Check(t, p.lockExists(), "the deploy holds the lock")

			target := d.cmd.Process.Pid
			if tc.group {
				target = -target // as a terminal does on Ctrl-C: the CLI and the plugin get it
			}
			assert.NilError(t, syscall.Kill(target, syscall.SIGINT))
			sent := time.Now()
			r, _ := d.wait(t, 30*time.Second)
			t.Logf("deploy exited %s after SIGINT", d.ended.Sub(sent))
			assert.Check(t, is.Equal(r.code, 130), r.String())
			assert.Check(t, is.Contains(r.stderr, "interrupted"))
			assert.Check(t, is.Contains(r.stderr, "the next deploy converges from here"))
			assert.Check(t, !p.lockExists(), "the lock is released")
			assert.Check(t, is.Len(p.containers(), 0), "the unhealthy new container is removed")

			p.write(fmt.Sprintf(healthyWeb, "0s"))
			p.mustLifecycle("deploy")
			assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-web-r1-1"}))
			assert.Check(t, is.Equal(p.inspect("{{.State.Health.Status}}", p.name+"-web-r1-1"), "healthy"))
		})
	}
}

// --- 7. output formats -----------------------------------------------------------------------

func TestOutputFormats(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(`
x-lifecycle:
  wait-timeout: 45s
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    x-lifecycle: {wait-timeout: 30s}
  worker:
    image: {{image:v1}}
    command: ["sleep", "1h"]
    depends_on: [web]
`, port))

	// config --format json: every service carries its resolved x-lifecycle.
	r := p.mustLifecycle("config", "--format", "json")
	var cfg struct {
		Name      string
		Services  map[string]map[string]any `json:"services"`
		Lifecycle map[string]any            `json:"x-lifecycle"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &cfg), r.stdout)
	for svc, wait := range map[string]string{"web": "30s", "worker": "45s"} {
		x, _ := cfg.Services[svc]["x-lifecycle"].(map[string]any)
		assert.Check(t, is.Equal(x["strategy"], "rolling"), "%s: %v", svc, x)
		assert.Check(t, is.Equal(x["wait-timeout"], wait), "%s: %v", svc, x)
		deploy, _ := cfg.Services[svc]["deploy"].(map[string]any)
		assert.Check(t, is.DeepEqual(deploy["update_config"], map[string]any{"parallelism": float64(1), "order": "start-first", "failure_action": "rollback"}),
			"%s: the defaults of update_config, written where compose has them", svc)
	}
	assert.Check(t, is.Equal(cfg.Lifecycle["wait-timeout"], "45s"))
	r = p.mustLifecycle("config", "--services")
	assert.Check(t, is.Equal(r.stdout, "web\nworker\n"))

	// plan --format json: steps with action, target, cause and after.
	r = p.mustLifecycle("plan", "--format", "json")
	var plan struct {
		Project string `json:"project"`
		Steps   []struct {
			ID     int    `json:"id"`
			Action string `json:"action"`
			Target string `json:"target"`
			Cause  string `json:"cause"`
			After  []int  `json:"after"`
		} `json:"steps"`
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &plan), r.stdout)
	assert.Check(t, is.Equal(plan.Project, p.name))
	byTarget := map[string]int{}
	actions := map[string]bool{}
	for _, st := range plan.Steps {
		assert.Check(t, st.Cause != "", "step %d has a cause", st.ID)
		for _, a := range st.After {
			assert.Check(t, a < st.ID, "step %d waits for a later step %d", st.ID, a)
		}
		actions[st.Action] = true
		if st.Action == "create" {
			byTarget[st.Target] = st.ID
		}
	}
	assert.Check(t, is.DeepEqual(actions, map[string]bool{"create-network": true, "ensure-router": true, "create": true, "start": true, "wait-healthy": true, "route": true}))
	assert.Check(t, byTarget[p.name+"-web-r1-1"] > 0 && byTarget[p.name+"-worker-r1-1"] > 0, r.stdout)
	for _, st := range plan.Steps {
		if st.Target == p.name+"-worker-r1-1" && st.Action == "create" {
			assert.Check(t, len(st.After) > 0, "worker waits for web: %v", st.After)
		}
	}
	bad := p.lifecycle("plan", "--format", "yaml")
	assert.Check(t, is.Equal(bad.code, 125), bad.String())

	p.mustLifecycle("deploy")

	// ps --format json: one object per line with the documented keys; the router, which
	// holds the published port, comes first.
	r = p.mustLifecycle("ps", "--format", "json")
	rows := lines(r.stdout)
	assert.Assert(t, is.Len(rows, 3), r.stdout)
	for i, line := range rows {
		var row map[string]any
		assert.NilError(t, json.Unmarshal([]byte(line), &row), line)
		for _, k := range []string{"Service", "Name", "Revision", "State", "Health", "Ports"} {
			_, ok := row[k]
			assert.Check(t, ok, "key %s missing in %s", k, line)
		}
		switch i {
		case 0:
			assert.Check(t, is.Equal(row["Service"], "web"), "the router is filed under the first service it routes")
			assert.Check(t, is.Equal(row["Name"], p.router()))
			assert.Check(t, is.Equal(row["State"], "running"))
			assert.Check(t, strings.HasPrefix(row["Ports"].(string), fmt.Sprintf("127.0.0.1:%d->", port)), "the router publishes the port: %s", line)
		case 1:
			assert.Check(t, is.Equal(row["Service"], "web"))
			assert.Check(t, is.Equal(row["Name"], p.name+"-web-r1-1"))
			assert.Check(t, is.Equal(row["Revision"], "1"))
			assert.Check(t, is.Equal(row["State"], "running"))
			assert.Check(t, is.Equal(row["Health"], "healthy"))
			assert.Check(t, is.Equal(row["Ports"], "8080/tcp"), "web publishes nothing itself")
		default:
			assert.Check(t, is.Equal(row["Service"], "worker"))
			assert.Check(t, is.Equal(row["Health"], "-"))
		}
	}
	r = p.mustLifecycle("ps", "web", "worker", "--format", "{{.Name}} {{.Revision}}")
	assert.Check(t, is.Equal(r.stdout, p.name+"-web-r1-1 1\n"+p.name+"-worker-r1-1 1\n"))
	r = p.mustLifecycle("ps")
	assert.Check(t, is.Contains(r.stdout, "SERVICE"))
	assert.Check(t, is.Contains(r.stdout, "REVISION"))
	r = p.mustLifecycle("ps", "worker", "--format", "{{.Service}}")
	assert.Check(t, is.Equal(r.stdout, "worker\n"))
	bad = p.lifecycle("ps", "--format", "{{.Nope}}")
	assert.Check(t, is.Equal(bad.code, 125), bad.String())

	// Up to date: the JSON plan has an empty list, not null.
	r = p.mustLifecycle("plan", "--format", "json")
	assert.Check(t, is.Contains(r.stdout, `"steps": []`))
}

// --- 8. --remove-orphans -----------------------------------------------------------------------

func TestRemoveOrphans(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	const twoServices = `
services:
  a:
    image: {{image:v1}}
    command: ["sleep", "1h"]
  b:
    image: {{image:v1}}
    command: ["sleep", "1h"]
`
	p := s.newProject(t, twoServices)
	p.mustLifecycle("deploy")
	assert.Check(t, is.DeepEqual(p.containers("status=running"), []string{p.name + "-a-r1-1", p.name + "-b-r1-1"}, sortedCmp()))

	p.write(strings.Replace(twoServices, `  b:
    image: {{image:v1}}
    command: ["sleep", "1h"]
`, "", 1))
	orphan := p.name + "-b-r1-1"
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "found orphan container "+orphan))
	assert.Check(t, is.Contains(r.stderr, "--remove-orphans"))
	assert.Check(t, is.DeepEqual(p.containers("status=running"), []string{p.name + "-a-r1-1", orphan}, sortedCmp()), "the orphan is kept")
	r = p.mustLifecycle("plan")
	assert.Check(t, is.Contains(r.stdout, "warning: found orphan container "+orphan))

	r = p.mustLifecycle("plan", "--remove-orphans")
	assert.Check(t, is.Contains(r.stdout, `orphan: service "b" is not in the project`))
	r = p.mustLifecycle("deploy", "--remove-orphans")
	assert.Check(t, !strings.Contains(r.stderr, "found orphan"), r.stderr)
	assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-a-r1-1"}))
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", p.name+"-a-r1-1"), "running"), "a is untouched")
}
