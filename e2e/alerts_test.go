package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// alertsProject is one routed web service (port %[2]d) whose health check passes while
// the file ok exists in the host directory %[1]s, whose GET / always answers 500, and
// which may hog memory (limit 64 MiB). Alerts are evaluated every second and go to the
// test's webhook %[3]s (the first POST refused, retried) and to an exec target that
// appends them to %[1]s/exec.log.
const alertsProject = `
x-lifecycle:
  alerts:
    interval: 1s
    targets:
      - webhook: {url: "%[3]s", retries: 3, backoff: 200ms}
      - exec: {command: ["sh", "-c", "cat >> %[1]s/exec.log"], timeout: 5s}
    rules:
      - {metric: unhealthy, for: 3s}
      - {metric: error-rate, above: 20, window: 4s, for: 1s, severity: critical}
      - {metric: memory, above: 50, resolve-below: 40}
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%[2]d:8080"]
    volumes: ["%[1]s:/flag:ro"]
    environment: {ERROR_RATE: "1", MEMORY_HOG: "1", QUIET: "1"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/file?path=/flag/ok"], interval: 500ms, retries: 1}
    deploy:
      resources: {limits: {memory: 64M}}
`

// receivedAlert is the part of the webhook body the test reads (docs/observability.md).
type receivedAlert struct {
	Status    string  `json:"status"`
	Source    string  `json:"source"`
	Project   string  `json:"project"`
	Service   string  `json:"service"`
	Container string  `json:"container"`
	Rule      string  `json:"rule"`
	Metric    string  `json:"metric"`
	Severity  string  `json:"severity"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Summary   string  `json:"summary"`
	at        time.Time
}

// webhookReceiver collects the alerts POSTed to it; it refuses the very first POST
// (503), so the monitor's retry is exercised.
type webhookReceiver struct {
	mu      sync.Mutex
	posts   int
	alerts  []receivedAlert
	arrived chan struct{}
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if r.posts == 1 {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	var a receivedAlert
	if err := json.Unmarshal(b, &a); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.at = time.Now()
	r.alerts = append(r.alerts, a)
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

// wait returns the first alert with that status and rule, waiting up to timeout.
func (r *webhookReceiver) wait(t *testing.T, status, rule string, timeout time.Duration) receivedAlert {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if a, ok := r.find(status, rule); ok {
			return a
		}
		select {
		case <-r.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no %s %s alert within %s; received: %+v", status, rule, timeout, r.all())
		}
	}
}

func (r *webhookReceiver) find(status, rule string) (receivedAlert, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.alerts {
		if a.Status == status && a.Rule == rule {
			return a, true
		}
	}
	return receivedAlert{}, false
}

func (r *webhookReceiver) all() []receivedAlert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedAlert(nil), r.alerts...)
}

// TestMonitorAlerts: `monitor` with x-lifecycle.alerts, its notifications received by a
// webhook in the test. An unhealthy spell shorter than the rule's for (3 s) gives no
// alert; a longer one fires within for + one interval of the engine calling the
// container unhealthy, and resolves within for + one interval of it being healthy
// again; a burst of 5xx through the router fires error-rate (then resolves when the
// burst leaves the window); a memory hog over 50 % of its limit fires memory. The exec
// target gets the same notifications.
func TestMonitorAlerts(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	recv := &webhookReceiver{arrived: make(chan struct{}, 1)}
	hook := httptest.NewServer(recv)
	defer hook.Close()

	port, dir := freePort(t), countDir(t)
	flag := filepath.Join(dir, "ok")
	assert.NilError(t, os.WriteFile(flag, []byte("ok"), 0o644))
	p := s.newProject(t, fmt.Sprintf(alertsProject, dir, port, hook.URL+"/alerts?token=x"))
	start := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("deployed in %s", time.Since(start).Round(100*time.Millisecond))
	container := p.name + "-web-r1-1"
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	mon := startMonitor(t, s, p, time.Minute)
	cmd, exited, stderr := mon.cmd, mon.exited, &mon.stderr
	assert.Check(t, is.Contains(stderr.String(), "alerts: 3 rules on web, every 1s, to webhook http://127.0.0.1:"))

	// A 5xx burst through the router and a memory hog (40 of 64 MiB: 62 %).
	client := http.Client{Timeout: 10 * time.Second}
	for range 20 {
		resp, err := client.Get(base + "/")
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Check(t, is.Equal(resp.StatusCode, http.StatusInternalServerError))
	}
	burst := time.Now()
	resp, err := client.Get(base + "/hog?mib=40")
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Check(t, is.Equal(resp.StatusCode, http.StatusOK))

	health := func() string { return p.inspect("{{.State.Health.Status}}", container) }
	waitHealth := func(want string) time.Time {
		t.Helper()
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if h := health(); h != want {
				return poll.Continue("health %s", h)
			}
			return poll.Success()
		}, poll.WithTimeout(10*time.Second), poll.WithDelay(50*time.Millisecond))
		return time.Now()
	}

	// An unhealthy spell shorter than for (3 s): no alert.
	assert.NilError(t, os.Remove(flag))
	down := waitHealth("unhealthy")
	assert.NilError(t, os.WriteFile(flag, []byte("ok"), 0o644))
	up := waitHealth("healthy")
	t.Logf("short spell: unhealthy for %s", up.Sub(down).Round(10*time.Millisecond))
	assert.Assert(t, up.Sub(down) < 2*time.Second, "the short spell lasted %s, not short enough for the test", up.Sub(down))

	er := recv.wait(t, "firing", "error-rate", 10*time.Second)
	t.Logf("error-rate fired %s after the burst: %s", er.at.Sub(burst).Round(10*time.Millisecond), er.Summary)
	assert.Check(t, is.Equal(er.Service, "web"))
	assert.Check(t, is.Equal(er.Severity, "critical"))
	assert.Check(t, er.Value >= 90, "20 of the 21 requests in the window were 5xx: %+v", er) // the hog's 200 counts too
	assert.Check(t, is.Equal(er.Project, p.name))
	assert.Check(t, er.at.Sub(burst) <= 1*time.Second+time.Second+2500*time.Millisecond, "error-rate fired %s after the burst", er.at.Sub(burst))
	mem := recv.wait(t, "firing", "memory", 5*time.Second)
	t.Logf("memory fired: %s", mem.Summary)
	assert.Check(t, is.Equal(mem.Container, container))
	assert.Check(t, mem.Value > 50, "%+v", mem)

	// Give the short spell's pending state the time it would need to fire (for 3 s +
	// an interval since it began), then check it did not.
	time.Sleep(time.Until(down.Add(4500 * time.Millisecond)))
	_, fired := recv.find("firing", "unhealthy")
	assert.Check(t, !fired, "an unhealthy spell shorter than for fired: %+v", recv.all())

	// A long spell: fires within for + one interval (+ 2.5 s for the evaluation's engine
	// calls and the delivery on a busy engine), resolves within as long once healthy again.
	assert.NilError(t, os.Remove(flag))
	down = waitHealth("unhealthy")
	a := recv.wait(t, "firing", "unhealthy", 10*time.Second)
	lag := a.at.Sub(down)
	t.Logf("unhealthy fired %s after the engine said unhealthy (for 3s + interval 1s): %s", lag.Round(10*time.Millisecond), a.Summary)
	assert.Check(t, lag <= 6500*time.Millisecond, "fired %s after unhealthy", lag)
	assert.Check(t, lag >= 2*time.Second, "fired %s after unhealthy: before its for", lag)
	assert.Check(t, is.Equal(a.Container, container))
	assert.Check(t, is.Equal(a.Source, "monitor"))
	assert.NilError(t, os.WriteFile(flag, []byte("ok"), 0o644))
	up = waitHealth("healthy")
	r := recv.wait(t, "resolved", "unhealthy", 10*time.Second)
	lag = r.at.Sub(up)
	t.Logf("unhealthy resolved %s after healthy again: %s", lag.Round(10*time.Millisecond), r.Summary)
	assert.Check(t, lag <= 6500*time.Millisecond, "resolved %s after healthy", lag)
	erResolved := recv.wait(t, "resolved", "error-rate", 5*time.Second)
	t.Logf("error-rate resolved %s after the burst", erResolved.at.Sub(burst).Round(10*time.Millisecond))

	// Every notification exactly once (the refused first POST was retried), the same
	// ones through exec.
	var kinds []string
	for _, a := range recv.all() {
		kinds = append(kinds, a.Status+" "+a.Rule)
	}
	t.Logf("webhook: %d POSTs, alerts %v", recv.posts, kinds)
	for _, k := range []string{"firing error-rate", "firing memory", "firing unhealthy", "resolved unhealthy", "resolved error-rate"} {
		n := 0
		for _, got := range kinds {
			if got == k {
				n++
			}
		}
		assert.Check(t, is.Equal(n, 1), "%s: %v", k, kinds)
	}
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		b, _ := os.ReadFile(filepath.Join(dir, "exec.log"))
		if n := len(lines(string(b))); n < len(kinds) {
			return poll.Continue("exec.log has %d lines, want %d", n, len(kinds))
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(100*time.Millisecond))

	assert.NilError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		assert.Check(t, err == nil, "monitor exit: %v; stderr %s", err, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("monitor still runs 15 s after SIGINT; stderr: %s", stderr.String())
	}
	assert.Check(t, !strings.Contains(stderr.String(), "not delivered"), stderr.String())
}

// runningMonitor is a `docker lifecycle monitor` of the test's project.
type runningMonitor struct {
	cmd    *exec.Cmd
	stderr lockedBuffer
	exited chan error
}

// startMonitor runs `monitor --listen` on a free port for p, for at most limit, and
// returns once it serves metrics (its alert rules are loaded by then). It is killed
// when the test ends.
func startMonitor(t *testing.T, s *suite, p *project, limit time.Duration) *runningMonitor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	m := &runningMonitor{exited: make(chan error, 1)}
	m.cmd = execDocker(ctx, s, "lifecycle", "-p", p.name, "monitor", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	m.cmd.Dir = p.dir
	m.cmd.Stdout, m.cmd.Stderr = io.Discard, &m.stderr
	assert.NilError(t, m.cmd.Start())
	go func() { m.exited <- m.cmd.Wait() }()
	t.Cleanup(func() { _ = m.cmd.Process.Kill() })
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Contains(m.stderr.String(), "serving metrics") {
			return poll.Success()
		}
		return poll.Continue("monitor stderr: %s", m.stderr.String())
	}, poll.WithTimeout(15*time.Second), poll.WithDelay(100*time.Millisecond))
	return m
}
