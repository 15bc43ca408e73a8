package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The failure handling of routed rollouts on the real engine, each under a constant load
// of loadRate req/s through the router: failure_action pause, update_config.monitor,
// max_failure_ratio, one service rolling back beside another that keeps its new
// revision, and the policy verified on what the engine runs. The fake-engine tests in
// rollout/ cover the same decisions; these prove them with real containers, health
// checks, the router and its drain.

// failingProject is one routed web service whose later containers can be made to fail:
// the test app's COUNT_DIR/FAULT_FREE_FIRST number the service's containers in a
// directory they all mount, so the first N new containers work and the later ones get
// the fault (a restarted container keeps its number, so a rollback can restart it).
// %[1]s image version, %[2]d published port, %[3]d replicas, %[4]s host directory
// mounted at /count, %[5]s extra keys at the level of deploy (4 spaces), %[6]s keys
// under deploy (6 spaces).
const failingProject = `
services:
  web:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 2}
    restart: unless-stopped
    volumes: ["%[4]s:/count"]
    x-lifecycle: {strategy: rolling} # the replicas share the count directory on purpose
%[5]s
    deploy:
      replicas: %[3]d
%[6]s
`

// countDir is a host directory the test app's containers (uid 65534) can number
// themselves in.
func countDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.Chmod(dir, 0o777))
	return dir
}

// faultsAfter is the environment of a version whose first `free` containers work and
// whose later ones get fault (e.g. `NEVER_HEALTHY: "1"`); run counts each deploy's
// containers apart (a subdirectory of /count).
func faultsAfter(free int, run, fault string) string {
	return fmt.Sprintf("    environment: {COUNT_DIR: /count/%s, FAULT_FREE_FIRST: \"%d\", %s}", run, free, fault)
}

// appContainers lists the running app containers of a service (routers left out).
func (p *project) appContainers(service string) []string {
	p.t.Helper()
	return p.containers("status=running", "label=com.docker.compose.service="+service, "label=io.lifecycle.role=app")
}

// names expands container suffixes ("web-r2-1") into the project's container names.
func (p *project) names(suffixes ...string) []string {
	out := make([]string, len(suffixes))
	for i, s := range suffixes {
		out[i] = p.name + "-" + s
	}
	return out
}

// logRouterErrors logs the router's access-log lines of failed requests (status 5xx:
// which backend, when), so a failed request under load can be explained.
func (p *project) logRouterErrors(reps ...loadReport) {
	p.t.Helper()
	failed := 0
	for _, r := range reps {
		failed += r.Failed
	}
	if failed == 0 {
		return
	}
	r := p.s.docker(p.t, p.dir, nil, "logs", p.router())
	n := 0
	for _, l := range lines(r.stdout + r.stderr) {
		if strings.Contains(l, `"status":5`) && n < 40 {
			p.t.Logf("router: %s", l)
			n++
		}
	}
}

// TestFailureActionPauseKeepsHealthyNewContainers: with failure_action pause, a v2 whose
// second container crashes at start stops the rollout where it is: the first v2
// container keeps serving beside the two v1 containers it did not replace, the failed
// one is removed, the deploy exits 1 (a failure, not the rollback code 3), no request
// fails, and ps and history say so. The next deploy goes on from there.
func TestFailureActionPauseKeepsHealthyNewContainers(t *testing.T) {
	s := setup(t)
	port, dir := freePort(t), countDir(t)
	pause := "      update_config: {failure_action: pause}"
	yaml := func(version, env string) string {
		return fmt.Sprintf(failingProject, version, port, 3, dir, env, pause)
	}
	p := s.newProject(t, yaml("v1", ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 5*time.Minute)

	p.write(yaml("v2", faultsAfter(1, "v2", "CRASH_AFTER: 0s")))
	r := p.lifecycle("deploy")
	paused := time.Now()
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stderr, `service "web": wait-healthy `+p.name+"-web-r2-2: container failed its health gate"), r.String())
	assert.Check(t, strings.Contains(r.stderr, "crash-looping") || strings.Contains(r.stderr, "exited with code 3"), "the crash is named: %s", r)
	assert.Check(t, !strings.Contains(r.stderr, "rolled back"), r.String())

	assert.Check(t, is.DeepEqual(p.appContainers("web"), p.names("web-r1-2", "web-r1-3", "web-r2-1"), sortedCmp()))
	assert.Check(t, is.DeepEqual(p.containers("label=com.docker.compose.service=web", "label=io.lifecycle.role=app", "status=exited"),
		p.names("web-r1-1")), "the replaced v1 container is stopped and kept")
	ps := p.mustLifecycle("ps", "--format", "{{.Name}} {{.Revision}} {{.State}} {{.Health}}")
	assert.Check(t, is.DeepEqual(lines(ps.stdout), []string{
		p.router() + "  running -", // filed under web for compose; no revision, no healthcheck
		p.name + "-web-r1-2 1 running healthy", p.name + "-web-r1-3 1 running healthy", p.name + "-web-r2-1 2 running healthy",
	}, sortedCmp()), ps.stdout)
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}} {{.Containers}} {{.Reason}}")
	hl := lines(h.stdout)
	assert.Assert(t, is.Len(hl, 2), h.stdout)
	assert.Check(t, strings.HasPrefix(hl[0], "2 failed running deploy failed: service \"web\": wait-healthy "+p.name+"-web-r2-2"), h.stdout)
	assert.Check(t, is.Equal(hl[1], "1 deployed running"), h.stdout)

	// Both versions serve, through the router, for as long as the rollout stays paused.
	time.Sleep(2 * time.Second)
	during := load.window(paused, time.Now())
	t.Logf("paused with v1 and v2 serving: %s", during)
	assert.Check(t, during.Bodies["v1"] > 0 && during.Bodies["v2"] > 0, during.String())

	// The next deploy goes on from where the rollout stopped (here: it fails the same way,
	// since every later container is faulty; what matters is that it tried the next slot).
	r = p.lifecycle("deploy")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, !strings.Contains(r.stderr, p.name+"-web-r2-1"), "the healthy v2 container is left alone: %s", r)

	rep := load.stop()
	t.Logf("failure_action pause: %s", rep)
	p.logRouterErrors(rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.DeepEqual(p.appContainers("web"), p.names("web-r1-2", "web-r1-3", "web-r2-1"), sortedCmp()))
}

// TestMonitorCatchesContainerTurningUnhealthy: update_config.monitor watches each new
// container after its gate. v2's first container works and takes traffic; the second
// passes its gate, then turns unhealthy (UNHEALTHY_AFTER) inside its monitor window: the
// service rolls back (exit 3), v1 serves alone again, and no request fails, the
// drain of the routed v2 container included.
func TestMonitorCatchesContainerTurningUnhealthy(t *testing.T) {
	s := setup(t)
	port, dir := freePort(t), countDir(t)
	// Wide margins: on a loaded engine a health check can run seconds late, and r2-2 must
	// pass its gate before it turns unhealthy.
	// (Measured at load average 79: docker ran the 300ms health checks seconds apart, and
	// a container that turned unhealthy at 10s still passed a 20s window.)
	monitor := "      update_config: {monitor: 30s}"
	yaml := func(version, env string) string {
		return fmt.Sprintf(failingProject, version, port, 2, dir, env, monitor)
	}
	p := s.newProject(t, yaml("v1", ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 5*time.Minute)

	p.write(yaml("v2", faultsAfter(1, "v2", "UNHEALTHY_AFTER: 10s")))
	run := p.startTimedLifecycle("deploy")
	code, out := run.wait()
	rolledBack := time.Now()
	assert.Check(t, is.Equal(code, exitRolledBack), out)
	assert.Check(t, is.Contains(out, "wait-healthy "+p.name+"-web-r2-2: container failed its health gate: during update_config.monitor: health check failing"), out)
	assert.Check(t, is.Contains(out, "UNHEALTHY_AFTER"), "the last health check output is quoted: %s", out)
	// r2-2 passed its gate (monitoring starts there) before the monitor caught it.
	_, monitored := run.when("Container " + p.name + "-web-r2-2  Monitoring")
	assert.Check(t, monitored, out)

	time.Sleep(time.Second)
	rep := load.stop()
	t.Logf("monitor caught v2: %s", rep)
	p.logRouterErrors(rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, rep.Bodies["v2"] > 0, "r2-1 served before the rollback: %s", rep)
	after := load.window(rolledBack, time.Now())
	assert.Check(t, is.DeepEqual(after.Bodies, map[string]int{"v1": after.Total}), after.String())

	assert.Check(t, is.DeepEqual(p.appContainers("web"), p.names("web-r1-1", "web-r1-2"), sortedCmp()))
	for _, c := range p.containers("label=com.docker.compose.service=web", "label=io.lifecycle.role=app") {
		assert.Check(t, strings.Contains(c, "-web-r1-"), "new container %s left behind", c)
	}
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "2 rolled-back removed\n1 deployed running\n"))
}

// TestMaxFailureRatioToleratesAndExceeds: 4 replicas rolled two at a time,
// max_failure_ratio 0.5; v2's last two containers crash at start: both failures are tolerated (2 of 4), their slots
// stay with the v1 containers they were to replace, and the deploy ends with exit 0 and
// one warning per failed container. Then v3 with ratio 0.25 fails the same way: the
// second failure exceeds the ratio and the service rolls back (exit 3) to the mix it had.
// No request fails throughout.
func TestMaxFailureRatioToleratesAndExceeds(t *testing.T) {
	s := setup(t)
	port, dir := freePort(t), countDir(t)
	yaml := func(version, ratio, env string) string {
		return fmt.Sprintf(failingProject, version, port, 4, dir, env,
			"      update_config: {parallelism: 2, max_failure_ratio: "+ratio+"}")
	}
	p := s.newProject(t, yaml("v1", "0.5", ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 5*time.Minute)

	p.write(yaml("v2", "0.5", faultsAfter(2, "v2", "CRASH_AFTER: 0s")))
	r := p.lifecycle("deploy")
	assert.Check(t, is.Equal(r.code, 0), r.String())
	for _, failed := range []string{"web-r2-3", "web-r2-4"} {
		assert.Check(t, is.Contains(r.stderr, fmt.Sprintf("new container %s-%s failed and was removed", p.name, failed)), r.String())
	}
	assert.Check(t, is.Equal(strings.Count(r.stderr, "failed and was removed"), 2), r.String())
	mixed := p.names("web-r1-3", "web-r1-4", "web-r2-1", "web-r2-2")
	assert.Check(t, is.DeepEqual(p.appContainers("web"), mixed, sortedCmp()))
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "2 deployed running\n1 deployed running\n"))
	time.Sleep(time.Second)
	w := load.window(time.Now().Add(-time.Second), time.Now())
	assert.Check(t, w.Bodies["v1"] > 0 && w.Bodies["v2"] > 0, "both kept versions serve: %s", w)

	p.write(yaml("v3", "0.25", faultsAfter(2, "v3", "CRASH_AFTER: 0s")))
	r = p.lifecycle("deploy")
	assert.Check(t, is.Equal(r.code, exitRolledBack), r.String())
	// The tolerated container may still be on its way out when the second failure rolls
	// back (the rollback's cleanup removes it then), so count the verdicts, not removals.
	assert.Check(t, is.Equal(strings.Count(r.stderr, "Tolerated: web"), 1), "the first failure is tolerated: %s", r)
	assert.Check(t, is.Contains(r.stderr, "rolled back"), r.String())
	assert.Check(t, is.DeepEqual(p.appContainers("web"), mixed, sortedCmp()), "back to the mix v2 left")
	for _, c := range p.containers("label=com.docker.compose.service=web", "label=io.lifecycle.role=app") {
		assert.Check(t, !strings.Contains(c, "-web-r3-"), "new container %s left behind", c)
	}
	h = p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "3 rolled-back removed\n2 deployed running\n1 deployed running\n"))

	time.Sleep(time.Second)
	rep := load.stop()
	t.Logf("max_failure_ratio tolerated, then exceeded: %s", rep)
	p.logRouterErrors(rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
}

// TestOneServiceRollsBackAnotherKeepsItsRevision: api and web roll in one deploy; api's
// v2 is fine, web's first v2 container dies in its health gate once api's rollout has
// finished (the test kills it then: the two services roll in parallel, and on a loaded
// engine any timing would race). web rolls back (exit 3) while api keeps its new
// containers; both keep answering without a failed request, and history says exactly
// that.
func TestOneServiceRollsBackAnotherKeepsItsRevision(t *testing.T) {
	s := setup(t)
	webPort, apiPort := freePort(t), freePort(t)
	yaml := func(version, webEnv string) string {
		return fmt.Sprintf(`
services:
  api:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy: {replicas: 2}
  web:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[3]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 1000}
    deploy: {replicas: 2}
    x-lifecycle: {wait-timeout: 4m}
%[4]s
`, version, apiPort, webPort, webEnv)
	}
	p := s.newProject(t, yaml("v1", ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, webPort, "v1", 30*time.Second)
	waitAnswers(t, apiPort, "v1", 30*time.Second)
	webLoad := startRateLoad(t, webPort, "/", loadRate, 5*time.Minute)
	apiLoad := startRateLoad(t, apiPort, "/", loadRate, 5*time.Minute)

	p.write(yaml("v2", `    environment: {NEVER_HEALTHY: "1"}`))
	run := p.startTimedLifecycle("deploy")
	run.waitLine(t, "Container "+p.name+"-api-r1-2  Stopped", 4*time.Minute) // api's last step
	run.waitLine(t, "Container "+p.name+"-web-r2-1  Waiting for health", time.Minute)
	kill := p.s.docker(t, p.dir, nil, "kill", p.name+"-web-r2-1")
	assert.Assert(t, kill.code == 0, kill.String())
	code, out := run.wait()
	assert.Check(t, is.Equal(code, exitRolledBack), out)
	assert.Check(t, is.Contains(out, `service "web": wait-healthy `+p.name+"-web-r2-1: container failed its health gate: exited with code 137"), out)
	assert.Check(t, is.Contains(out, "\nweb rolled back: "), out)

	time.Sleep(time.Second)
	webRep, apiRep := webLoad.stop(), apiLoad.stop()
	t.Logf("web rolled back: %s; api rolled forward: %s", webRep, apiRep)
	p.logRouterErrors(webRep, apiRep)
	assert.Check(t, is.Equal(webRep.Failed, 0), webRep.String())
	assert.Check(t, is.Equal(apiRep.Failed, 0), apiRep.String())
	assert.Check(t, is.DeepEqual(webRep.Bodies, map[string]int{"v1": webRep.Total}))
	assert.Check(t, apiRep.Bodies["v2"] > 0, apiRep.String())
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", apiPort)), "v2"))
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", webPort)), "v1"))

	assert.Check(t, is.DeepEqual(p.appContainers("api"), p.names("api-r2-1", "api-r2-2"), sortedCmp()))
	assert.Check(t, is.DeepEqual(p.appContainers("web"), p.names("web-r1-1", "web-r1-2"), sortedCmp()))
	all := p.containers("label=io.lifecycle.role=app")
	assert.Check(t, is.DeepEqual(all, p.names("api-r1-1", "api-r1-2", "api-r2-1", "api-r2-2", "web-r1-1", "web-r1-2"), sortedCmp()),
		"api's v1 retained for rollback, web's v2 removed")
	h := p.mustLifecycle("history", "--format", "{{.Service}} {{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.DeepEqual(lines(h.stdout), []string{
		"api 1 deployed retained", "api 2 deployed running", "web 1 deployed running", "web 2 rolled-back removed",
	}, sortedCmp()), h.stdout)
}

// TestPolicyGapsStopTheDeployBeforeTheEngine: the settings that the engine accepts but
// would not enforce as the compose file reads are refused before any engine write, so
// nothing the post-deploy verification would catch reaches a container. This engine
// (cgroup v1 with every controller, no `docker info` warning) drops no limit, so no
// container can fail the verification by the engine alone; the two real gaps are
// settings the engine takes at their word (the test shows what it does with them):
//   - pids_limit: -1 with x-lifecycle.policy.defaults.pids: the default does not replace
//     an explicit unlimited, and the engine stores no PIDs limit at all;
//   - security_opt [no-new-privileges:true, no-new-privileges:false]: the engine applies
//     the last entry, so the process can gain privileges.
//
// Each stops the deploy naming the service and the setting, with v1 serving untouched
// under load; the corrected file then deploys, is verified on the engine, and the
// running containers show the limits in force.
func TestPolicyGapsStopTheDeployBeforeTheEngine(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	yaml := func(version, extra string) string {
		return fmt.Sprintf(`
x-lifecycle:
  policy:
    require: [limits, no-new-privileges]
    defaults: {memory: 64M, cpus: "0.5", pids: 64}
services:
  web:
    image: {{image:%s}}
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy: {replicas: 2}
%s
`, version, port, extra)
	}
	nnp := `    security_opt: ["no-new-privileges:true"]`
	p := s.newProject(t, yaml("v1", nnp))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Policy verified: 2 new containers run as the policy requires"), r.stderr)
	waitAnswers(t, port, "v1", 30*time.Second)

	// What the engine does with the two settings, on a container of its own.
	probe := func(opts ...string) (pidsLimit, noNewPrivs string) {
		t.Helper()
		probePort := freePort(t)
		args := append([]string{"run", "-d", "--label", "com.docker.compose.project=" + p.name,
			"-p", fmt.Sprintf("127.0.0.1:%d:8080", probePort)}, opts...)
		r := p.s.docker(t, p.dir, nil, append(args, imageRef("v1"))...)
		assert.Assert(t, r.code == 0, r.String())
		id := strings.TrimSpace(r.stdout)
		waitAnswers(t, probePort, "v1", 30*time.Second)
		status := get(t, fmt.Sprintf("http://127.0.0.1:%d/file?path=/proc/self/status", probePort))
		for _, l := range lines(status) {
			if v, ok := strings.CutPrefix(l, "NoNewPrivs:"); ok {
				noNewPrivs = strings.TrimSpace(v)
			}
		}
		return p.inspect("{{.HostConfig.PidsLimit}}", id), noNewPrivs
	}
	pids, _ := probe("--pids-limit", "-1")
	assert.Check(t, is.Equal(pids, "<nil>"), "the engine keeps no PIDs limit for -1")
	_, nnpOn := probe("--security-opt", "no-new-privileges:true", "--security-opt", "no-new-privileges:false")
	assert.Check(t, is.Equal(nnpOn, "0"), "the engine applies the last no-new-privileges entry")

	load := startRateLoad(t, port, "/", loadRate, 5*time.Minute)
	before := p.containers()
	for _, tc := range []struct{ name, extra, want string }{
		{"unlimited pids", nnp + "\n    pids_limit: -1", `service "web": limits (CIS 5.29): deploy.resources.limits lacks pids (CIS 5.29)`},
		{"no-new-privileges undone", `    security_opt: ["no-new-privileges:true", "no-new-privileges:false"]`,
			`service "web": no-new-privileges (CIS 5.26): security_opt: "no-new-privileges:false" lets processes gain privileges`},
	} {
		p.write(yaml("v2", tc.extra))
		r := p.lifecycle("deploy")
		assert.Check(t, is.Equal(r.code, 1), "%s: %s", tc.name, r)
		assert.Check(t, is.Contains(r.stderr, "policy violations stop the deploy: 1 found"), "%s: %s", tc.name, r)
		assert.Check(t, is.Contains(r.stderr, tc.want), "%s: %s", tc.name, r)
		assert.Check(t, is.DeepEqual(p.containers(), before, sortedCmp()), "%s: nothing reached the engine", tc.name)
		lint := p.lifecycle("lint")
		assert.Check(t, is.Equal(lint.code, 1), "%s: lint says the same: %s", tc.name, lint)
	}

	// The corrected file converges: v2 with the defaults' limits, verified on the engine
	// and in force in the containers.
	p.write(yaml("v2", nnp))
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Policy verified: 2 new containers run as the policy requires"), r.stderr)
	time.Sleep(time.Second)
	rep := load.stop()
	t.Logf("two refused deploys, then v1 -> v2: %s", rep)
	p.logRouterErrors(rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.DeepEqual(p.appContainers("web"), p.names("web-r2-1", "web-r2-2"), sortedCmp()))
	for _, c := range p.appContainers("web") {
		assert.Check(t, is.Equal(p.inspect("{{.HostConfig.PidsLimit}} {{.HostConfig.Memory}} {{.HostConfig.NanoCPUs}}", c), "64 67108864 500000000"), c)
	}
	status := get(t, fmt.Sprintf("http://127.0.0.1:%d/file?path=/proc/self/status", port))
	assert.Check(t, is.Contains(status, "NoNewPrivs:\t1"), status)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/file?path=/sys/fs/cgroup/pids/pids.max", port)), "64"))
	h := p.mustLifecycle("history", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "2 deployed running\n1 deployed retained\n"), "the refused deploys left no record")
	assert.Check(t, is.Contains(p.mustLifecycle("deploy").stdout, "up to date"))
}
