package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// swarmBlueGreen is a blue-green web service of 2 replicas behind the router, which
// publishes its port 8080 (in host mode, inside the swarm daemon's own network
// namespace), and a client service that only sleeps: the load runs inside its
// container, through the router, on the project's overlay network.
const swarmBlueGreen = `
services:
  web:
    image: {{image:VERSION}}
    environment: {QUIET: "1"ENV}
    ports: ["8080:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 1s, timeout: 3s, retries: 3}
    stop_grace_period: 5s
    deploy: {replicas: 2, endpoint_mode: MODE}
    x-lifecycle: {strategy: blue-green, drain: 5s, wait-timeout: 40s}
  client:
    image: {{image:v1}}
    command: ["sleep", "10m"]
`

func swarmBlueGreenProject(version, env string) string {
	return strings.NewReplacer("VERSION", version, "ENV", env, "MODE", swarmEndpointMode()).Replace(swarmBlueGreen)
}

// swarmLoad runs `testapp load` in the client's container against the router and
// returns its report; bounded by rate × duration requests.
type swarmLoadReport struct {
	Sent, Failed int
	Bodies       map[string]int
	Errors       map[string]int
}

func swarmLoad(t *testing.T, d *swarmDaemon, client, url, rate, duration string) (wait func() swarmLoadReport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	load := exec.CommandContext(ctx, "docker", "-H", d.host, "exec", client, "/testapp", "load", url, rate, duration)
	var out strings.Builder
	load.Stdout = &out
	assert.NilError(t, load.Start())
	return func() swarmLoadReport {
		t.Helper()
		defer cancel()
		assert.NilError(t, load.Wait(), out.String())
		var rep swarmLoadReport
		assert.NilError(t, json.Unmarshal([]byte(lastLine(out.String())), &rep), out.String())
		return rep
	}
}

// TestSwarmBlueGreen deploys a blue-green service on Swarm (the router a Swarm service,
// each revision another), switches v1 → v2 under a bounded load from a client on the
// overlay network (no request fails, both versions answer, the old revision is removed),
// then deploys a version that never becomes healthy: deploy exits 3, the failed revision
// is removed and v2 still serves.
func TestSwarmBlueGreen(t *testing.T) {
	// Parallel: its load runs inside its own daemon's network namespace, and the
	// suite must stay under CI's 30 minutes (serial, the three took about 5 of them).
	t.Parallel()
	s := setup(t)
	begin := time.Now()
	d := startSwarm(t, s)
	d.copyImage(imageRef("v1"))
	d.copyImage(imageRef("v2"))
	p := swarmProjectOn(t, s, d, swarmBlueGreenProject("v1", ""))
	router, web := p.name+"_lifecycle-router", p.name+"_web"

	dry := p.mustLifecycle("deploy", "--dry-run")
	assert.Assert(t, strings.Contains(dry.stdout, "create-router   "+router+": missing: publishes 8080/tcp"), dry.String())
	assert.Assert(t, strings.Contains(dry.stdout, "create-service  "+web+"-r1: blue-green web, revision 1: 2 replicas of "+imageRef("v1")), dry.String())
	assert.Assert(t, strings.Contains(dry.stdout, "switch-traffic  "+router+": web: nothing → revision 1"), dry.String())
	first := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("first deploy (router + revision 1) took %s", time.Since(first).Round(time.Millisecond))
	services := d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Equal(t, strings.TrimSpace(services), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r1 2/2")
	again := p.mustLifecycle("deploy")
	assert.Assert(t, strings.Contains(again.stdout, "up to date"), again.String())

	p.write(swarmBlueGreenProject("v2", ""))
	dry = p.mustLifecycle("deploy", "--dry-run")
	assert.Assert(t, strings.Contains(dry.stdout, "create-service  "+web+"-r2: blue-green web, revision 2: 2 replicas of "+imageRef("v2")+" (was "+imageRef("v1")+")"), dry.String())
	assert.Assert(t, strings.Contains(dry.stdout, "switch-traffic  "+router+": web: revision 1 → revision 2"), dry.String())
	assert.Assert(t, strings.Contains(dry.stdout, "remove-service  "+web+"-r1: revision 1, old colour of web"), dry.String())

	client := swarmTaskContainer(t, d, p.name+"_client")
	url := "http://" + router + ":8080/"
	// Bounded: at most 20 × 15 = 300 requests, 15 s: the switch takes 6–9 s here.
	wait := swarmLoad(t, d, client, url, "20", "15s")
	time.Sleep(time.Second) // v1 answers first
	switched := time.Now()
	r := p.mustLifecycle("deploy")
	t.Logf("blue-green deploy v1 → v2 took %s\n%s", time.Since(switched).Round(time.Millisecond), r.stderr)
	rep := wait()
	t.Logf("load during the switch: %+v", rep)
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Assert(t, rep.Sent >= 240, "sent %d", rep.Sent)
	assert.Assert(t, rep.Bodies["v1"] > 0 && rep.Bodies["v2"] > 0, "bodies %v", rep.Bodies)
	services = d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Equal(t, strings.TrimSpace(services), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r2 2/2")

	// A version that never becomes healthy: its first failed task ends the deploy before
	// the switch; the revision is removed and v2 serves on.
	p.write(swarmBlueGreenProject("v2", `, NEVER_HEALTHY: "1"`))
	failed := time.Now()
	r = p.lifecycle("deploy")
	t.Logf("deploy of a never-healthy version exited %d after %s", r.code, time.Since(failed).Round(time.Millisecond))
	assert.Equal(t, r.code, 3, r.String())
	assert.Assert(t, strings.Contains(r.stderr, "web rolled back: the previous revision serves again and the new containers were removed"), r.String())
	assert.Assert(t, strings.Contains(r.stderr, "revision 3 of web: task "+web+"-r3."), r.String())
	services = d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Equal(t, strings.TrimSpace(services), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r2 2/2")
	// ps names the revision service by its compose service and revision (the labels
	// deploy set), the router as the router.
	var shown []string
	for _, task := range swarmPs(t, p) {
		shown = append(shown, strings.Join([]string{task.Service, task.Revision, task.Role, task.SwarmService, task.State}, " "))
	}
	assert.DeepEqual(t, shown, []string{
		"client  app " + p.name + "_client running",
		"router  router " + router + " running",
		"web 2 app " + web + "-r2 running", "web 2 app " + web + "-r2 running",
	})
	rep = swarmLoad(t, d, client, url, "10", "2s")()
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Equal(t, rep.Bodies["v2"], rep.Sent, "bodies %v", rep.Bodies)

	p.mustLifecycle("down")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), "")
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}

// swarmCanary is swarmBlueGreen as a canary: one step of 50 % for 4 s, judged on at
// least 10 requests with no error allowed, then the switch.
const swarmCanary = `
services:
  web:
    image: {{image:VERSION}}
    environment: {QUIET: "1"ENV}
    ports: ["8080:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 1s, timeout: 3s, retries: 3}
    stop_grace_period: 5s
    deploy: {replicas: 2, endpoint_mode: MODE}
    x-lifecycle:
      strategy: canary
      drain: 5s
      wait-timeout: 40s
      canary: {steps: [{weight: 50, pause: 4s}], analysis: {min-requests: 10, max-error-rate: 0}}
  client:
    image: {{image:v1}}
    command: ["sleep", "10m"]
`

func swarmCanaryProject(version, env string) string {
	return strings.NewReplacer("VERSION", version, "ENV", env, "MODE", swarmEndpointMode()).Replace(swarmCanary)
}

// TestSwarmCanary deploys a canary service on Swarm: v1, then v2 under a bounded load
// (50 % for 4 s, judged, then all of it: no request fails, both versions answer), then
// a version whose answers all fail: the analysis fails, deploy exits 3, traffic goes
// back to v2 and the canary's revision is removed.
func TestSwarmCanary(t *testing.T) {
	t.Parallel() // as TestSwarmBlueGreen
	s := setup(t)
	begin := time.Now()
	d := startSwarm(t, s)
	d.copyImage(imageRef("v1"))
	d.copyImage(imageRef("v2"))
	p := swarmProjectOn(t, s, d, swarmCanaryProject("v1", ""))
	router, web := p.name+"_lifecycle-router", p.name+"_web"
	p.mustLifecycle("deploy")
	t.Logf("first deploy (router + revision 1) took %s", time.Since(begin).Round(time.Millisecond))

	p.write(swarmCanaryProject("v2", ""))
	dry := p.mustLifecycle("deploy", "--dry-run")
	assert.Assert(t, strings.Contains(dry.stdout, "canary-step     "+router+": web: 50% to revision 2 for 4s, then judge it on the router's counters"), dry.String())
	client := swarmTaskContainer(t, d, p.name+"_client")
	url := "http://" + router + ":8080/"
	// Bounded: at most 20 × 18 = 360 requests, 18 s.
	wait := swarmLoad(t, d, client, url, "20", "18s")
	time.Sleep(time.Second)
	deployed := time.Now()
	r := p.mustLifecycle("deploy")
	t.Logf("canary deploy v1 → v2 took %s\n%s", time.Since(deployed).Round(time.Millisecond), r.stderr)
	assert.Assert(t, strings.Contains(r.stderr, "Analysis passed"), r.String())
	rep := wait()
	t.Logf("load during the canary: %+v", rep)
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Assert(t, rep.Bodies["v1"] > 0 && rep.Bodies["v2"] > 0, "bodies %v", rep.Bodies)
	services := d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Equal(t, strings.TrimSpace(services), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r2 2/2")

	// Every answer of the canary fails (ERROR_RATE=1; its healthcheck passes).
	p.write(swarmCanaryProject("v1", `, ERROR_RATE: "1"`))
	bad := swarmLoad(t, d, client, url, "20", "14s")
	failed := time.Now()
	r = p.lifecycle("deploy")
	t.Logf("deploy of a failing canary exited %d after %s", r.code, time.Since(failed).Round(time.Millisecond))
	bad()
	assert.Equal(t, r.code, 3, r.String())
	assert.Assert(t, strings.Contains(r.stderr, "web rolled back"), r.String())
	assert.Assert(t, strings.Contains(r.stderr, "canary analysis failed: error rate"), r.String())
	services = d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Equal(t, strings.TrimSpace(services), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r2 2/2")
	// ps names the revision service by its compose service and revision (the labels
	// deploy set), the router as the router.
	var shown []string
	for _, task := range swarmPs(t, p) {
		shown = append(shown, strings.Join([]string{task.Service, task.Revision, task.Role, task.SwarmService, task.State}, " "))
	}
	assert.DeepEqual(t, shown, []string{
		"client  app " + p.name + "_client running",
		"router  router " + router + " running",
		"web 2 app " + web + "-r2 running", "web 2 app " + web + "-r2 running",
	})
	rep = swarmLoad(t, d, client, url, "10", "2s")()
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Equal(t, rep.Bodies["v2"], rep.Sent, "bodies %v", rep.Bodies)
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}

// swarmCanarySteps is swarmCanaryProject with other canary steps.
func swarmCanarySteps(version, steps string) string {
	return strings.Replace(swarmCanaryProject(version, ""), "steps: [{weight: 50, pause: 4s}]", "steps: ["+steps+"]", 1)
}

// TestSwarmCanaryControls drives a running canary on Swarm from a second plugin
// invocation, under a bounded load from a client on the overlay network: pause holds a
// 6 s step past its end, abort (while paused) sends everything back to v1, removes the
// canary's revision and the deploy exits 3; promote ends the first of two 5-minute
// steps, skips the second and switches to v3 (revision 2 again). No request fails.
func TestSwarmCanaryControls(t *testing.T) {
	t.Parallel() // as TestSwarmBlueGreen
	s := setup(t)
	begin := time.Now()
	d := startSwarm(t, s)
	for _, v := range []string{"v1", "v2", "v3"} {
		d.copyImage(imageRef(v))
	}
	p := swarmProjectOn(t, s, d, swarmCanarySteps("v1", "{weight: 50, pause: 6s}"))
	router, web := p.name+"_lifecycle-router", p.name+"_web"
	p.mustLifecycle("deploy")
	t.Logf("first deploy (router + revision 1) took %s", time.Since(begin).Round(time.Millisecond))
	client := swarmTaskContainer(t, d, p.name+"_client")
	url := "http://" + router + ":8080/"
	stack := func() string {
		return strings.TrimSpace(d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}"))
	}

	// pause, then abort while paused.
	p.write(swarmCanarySteps("v2", "{weight: 50, pause: 6s}"))
	run := p.startTimedLifecycle("deploy")
	run.waitLine(t, "50% to revision 2", 90*time.Second)
	// Bounded: at most 20 × 14 = 280 requests, 14 s.
	wait := swarmLoad(t, d, client, url, "20", "14s")
	r := p.mustLifecycle("pause", "web")
	assert.Assert(t, strings.Contains(r.stdout, "Paused the canary of web"), r.String())
	run.waitLine(t, "Paused", 10*time.Second)
	time.Sleep(8 * time.Second) // past the 6 s step
	assert.Assert(t, run.running(), "the paused canary must still be running")
	aborted := time.Now()
	r = p.mustLifecycle("abort", "web")
	assert.Assert(t, strings.Contains(r.stdout, "Aborting the canary of web"), r.String())
	code, out := run.wait()
	t.Logf("abort ended the deploy %s after it was sent (exit %d)\n%s", time.Since(aborted).Round(time.Millisecond), code, out)
	assert.Equal(t, code, 3, out)
	assert.Assert(t, strings.Contains(out, "web rolled back"), out)
	assert.Assert(t, strings.Contains(out, "canary aborted by `docker lifecycle abort web`"), out)
	rep := wait()
	t.Logf("load during pause and abort: %+v", rep)
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Assert(t, rep.Bodies["v1"] > 0 && rep.Bodies["v2"] > 0, "bodies %v", rep.Bodies)
	assert.Equal(t, stack(), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r1 2/2")
	rep = swarmLoad(t, d, client, url, "10", "2s")()
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Equal(t, rep.Bodies["v1"], rep.Sent, "bodies %v", rep.Bodies)
	// The deploy took its signals with it: none left, and no canary to abort.
	assert.Equal(t, strings.TrimSpace(d.mustDocker("volume", "ls", "-q", "--filter", "label=io.lifecycle.canary-signal")), "")
	r = p.lifecycle("abort", "web")
	assert.Assert(t, r.code != 0 && strings.Contains(r.stderr, "no canary in progress"), r.String())

	// promote during the first of two 5-minute steps.
	p.write(swarmCanarySteps("v3", "{weight: 20, pause: 5m}, {weight: 50, pause: 5m}"))
	run = p.startTimedLifecycle("deploy")
	// The aborted revision 2 is gone: the next one is 2 again.
	run.waitLine(t, "20% to revision 2", 90*time.Second)
	// Bounded: at most 20 × 8 = 160 requests, 8 s.
	wait = swarmLoad(t, d, client, url, "20", "8s")
	time.Sleep(2 * time.Second) // the canary answers its 20 %
	promoted := time.Now()
	r = p.mustLifecycle("promote", "web")
	assert.Assert(t, strings.Contains(r.stdout, "Promoting the canary of web"), r.String())
	code, out = run.wait()
	t.Logf("promote ended the deploy %s after it was sent (exit %d)\n%s", time.Since(promoted).Round(time.Millisecond), code, out)
	assert.Equal(t, code, 0, out)
	assert.Assert(t, strings.Contains(out, "Promoted"), out)
	assert.Assert(t, strings.Contains(out, "web 50%: promoted by `docker lifecycle promote`"), out)
	assert.Assert(t, !strings.Contains(out, "50% to revision 2"), "the second step ran:\n%s", out)
	rep = wait()
	t.Logf("load during promote: %+v", rep)
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Assert(t, rep.Bodies["v1"] > 0 && rep.Bodies["v3"] > 0, "bodies %v", rep.Bodies)
	assert.Equal(t, stack(), p.name+"_client 1/1\n"+router+" 1/1\n"+web+"-r2 2/2")
	rep = swarmLoad(t, d, client, url, "10", "2s")()
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Equal(t, rep.Bodies["v3"], rep.Sent, "bodies %v", rep.Bodies)
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}
