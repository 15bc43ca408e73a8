package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// alertRulesProject is one routed web service (port %[1]d, 64 MiB, healthy unless
// NEVER_HEALTHY) whose alerts go to the test's webhook %[2]s: p99 over 300 ms, CPU over
// 15 %% of a core for 2 s (an idle testapp uses about 0; a burning one gets less than a
// core on a busy 2-core machine), any OOM kill, and a failed or rolled-back deploy.
const alertRulesProject = `
x-lifecycle:
  wait-timeout: 4s
  alerts:
    interval: 1s
    targets: [{webhook: {url: "%[2]s", retries: 3, backoff: 200ms}}]
    rules:
      - {metric: p99, above: 300ms, window: 10s}
      - {metric: cpu, above: 15, for: 2s}
      - {metric: oom}
      - {metric: deploy, severity: critical}
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%[1]d:8080"]
    environment: {MEMORY_HOG: "1", QUIET: "1", NEVER_HEALTHY: "${NEVER_HEALTHY:-0}"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 1}
    deploy:
      resources: {limits: {memory: 64M}}
`

// TestMonitorAlertRulesOnTheEngine: the alert rules TestMonitorAlerts leaves to the
// unit tests, on the real engine: slow responses through the router fire p99, a CPU
// burn fires cpu after its for, a deploy that is rolled back fires deploy, and an
// allocation over the memory limit fires oom.
func TestMonitorAlertRulesOnTheEngine(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	recv := &webhookReceiver{arrived: make(chan struct{}, 1)}
	hook := httptest.NewServer(recv)
	defer hook.Close()
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(alertRulesProject, port, hook.URL))
	p.mustLifecycle("deploy")
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	mon := startMonitor(t, s, p, 2*time.Minute)

	client := http.Client{Timeout: 10 * time.Second}
	get := func(path string) {
		t.Helper()
		resp, err := client.Get(base + path)
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Check(t, is.Equal(resp.StatusCode, http.StatusOK), path)
	}

	// p99: five responses of 600 ms through the router.
	slow := time.Now()
	for range 5 {
		get("/slow?d=600ms")
	}
	a := recv.wait(t, "firing", "p99", 10*time.Second)
	t.Logf("p99 fired %s after the slow requests began: %s", a.at.Sub(slow).Round(10*time.Millisecond), a.Summary)
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, a.Value >= 300, "%+v", a)

	// cpu: one core busy for 8 s; fires after its for (2 s).
	burn := time.Now()
	get("/burn?d=8s")
	a = recv.wait(t, "firing", "cpu", 12*time.Second)
	t.Logf("cpu fired %s after the burn began: %s", a.at.Sub(burn).Round(10*time.Millisecond), a.Summary)
	assert.Check(t, a.at.Sub(burn) >= 2*time.Second, "cpu fired %s after the burn began, before its for", a.at.Sub(burn))
	assert.Check(t, a.Value > 15, "%+v", a)
	assert.Check(t, strings.HasPrefix(a.Container, p.name+"-web-"), "%+v", a)

	// deploy: a version that never gets healthy is rolled back.
	r := p.s.docker(t, p.dir, append(p.env, "NEVER_HEALTHY=1"), "lifecycle", "-p", p.name, "--progress", "plain", "deploy")
	assert.Check(t, r.code != 0, "the never-healthy deploy succeeded: %s", r)
	failed := time.Now()
	a = recv.wait(t, "firing", "deploy", 10*time.Second)
	t.Logf("deploy fired %s after the deploy command returned: %s", a.at.Sub(failed).Round(10*time.Millisecond), a.Summary)
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, is.Equal(a.Severity, "critical"))

	// oom: 96 MiB asked of a 64 MiB container; the kernel kills the process.
	hog := time.Now()
	if resp, err := client.Get(base + "/hog?mib=96"); err == nil {
		resp.Body.Close()
	}
	a = recv.wait(t, "firing", "oom", 15*time.Second)
	t.Logf("oom fired %s after the hog: %s", a.at.Sub(hog).Round(10*time.Millisecond), a.Summary)
	assert.Check(t, strings.HasPrefix(a.Container, p.name+"-web-"), "%+v", a)
	assert.Check(t, a.Value >= 1, "%+v", a)
	assert.Check(t, !strings.Contains(mon.stderr.String(), "not delivered"), mon.stderr.String())
}
