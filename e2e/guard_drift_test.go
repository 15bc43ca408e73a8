package e2e

import (
	"slices"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestGuardReportsDriftAndPolicy: the guard says nothing of a project as deployed (its
// replica, its router); `docker update --memory` on a replica is a drift alert within
// 2 s naming the setting, deployed and now, and so is `docker network connect`; a
// privileged container started by hand with the project's label is a policy alert
// (lint's privileged rule) and a drift alert (no deploy created it), within 2 s of
// docker run -d returning. The harness removes every container and network with the
// project's label, the privileged container included, pass or fail.
func TestGuardReportsDriftAndPolicy(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	p := s.newProject(t, `
services:
  web:
    image: {{image:v1}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 2}
    environment: {QUIET: "1"}
    restart: unless-stopped
    deploy: {resources: {limits: {memory: 64M}}}
`)
	p.mustLifecycle("deploy")
	g := p.startGuard()
	c := p.appContainers("web")
	assert.Assert(t, is.Len(c, 1))
	security := []string{"policy", "drift", "image-drift"}
	for quiet := time.After(time.Second); ; {
		select {
		case a := <-g.alerts:
			assert.Check(t, !slices.Contains(security, a.Kind), "an alert on the project as deployed: %+v", a)
			continue
		case <-quiet:
		}
		break
	}

	ran := time.Now()
	r := p.s.docker(t, p.dir, nil, "update", "--memory", "96m", c[0])
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	a, ok := g.next("drift", 5*time.Second)
	assert.Assert(t, ok, "no drift alert")
	delay := a.received.Sub(ran)
	t.Logf("drift alert %s after docker update started: %+v", delay.Round(time.Millisecond), a)
	assert.Check(t, delay <= 2*time.Second, "alert after %s", delay)
	assert.Check(t, is.Equal(a.Container, c[0]))
	assert.Check(t, is.Equal(a.Service, "web"))
	assert.Check(t, is.Equal(a.Action, "reported"))
	assert.Check(t, is.Equal(a.Baseline, "deployed"))
	assert.Assert(t, is.Len(a.Changes, 1), "%+v", a.Changes)
	assert.Check(t, is.Equal(a.Changes[0].Setting, "memory"))
	assert.Check(t, is.Equal(a.Changes[0].Deployed, "67108864"))
	assert.Check(t, is.Equal(a.Changes[0].Now, "100663296"))

	// docker network connect to a network of the test's own (labelled: the harness removes it).
	extra := p.name + "-extra"
	r = p.s.docker(t, p.dir, nil, "network", "create", "--label", "com.docker.compose.project="+p.name, extra)
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	ran = time.Now()
	r = p.s.docker(t, p.dir, nil, "network", "connect", extra, c[0])
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	a, ok = g.next("drift", 5*time.Second)
	assert.Assert(t, ok, "no drift alert for docker network connect")
	delay = a.received.Sub(ran)
	t.Logf("drift alert %s after docker network connect started: %+v", delay.Round(time.Millisecond), a.Changes)
	assert.Check(t, delay <= 2*time.Second, "alert after %s", delay)
	var networks string
	for _, ch := range a.Changes {
		if ch.Setting == "networks" {
			networks = ch.Now
		}
	}
	assert.Check(t, is.Contains(networks, extra), "%+v", a.Changes)

	intruder := p.name + "-intruder"
	ran = time.Now()
	r = p.s.docker(t, p.dir, nil, "run", "-d", "--name", intruder, "--privileged", "--network", "none",
		"--label", "com.docker.compose.project="+p.name, "--env", "QUIET=1", imageRef("v1"))
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	started := time.Now() // docker run -d returns once the container started
	t.Logf("docker run -d took %s", started.Sub(ran).Round(time.Millisecond))
	var policy, drift *guardAlert
	for deadline := time.After(5 * time.Second); policy == nil || drift == nil; {
		select {
		case a := <-g.alerts:
			switch {
			case a.Container != intruder:
				t.Logf("alert (skipped): %+v", a)
			case a.Kind == "policy":
				policy = &a
			case a.Kind == "drift":
				drift = &a
			}
		case <-deadline:
			t.Fatalf("within 5 s: policy alert %v, drift alert %v", policy != nil, drift != nil)
		}
	}
	for _, a := range []*guardAlert{policy, drift} {
		delay := a.received.Sub(started)
		t.Logf("%s alert %s after docker run -d returned (%s after it began): %+v", a.Kind, delay.Round(time.Millisecond), a.received.Sub(ran).Round(time.Millisecond), *a)
		assert.Check(t, delay <= 2*time.Second, "alert after %s", delay)
		assert.Check(t, is.Equal(a.Action, "reported"))
	}
	var rules []string
	for _, f := range policy.Findings {
		rules = append(rules, f.Rule)
	}
	assert.Check(t, is.DeepEqual(rules, []string{"privileged"}))
	assert.Check(t, is.Contains(drift.Reason, "no deploy created"))
}
