package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// guardStatus is the part of `guard --status --format json` the test reads.
type guardStatus struct {
	Running   bool `json:"running"`
	Container struct {
		Name     string `json:"name"`
		State    string `json:"state"`
		Restarts int    `json:"restarts"`
	} `json:"container"`
	Services []struct {
		Service    string `json:"service"`
		Containers []struct {
			Name string `json:"name"`
		} `json:"containers"`
	} `json:"services"`
	Actions []guardAlert `json:"actions"`
}

// TestGuardDetached: `guard --detach` without the socket opt-in fails and creates
// nothing; with it, the guard runs as <project>-guard (hardened), restarts a container
// made unhealthy, `guard --status` reports that restart, a second --detach replaces
// the guard, and `down` removes it (then --status exits non-zero). The monitor detaches
// from the same image: <project>-monitor (hardened, on the bridge, its port published
// on loopback) serves the project's metrics with its alert rules, `monitor --status`
// shows it, and `down` removes it.
func TestGuardDetached(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	p, okFile := fileHealthProject(t, s, "{backoff: {start: 2s}, budget: 3, window: 1m}")
	composeFile := filepath.Join(p.dir, "compose.yaml")
	b, err := os.ReadFile(composeFile)
	assert.NilError(t, err)
	assert.NilError(t, os.WriteFile(composeFile, append(b, "x-lifecycle:\n  alerts:\n    rules: [{metric: unhealthy, for: 1s}]\n"...), 0o644))
	p.mustLifecycle("deploy")
	guard, monitor := p.name+"-guard", p.name+"-monitor"

	r := p.lifecycle("guard", "--detach")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "--mount-docker-socket"))
	assert.Check(t, is.Contains(r.stderr, "root on the engine's host"))
	assert.Check(t, is.Len(p.containers("label=io.lifecycle.role=guard"), 0))

	began := time.Now()
	r = p.mustLifecycle("guard", "--detach", "--mount-docker-socket")
	t.Logf("guard --detach took %s: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(r.stderr))
	// The image's tag is shared with the parallel detached tests: the suite's teardown
	// removes it (removeDetachedImages), as a test's cleanup would pull it from under
	// another test's next --detach.
	image := p.inspect("{{.Config.Image}}", guard)
	assert.Check(t, is.Equal(p.inspect("{{.HostConfig.CapDrop}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.SecurityOpt}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.NetworkMode}}", guard),
		"[ALL] true [no-new-privileges:true] unless-stopped none"))
	assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "io.lifecycle.role"}} {{index .Config.Labels "com.docker.compose.project"}}`, guard), "guard "+p.name))

	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	began = time.Now()
	r = p.mustLifecycle("monitor", "--detach", "--mount-docker-socket", "--listen", addr)
	assert.Check(t, is.Contains(r.stdout, "metrics at http://"+addr+"/metrics"), r.String())
	assert.Check(t, is.Equal(p.inspect("{{.Config.Image}}", monitor), image), "one image for both")
	assert.Check(t, is.Equal(p.inspect("{{.HostConfig.CapDrop}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.SecurityOpt}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.NetworkMode}} {{len .Mounts}}", monitor),
		"[ALL] true [no-new-privileges:true] unless-stopped bridge 1"))
	assert.Check(t, is.Equal(p.inspect(`{{range $p, $b := .HostConfig.PortBindings}}{{$p}}={{range $b}}{{.HostIp}}:{{.HostPort}}{{end}}{{end}}`, monitor), fmt.Sprintf("%d/tcp=%s", port, addr)))
	var families map[string]*dto.MetricFamily
	waitFor(t, 15*time.Second, "the detached monitor's metrics", func() bool {
		f, err := scrapeMetrics(addr)
		if err != nil {
			return false
		}
		families = f
		return sumValues(metricValues(f, "lifecycle_container_up", map[string]string{"project": p.name, "service": "web"}, "container")) == 1
	})
	t.Logf("monitor --detach to its first scrape with the web container up: %s", time.Since(began).Round(time.Millisecond))
	assert.Check(t, is.Len(metricValues(families, "lifecycle_container_up", map[string]string{"project": p.name}, "container"), 1), "the guard and the monitor are not the project's replicas")
	assert.Check(t, is.Contains(p.s.docker(t, p.dir, nil, "logs", monitor).stderr, "alerts: 1 rules on web"), "the alert rules travel in the target")
	var mst struct {
		Running bool   `json:"running"`
		URL     string `json:"url"`
		Alerts  struct {
			Rules map[string]int `json:"rules"`
		} `json:"alerts"`
	}
	r = p.mustLifecycle("monitor", "--status", "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &mst), r.stdout)
	assert.Check(t, mst.Running)
	assert.Check(t, is.Equal(mst.URL, "http://"+addr+"/metrics"))
	assert.Check(t, is.DeepEqual(mst.Alerts.Rules, map[string]int{"web": 1}))

	// lint recognises the project's own guard and monitor: their socket mounts are no finding.
	lint := p.lifecycle("lint", "--format", "json")
	assert.Check(t, !strings.Contains(lint.stdout, "docker-socket"), lint.String())

	// The guard is ready once it said so (on stderr, in its log).
	waitFor(t, 20*time.Second, "the detached guard to watch the project", func() bool {
		return strings.Contains(p.s.docker(t, p.dir, nil, "logs", guard).stderr, "guarding project "+p.name+": 1 running")
	})
	assert.NilError(t, os.Remove(okFile))
	var restart guardAlert
	waitFor(t, 20*time.Second, "the detached guard's restart in guard --status", func() bool {
		r := p.lifecycle("guard", "--status", "--format", "json")
		var st guardStatus
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
			return false
		}
		for _, a := range st.Actions {
			if a.Kind == "unhealthy" && a.Action == "restarted" {
				restart = a
				assert.Check(t, st.Running)
				assert.Check(t, is.Len(st.Services, 1))
				return true
			}
		}
		return false
	})
	assert.NilError(t, os.WriteFile(okFile, []byte("ok"), 0o644))
	assert.Assert(t, restart.FailingSince != nil && restart.RestartBegan != nil, "%+v", restart)
	t.Logf("detached guard: restart of %s begun %s after the first failing probe (after = 600ms)", restart.Container, restart.RestartBegan.Sub(*restart.FailingSince).Round(time.Millisecond))
	assert.Check(t, restart.RestartBegan.Sub(*restart.FailingSince) <= 600*time.Millisecond+2*time.Second)
	table := p.mustLifecycle("guard", "--status")
	assert.Check(t, is.Contains(table.stdout, "CONTAINER  "+guard), table.stdout)
	assert.Check(t, is.Contains(table.stdout, "restarted"), table.stdout)
	if st := p.s.docker(t, p.dir, nil, "stats", "--no-stream", "--format", "{{.MemUsage}} {{.CPUPerc}} {{.PIDs}}", guard); st.code == 0 {
		t.Logf("guard container: memory, CPU, pids: %s", strings.TrimSpace(st.stdout))
	}
	if st := p.s.docker(t, p.dir, nil, "stats", "--no-stream", "--format", "{{.MemUsage}} {{.CPUPerc}} {{.PIDs}}", monitor); st.code == 0 {
		t.Logf("monitor container: memory, CPU, pids: %s", strings.TrimSpace(st.stdout))
	}

	r = p.mustLifecycle("guard", "--detach", "--mount-docker-socket")
	assert.Check(t, is.Contains(r.stderr, "replaced the project's older guard container "+guard), r.String())
	assert.Check(t, is.Len(p.containers("label=io.lifecycle.role=guard"), 1))

	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.containers(), 0))
	_, err = scrapeMetrics(addr)
	assert.Check(t, err != nil, "the monitor is gone with down")
	r = p.lifecycle("guard", "--status")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "no detached guard runs for project "+p.name))
	r = p.lifecycle("monitor", "--status")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "no detached monitor runs for project "+p.name))
}

// waitFor polls cond every 250 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestGuardDetachedKeepsRouter (docs/guard.md, "The router"): the detached guard
// (`guard --detach`, its target carrying the router's ports, networks and routes)
// creates the project's router again after `docker rm -f`, with both backends, and
// requests through it answer again within a bound (measured); the `router-recreated`
// alert is in `guard --status`. `down` removes the guard container.
func TestGuardDetachedKeepsRouter(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(routerHAProject, "v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	guard := p.name + "-guard"

	began := time.Now()
	p.mustLifecycle("guard", "--detach", "--mount-docker-socket")
	t.Logf("guard --detach took %s", time.Since(began).Round(time.Millisecond))
	waitFor(t, 20*time.Second, "the detached guard to watch the project", func() bool {
		return strings.Contains(p.s.docker(t, p.dir, nil, "logs", guard).stderr, "guarding project "+p.name+": ")
	})
	t.Logf("detached guard watching %s after --detach began", time.Since(began).Round(time.Millisecond))
	const routerSettings = `{{index .Config.Labels "io.lifecycle.role"}} {{.HostConfig.RestartPolicy.Name}} {{range $p, $b := .HostConfig.PortBindings}}{{$p}}={{range $b}}{{.HostIp}}:{{.HostPort}}{{end}}{{end}} {{range $n, $_ := .NetworkSettings.Networks}}{{$n}} {{end}}`
	oldRouter, oldSettings := p.inspect("{{.Id}}", p.router()), p.inspect(routerSettings, p.router())

	removed := time.Now()
	r := p.s.docker(t, p.dir, nil, "rm", "-f", p.router())
	assert.Assert(t, r.code == 0, r.String())
	served := firstAnswer(t, port, "v1", removed, 20*time.Second)
	t.Logf("router removed: requests succeed again %s after the `docker rm -f` began", served.Round(time.Millisecond))
	// 3.2–5.6 s measured at load up to 17; 10.9 s once with three other guard tests
	// beside it at load 25 (the detached guard reads the engine's events through its
	// container), so the bound is the internal routers' 15 s.
	assert.Check(t, served < 15*time.Second, "requests succeed again only %s after the removal", served)
	assert.Check(t, p.inspect("{{.Id}}", p.router()) != oldRouter, "a new router container")

	recreated := detachedRouterAlerts(t, p, 15*time.Second, "router-recreated")["router-recreated"]
	t.Logf("router-recreated in guard --status %s after the `docker rm -f` began: %s", time.Since(removed).Round(time.Millisecond), recreated.Reason)
	assert.Check(t, is.Equal(recreated.Container, p.router()))
	assert.Check(t, is.Contains(recreated.Reason, "serving its routes"))
	table := p.mustLifecycle("guard", "--status")
	assert.Check(t, is.Contains(table.stdout, "router-recreated"), table.stdout)

	cfg := routerConfigOf(t, p)
	assert.Check(t, is.Contains(cfg, p.name+"-web-r1-1"))
	assert.Check(t, is.Contains(cfg, p.name+"-web-r1-2"))
	assert.Check(t, is.Equal(p.inspect(routerSettings, p.router()), oldSettings), "created again as deploy created it")
	assert.Check(t, strings.HasPrefix(oldSettings, "router unless-stopped "), oldSettings)
	answersAll(t, port, 50, "v1")

	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.containers(), 0))
	assert.Check(t, is.Len(p.containers("label=io.lifecycle.role=guard"), 0))
}

// detachedRouterAlerts waits until `guard --status --format json` (which reads the
// guard container's log) has a router alert of each action, and returns the last of
// each.
func detachedRouterAlerts(t *testing.T, p *project, timeout time.Duration, actions ...string) map[string]guardAlert {
	t.Helper()
	found := map[string]guardAlert{}
	waitFor(t, timeout, "the "+strings.Join(actions, " and ")+" alerts in guard --status", func() bool {
		r := p.lifecycle("guard", "--status", "--format", "json")
		var st guardStatus
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil {
			return false
		}
		for _, a := range st.Actions {
			if a.Kind == "router" && slices.Contains(actions, a.Action) {
				found[a.Action] = a
			}
		}
		return len(found) == len(actions)
	})
	return found
}

// TestGuardDetachedKeepsServiceRouter (docs/guard.md, "The router"): the detached
// guard keeps an internal service's own router (<project>-api-lifecycle-router, carried
// in its target's service_routers) as the foreground guard does: after `docker rm -f`
// it is created again with both backends, the service's alias and no published port,
// and a client on the project network gets answers by the service's name again within
// the bound of the foreground test (measured); after `docker stop` (the restart policy
// does not apply) it is started again. Both alerts name the service in `guard
// --status`. `down` removes everything, the guard container too.
func TestGuardDetachedKeepsServiceRouter(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	p := s.newProject(t, internalRoutedProject)
	p.mustLifecycle("deploy")
	router, client, guard := p.name+"-api-lifecycle-router", p.name+"-client", p.name+"-guard"
	r := p.s.docker(t, p.dir, nil, "run", "-d", "--name", client, "--label", "com.docker.compose.project="+p.name,
		"--network", p.name+"_default", imageRef("v1"), "sleep", "2m")
	assert.Assert(t, r.code == 0, r.String())
	untilAnswers(t, p, client, "http://api:8080/", "v1", 30*time.Second)

	began := time.Now()
	p.mustLifecycle("guard", "--detach", "--mount-docker-socket")
	waitFor(t, 20*time.Second, "the detached guard to watch the project", func() bool {
		return strings.Contains(p.s.docker(t, p.dir, nil, "logs", guard).stderr, "guarding project "+p.name+": ")
	})
	t.Logf("detached guard watching %s after --detach began", time.Since(began).Round(time.Millisecond))
	const routerSettings = `{{index .Config.Labels "io.lifecycle.router-service"}} {{.HostConfig.RestartPolicy.Name}} {{len .HostConfig.PortBindings}} {{range $n, $e := .NetworkSettings.Networks}}{{$n}}={{join $e.Aliases ","}} {{end}}`
	oldRouter, oldSettings := p.inspect("{{.Id}}", router), p.inspect(routerSettings, router)
	assert.Check(t, strings.HasPrefix(oldSettings, "api unless-stopped 0 "), oldSettings)

	removed := time.Now()
	r = p.s.docker(t, p.dir, nil, "rm", "-f", router)
	assert.Assert(t, r.code == 0, r.String())
	polled := time.Now()
	served := polled.Sub(removed) + untilAnswers(t, p, client, "http://api:8080/", "v1", 30*time.Second)
	t.Logf("service router removed: requests by name succeed again %s after the `docker rm -f` began", served.Round(time.Millisecond))
	assert.Check(t, served < 15*time.Second, "requests succeed again only %s after the removal", served)
	assert.Check(t, p.inspect("{{.Id}}", router) != oldRouter, "a new router container")
	cfg := p.s.docker(t, p.dir, nil, "exec", router, "/agent", "ctl", "get-config")
	assert.Assert(t, cfg.code == 0, cfg.String())
	assert.Check(t, is.Contains(cfg.stdout, p.name+"-api-r1-1"))
	assert.Check(t, is.Contains(cfg.stdout, p.name+"-api-r1-2"))
	// The aliases differ only by the container's short id, which the engine adds.
	short := func(settings, id string) string { return strings.ReplaceAll(settings, id[:12], "ID") }
	assert.Check(t, is.Equal(short(p.inspect(routerSettings, router), p.inspect("{{.Id}}", router)), short(oldSettings, oldRouter)), "created again as deploy created it")

	stopped := time.Now()
	r = p.s.docker(t, p.dir, nil, "stop", router)
	assert.Assert(t, r.code == 0, r.String())
	polled = time.Now()
	served = polled.Sub(stopped) + untilAnswers(t, p, client, "http://api:8080/", "v1", 30*time.Second)
	t.Logf("service router stopped: requests by name succeed again %s after the `docker stop` began", served.Round(time.Millisecond))
	assert.Check(t, served < 15*time.Second, "requests succeed again only %s after the stop", served)
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", router), "running"))
	// Both alerts, named by the router and the service, read once at the end.
	alerts := detachedRouterAlerts(t, p, 15*time.Second, "router-recreated", "router-started")
	t.Logf("both alerts in guard --status %s after the `docker stop` began", time.Since(stopped).Round(time.Millisecond))
	for action, a := range alerts {
		t.Logf("%s: %s", action, a.Reason)
		assert.Check(t, is.Equal(a.Container, router), action)
		assert.Check(t, is.Equal(a.Service, "api"), action)
	}

	// The client is the test's, not the project's: `down` is for what the project made.
	r = p.s.docker(t, p.dir, nil, "rm", "-f", client)
	assert.Assert(t, r.code == 0, r.String())
	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.containers(), 0))
	assert.Check(t, is.Len(p.containers("label=io.lifecycle.role=guard"), 0))
}
