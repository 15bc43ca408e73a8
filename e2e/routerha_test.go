package e2e

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// routerHAProject is one web service with 2 replicas behind the router; %[1]s is the
// image version, %[2]d the published port.
const routerHAProject = `
services:
  web:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy:
      replicas: 2
      update_config: {parallelism: 2}
`

// routerProcessKillBudget is the bound on failed requests when the router
// process dies under 200 req/s: those in flight on the dead process.
const routerProcessKillBudget = 5

// routerWorkerPids are the host PIDs of the router processes (`agent router-worker`)
// in the router container, from `docker top` (the supervisor, PID 1 in the container,
// is `agent router`).
func routerWorkerPids(t *testing.T, p *project) []int {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "top", p.router(), "-eo", "pid,args")
	assert.Assert(t, r.code == 0, r.String())
	var pids []int
	for _, line := range lines(r.stdout)[1:] { // after the header
		fields := strings.Fields(line)
		if len(fields) >= 3 && fields[2] == "router-worker" {
			pid, err := strconv.Atoi(fields[0])
			assert.NilError(t, err, line)
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRouterProcessKilledUnderLoad: the router process SIGKILLed in the middle of
// 3,000 requests at 200 req/s: at most routerProcessKillBudget fail (the ones in
// flight on the dead process; none refused), a new router process serves within 2 s,
// and it is driven as before (a rolling deploy through its control socket, under the
// same load). The supervisor SIGKILLed too: the engine restarts the container.
func TestRouterProcessKilledUnderLoad(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(routerHAProject, "v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	before := routerWorkerPids(t, p)
	assert.Assert(t, is.Len(before, 1), "one router process in %s", p.router())

	const duration = 15 * time.Second
	load := startRateLoad(t, port, "/", loadRate, duration)
	time.Sleep(3 * time.Second)
	killed := time.Now()
	assert.NilError(t, syscall.Kill(before[0], syscall.SIGKILL))
	var after []int
	for time.Since(killed) < 5*time.Second {
		if after = routerWorkerPids(t, p); len(after) == 1 && after[0] != before[0] {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := time.Since(killed) // an upper bound: docker top takes tens of ms
	assert.Assert(t, is.Len(after, 1), "no new router process 5 s after the kill")
	assert.Check(t, after[0] != before[0])

	// The restarted process has the routes and its control socket: a rolling deploy
	// through it, still under the load, switches the traffic.
	p.write(fmt.Sprintf(routerHAProject, "v2", port))
	p.mustLifecycle("deploy")
	select {
	case <-load.done:
	case <-time.After(duration + 15*time.Second):
		t.Fatal("the load did not end")
	}
	rep := load.stop()
	// The first request sent after the kill that succeeded: when its answer came.
	firstServed := time.Duration(-1)
	load.mu.Lock()
	for _, r := range load.results {
		if r.at.After(killed) && !r.failed() {
			if d := r.at.Add(r.latency).Sub(killed); firstServed < 0 || d < firstServed {
				firstServed = d
			}
		}
	}
	load.mu.Unlock()
	restart := routerRestartAfter(t, p, killed)
	started := restart.started
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	t.Logf("router process %d SIGKILLed at 200 req/s: %s; after the kill, the router's log: exit seen %s, new process %d spawned %s, serving %s; seen in docker top %s; first request sent after the kill answered %s",
		before[0], rep, ms(restart.exited), after[0], ms(restart.spawned), ms(started), ms(seen), ms(firstServed))
	assert.Check(t, rep.Total >= 2900, "the load fell behind: %s", rep)
	assert.Check(t, rep.Failed <= routerProcessKillBudget, rep.String())
	for kind := range rep.Errors {
		assert.Check(t, !strings.Contains(kind, "connection refused"), "a connection was refused: %s", rep)
	}
	assert.Check(t, started < 2*time.Second, "the new router process started %s after the kill", started)
	assert.Check(t, firstServed >= 0 && firstServed < 2*time.Second, "first answer after the kill: %s", firstServed)
	assert.Check(t, rep.Bodies["v2"] > 0, "the deploy after the kill did not switch the traffic: %s", rep)
	assert.Check(t, is.Equal(inspectRestartCount(t, p), 0), "the router container itself restarted")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))

	// Should the supervisor itself die, the container's restart policy still brings
	// the router back (with its saved routes).
	supervisor, err := strconv.Atoi(p.inspect("{{.State.Pid}}", p.router()))
	assert.NilError(t, err)
	assert.NilError(t, syscall.Kill(supervisor, syscall.SIGKILL))
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if inspectRestartCount(t, p) == 1 {
			return poll.Success()
		}
		return poll.Continue("the router container has not restarted")
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(100*time.Millisecond))
	waitAnswers(t, port, "v2", 20*time.Second)
}

// routerRestart is what the router container logged after a kill at t0, as offsets
// from t0: the supervisor saw the process exit, started a new one, and the new one
// applied its routes and accepts ("router started").
type routerRestart struct{ exited, spawned, started time.Duration }

func routerRestartAfter(t *testing.T, p *project, t0 time.Time) routerRestart {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "logs", "--since", t0.Add(-time.Second).Format(time.RFC3339Nano), p.router())
	assert.Assert(t, r.code == 0, r.String())
	at := map[string]time.Duration{}
	for _, line := range lines(r.stderr) {
		var entry struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Time.After(t0) {
			if _, seen := at[entry.Msg]; !seen {
				at[entry.Msg] = entry.Time.Sub(t0)
			}
		}
	}
	started, ok := at["router started"]
	assert.Assert(t, ok, "no \"router started\" in %s's log after %s:\n%s", p.router(), t0.Format(time.RFC3339Nano), r.stderr)
	return routerRestart{exited: at["router process exited; starting it again"], spawned: at["router process started"], started: started}
}

func inspectRestartCount(t *testing.T, p *project) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(p.inspect("{{.RestartCount}}", p.router())))
	assert.NilError(t, err)
	return n
}
