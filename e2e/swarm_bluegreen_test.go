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
	rep = swarmLoad(t, d, client, url, "10", "2s")()
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Equal(t, rep.Bodies["v2"], rep.Sent, "bodies %v", rep.Bodies)
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}
