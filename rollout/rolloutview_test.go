package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

func viewContainer(name, service string, rev int, state, health string) engine.Container {
	return engine.Container{ID: "id-" + name, Name: name, State: state, Health: health, Labels: map[string]string{
		compose.LabelProject: "demo", compose.LabelService: service, compose.LabelRevision: fmt.Sprint(rev)}}
}

// TestBuildRolloutView: weights are shares of the service's first route, rates are over
// the readings' interval, stopped containers and other services are left out, and the
// records give the results once the rollout ended.
func TestBuildRolloutView(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	since := t0.Add(-time.Hour)
	backends := func(n1, n2, e2 uint64) []router.BackendStats {
		return []router.BackendStats{
			{ID: "demo-web-r1-1", Group: "r1", Weight: 45, State: router.Active, Since: since, Counters: router.Counters{Requests: n1}},
			{ID: "demo-web-r1-2", Group: "r1", Weight: 45, State: router.Active, Since: since, Counters: router.Counters{Requests: n1}},
			{ID: "demo-web-r2-1", Group: "r2", Weight: 10, State: router.Active, Since: since, Counters: router.Counters{Requests: n2, Responses5xx: e2}},
		}
	}
	prev := router.Snapshot{Time: t0, Routes: []router.RouteStats{{Name: "web:80", Backends: backends(100, 10, 0)}}}
	cur := router.Snapshot{Time: t0.Add(2 * time.Second), Routes: []router.RouteStats{{Name: "web:80", Backends: backends(190, 30, 5)}}}
	in := viewInputs{
		Project: "demo", Holder: lock.Holder{Host: "ci", PID: 9, Since: t0.Add(-10 * time.Second), Command: "docker lifecycle deploy"},
		State: RolloutState{Started: t0.Add(-9 * time.Second), Services: []ServiceRollout{
			{Service: "web", Strategy: "canary", Revision: 2, Canary: &CanaryState{Step: 1, Steps: 2, Weight: 10, StepEnds: t0.Add(4500 * time.Millisecond)}},
			{Service: "worker", Strategy: "rolling", Revision: 5},
		}},
		Containers: []engine.Container{
			viewContainer("demo-web-r1-2", "web", 1, "running", "healthy"),
			viewContainer("demo-web-r1-1", "web", 1, "running", "healthy"),
			viewContainer("demo-web-r2-1", "web", 2, "running", "healthy"),
			viewContainer("demo-web-r0-1", "web", 0, "exited", ""), // retained: history, not the rollout
			viewContainer("demo-db-1", "db", 1, "running", "healthy"),
			viewContainer("demo-worker-r5-1", "worker", 5, "created", ""),
		},
		Routers: []routerReading{{Prev: prev, Cur: cur}},
		Now:     t0.Add(2 * time.Second),
	}
	v := buildRolloutView(in)
	assert.Assert(t, is.Len(v.Services, 2))
	web := v.Services[0]
	assert.Check(t, is.DeepEqual(*web.Canary, CanaryView{Step: 1, Steps: 2, Weight: 10, LeftMs: 2500}))
	assert.Assert(t, is.Len(web.Revisions, 2))
	r1, r2 := web.Revisions[0], web.Revisions[1]
	assert.Check(t, is.DeepEqual([]any{r1.Revision, r1.New, r1.Routed, r1.Weight, len(r1.Containers), r1.Containers[0].Name}, []any{1, false, true, 90, 2, "demo-web-r1-1"}))
	assert.Check(t, is.DeepEqual([]any{r2.Revision, r2.New, r2.Weight}, []any{2, true, 10}))
	assert.Check(t, is.DeepEqual(*r1.Traffic, TrafficView{RequestsPerSecond: 90}))
	assert.Check(t, is.DeepEqual(*r2.Traffic, TrafficView{RequestsPerSecond: 10, ErrorRate: 0.25}))
	worker := v.Services[1]
	assert.Check(t, is.DeepEqual(worker.Revisions, []RevisionView{{Revision: 5, New: true, Containers: []ContainerView{{Name: "demo-worker-r5-1", State: "created"}}}}))

	// The first reading has weights, no rates yet.
	in.Routers = []routerReading{{Cur: cur}}
	v = buildRolloutView(in)
	assert.Check(t, is.Equal(v.Services[0].Revisions[1].Weight, 10))
	assert.Check(t, v.Services[0].Revisions[1].Traffic == nil)

	// A rollback says so: its target is the revision it goes back to.
	in.State.Rollback = true
	assert.Check(t, buildRolloutView(in).Rollback)

	// watch web: only web. Ended: the results of the records.
	in.Services, in.Ended = []string{"web"}, true
	in.Records = []Record{{Service: "web", Revision: 2, Result: ResultRolledBack, Reason: "canary analysis failed"}}
	v = buildRolloutView(in)
	assert.Assert(t, is.Len(v.Services, 1))
	assert.Check(t, is.Equal(v.Services[0].Result, ResultRolledBack))
	assert.Check(t, is.Equal(v.Services[0].Canary.LeftMs, int64(0)))
	assert.Check(t, is.DeepEqual(outcomeNames(v), [2][]string{{"web"}, nil}))
}

// outcomeNames is RolloutOutcome as one comparable value.
func outcomeNames(v RolloutView) [2][]string {
	rb, failed := RolloutOutcome(v)
	return [2][]string{rb, failed}
}

func TestWatchWithoutRollout(t *testing.T) {
	w := newWorld()
	_, err := Watch(context.Background(), w.fake(), "demo", WatchOptions{Interval: 10 * time.Millisecond}, func(RolloutView) {})
	assert.Check(t, errors.Is(err, ErrNoRollout), "%v", err)
	assert.Check(t, is.ErrorContains(err, "project demo"))
}

// TestRolloutViewFollowsCanary: a canary deploy on the fake engine (two 2 s steps: the
// deploy's view refreshes every second) gives its own view and a concurrent Watch the
// same rollout: 90/10 at the first step, 50/50 at the
// second, deployed at the end; the published state is gone afterwards.
func TestRolloutViewFollowsCanary(t *testing.T) {
	w := newWorld()
	f := w.fake()
	sessionWorld(w, f)
	canary := func(image string) string {
		return routedCompose(image, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 10, pause: 2s}, {weight: 50, pause: 2s}]
`)
	}
	opts := DeployOptions{WaitTimeout: 2 * time.Second, Command: "docker lifecycle deploy"}
	_, err := Deploy(context.Background(), f, loadProject(t, canary("app:1")), progress.Nop, opts)
	assert.NilError(t, err)
	// The router counts what its last config says: its weights, 100 requests a second.
	start := time.Now()
	w.stats = func() router.Snapshot { // called with w.mu held
		snap := router.Snapshot{Time: time.Now()}
		if len(w.puts) == 0 {
			return snap
		}
		for _, r := range w.puts[len(w.puts)-1].Routes {
			rs := router.RouteStats{Name: r.Name}
			for _, b := range r.Backends {
				n := uint64(time.Since(start)/(10*time.Millisecond)) * uint64(b.Weight) / 100
				rs.Backends = append(rs.Backends, router.BackendStats{ID: b.ID, Group: b.Group, Weight: b.Weight, State: router.Active, Since: start, Counters: router.Counters{Requests: n}})
			}
			snap.Routes = append(snap.Routes, rs)
		}
		return snap
	}

	var mu sync.Mutex
	var mine, watched []RolloutView
	watchDone := make(chan error, 1)
	var last RolloutView
	go func() {
		var err error
		last, err = Watch(context.Background(), f, "demo", WatchOptions{Interval: 200 * time.Millisecond, Wait: true}, func(v RolloutView) {
			mu.Lock()
			defer mu.Unlock()
			watched = append(watched, v)
		})
		watchDone <- err
	}()
	opts.View = func(v RolloutView) {
		mu.Lock()
		defer mu.Unlock()
		mine = append(mine, v)
	}
	_, err = Deploy(context.Background(), f, loadProject(t, canary("app:2")), progress.Nop, opts)
	assert.NilError(t, err)
	select {
	case err := <-watchDone:
		assert.NilError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end with the rollout")
	}

	mu.Lock()
	defer mu.Unlock()
	for name, views := range map[string][]RolloutView{"deploy": mine, "watch": watched} {
		splits := weightSplits(views)
		assert.Check(t, is.Contains(splits, "step 1/2: r1 90% r2 10%"), "%s: %v", name, splits)
		assert.Check(t, is.Contains(splits, "step 2/2: r1 50% r2 50%"), "%s: %v", name, splits)
		assert.Assert(t, len(views) > 0, name)
		end := views[len(views)-1]
		assert.Check(t, end.Ended, name)
		assert.Assert(t, is.Len(end.Services, 1), name)
		assert.Check(t, is.Equal(end.Services[0].Result, ResultDeployed), name)
		assert.Check(t, is.Equal(end.Command, opts.Command), name)
		verdicts := strings.Join(end.Services[0].Canary.Verdicts, "\n")
		assert.Check(t, is.Contains(verdicts, "step 1/2 (10%) passed"), name)
		assert.Check(t, is.Contains(verdicts, "step 2/2 (50%) passed"), name)
	}
	assert.Check(t, is.Equal(last.Services[0].Revision, 2))
	_, found, err := readRolloutState(context.Background(), f, "demo")
	assert.NilError(t, err)
	assert.Check(t, !found, "the rollout state outlived its rollout")
	_, tl, err := RevisionTimeline(context.Background(), f, "demo", "web", 2)
	assert.NilError(t, err)
	assert.Check(t, is.Len(tl.Verdicts, 2), "the record keeps the verdicts: %v", tl.Verdicts)
}

// weightSplits are the distinct "step N/M: rX W% …" lines of the views.
func weightSplits(views []RolloutView) []string {
	var out []string
	for _, v := range views {
		for _, s := range v.Services {
			if s.Canary == nil || s.Canary.Step == 0 || v.Ended {
				continue
			}
			line := fmt.Sprintf("step %d/%d:", s.Canary.Step, s.Canary.Steps)
			for _, r := range s.Revisions {
				line += fmt.Sprintf(" r%d %d%%", r.Revision, r.Weight)
			}
			if len(out) == 0 || out[len(out)-1] != line {
				out = append(out, line)
			}
		}
	}
	return out
}

// TestStatePublisherKeepsOneVolume: each change is a new volume and the one before is
// removed; a reader takes the newest.
func TestStatePublisherKeepsOneVolume(t *testing.T) {
	w := newWorld()
	f := w.fake()
	ctx := context.Background()
	sp := &statePublisher{eng: f, project: "demo", events: progress.Nop, state: RolloutState{Services: []ServiceRollout{{Service: "web"}}}, steps: map[int][2]int{}}
	sp.mu.Lock()
	sp.writeLocked(ctx)
	sp.mu.Unlock()
	for i := 1; i <= 3; i++ {
		sp.canary(ctx, "web", func(c *CanaryState) { c.Step = i })
	}
	vols, err := f.ListVolumes(ctx, rolloutStateFilter("demo"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(vols, 1))
	state, found, err := readRolloutState(ctx, f, "demo")
	assert.NilError(t, err)
	assert.Check(t, found)
	assert.Check(t, is.Equal(state.Services[0].Canary.Step, 3))
	clearRolloutState(ctx, f, "demo")
	_, found, _ = readRolloutState(ctx, f, "demo")
	assert.Check(t, !found)
}

// TestWatchSeesFailedCanary: a canary failing its analysis ends the watch with the
// rolled-back result and the failed verdict, which the record's timeline keeps.
func TestWatchSeesFailedCanary(t *testing.T) {
	w := newWorld()
	f := w.fake()
	sessionWorld(w, f)
	canary := func(image string) string {
		return routedCompose(image, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 50, pause: 1500ms}]
        analysis: {max-error-rate: 0.05}
`)
	}
	opts := DeployOptions{WaitTimeout: 2 * time.Second, Command: "docker lifecycle deploy"}
	_, err := Deploy(context.Background(), f, loadProject(t, canary("app:1")), progress.Nop, opts)
	assert.NilError(t, err)
	start := time.Now()
	w.stats = func() router.Snapshot {
		n := uint64(time.Since(start) / (10 * time.Millisecond))
		return router.Snapshot{Time: time.Now(), Routes: []router.RouteStats{{Name: "web:8080", Backends: []router.BackendStats{
			{ID: "demo-web-r1-1", Group: "r1", Weight: 50, State: router.Active, Since: start, Counters: router.Counters{Requests: n}},
			{ID: "demo-web-r2-1", Group: "r2", Weight: 50, State: router.Active, Since: start, Counters: router.Counters{Requests: n, Responses5xx: n / 5}},
		}}}}
	}
	type watched struct {
		last RolloutView
		err  error
	}
	done := make(chan watched, 1)
	go func() {
		last, err := Watch(context.Background(), f, "demo", WatchOptions{Interval: 200 * time.Millisecond, Wait: true}, func(RolloutView) {})
		done <- watched{last, err}
	}()
	_, err = Deploy(context.Background(), f, loadProject(t, canary("app:2")), progress.Nop, opts)
	var rb *RolledBackError
	assert.Assert(t, errors.As(err, &rb), "%v", err)
	var got watched
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end with the rollout")
	}
	assert.NilError(t, got.err)
	assert.Check(t, got.last.Ended)
	assert.Assert(t, is.Len(got.last.Services, 1))
	web := got.last.Services[0]
	assert.Check(t, is.Equal(web.Result, ResultRolledBack))
	assert.Check(t, is.Contains(web.Reason, "canary analysis failed"))
	assert.Assert(t, web.Canary != nil && len(web.Canary.Verdicts) == 1, "%+v", web.Canary)
	assert.Check(t, is.Contains(web.Canary.Verdicts[0], "step 1/1 (50%) failed: error rate"))
	rolledBack, failed := RolloutOutcome(got.last)
	assert.Check(t, is.DeepEqual(rolledBack, []string{"web"}))
	assert.Check(t, is.Len(failed, 0))
}
