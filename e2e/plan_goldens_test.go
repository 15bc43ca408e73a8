package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The behaviours that strategies/testdata/*.golden plan (stop-first, update_config.delay,
// rollback_config, blue-green scale-down-delay, history pruning, canary max-p99), run
// on the real engine: each test checks what its behaviour is about, measured from the
// outside (sampler, load, progress timestamps), not just that the plan ran.

// progressEvent is one line of `--progress json` (docs/x-lifecycle.md, JSON outputs).
type progressEvent struct {
	Time   time.Time `json:"time"`
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Text   string    `json:"text"`
	Detail string    `json:"detail"`
}

type progressEvents []progressEvent

// lifecycleJSON runs a command with `--progress json` and decodes its events; the
// non-JSON lines of stderr (the final error message) stay in the result.
func (p *project) lifecycleJSON(args ...string) (result, progressEvents) {
	p.t.Helper()
	r := p.lifecycle(append(args, "--progress", "json")...)
	var evs progressEvents
	for _, l := range strings.Split(r.stderr, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var e progressEvent
		assert.NilError(p.t, json.Unmarshal([]byte(l), &e), "progress line %q", l)
		evs = append(evs, e)
	}
	assert.Assert(p.t, len(evs) > 0, "no JSON progress events:\n%s", r)
	return r, evs
}

// find returns the first event of id with text whose detail contains detail; the test
// fails when there is none.
func (evs progressEvents) find(t *testing.T, id, text, detail string) progressEvent {
	t.Helper()
	for _, e := range evs {
		if (id == "" || e.ID == id) && e.Text == text && strings.Contains(e.Detail, detail) {
			return e
		}
	}
	t.Fatalf("no progress event id=%q text=%q detail~%q in:\n%s", id, text, detail, evs)
	return progressEvent{}
}

func (evs progressEvents) count(text, detail string) int {
	n := 0
	for _, e := range evs {
		if e.Text == text && strings.Contains(e.Detail, detail) {
			n++
		}
	}
	return n
}

func (evs progressEvents) String() string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%s %s %s %s: %s\n", e.Time.Format("15:04:05.000"), e.Status, e.ID, e.Text, e.Detail)
	}
	return b.String()
}

// twoReplicas is a rolloutYAML project with 2 replicas instead of 3, where the
// behaviour needs no third: fewer containers to start keeps the suite's wall time down.
func twoReplicas(composeYAML string) string {
	return strings.Replace(composeYAML, "replicas: 3", "replicas: 2", 1)
}

func (p *project) webContainer(rev, n int) string {
	return fmt.Sprintf("%s-web-r%d-%d", p.name, rev, n)
}

// webApp lists the web service's app containers (not the router) with docker ps filters.
func (p *project) webApp(filters ...string) []string {
	p.t.Helper()
	return p.containers(append([]string{"label=com.docker.compose.service=web", "label=io.lifecycle.role=app"}, filters...)...)
}

// TestRollingStopFirst: with update_config.order stop-first (parallelism 1, 2 replicas)
// each batch drains and stops an old container before its replacement starts, so never
// more than 2 run and never fewer than 1 is healthy; the router keeps every request on
// the serving one.
func TestRollingStopFirst(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	stopFirst := "      update_config: {order: stop-first}"
	p := s.newProject(t, twoReplicas(rolloutYAML("v1", port, stopFirst)))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)

	sm := startSampler(t, s, p.name, 100*time.Millisecond)
	load := startRateLoad(t, port, "/", loadRate, 4*time.Minute)
	p.write(twoReplicas(rolloutYAML("v2", port, stopFirst)))
	r, evs := p.lifecycleJSON("deploy")
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	time.Sleep(500 * time.Millisecond)
	rep := load.stop()
	samples := sm.stop()
	t.Logf("stop-first v1->v2: %s; %s; running max %d, healthy min %d", rep, samples, samples.maxRunning("web"), samples.minHealthy("web"))

	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, samples.maxRunning("web") <= 2, "at most replicas running (stop-first); saw %d", samples.maxRunning("web"))
	assert.Check(t, samples.minHealthy("web") >= 1, "at least replicas-1 healthy; saw %d", samples.minHealthy("web"))
	for n := 1; n <= 2; n++ {
		stopped := evs.find(t, "Container "+p.webContainer(1, n), "Stopped", "")
		starting := evs.find(t, "Container "+p.webContainer(2, n), "Starting", "")
		assert.Check(t, !starting.Time.Before(stopped.Time), "batch %d: %s started at %s, before %s stopped at %s",
			n, p.webContainer(2, n), starting.Time, p.webContainer(1, n), stopped.Time)
	}
	assert.Check(t, is.DeepEqual(p.webApp("status=running"), []string{p.webContainer(2, 1), p.webContainer(2, 2)}, sortedCmp()))
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
}

// TestRollingUpdateDelay: update_config.delay holds the next batch after the previous
// one finished: from the old container's stop to the next new container's start at
// least the delay passes, measured on the progress events' timestamps.
func TestRollingUpdateDelay(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	const delay = 3 * time.Second
	withDelay := "      update_config: {delay: 3s}"
	p := s.newProject(t, twoReplicas(rolloutYAML("v1", port, withDelay)))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)

	load := startRateLoad(t, port, "/", loadRate, 4*time.Minute)
	p.write(twoReplicas(rolloutYAML("v2", port, withDelay)))
	r, evs := p.lifecycleJSON("deploy")
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	rep := load.stop()
	t.Logf("rolling with a 3s delay: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.Equal(evs.count("Waited", "update_config.delay"), 1), "one delay between the 2 batches:\n%s", evs)
	// Start-first: batch 1 ends with its old container stopped; batch 2 starts with its
	// new container.
	end := evs.find(t, "Container "+p.webContainer(1, 1), "Stopped", "")
	next := evs.find(t, "Container "+p.webContainer(2, 2), "Starting", "")
	gap := next.Time.Sub(end.Time)
	t.Logf("gap between the batches: %s", gap)
	assert.Check(t, gap >= delay, "gap between the batches %s, want at least %s", gap, delay)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
}

// TestRollbackUsesRollbackConfig: `docker lifecycle rollback` rolls with
// deploy.rollback_config, not update_config: two batches of two (parallelism 2) where
// the deploy took three, and its monitor window, with no failed request. (Start-first:
// a stop-first batch of 2 out of 3 leaves one backend, and on this shared machine a
// lone backend that cannot be dialled in time has no other to retry on.)
func TestRollbackUsesRollbackConfig(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	cfg := "      update_config: {parallelism: 1, order: start-first}\n      rollback_config: {parallelism: 2, order: start-first, monitor: 1s}"
	p := s.newProject(t, rolloutYAML("v1", port, cfg))
	p.mustLifecycle("deploy")
	p.write(rolloutYAML("v2", port, cfg))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "roll web batch 3/3"), r.String())
	assert.Check(t, !strings.Contains(r.stderr, "monitor"), "update_config has no monitor: %s", r)
	waitAnswers(t, port, "v2", 30*time.Second)

	// The plan: batches of rollback_config.parallelism.
	r = p.mustLifecycle("rollback", "--dry-run", "--format", "json")
	var plan struct {
		Steps []struct {
			Action, Target, Cause string
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &plan), r.stdout)
	var routes []string
	for _, st := range plan.Steps {
		if st.Action == "route" {
			routes = append(routes, st.Cause)
		}
	}
	assert.Assert(t, is.Len(routes, 2), "a route per batch: %v", routes)
	assert.Check(t, strings.HasPrefix(routes[0], "roll back web batch 1/2: r2 33% (1) + r1 67% (2)"), routes[0])
	assert.Check(t, strings.HasPrefix(routes[1], "roll back web batch 2/2: r1 (3)"), routes[1])

	sm := startSampler(t, s, p.name, 100*time.Millisecond)
	load := startRateLoad(t, port, "/", loadRate, 4*time.Minute)
	r = p.mustLifecycle("rollback")
	time.Sleep(500 * time.Millisecond)
	rep := load.stop()
	samples := sm.stop()
	t.Logf("rollback with rollback_config: %s; %s; running max %d, healthy min %d", rep, samples, samples.maxRunning("web"), samples.minHealthy("web"))
	assert.Check(t, is.Contains(r.stdout, "Rolled back web to revision 1"), r.String())
	assert.Check(t, is.Contains(r.stderr, "roll back web batch 2/2"), r.String())
	assert.Check(t, !strings.Contains(r.stderr, "batch 3/3"), r.String())
	assert.Check(t, is.Equal(strings.Count(r.stderr, "Monitoring: rollback_config.monitor 1s"), 3), r.String())
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, samples.maxRunning("web") <= 5, "at most replicas + rollback_config.parallelism running; saw %d", samples.maxRunning("web"))
	assert.Check(t, samples.minHealthy("web") >= 3, "start-first: never fewer than replicas healthy; saw %d", samples.minHealthy("web"))

	assert.Check(t, is.DeepEqual(p.webApp("status=running"), []string{p.webContainer(1, 1), p.webContainer(1, 2), p.webContainer(1, 3)}, sortedCmp()))
	assert.Check(t, is.DeepEqual(p.webApp("status=exited"), []string{p.webContainer(2, 1), p.webContainer(2, 2), p.webContainer(2, 3)}, sortedCmp()))
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
}

// TestBlueGreenScaleDownDelay: after the switch the old colour keeps running, without
// traffic, for blue-green.scale-down-delay, then stops; no request fails.
func TestBlueGreenScaleDownDelay(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	const delay = 5 * time.Second
	bg := "    x-lifecycle:\n      strategy: blue-green\n      blue-green: {scale-down-delay: 5s}"
	p := s.newProject(t, twoReplicas(rolloutYAML("v1", port, bg)))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)

	sm := startSampler(t, s, p.name, 100*time.Millisecond)
	load := startRateLoad(t, port, "/", loadRate, 4*time.Minute)
	p.write(twoReplicas(rolloutYAML("v2", port, bg)))
	r, evs := p.lifecycleJSON("deploy")
	assert.Assert(t, is.Equal(r.code, 0), r.String())
	time.Sleep(500 * time.Millisecond)
	rep := load.stop()
	samples := sm.stop()
	t.Logf("blue-green with scale-down-delay 5s: %s; %s", rep, samples)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())

	switched := evs.find(t, "Service web", "Routed", "switch web").Time
	var firstStop time.Time
	for n := 1; n <= 2; n++ {
		at := evs.find(t, "Container "+p.webContainer(1, n), "Stopping", "old colour").Time
		if firstStop.IsZero() || at.Before(firstStop) {
			firstStop = at
		}
	}
	t.Logf("old colour stopped %s after the switch", firstStop.Sub(switched))
	assert.Check(t, firstStop.Sub(switched) >= delay, "old colour stopped %s after the switch, want at least %s", firstStop.Sub(switched), delay)

	// Seen from outside: both colours run through the delay, and the old one serves
	// nothing. A sample is taken at some point of its list call, which may be slow on a
	// loaded engine: the last second before the stop is left out.
	var during int
	for _, smp := range samples {
		if smp.At.After(switched) && smp.At.Before(switched.Add(delay-time.Second)) {
			during++
			assert.Check(t, is.Equal(smp.Running["web"], 4), "both colours must run during the delay; at +%s: %d", smp.At.Sub(switched), smp.Running["web"])
		}
	}
	assert.Check(t, during >= 5, "only %d samples during the delay", during)
	after := load.window(switched.Add(200*time.Millisecond), firstStop)
	assert.Check(t, after.Total > 500, "requests between the switch and the stop: %s", after)
	assert.Check(t, is.DeepEqual(after.Bodies, map[string]int{"v2": after.Total}), "after the switch only v2 answers: %s", after)
	assert.Check(t, is.DeepEqual(p.webApp("status=running"), []string{p.webContainer(2, 1), p.webContainer(2, 2)}, sortedCmp()))
	assert.Check(t, is.DeepEqual(p.webApp("status=exited"), []string{p.webContainer(1, 1), p.webContainer(1, 2)}, sortedCmp()))
}

// TestHistoryPruning: with x-lifecycle.history 2, deploy N+1 keeps every revision and
// deploy N+2 removes the oldest one's containers; `history` says so, a rollback to it
// is refused, and one to a retained revision works.
func TestHistoryPruning(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	// Two replicas are enough to see that a revision goes with all its containers.
	yaml := func(version string) string {
		return twoReplicas(rolloutYAML(version, port, "    x-lifecycle: {history: 2}"))
	}
	p := s.newProject(t, yaml("v1"))
	p.mustLifecycle("deploy")
	revs := func(rev int) []string { return []string{p.webContainer(rev, 1), p.webContainer(rev, 2)} }
	for _, v := range []string{"v2", "v3"} {
		p.write(yaml(v))
		r := p.mustLifecycle("deploy")
		assert.Check(t, !strings.Contains(r.stderr, "history: keep"), "nothing to prune yet: %s", r)
	}
	assert.Check(t, is.DeepEqual(p.webApp("status=exited"), append(revs(1), revs(2)...), sortedCmp()), "two previous revisions retained")

	p.write(yaml("v4"))
	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(strings.Count(r.stderr, "history: keep 2 previous revisions"), 2), r.String())
	assert.Check(t, is.DeepEqual(p.webApp("status=running"), revs(4), sortedCmp()))
	assert.Check(t, is.DeepEqual(p.webApp("status=exited"), append(revs(2), revs(3)...), sortedCmp()))
	assert.Check(t, is.Len(p.webApp("name="+p.name+"-web-r1-"), 0), "revision 1 removed")

	h := p.mustLifecycle("history", "web", "--format", "{{.Revision}} {{.Result}} {{.Containers}}")
	assert.Check(t, is.Equal(h.stdout, "4 deployed running\n3 deployed retained\n2 deployed retained\n1 deployed removed\n"))
	r = p.lifecycle("rollback", "web", "--to", "1")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "no such revision 1"), r.String())
	r = p.mustLifecycle("rollback", "web", "--to", "2")
	assert.Check(t, is.Contains(r.stdout, "Rolled back web to revision 2"), r.String())
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
}

// TestCanaryMaxP99: a canary slower than analysis.max-p99 fails its step and is rolled
// back (exit 3, the old revision serves); one within the bound is promoted. The error
// rate is not judged (max-error-rate 1), so the verdict is the latency's alone.
func TestCanaryMaxP99(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	canary := func(version, slow string) string {
		env := ""
		if slow != "" {
			env = "    environment: {SLOW: " + slow + "}"
		}
		return twoReplicas(rolloutYAML(version, port, env, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 50, pause: 4s}]
        analysis: {max-p99: 500ms, max-error-rate: 1, min-requests: 50}`))
	}
	p := s.newProject(t, canary("v1", ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 4*time.Minute)

	// 1.5 s per request: p99 well above 500 ms. (The bound leaves room for this
	// shared machine's stalls in the fast case below.)
	p.write(canary("v2", "1500ms"))
	r := p.lifecycle("deploy")
	aborted := time.Now()
	assert.Check(t, is.Equal(r.code, exitRolledBack), r.String())
	assert.Check(t, is.Contains(r.stderr, "above max-p99 500ms"), r.String())
	logLines(t, r.stderr, "p99")
	time.Sleep(2 * time.Second)
	slowRep := load.window(load.started, aborted)
	afterAbort := load.window(aborted, time.Now())
	t.Logf("canary with 1.5s requests: during %s; after the abort %s", slowRep, afterAbort)
	assert.Check(t, slowRep.Bodies["v2"] > 0, "the canary got traffic: %s", slowRep)
	assert.Check(t, afterAbort.Total > 0 && afterAbort.Failed == 0, afterAbort.String())
	assert.Check(t, is.DeepEqual(afterAbort.Bodies, map[string]int{"v1": afterAbort.Total}))
	assert.Check(t, is.DeepEqual(p.webApp("status=running"), []string{p.webContainer(1, 1), p.webContainer(1, 2)}, sortedCmp()))
	load.stop()

	// 30 ms per request: within the bound, promoted. A load of its own: the first one
	// may have run out on a slow engine, and a step without requests fails.
	load = startRateLoad(t, port, "/", loadRate, 4*time.Minute)
	p.write(canary("v2", "30ms"))
	r = p.lifecycle("deploy")
	assert.Check(t, is.Equal(r.code, 0), r.String())
	assert.Check(t, is.Contains(r.stderr, "Analysis passed"), r.String())
	logLines(t, r.stderr, "p99")
	time.Sleep(500 * time.Millisecond)
	rep := load.stop()
	t.Logf("canary with 30ms requests: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))
}

// logLines logs the lines of out that contain text (the measurements behind a verdict).
func logLines(t *testing.T, out, text string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, text) {
			t.Log(l)
		}
	}
}
