package rollout

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// TestAlertWatcher feeds the watcher a fake project: an unhealthy container (for 2s),
// a container over its memory threshold (for 0), a service whose last rollout was
// rolled back, an OOM kill from the event stream, and restarts in a window.
func TestAlertWatcher(t *testing.T) {
	labels := func(service, rev string) map[string]string {
		return map[string]string{compose.LabelProject: "p", compose.LabelService: service, compose.LabelRevision: rev, compose.LabelRole: compose.RoleApp}
	}
	var mu sync.Mutex
	health := "unhealthy"
	containers := func() []engine.Container {
		mu.Lock()
		defer mu.Unlock()
		return []engine.Container{
			{ID: "id-w1", Name: "p-web-r1-1", State: "running", Health: health, Labels: labels("web", "1")},
			{ID: "id-d1", Name: "p-db-1", State: "exited", Labels: labels("db", "")},
			{ID: "id-r", Name: "p-lifecycle-router", State: "running", Labels: map[string]string{compose.LabelProject: "p", compose.LabelRole: compose.RoleRouter}},
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := make(chan engine.Event, 1)
	fake := &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) { return containers(), nil },
		ListVolumesFn: func(ctx context.Context, l map[string]string) ([]engine.Volume, error) {
			return []engine.Volume{{Name: "h3", Labels: map[string]string{labelHistory: "web", compose.LabelRevision: "3", labelResult: ResultRolledBack, labelTime: t0.Format(time.RFC3339Nano)}}}, nil
		},
		EventsFn: func(ctx context.Context, l map[string]string, actions []string) (<-chan engine.Event, <-chan error) {
			assert.Check(t, is.DeepEqual(actions, []string{"oom"}))
			errs := make(chan error, 1)
			go func() { <-ctx.Done(); close(events); errs <- ctx.Err() }()
			return events, errs
		},
	}
	th := func(v float64) *compose.Threshold { x := compose.Threshold(v); return &x }
	rules := []compose.AlertRule{
		{Name: "unhealthy", Metric: compose.AlertUnhealthy, For: compose.Duration(2 * time.Second)},
		{Name: "memory", Metric: compose.AlertMemory, Above: th(80), ResolveBelow: th(80)},
		{Name: "deploy", Metric: compose.AlertDeploy},
		{Name: "oom", Metric: compose.AlertOOM, Above: th(0), ResolveBelow: th(0), Window: compose.Duration(time.Minute)},
		{Name: "restarts", Metric: compose.AlertRestarts, Above: th(1), ResolveBelow: th(1), Window: compose.Duration(30 * time.Second)},
	}
	var got []alerting.Alert
	ooms := newOOMKills(fake, "p", nil)
	w := newAlertWatcher(fake, "p", AlertOptions{Interval: time.Second, Rules: map[string][]compose.AlertRule{"web": rules, "db": rules},
		Notify: func(a alerting.Alert) { got = append(got, a) }}, ooms, nil)
	m := &metricsCollector{c: newStatsCollector(fake, "p", StatsOptions{}), ooms: ooms}
	m.c.samplers["id-w1"] = &sampler{c: containers()[0], usage: Usage{Sampled: true, MemoryBytes: 90, MemoryLimitBytes: 100, MemoryPercent: 90},
		restarts: 5, restartsRead: true} // restarts before the monitor started do not count
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ooms.follow(ctx)

	statuses := func() (out []string) {
		for _, a := range got {
			out = append(out, a.Status+" "+a.Rule+" "+a.Service+" "+a.Container)
		}
		got = nil
		return out
	}
	w.evaluate(ctx, m, t0)
	assert.Check(t, is.DeepEqual(statuses(), []string{"firing memory web p-web-r1-1", "firing deploy web "}))
	w.evaluate(ctx, m, t0.Add(time.Second))
	assert.Check(t, is.Len(statuses(), 0))
	events <- engine.Event{Action: "oom", ContainerID: "id-w1", Name: "p-web-r1-1"}
	time.Sleep(50 * time.Millisecond)
	w.evaluate(ctx, m, t0.Add(2*time.Second))
	assert.Check(t, is.DeepEqual(statuses(), []string{"firing unhealthy web p-web-r1-1", "firing oom web p-web-r1-1"}))
	mu.Lock()
	health = "healthy"
	mu.Unlock()
	m.c.samplers["id-w1"].usage.MemoryPercent = 50
	m.c.samplers["id-w1"].restarts = 7 // 2 in the window: above 1
	w.evaluate(ctx, m, t0.Add(3*time.Second))
	assert.Check(t, is.DeepEqual(statuses(), []string{"resolved memory web p-web-r1-1", "firing restarts web p-web-r1-1"}))
	w.evaluate(ctx, m, t0.Add(5*time.Second))
	assert.Check(t, is.DeepEqual(statuses(), []string{"resolved unhealthy web p-web-r1-1"}))
	// The OOM kill leaves the one-minute window: resolved.
	w.evaluate(ctx, m, t0.Add(63*time.Second))
	assert.Check(t, is.DeepEqual(statuses(), []string{"resolved oom web p-web-r1-1", "resolved restarts web p-web-r1-1"}))
}

func TestGuardNotification(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := GuardNotification(GuardAlert{Time: at, Project: "p", Service: "web", Container: "p-web-r1-1", Kind: AlertUnhealthy, Action: ActionQuarantined, Reason: "budget spent"})
	assert.Check(t, is.Equal(a.Status, alerting.StatusEvent))
	assert.Check(t, is.Equal(a.Source, alerting.SourceGuard))
	assert.Check(t, is.Equal(a.Severity, "critical"))
	assert.Check(t, is.Equal(a.Metric, "unhealthy"))
	assert.Check(t, is.Equal(a.Summary, "2026-01-01T00:00:00Z guard: web (p-web-r1-1): unhealthy, quarantined: budget spent"))
	var g GuardAlert
	assert.NilError(t, json.Unmarshal(a.Guard, &g))
	assert.Check(t, is.Equal(g.Action, ActionQuarantined))

	a = GuardNotification(GuardAlert{Time: at, Project: "p", Container: "intruder", Kind: AlertPolicy, Action: ActionReported, Reason: "privileged"})
	assert.Check(t, is.Equal(a.Severity, "critical"))
	assert.Check(t, is.Equal(a.Summary, "2026-01-01T00:00:00Z guard: intruder: policy, reported: privileged"))
	a = GuardNotification(GuardAlert{Time: at, Project: "p", Service: "web", Container: "p-web-r1-1", Kind: AlertDrift, Action: ActionReported})
	assert.Check(t, is.Equal(a.Severity, "warning"))
	a = GuardNotification(GuardAlert{Time: at, Project: "p", Service: "sidecar", Kind: AlertUnhealthy, Action: ActionDependentFailed})
	assert.Check(t, is.Equal(a.Severity, "critical"))
	a = GuardNotification(GuardAlert{Time: at, Project: "p", Service: "sidecar", Kind: AlertUnhealthy, Action: ActionRestartedDependent})
	assert.Check(t, is.Equal(a.Severity, "warning"))
}

// TestAlertWatcherRouterRules: error-rate and p99 over the window of the routers'
// counters (monitorFake's router: +100 requests, 1 of them a 5xx, 40 of them between 5
// and 10 ms, at each read).
func TestAlertWatcherRouterRules(t *testing.T) {
	fake := monitorFake(t)
	fake.EventsFn = func(ctx context.Context, l map[string]string, actions []string) (<-chan engine.Event, <-chan error) {
		ch, errs := make(chan engine.Event), make(chan error, 1)
		close(ch)
		errs <- nil
		return ch, errs
	}
	th := func(v float64) *compose.Threshold { x := compose.Threshold(v); return &x }
	rules := []compose.AlertRule{
		{Name: "errors", Metric: compose.AlertErrorRate, Above: th(0.5), ResolveBelow: th(0.5), Window: compose.Duration(time.Minute)},
		{Name: "slow", Metric: compose.AlertP99, Above: th(5), ResolveBelow: th(5), Window: compose.Duration(time.Minute)},
		{Name: "very-slow", Metric: compose.AlertP99, Above: th(50), ResolveBelow: th(50), Window: compose.Duration(time.Minute)},
	}
	var got []alerting.Alert
	w := newAlertWatcher(fake, "p", AlertOptions{Interval: time.Second, Rules: map[string][]compose.AlertRule{"web": rules},
		Notify: func(a alerting.Alert) { got = append(got, a) }}, newOOMKills(fake, "p", nil), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := &metricsCollector{ctx: ctx, c: newStatsCollector(fake, "p", StatsOptions{})}
	defer m.close()
	assert.NilError(t, m.refresh(ctx))
	t0 := time.Now()
	w.evaluate(ctx, m, t0) // the window's start
	assert.Check(t, is.Len(got, 0))
	w.evaluate(ctx, m, t0.Add(time.Second))
	assert.Assert(t, is.Len(got, 2), "%+v", got)
	assert.Check(t, is.Equal(got[0].Rule, "errors"))
	assert.Check(t, is.Equal(got[0].Value, 1.0))
	assert.Check(t, is.Equal(got[0].Container, ""))
	assert.Check(t, is.Equal(got[1].Rule, "slow"))
	assert.Check(t, got[1].Value > 5 && got[1].Value <= 10, "p99 %v ms", got[1].Value)
}
