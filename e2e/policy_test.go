package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestPolicyStopsDeployAndListsEveryViolation(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
x-lifecycle:
  policy:
    require: [healthcheck, read-only]
services:
  app:
    image: {{image:v1}}
    privileged: true
  ok:
    image: {{image:v1}}
    read_only: true
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms}
`)
	for _, args := range [][]string{{"deploy"}, {"plan"}, {"deploy", "--dry-run"}} {
		r := p.lifecycle(args...)
		assert.Check(t, r.code != 0, r.String())
		for _, want := range []string{"policy violations stop the deploy: 3 found",
			`service "app": privileged (CIS 5.5)`, `service "app": healthcheck (CIS 5.27, 4.6)`, `service "app": read-only (CIS 5.13)`, "x-lifecycle.allow"} {
			assert.Check(t, is.Contains(r.stderr, want), "%v", args)
		}
		assert.Check(t, !strings.Contains(r.stderr, `service "ok"`), r.stderr)
	}
	assert.Check(t, is.Len(p.objects(), 0), "nothing reached the engine")

	lint := p.lifecycle("lint", "--format", "json")
	assert.Check(t, is.Equal(lint.code, 1), lint.String())
	var doc struct {
		Findings []struct{ Rule, Level, Service, CIS string }
		Blocking int
	}
	assert.NilError(t, json.Unmarshal([]byte(lint.stdout), &doc), lint.stdout)
	assert.Check(t, is.Equal(doc.Blocking, 3))

	sarif := p.lifecycle("lint", "--format", "sarif")
	var log struct {
		Version string
		Runs    []struct {
			Results []struct{ RuleID, Level string }
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(sarif.stdout), &log))
	assert.Check(t, is.Equal(log.Version, "2.1.0"))
	assert.Check(t, len(log.Runs) == 1 && len(log.Runs[0].Results) >= 3)

	// Exceptions with a reason let the deploy through; lint shows them as allowed.
	p.write(`
services:
  app:
    image: {{image:v1}}
    privileged: true
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms}
    x-lifecycle:
      allow: [{rule: privileged, reason: "e2e: proves exceptions work"}]
`)
	p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(p.inspect("{{.HostConfig.Privileged}}", p.name+"-app-r1-1"), "true"))
	r := p.mustLifecycle("lint")
	assert.Check(t, is.Contains(r.stdout, "allowed"))
}

func TestPolicyTypoFailsBeforeAnyEngineCall(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
x-lifecycle:
  policy: {deny: [privilegd]}
services:
  app: {image: {{image:v1}}}
`)
	// An unreachable engine proves no engine call happens before the error.
	p.env = []string{"DOCKER_HOST=unix:///tmp/lifecycle-e2e-no-engine.sock"}
	for _, cmd := range []string{"deploy", "plan", "lint"} {
		r := p.lifecycle(cmd)
		assert.Check(t, r.code != 0, r.String())
		assert.Check(t, is.Contains(r.stderr, "privilegd"), cmd)
		assert.Check(t, is.Contains(r.stderr, "privileged"), "the valid ids are listed: %s", r.stderr)
		assert.Check(t, !strings.Contains(r.stderr, "cannot connect"), r.stderr)
	}
	p.write(`
services:
  app:
    image: {{image:v1}}
    x-lifecycle: {allow: [{rule: privileged}]}
`)
	r := p.lifecycle("plan")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stderr, "reason"), r.stderr)
}

// TestPolicyIsVerifiedOnTheEngine deploys a service that meets a strict policy and checks
// that the deploy verified it on what the engine runs.
func TestPolicyIsVerifiedOnTheEngine(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
x-lifecycle:
  policy:
    require: [read-only, no-new-privileges, limits, non-root, healthcheck]
    defaults: {memory: 64M, cpus: "0.25", pids: 64}
services:
  app:
    image: {{image:v1}}
    read_only: true
    security_opt: ["no-new-privileges:true"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms}
`)
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Policy verified: 1 new containers run as the policy requires"), r.stderr)
	assert.Check(t, is.Equal(p.inspect("{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", p.name+"-app-r1-1"), "true 67108864 64"))
}
