package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// guardRollbackProject is one routed web service on port %[1]d, image %[2]s, with the
// extra environment %[3]s; the guard restarts once (budget 1), then rolls a revision
// deployed within 5 min back.
const guardRollbackProject = `
services:
  web:
    image: {{image:%[2]s}}
    ports: ["127.0.0.1:%[1]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 2}
    environment: {QUIET: "1"%[3]s}
    x-lifecycle:
      guard: {backoff: {start: 1s}, budget: 1, window: 1m, rollback-window: 5m}
`

// TestGuardRollsBackABadRevision: revision 2 passes its deploy gate and turns unhealthy
// 4 s after each start. The guard restarts it once (its budget), and when it fails
// again, 4 s later, rolls the service back to revision 1 through the router (no failed
// request through the router while it does), says so in one alert, and history records
// the rollback with the trigger guard-rollback and why; revision 1 serves.
func TestGuardRollsBackABadRevision(t *testing.T) {
	s := setup(t)
	defer logDuration(t, time.Now())
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(guardRollbackProject, port, "v1", ""))
	p.mustLifecycle("deploy")
	p.write(fmt.Sprintf(guardRollbackProject, port, "v2", `, UNHEALTHY_AFTER: 4s`))
	deployed := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("deploy of revision 2 took %s", time.Since(deployed).Round(100*time.Millisecond))
	waitAnswers(t, port, "v2", 10*time.Second)
	g := p.startGuard()
	load := startRateLoad(t, port, "/", 50, time.Minute)

	a, ok := g.next("unhealthy", 20*time.Second)
	assert.Assert(t, ok, "no restart within 20s")
	assert.Assert(t, is.Equal(a.Action, "restarted"), "%+v", a)
	rb, ok := g.next("unhealthy", 20*time.Second)
	assert.Assert(t, ok, "no rollback within 20s of the restart")
	assert.Assert(t, is.Equal(rb.Action, "rolled-back"), "%+v", rb)
	assert.Check(t, is.Equal(rb.Service, "web"))
	assert.Check(t, is.Equal(rb.Container, a.Container))
	assert.Check(t, is.Equal(rb.Revision, 2))
	assert.Check(t, is.Equal(rb.RollbackTo, 1))
	assert.Check(t, is.Contains(rb.Reason, "rolled the service back to revision 1"), rb.Reason)
	assert.Assert(t, rb.RollbackBegan != nil, "%+v", rb)
	t.Logf("budget spent at %s; rollback done %s later (%s after the deploy of revision 2)", rb.RollbackBegan.Format(time.RFC3339Nano),
		rb.Time.Sub(*rb.RollbackBegan).Round(time.Millisecond), rb.Time.Sub(deployed).Round(100*time.Millisecond))

	waitAnswers(t, port, "v1", 5*time.Second)
	settled := time.Now()
	time.Sleep(time.Second)
	rep := load.stop()
	during := load.window(*rb.RollbackBegan, rb.Time.Add(500*time.Millisecond))
	after := load.window(settled, settled.Add(time.Minute))
	t.Logf("load through the router during the rollback: %s", during)
	t.Logf("after: %s; whole run (the restart of the only revision 2 container included): %s", after, rep)
	p.logRouterErrors(during)
	assert.Check(t, during.Total > 0, during.String())
	assert.Check(t, is.Equal(during.Failed, 0), during.String())
	assert.Check(t, is.Equal(after.Failed, 0), after.String())
	assert.Check(t, is.DeepEqual(after.Bodies, map[string]int{"v1": after.Total}), after.String())

	h := p.mustLifecycle("history", "web", "--format", "{{.Revision}} {{.Result}} {{.Trigger}} | {{.Reason}}")
	rows := lines(h.stdout)
	assert.Assert(t, len(rows) >= 3, h.stdout)
	assert.Check(t, strings.HasPrefix(rows[0], "1 rollback guard-rollback | guard: "+a.Container+" (web) still unhealthy after 1 restarts"), rows[0])
	assert.Check(t, is.Contains(rows[0], "within 1m0s (x-lifecycle.guard budget 1); revision 2 was deployed"), rows[0])
	assert.Check(t, is.Contains(rows[0], "(rollback-window 5m0s)"), rows[0])
	assert.Check(t, strings.HasPrefix(rows[1], "2 deployed "), h.stdout)
	// Revision 2 is retained (stopped), revision 1 runs.
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", a.Container), "exited"))
	if a, ok := g.next("unhealthy", 2*time.Second); ok {
		t.Errorf("an alert after the rollback: %+v", a)
	}
}
