package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// multiHostWeb is one health-checked web service deployed to three contexts: h1 and
// h2 in the first batch, h3 one second later (docs/multihost.md). No port is
// published: the test reads what runs from each engine.
const multiHostWeb = `
x-lifecycle:
  hosts: {contexts: [h1, h2, h3], batch: 2, wait: 1s}
services:
  web:
    image: {{image:VERSION}}
    environment: {QUIET: "1"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 1s, timeout: 3s, retries: 2}
    stop_grace_period: 2s
`

// TestMultiHostAllOrNothing deploys v1 to three engines (the main one and two second
// dockerds, each in a network namespace of its own), then v2, which fails its health
// gate on h3 only (there the tag v2 is an image with NEVER_HEALTHY set): h3 rolls
// itself back, the deploy rolls h1 and h2 (already on v2) back, exits 3, and all
// three run v1 again well within 60 s.
func TestMultiHostAllOrNothing(t *testing.T) {
	s := setup(t)
	begin := time.Now()
	d2, d3 := startDockerd(t, s), startDockerd(t, s)
	for _, d := range []*swarmDaemon{d2, d3} {
		d.copyImage(imageRef("v1"))
		d.copyImage(imageRef("v2"))
	}
	// On h3 alone, v2 is never healthy.
	d3.mustDocker("create", "--name", "broken", imageRef("v2"))
	d3.mustDocker("commit", "--change", "ENV NEVER_HEALTHY=1", "broken", imageRef("v2"))
	d3.mustDocker("rm", "broken")

	// A DOCKER_CONFIG of the test's own, with the suite's plugin and one context per engine.
	config := t.TempDir()
	assert.NilError(t, os.Symlink(filepath.Join(s.configDir, "cli-plugins"), filepath.Join(config, "cli-plugins")))
	for name, host := range map[string]string{"h1": s.host, "h2": d2.host, "h3": d3.host} {
		r := s.docker(t, "", []string{"DOCKER_CONFIG=" + config}, "context", "create", name, "--docker", "host="+host)
		assert.Equal(t, r.code, 0, r.String())
	}
	p := s.newProject(t, strings.ReplaceAll(multiHostWeb, "VERSION", "v1"))
	p.env = append(p.env, "DOCKER_CONFIG="+config)
	engines := map[string]func(args ...string) string{
		"h1": func(args ...string) string {
			r := s.docker(t, "", nil, args...)
			assert.Equal(t, r.code, 0, r.String())
			return r.stdout
		},
		"h2": d2.mustDocker, "h3": d3.mustDocker,
	}
	// running is the image of each running container of the project on each host.
	running := func() map[string]string {
		out := map[string]string{}
		for h, docker := range engines {
			out[h] = strings.TrimSpace(docker("ps", "--filter", "label=com.docker.compose.project="+p.name, "--format", "{{.Image}}"))
		}
		return out
	}
	t.Logf("three engines ready in %s", time.Since(begin).Round(time.Millisecond))

	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name+" to 3 hosts"), r.String())
	v1 := imageRef("v1")
	assert.Check(t, is.DeepEqual(running(), map[string]string{"h1": v1, "h2": v1, "h3": v1}))
	t.Logf("v1 on three hosts at %s", time.Since(begin).Round(time.Millisecond))

	again := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(again.stdout, "Project "+p.name+" is up to date on 3 hosts: nothing to do."), again.String())

	p.write(strings.ReplaceAll(multiHostWeb, "VERSION", "v2"))
	dry := p.mustLifecycle("deploy", "--dry-run")
	assert.Check(t, strings.HasPrefix(dry.stdout, "batch 1/2: h1, h2 (2 at a time)\nwait 1s\nbatch 2/2: h3 (1 at a time)\n"), dry.String())
	// Each host's plan: create, start and wait for web r2 because its image changed.
	assert.Check(t, is.Equal(strings.Count(dry.stdout, "image changed: "+v1+" -> "+imageRef("v2")), 9), dry.String())
	assert.Check(t, is.Equal(p.mustLifecycle("plan").stdout, dry.stdout))
	var dryJSON struct {
		Batches [][]string
		Wait    string
		Plans   map[string]struct{ Steps []struct{ Action string } }
	}
	assert.NilError(t, json.Unmarshal([]byte(p.mustLifecycle("plan", "--format", "json").stdout), &dryJSON))
	assert.Check(t, is.DeepEqual(dryJSON.Batches, [][]string{{"h1", "h2"}, {"h3"}}))
	assert.Check(t, is.Equal(dryJSON.Wait, "1s"))
	for _, h := range []string{"h1", "h2", "h3"} {
		assert.Check(t, is.Len(dryJSON.Plans[h].Steps, 4), h)
	}

	failStart := time.Now()
	r = p.lifecycle("deploy")
	took := time.Since(failStart)
	assert.Check(t, is.Equal(r.code, 3), r.String())
	assert.Check(t, is.Contains(r.stderr, "deploy failed on host h3; hosts h1, h2 rolled back"), r.String())
	for _, line := range []string{"h1                   batch 1  reverted         web", "h2                   batch 1  reverted         web", "h3                   batch 2  failed           web  (web rolled back"} {
		assert.Check(t, is.Contains(r.stdout, line), r.String())
	}
	assert.Check(t, is.DeepEqual(running(), map[string]string{"h1": v1, "h2": v1, "h3": v1}))
	for h, docker := range engines {
		// Served: v1's container answers its health check from inside its namespace.
		c := strings.TrimSpace(docker("ps", "-q", "--filter", "label=com.docker.compose.project="+p.name))
		docker("exec", c, "/testapp", "healthcheck")
		t.Logf("%s serves v1", h)
	}
	assert.Check(t, took < 60*time.Second, "v2 failed and every host was back on v1 after %s", took)
	t.Logf("v2 failed on h3 and all three run v1 again %s after the deploy started (total %s)", took.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))

	// ps and history across the hosts: a HOST column, the key Host in JSON.
	ps := p.mustLifecycle("ps", "--format", "{{.Host}} {{.Service}} {{.Revision}} {{.State}}")
	assert.Check(t, is.Equal(ps.stdout, "h1 web 1 running\nh2 web 1 running\nh3 web 1 running\n"), ps.String())
	history := p.mustLifecycle("history", "--format", "json")
	var triggers []string
	for _, line := range strings.Split(strings.TrimSpace(history.stdout), "\n") {
		var row struct{ Host, Trigger, Result string }
		assert.NilError(t, json.Unmarshal([]byte(line), &row), line)
		triggers = append(triggers, row.Host+" "+row.Result+" "+row.Trigger)
	}
	assert.Check(t, is.DeepEqual(triggers, []string{
		"h1 rollback hosts-rollback", "h1 deployed ", "h1 deployed ",
		"h2 rollback hosts-rollback", "h2 deployed ", "h2 deployed ",
		"h3 rolled-back ", "h3 deployed ",
	}), history.stdout)

	// rollback across the hosts, all or nothing too: h3 has no revision to go back to
	// (its v2 failed), so h1 and h2, back on v2 in the first batch, return to v1.
	r = p.lifecycle("rollback")
	assert.Check(t, is.Equal(r.code, 3), r.String())
	assert.Check(t, is.Contains(r.stderr, "rollback failed on host h3; hosts h1, h2 rolled back"), r.String())
	assert.Check(t, is.DeepEqual(running(), map[string]string{"h1": v1, "h2": v1, "h3": v1}))
	t.Logf("done in %s", time.Since(begin).Round(time.Millisecond))
}
