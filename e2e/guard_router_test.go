package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// The guard keeps the project's router (docs/guard.md, "The router"): a (re)started
// router's routes are checked against the containers' labels, a router left stopped is
// started, a removed one created again.

// routerConfigOf is the router's config as its control socket gives it.
func routerConfigOf(t *testing.T, p *project) string {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "exec", p.router(), "/agent", "ctl", "get-config")
	assert.Assert(t, r.code == 0, r.String())
	return r.stdout
}

// answersAll sends n requests in a row to 127.0.0.1:port and reports the failures.
func answersAll(t *testing.T, port, n int, body string) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	failed := 0
	for range n {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			failed++
			t.Logf("request: %v", err)
			continue
		}
		b := make([]byte, 256)
		k, _ := resp.Body.Read(b)
		resp.Body.Close()
		if got := strings.TrimSpace(string(b[:k])); resp.StatusCode != http.StatusOK || got != body {
			failed++
			t.Logf("request: status %d: %q", resp.StatusCode, got)
		}
	}
	assert.Check(t, is.Equal(failed, 0), "%d of %d requests failed", failed, n)
}

// nextRouterAlert waits for the guard's next router alert that is not a failure
// (failures are logged: the guard tries again).
func nextRouterAlert(t *testing.T, g *guardRun, timeout time.Duration) guardAlert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		a, ok := g.next("router", time.Until(deadline))
		assert.Assert(t, ok, "no router alert within %s", timeout)
		if a.Action != "router-failed" {
			return a
		}
		t.Logf("router alert: %+v", a)
	}
}

// TestGuardReconcilesRestartedRouter: the router is stopped, one of the two backends
// removed meanwhile, and the router started again: it comes back with its saved
// routes, which still have the removed backend; the guard drops it (and the router's
// config no longer has it), and requests through the router succeed.
func TestGuardReconcilesRestartedRouter(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(routerHAProject, "v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	removed := p.name + "-web-r1-2"
	assert.Check(t, is.Contains(routerConfigOf(t, p), removed))
	g := p.startGuard()

	r := p.s.docker(t, p.dir, nil, "stop", p.router())
	assert.Assert(t, r.code == 0, r.String())
	r = p.s.docker(t, p.dir, nil, "rm", "-f", removed)
	assert.Assert(t, r.code == 0, r.String())
	started := time.Now()
	r = p.s.docker(t, p.dir, nil, "start", p.router())
	assert.Assert(t, r.code == 0, r.String())

	// At the router's start; or, when the guard started the router itself before the
	// removal ended (its 2 s grace after the stop, on a loaded machine), at the removal.
	var a guardAlert
	for a.Action == "" || !strings.Contains(a.Reason, "dropped "+removed+" (no longer running)") {
		a = nextRouterAlert(t, g, 15*time.Second)
		t.Logf("router alert %s after the start: %s: %s", a.received.Sub(started).Round(time.Millisecond), a.Action, a.Reason)
	}
	assert.Check(t, is.Equal(a.Container, p.router()))
	cfg := routerConfigOf(t, p)
	assert.Check(t, !strings.Contains(cfg, removed), "still routed: %s", cfg)
	assert.Check(t, is.Contains(cfg, p.name+"-web-r1-1"), "the other replica is routed: %s", cfg)
	answersAll(t, port, 50, "v1")
	// The project lock the guard held for the change is released.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if r := p.s.docker(t, p.dir, nil, "volume", "inspect", "lifecycle-lock-"+p.name); r.code == 0 {
			return poll.Continue("the lock is still held: %s", r)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(100*time.Millisecond))
}

// TestGuardRecreatesRemovedRouter: `docker rm -f` of the router while the guard runs:
// the guard creates it again with its routes, and requests through it succeed again
// within a bound (measured); then `docker stop` of the router (the restart policy does
// not apply): the guard starts it.
func TestGuardRecreatesRemovedRouter(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(routerHAProject, "v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	g := p.startGuard()

	removed := time.Now()
	r := p.s.docker(t, p.dir, nil, "rm", "-f", p.router())
	assert.Assert(t, r.code == 0, r.String())
	served := firstAnswer(t, port, "v1", removed, 20*time.Second)
	a := nextRouterAlert(t, g, 10*time.Second)
	t.Logf("router removed: requests succeed again %s after the `docker rm -f` began; alert: %s: %s", served.Round(time.Millisecond), a.Action, a.Reason)
	assert.Check(t, is.Equal(a.Action, "router-recreated"), "%+v", a)
	// 4.2–5.4 s measured on a loaded machine (load average 30): the bound leaves room.
	assert.Check(t, served < 10*time.Second, "requests succeed again only %s after the removal", served)
	cfg := routerConfigOf(t, p)
	assert.Check(t, is.Contains(cfg, p.name+"-web-r1-1"))
	assert.Check(t, is.Contains(cfg, p.name+"-web-r1-2"))
	assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "io.lifecycle.role"}} {{.HostConfig.RestartPolicy.Name}}`, p.router()), "router unless-stopped"))
	answersAll(t, port, 50, "v1")

	stopped := time.Now()
	r = p.s.docker(t, p.dir, nil, "stop", p.router())
	assert.Assert(t, r.code == 0, r.String())
	served = firstAnswer(t, port, "v1", stopped, 20*time.Second)
	a = nextRouterAlert(t, g, 10*time.Second)
	t.Logf("router stopped: requests succeed again %s after the `docker stop` began; alert: %s: %s", served.Round(time.Millisecond), a.Action, a.Reason)
	assert.Check(t, is.Equal(a.Action, "router-started"), "%+v", a)
	answersAll(t, port, 20, "v1")
	// And a deploy after all that still drives the router.
	p.write(fmt.Sprintf(routerHAProject, "v2", port))
	p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
}

// firstAnswer polls 127.0.0.1:port (every 20 ms, after the router was taken away at
// since) until it answers body, and returns when that answer came.
func firstAnswer(t *testing.T, port int, body string, since time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	c := http.Client{Timeout: time.Second}
	for time.Since(since) < timeout {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			b := make([]byte, 256)
			k, _ := resp.Body.Read(b)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b[:k])) == body {
				return time.Since(since)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no answer %q within %s", body, timeout)
	return 0
}

// internalRoutedProject is an internal service (no published port, reached by its name
// on the project network through a router of its own) of 2 replicas.
const internalRoutedProject = `
services:
  api:
    image: {{image:v1}}
    expose: ["8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy: {replicas: 2}
`

// untilAnswers runs `testapp until` in the container client (on the project network):
// it asks url every 20 ms until it answers body, and returns how long that took in
// the container (each request bounded by 1 s: an unknown name may wait for the
// engine's DNS).
func untilAnswers(t *testing.T, p *project, client, url, body string, timeout time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	cmd := execDocker(ctx, p.s, "exec", client, "/testapp", "until", url, body, timeout.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	assert.Assert(t, err == nil, "%s did not answer %q from %s within %s: %v: %s", url, body, client, timeout, err, stderr.String())
	took, err := time.ParseDuration(strings.TrimSpace(string(out)))
	assert.NilError(t, err, "testapp until printed %q", out)
	return took
}

// TestGuardRecreatesRemovedServiceRouter: `docker rm -f` of an internal service's own
// router while the guard runs: the guard creates it again as the deploy does (the
// service's name on the project network, no published port) with its routes, a client
// on the project network gets answers by the service's name again within a bound
// (measured), and the alert names that router.
func TestGuardRecreatesRemovedServiceRouter(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	p := s.newProject(t, internalRoutedProject)
	p.mustLifecycle("deploy")
	router := p.name + "-api-lifecycle-router"
	client := p.name + "-client"
	r := p.s.docker(t, p.dir, nil, "run", "-d", "--name", client, "--label", "com.docker.compose.project="+p.name,
		"--network", p.name+"_default", imageRef("v1"), "sleep", "2m")
	assert.Assert(t, r.code == 0, r.String())
	untilAnswers(t, p, client, "http://api:8080/", "v1", 30*time.Second)
	g := p.startGuard()

	removed := time.Now()
	r = p.s.docker(t, p.dir, nil, "rm", "-f", router)
	assert.Assert(t, r.code == 0, r.String())
	polled := time.Now() // the router is gone: `docker rm -f` returned
	inside := untilAnswers(t, p, client, "http://api:8080/", "v1", 30*time.Second)
	// From the removal's start to the answer, as the client saw it (its poll began
	// when the removal returned), and as the test saw it (the exec's return included).
	served, returned := polled.Sub(removed)+inside, time.Since(removed)
	a := nextRouterAlert(t, g, 10*time.Second)
	t.Logf("service router removed: requests by name succeed again %s after the `docker rm -f` began (the client's poll returned %s after); alert %s after: %s: %s",
		served.Round(time.Millisecond), returned.Round(time.Millisecond), a.received.Sub(removed).Round(time.Millisecond), a.Action, a.Reason)
	assert.Check(t, is.Equal(a.Action, "router-recreated"), "%+v", a)
	assert.Check(t, is.Equal(a.Container, router))
	assert.Check(t, is.Equal(a.Service, "api"))
	// Measured on a loaded machine: see docs/guard.md.
	assert.Check(t, served < 15*time.Second, "requests succeed again only %s after the removal", served)

	cfg := p.s.docker(t, p.dir, nil, "exec", router, "/agent", "ctl", "get-config")
	assert.Assert(t, cfg.code == 0, cfg.String())
	assert.Check(t, is.Contains(cfg.stdout, p.name+"-api-r1-1"))
	assert.Check(t, is.Contains(cfg.stdout, p.name+"-api-r1-2"))
	assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "io.lifecycle.router-service"}} {{.HostConfig.RestartPolicy.Name}} {{len .HostConfig.PortBindings}}`, router), "api unless-stopped 0"))
	aliases := p.inspect(`{{range $n, $e := .NetworkSettings.Networks}}{{join $e.Aliases ","}}{{end}}`, router)
	assert.Check(t, strings.Contains(","+aliases+",", ",api,"), "router aliases: %s", aliases)
	// The deploy finds the router as it creates it (same router hash): nothing to redo.
	r = p.mustLifecycle("deploy")
	assert.Check(t, !strings.Contains(r.stderr, router), "the deploy recreated the guard's router: %s", r.String())
}
