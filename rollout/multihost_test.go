package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

func TestPlanHosts(t *testing.T) {
	hosts := []string{"a", "b", "c", "d", "e"}
	for _, c := range []struct {
		spec compose.HostsSpec
		want string
	}{
		{compose.HostsSpec{}, "batch 1/1: a, b, c, d, e (5 at a time)\n"},
		{compose.HostsSpec{Batch: "2", Wait: compose.Duration(5 * time.Second)},
			"batch 1/3: a, b (2 at a time)\nwait 5s\nbatch 2/3: c, d (2 at a time)\nwait 5s\nbatch 3/3: e (1 at a time)\n"},
		{compose.HostsSpec{Batch: "50%", Concurrency: 2},
			"batch 1/2: a, b, c (2 at a time)\nbatch 2/2: d, e (2 at a time)\n"},
		{compose.HostsSpec{Concurrency: 1}, "batch 1/1: a, b, c, d, e (1 at a time)\n"},
	} {
		assert.Check(t, is.Equal(PlanHosts(c.spec, hosts).Text(), c.want), "%+v", c.spec)
	}
}

// fakeHostSteps records each step as "deploy X", "rollback X [services]", "wait D";
// fail names the hosts whose deploy fails.
type fakeHostSteps struct {
	mu    sync.Mutex
	trace []string
	fail  map[string]bool
	// unchanged names hosts that are already up to date.
	unchanged map[string]bool
	// started, when set, is waited for before any deploy returns: every host of a
	// batch has started, whatever the goroutines' order.
	started *sync.WaitGroup
}

func (f *fakeHostSteps) steps() hostSteps {
	return hostSteps{
		action: "deploy",
		deploy: func(_ context.Context, h string) ([]string, error) {
			f.mu.Lock()
			f.trace = append(f.trace, "deploy "+h)
			f.mu.Unlock()
			if f.started != nil {
				f.started.Done()
				f.started.Wait()
			}
			switch {
			case f.fail[h]:
				return nil, fmt.Errorf("web: %w", ErrRolledBack)
			case f.unchanged[h]:
				return nil, nil
			}
			return []string{"web"}, nil
		},
		rollback: func(_ context.Context, h string, changed []string) ([]string, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.trace = append(f.trace, fmt.Sprintf("rollback %s %v", h, changed))
			return nil, nil
		},
		wait: func(_ context.Context, d time.Duration) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.trace = append(f.trace, "wait "+d.String())
			return nil
		},
	}
}

func outcomesText(o []HostOutcome) string {
	var b strings.Builder
	WriteHostsOutcomes(&b, o)
	return b.String()
}

// One host at a time: c fails in batch 2, so d never starts and a, b (switched in
// batch 1) roll back; e was unchanged and is left alone.
func TestRunHostsRollsBackTheSwitchedHosts(t *testing.T) {
	f := &fakeHostSteps{fail: map[string]bool{"c": true}}
	plan := PlanHosts(compose.HostsSpec{Batch: "2", Concurrency: 1, Wait: compose.Duration(time.Second)}, []string{"a", "b", "c", "d", "e"})
	outcomes, err := runHosts(context.Background(), plan, f.steps(), progress.Nop)
	assert.Check(t, is.DeepEqual(f.trace, []string{"deploy a", "deploy b", "wait 1s", "deploy c", "rollback a [web]", "rollback b [web]"}))
	assert.Check(t, is.Equal(outcomesText(outcomes), strings.Join([]string{
		"a                    batch 1  reverted         web",
		"b                    batch 1  reverted         web",
		"c                    batch 2  failed           (web: rolled back)",
		"d                    batch 2  skipped",
		"e                    batch 3  skipped",
	}, "\n")+"\n"))
	var rb *HostsRolledBackError
	assert.Assert(t, errors.As(err, &rb), "%v", err)
	assert.Check(t, errors.Is(err, ErrRolledBack))
	assert.Check(t, is.Error(err, "deploy failed on host c; hosts a, b rolled back to the revisions they ran before; the cause: host c: web: rolled back"))
}

func TestRunHostsAllHealthy(t *testing.T) {
	f := &fakeHostSteps{unchanged: map[string]bool{"b": true}}
	plan := PlanHosts(compose.HostsSpec{Batch: "1"}, []string{"a", "b", "c"})
	outcomes, err := runHosts(context.Background(), plan, f.steps(), progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(f.trace, []string{"deploy a", "deploy b", "deploy c"}), "no wait is set")
	assert.Check(t, is.DeepEqual(rollbackSet(outcomes), []string{"a", "c"}), "what a failure would roll back: b did not change")
	assert.Check(t, is.Equal(outcomesText(outcomes), "a                    batch 1  switched         web\nb                    batch 2  unchanged\nc                    batch 3  switched         web\n"))
}

// In one batch run concurrently, a host that fails leaves the others of its batch to
// finish, then rolls back those that switched.
func TestRunHostsFailureInsideABatch(t *testing.T) {
	f := &fakeHostSteps{fail: map[string]bool{"b": true}, started: &sync.WaitGroup{}}
	f.started.Add(3)
	plan := PlanHosts(compose.HostsSpec{}, []string{"a", "b", "c"})
	outcomes, err := runHosts(context.Background(), plan, f.steps(), progress.Nop)
	assert.Check(t, errors.Is(err, ErrRolledBack))
	assert.Check(t, is.DeepEqual(rollbackSet(outcomes), []string(nil)), "all rolled back now")
	var results []string
	for _, o := range outcomes {
		results = append(results, o.Host+" "+o.Result)
	}
	assert.Check(t, is.DeepEqual(results, []string{"a reverted", "b failed", "c reverted"}))
	slices.Sort(f.trace)
	assert.Check(t, is.DeepEqual(f.trace, []string{"deploy a", "deploy b", "deploy c", "rollback a [web]", "rollback c [web]"}))
}

const hostsCompose = `
name: demo
services:
  web:
    image: app:%d
    healthcheck: {test: [CMD, check]}
`

// Three in-memory engines, one batch of one at a time: v2 is unhealthy on the third,
// so the first two, already on v2, go back to revision 1 and every engine runs r1.
func TestDeployHostsAllOrNothing(t *testing.T) {
	worlds := []*world{newWorld(), newWorld(), newWorld()}
	healthy := func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "healthy"}
	}
	p1, p2 := loadProject(t, fmt.Sprintf(hostsCompose, 1)), loadProject(t, fmt.Sprintf(hostsCompose, 2))
	var hosts []Host
	for i, w := range worlds {
		w.health = healthy
		hosts = append(hosts, Host{Name: fmt.Sprintf("h%d", i+1), Engine: w.fake(), Project: p1})
	}
	withProject := func(p *compose.Project) []Host {
		out := slices.Clone(hosts)
		for i := range out {
			out[i].Project = p
		}
		return out
	}
	worlds[2].health = func(name string) engine.ContainerDetails {
		if strings.Contains(name, "-r2-") {
			return engine.ContainerDetails{State: "running", Health: "unhealthy", HealthLog: []string{"exit 1: v2 broken here"}}
		}
		return healthy(name)
	}
	plan := PlanHosts(compose.HostsSpec{Batch: "1"}, []string{"h1", "h2", "h3"})
	opts := DeployOptions{WaitTimeout: 2 * time.Second}

	outcomes, _, err := DeployHosts(context.Background(), hosts, progress.Nop, plan, opts)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(outcomesText(outcomes), "h1                   batch 1  switched         web\nh2                   batch 2  switched         web\nh3                   batch 3  switched         web\n"))

	_, plans, err := DeployHosts(context.Background(), withProject(p2), progress.Nop, plan, DeployOptions{DryRun: true})
	assert.NilError(t, err)
	for _, h := range []string{"h1", "h2", "h3"} {
		assert.Check(t, is.DeepEqual(plans[h].Services(), []string{"web"}), h)
	}
	for _, w := range worlds {
		assert.Check(t, is.DeepEqual(w.state(), []string{"demo-web-r1-1:running"}), "a dry run changes nothing")
	}

	outcomes, _, err = DeployHosts(context.Background(), withProject(p2), progress.Nop, plan, opts)
	assert.Check(t, errors.Is(err, ErrRolledBack), "%v", err)
	assert.Check(t, is.ErrorContains(err, "deploy failed on host h3; hosts h1, h2 rolled back"))
	assert.Check(t, is.ErrorContains(err, "v2 broken here"))
	var results []string
	for _, o := range outcomes {
		results = append(results, o.Host+" "+o.Result)
	}
	assert.Check(t, is.DeepEqual(results, []string{"h1 reverted", "h2 reverted", "h3 failed"}))
	for i, w := range worlds {
		var running []string
		for _, s := range w.state() {
			if strings.HasSuffix(s, ":running") {
				running = append(running, s)
			}
		}
		assert.Check(t, is.DeepEqual(running, []string{"demo-web-r1-1:running"}), "host h%d", i+1)
	}
	records, err := History(context.Background(), hosts[0].Engine, "demo")
	assert.NilError(t, err)
	last := records[len(records)-1]
	assert.Check(t, is.Equal(last.Revision, 1))
	assert.Check(t, is.Equal(last.Trigger, TriggerHostsRollback))
}

// rollback across hosts: all three go back to r1; then a rollback that fails on h3
// (r1 no longer starts healthy there) leaves every host on r2.
func TestRollbackHostsAllOrNothing(t *testing.T) {
	worlds := []*world{newWorld(), newWorld(), newWorld()}
	var r1Broken bool
	health := func(name string) engine.ContainerDetails {
		if r1Broken && strings.Contains(name, "-r1-") {
			return engine.ContainerDetails{State: "running", Health: "unhealthy", HealthLog: []string{"exit 1: r1 broken here"}}
		}
		return engine.ContainerDetails{State: "running", Health: "healthy"}
	}
	var hosts []Host
	for i, w := range worlds {
		w.health = func(name string) engine.ContainerDetails {
			return engine.ContainerDetails{State: "running", Health: "healthy"}
		}
		hosts = append(hosts, Host{Name: fmt.Sprintf("h%d", i+1), Engine: w.fake(), Project: loadProject(t, fmt.Sprintf(hostsCompose, 1))})
	}
	worlds[2].health = health
	plan := PlanHosts(compose.HostsSpec{Batch: "2"}, []string{"h1", "h2", "h3"})
	opts := DeployOptions{WaitTimeout: 2 * time.Second}
	deployVersion := func(v int) {
		t.Helper()
		for i := range hosts {
			hosts[i].Project = loadProject(t, fmt.Sprintf(hostsCompose, v))
		}
		_, _, err := DeployHosts(context.Background(), hosts, progress.Nop, plan, opts)
		assert.NilError(t, err)
	}
	runningEverywhere := func(want string) {
		t.Helper()
		for i, w := range worlds {
			var running []string
			for _, s := range w.state() {
				if strings.HasSuffix(s, ":running") {
					running = append(running, s)
				}
			}
			assert.Check(t, is.DeepEqual(running, []string{want}), "host h%d", i+1)
		}
	}
	deployVersion(1)
	deployVersion(2)
	runningEverywhere("demo-web-r2-1:running")

	_, plans, err := RollbackHosts(context.Background(), hosts, progress.Nop, plan, nil, 0, DeployOptions{DryRun: true})
	assert.NilError(t, err)
	assert.Check(t, is.Len(plans, 3))
	runningEverywhere("demo-web-r2-1:running")

	outcomes, _, err := RollbackHosts(context.Background(), hosts, progress.Nop, plan, nil, 0, opts)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(outcomesText(outcomes), "h1                   batch 1  switched         web\nh2                   batch 1  switched         web\nh3                   batch 2  switched         web\n"))
	runningEverywhere("demo-web-r1-1:running")

	deployVersion(2) // r2 again: its retained container matches v2
	runningEverywhere("demo-web-r2-1:running")
	r1Broken = true
	outcomes, _, err = RollbackHosts(context.Background(), hosts, progress.Nop, plan, []string{"web"}, 1, opts)
	assert.Check(t, errors.Is(err, ErrRolledBack), "%v", err)
	assert.Check(t, is.ErrorContains(err, "rollback failed on host h3; hosts h1, h2 rolled back"))
	var results []string
	for _, o := range outcomes {
		results = append(results, o.Host+" "+o.Result)
	}
	assert.Check(t, is.DeepEqual(results, []string{"h1 reverted", "h2 reverted", "h3 failed"}))
	runningEverywhere("demo-web-r2-1:running")
}

// Interrupted in the wait between batches: the next batch never starts and the hosts
// of the first, already switched, are rolled back (with a context of their own).
func TestRunHostsInterruptedBetweenBatches(t *testing.T) {
	f := &fakeHostSteps{}
	steps := f.steps()
	ctx, cancel := context.WithCancel(context.Background())
	steps.wait = func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	steps.rollback = func(ctx context.Context, h string, changed []string) ([]string, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.trace = append(f.trace, fmt.Sprintf("rollback %s %v (ctx err %v)", h, changed, ctx.Err()))
		return nil, nil
	}
	plan := PlanHosts(compose.HostsSpec{Batch: "1", Wait: compose.Duration(time.Minute)}, []string{"a", "b"})
	outcomes, err := runHosts(ctx, plan, steps, progress.Nop)
	assert.Check(t, is.DeepEqual(f.trace, []string{"deploy a", "rollback a [web] (ctx err <nil>)"}))
	assert.Check(t, is.Error(err, "multi-host deploy stopped between batches; host a rolled back to the revisions it ran before: context canceled"))
	assert.Check(t, errors.Is(err, context.Canceled))
	assert.Check(t, is.Equal(outcomesText(outcomes), "a                    batch 1  reverted         web\nb                    batch 2  skipped\n"))
}

// One host's lock is held by another deploy: the run stops before any change, on every
// host, names the holder, and leaves no lock of its own behind.
func TestDeployHostsStopsOnAHeldLock(t *testing.T) {
	worlds := []*world{newWorld(), newWorld(), newWorld()}
	var hosts []Host
	for i, w := range worlds {
		hosts = append(hosts, Host{Name: fmt.Sprintf("h%d", i+1), Engine: w.fake(), Project: loadProject(t, fmt.Sprintf(hostsCompose, 1))})
	}
	worlds[1].health = func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "healthy"}
	}
	other, err := lock.Acquire(context.Background(), hosts[1].Engine, "demo", "docker lifecycle deploy (someone else)", nil)
	assert.NilError(t, err)
	plan := PlanHosts(compose.HostsSpec{Batch: "1"}, []string{"h1", "h2", "h3"})
	outcomes, _, err := DeployHosts(context.Background(), hosts, progress.Nop, plan, DeployOptions{WaitTimeout: 2 * time.Second, Command: "docker lifecycle deploy"})
	assert.Check(t, is.ErrorContains(err, "nothing changed on any host: host h2: project demo is locked by docker lifecycle deploy (someone else)"))
	assert.Check(t, is.Len(outcomes, 0))
	for i, w := range worlds {
		assert.Check(t, is.Len(w.state(), 0), "host h%d", i+1)
		_, locked := w.volumes[lock.VolumeName("demo")]
		assert.Check(t, is.Equal(locked, i == 1), "host h%d: only the other deploy's lock remains", i+1)
	}
	assert.NilError(t, other.Release(context.Background()))
}

// What a rollback cannot return is named: an orphan the deploy removed (and a service
// new on the host) stay as the deploy left them, and the run says so (not exit 3).
func TestDeployHostsNamesWhatStays(t *testing.T) {
	worlds := []*world{newWorld(), newWorld()}
	healthy := func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "healthy"}
	}
	v1 := "name: demo\nservices:\n  web: {image: app:1, healthcheck: {test: [CMD, check]}}\n  old: {image: app:1, healthcheck: {test: [CMD, check]}}\n"
	v2 := "name: demo\nservices:\n  web: {image: app:2, healthcheck: {test: [CMD, check]}}\n  extra: {image: app:1, healthcheck: {test: [CMD, check]}}\n"
	hostsWith := func(yaml string) []Host {
		var hosts []Host
		for i, w := range worlds {
			hosts = append(hosts, Host{Name: fmt.Sprintf("h%d", i+1), Engine: w.fake(), Project: loadProject(t, yaml)})
		}
		return hosts
	}
	for _, w := range worlds {
		w.health = healthy
	}
	plan := PlanHosts(compose.HostsSpec{Batch: "1"}, []string{"h1", "h2"})
	opts := DeployOptions{WaitTimeout: 2 * time.Second}
	_, _, err := DeployHosts(context.Background(), hostsWith(v1), progress.Nop, plan, opts)
	assert.NilError(t, err)

	worlds[1].health = func(name string) engine.ContainerDetails {
		if strings.Contains(name, "-r2-") {
			return engine.ContainerDetails{State: "running", Health: "unhealthy"}
		}
		return healthy(name)
	}
	opts.RemoveOrphans = true
	outcomes, _, err := DeployHosts(context.Background(), hostsWith(v2), progress.Nop, plan, opts)
	var rolledBack *RolledBackError
	assert.Check(t, !errors.Is(err, ErrRolledBack) && !errors.As(err, &rolledBack), "not all or nothing, so no exit 3: %v", err)
	assert.Check(t, is.ErrorContains(err, "deploy failed on h2"))
	assert.Check(t, is.ErrorContains(err, "these services keep the new version: h1: old (not in the project: its containers were removed as orphans); h1: extra (no previous revision on this host)"))
	assert.Check(t, is.Equal(outcomes[0].Result, HostReverted))
	var running []string
	for _, s := range worlds[0].state() {
		if strings.HasSuffix(s, ":running") {
			running = append(running, s)
		}
	}
	assert.Check(t, is.DeepEqual(running, []string{"demo-extra-r1-1:running", "demo-web-r1-1:running"}))
}

// A switched host whose rollback fails is named, with what to do, and the run is no
// clean rollback (exit 1, not 3).
func TestRunHostsRollbackFails(t *testing.T) {
	f := &fakeHostSteps{fail: map[string]bool{"b": true}}
	steps := f.steps()
	steps.rollback = func(_ context.Context, h string, _ []string) ([]string, error) {
		return nil, errors.New("engine gone")
	}
	plan := PlanHosts(compose.HostsSpec{Batch: "1"}, []string{"a", "b"})
	outcomes, err := runHosts(context.Background(), plan, steps, progress.Nop)
	var rolledBack *RolledBackError
	assert.Check(t, !errors.Is(err, ErrRolledBack) && !errors.As(err, &rolledBack), "%v", err)
	assert.Check(t, is.Error(err, "deploy failed on b: host b: web: rolled back; and the rollback failed on host a: engine gone: those hosts may run the new version; look with `docker --context HOST lifecycle ps`, then `docker --context HOST lifecycle rollback`"))
	assert.Check(t, is.Equal(outcomesText(outcomes), "a                    batch 1  revert-failed    web  (engine gone)\nb                    batch 2  failed           (web: rolled back)\n"))
}
