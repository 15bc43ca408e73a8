package rollout

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func revisionContainer(id string, revision int, state string) engine.Container {
	return engine.Container{ID: id, Name: "demo-web-r" + strconv.Itoa(revision) + "-1", State: state, Labels: map[string]string{
		compose.LabelProject: "demo", compose.LabelService: "web", compose.LabelRole: compose.RoleApp, compose.LabelRevision: strconv.Itoa(revision),
		compose.LabelManagedBy: compose.ManagedByValue, compose.LabelConfigHash: "h" + strconv.Itoa(revision),
	}}
}

func TestDecideGuardRollback(t *testing.T) {
	now := time.Now()
	running2, retained1 := revisionContainer("c2", 2, "running"), revisionContainer("c1", 1, "exited")
	deployed := func(rev int, ago time.Duration) Record {
		return Record{Service: "web", Revision: rev, Result: ResultDeployed, Time: now.Add(-ago)}
	}
	tests := []struct {
		name       string
		revision   int
		containers []engine.Container
		records    []Record
		window     time.Duration
		to         int
		why        string
	}{
		{"recent revision, previous retained: back to it", 2, []engine.Container{running2, retained1},
			[]Record{deployed(1, time.Hour), deployed(2, time.Minute)}, 30 * time.Minute, 1, "revision 2 was deployed 1m0s ago (rollback-window 30m0s)"},
		{"deployed longer ago than the window", 2, []engine.Container{running2, retained1},
			[]Record{deployed(1, 3*time.Hour), deployed(2, 2*time.Hour)}, 30 * time.Minute, 0, "revision 2 was deployed 2h0m0s ago, longer than rollback-window (30m0s)"},
		{"no previous revision retained", 2, []engine.Container{running2},
			[]Record{deployed(1, time.Hour), deployed(2, time.Minute)}, 30 * time.Minute, 0, "no previous revision is retained"},
		{"a first deploy has no previous revision", 1, []engine.Container{revisionContainer("c1", 1, "running")},
			[]Record{deployed(1, time.Minute)}, 30 * time.Minute, 0, "no previous revision is retained"},
		{"current by a rollback: not rolled back again", 1, []engine.Container{revisionContainer("c1", 1, "running"), revisionContainer("c2", 2, "exited")},
			[]Record{deployed(1, time.Hour), deployed(2, 2*time.Minute), {Service: "web", Revision: 1, Result: ResultRollback, Trigger: TriggerGuardRollback, Time: now.Add(-time.Minute)}},
			30 * time.Minute, 0, "current by a rollback, not a deploy"},
		{"an older revision's container", 1, []engine.Container{revisionContainer("c1", 1, "running"), running2},
			[]Record{deployed(1, time.Hour), deployed(2, time.Minute)}, 30 * time.Minute, 0, "the container runs revision 1, the service's current revision is 2"},
		{"no record of the revision", 2, []engine.Container{running2, retained1}, nil, 30 * time.Minute, 0, "revision 2 has no revision record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			to, why := decideGuardRollback("web", tc.revision, tc.containers, tc.records, tc.window, now)
			assert.Check(t, is.Equal(to, tc.to))
			assert.Check(t, is.Contains(why, tc.why))
		})
	}
}

// rollbackWorld is guardWorld with two revisions of web: c2 (revision 2, running,
// unhealthy on demand) deployed deployedAgo ago, and, when retained, c1 (revision 1,
// stopped) deployed an hour before; rollBack is the guard's rollback.
type rollbackWorld struct {
	*guardWorld
	rolledBack chan string
}

func startRollbackWorld(t *testing.T, policy string, deployedAgo time.Duration, retained bool, rollBackErr error) *rollbackWorld {
	t.Helper()
	p := loadProject(t, `
name: demo
services:
  web:
    image: app
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 100ms, retries: 2}
    x-lifecycle:
      guard: `+policy+`
`)
	w, f := newGuardWorld()
	rw := &rollbackWorld{guardWorld: w, rolledBack: make(chan string, 4)}
	w.health, w.failing = "unhealthy", time.Now().Add(-time.Minute)
	containers := []engine.Container{revisionContainer("c2", 2, "running")}
	if retained {
		containers = append(containers, revisionContainer("c1", 1, "exited"))
	}
	f.ListContainersFn = func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
		if l[compose.LabelRole] == compose.RoleRouter {
			return nil, nil
		}
		return containers, nil
	}
	inspect := f.InspectContainerFn
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		d, err := inspect(ctx, id)
		d.Name, d.Labels = "demo-web-r2-1", maps.Clone(containers[0].Labels)
		return d, err
	}
	deployed := time.Now().Add(-deployedAgo)
	f.ListVolumesFn = func(ctx context.Context, l map[string]string) ([]engine.Volume, error) {
		record := func(rev int, at time.Time) engine.Volume {
			return engine.Volume{Name: "h" + strconv.Itoa(rev), Labels: map[string]string{labelHistory: "web", compose.LabelRevision: strconv.Itoa(rev),
				labelResult: ResultDeployed, labelTime: at.Format(time.RFC3339Nano)}}
		}
		return []engine.Volume{record(1, deployed.Add(-time.Hour)), record(2, deployed)}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{
			Alert: func(a GuardAlert) { w.alerts <- a },
			rollBack: func(ctx context.Context, service string, to int, reason string) error {
				rw.rolledBack <- service + " to " + strconv.Itoa(to) + ": " + reason
				return rollBackErr
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		assert.Check(t, <-done)
	})
	stream := <-w.streams
	// Restarted once (the budget of 1), then unhealthy again: the budget is spent.
	a := w.nextAlert(t)
	assert.Assert(t, is.Equal(a.Action, ActionRestarted))
	w.mu.Lock()
	w.health, w.failing = "unhealthy", time.Now()
	w.mu.Unlock()
	stream <- engine.Event{Action: engine.EventHealthStatus, Detail: "unhealthy", ContainerID: "c2", Name: "demo-web-r2-1"}
	return rw
}

// TestGuardRollsBackARecentRevision: the budget spent on revision 2, deployed a minute
// ago within a rollback-window of 30m, with revision 1 retained: the service goes back
// to revision 1, one alert says so, the container is not quarantined.
func TestGuardRollsBackARecentRevision(t *testing.T) {
	w := startRollbackWorld(t, "{backoff: {start: 100ms}, budget: 1, window: 1h, rollback-window: 30m}", time.Minute, true, nil)
	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Kind, AlertUnhealthy))
	assert.Check(t, is.Equal(a.Action, ActionRolledBack), a.Reason)
	assert.Check(t, is.Equal(a.Revision, 2))
	assert.Check(t, is.Equal(a.RollbackTo, 1))
	assert.Check(t, a.RollbackBegan != nil && !a.RollbackBegan.After(a.Time))
	assert.Check(t, is.Contains(a.Reason, "revision 2 was deployed 1m0s ago (rollback-window 30m0s): rolled the service back to revision 1"))
	select {
	case call := <-w.rolledBack:
		assert.Check(t, is.Contains(call, "web to 1: guard: demo-web-r2-1 (web) still unhealthy after 1 restarts within 1h0m0s (x-lifecycle.guard budget 1); revision 2 was deployed 1m0s ago (rollback-window 30m0s)"), call)
	default:
		t.Error("no rollback made")
	}
	w.noAlert(t, 500*time.Millisecond) // no quarantine
	assert.Check(t, is.DeepEqual(w.restarts(), []string{"stop c2", "start c2"}))
}

// TestGuardQuarantinesWithoutRollback: an old revision, no retained previous revision,
// or rollback-window 0s: the container is quarantined as before, the alert says why
// there was no rollback, and none is made.
func TestGuardQuarantinesWithoutRollback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   string
		ago      time.Duration
		retained bool
		why      string
	}{
		{"deployed before the window", "{backoff: {start: 100ms}, budget: 1, window: 1h, rollback-window: 30m}", 2 * time.Hour, true, "longer than rollback-window (30m0s)"},
		{"no previous revision", "{backoff: {start: 100ms}, budget: 1, window: 1h}", time.Minute, false, "no previous revision is retained"},
		{"rollback-window off", "{backoff: {start: 100ms}, budget: 1, window: 1h, rollback-window: 0s}", time.Minute, true, "kept for inspection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startRollbackWorld(t, tc.policy, tc.ago, tc.retained, nil)
			a := w.nextAlert(t)
			assert.Check(t, is.Equal(a.Action, ActionQuarantined), a.Reason)
			assert.Check(t, is.Contains(a.Reason, "no more restarts"))
			assert.Check(t, is.Contains(a.Reason, tc.why))
			assert.Check(t, is.Len(w.rolledBack, 0))
		})
	}
}

// TestGuardQuarantinesWhenTheRollbackFails: the rollback is tried and fails: one alert
// for the failure, then the quarantine.
func TestGuardQuarantinesWhenTheRollbackFails(t *testing.T) {
	w := startRollbackWorld(t, "{backoff: {start: 100ms}, budget: 1, window: 1h}", time.Minute, true, errors.New("deploy failed: container demo-web-r1-1: unhealthy"))
	a := w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionRollbackFail), a.Reason)
	assert.Check(t, is.Equal(a.RollbackTo, 1))
	assert.Check(t, is.Contains(a.Reason, "automatic rollback to revision 1 failed after"))
	assert.Check(t, is.Contains(a.Reason, "demo-web-r1-1: unhealthy; the container is quarantined instead"))
	a = w.nextAlert(t)
	assert.Check(t, is.Equal(a.Action, ActionQuarantined), a.Reason)
	assert.Check(t, is.Contains(a.Reason, "the automatic rollback to revision 1 failed"))
	assert.Check(t, is.Len(w.rolledBack, 1))
}

// TestGuardDetachedCannotRollBack: without the compose project (the detached guard),
// the container is quarantined and the alert names the command that rolls back.
func TestGuardDetachedCannotRollBack(t *testing.T) {
	p := loadProject(t, "name: demo\nservices:\n  web:\n    image: app\n")
	g := &guard{project: encodedTarget(t, p), eng: &engine.Fake{
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			return engine.ContainerDetails{Labels: revisionContainer("c2", 2, "running").Labels}, nil
		},
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
			return []engine.Container{revisionContainer("c2", 2, "running"), revisionContainer("c1", 1, "exited")}, nil
		},
		ListVolumesFn: func(ctx context.Context, l map[string]string) ([]engine.Volume, error) {
			return []engine.Volume{{Labels: map[string]string{labelHistory: "web", compose.LabelRevision: "2", labelResult: ResultDeployed, labelTime: time.Now().Format(time.RFC3339Nano)}}}, nil
		},
	}}
	e := g.tryRollback(context.Background(), "c2", "demo-web-r2-1", "web", GuardAlert{}, "still unhealthy", 30*time.Minute, time.Now())
	assert.Check(t, !e.rolledBack)
	assert.Check(t, is.Contains(e.why, "the detached guard has no compose files to roll back with; `docker lifecycle rollback web` does it"), e.why)
}

// TestRecordTrigger: a record's trigger is written as a label and read back; records
// without one (older ones) read as none.
func TestRecordTrigger(t *testing.T) {
	var vols []engine.Volume
	f := &engine.Fake{
		CreateVolumeFn: func(ctx context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			v := engine.Volume{Name: spec.Name, Labels: spec.Labels}
			vols = append(vols, v)
			return v, nil
		},
		ListVolumesFn: func(ctx context.Context, l map[string]string) ([]engine.Volume, error) { return vols, nil },
	}
	now := time.Now()
	assert.NilError(t, writeRecord(context.Background(), f, "demo", Record{Service: "web", Revision: 1, Result: ResultDeployed, Time: now}))
	assert.NilError(t, writeRecord(context.Background(), f, "demo", Record{Service: "web", Revision: 1, Result: ResultRollback, Time: now.Add(time.Second), Trigger: TriggerGuardRollback, Reason: "guard: why"}))
	records, err := History(context.Background(), f, "demo")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(records, 2))
	assert.Check(t, is.Equal(records[0].Trigger, ""))
	_, labelled := vols[0].Labels[labelTrigger]
	assert.Check(t, !labelled)
	assert.Check(t, is.Equal(records[1].Trigger, TriggerGuardRollback))
	assert.Check(t, is.Equal(records[1].Reason, "guard: why"))
}
