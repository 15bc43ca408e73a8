package alerting

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func rule(metric string, above, resolve float64, forD time.Duration) compose.AlertRule {
	r := compose.AlertRule{Name: metric, Metric: metric, For: compose.Duration(forD), Severity: "warning"}
	if metric != compose.AlertUnhealthy && metric != compose.AlertDeploy {
		a, b := compose.Threshold(above), compose.Threshold(resolve)
		r.Above, r.ResolveBelow = &a, &b
	}
	return r
}

// clock feeds one subject's values, one second apart, and returns the statuses
// notified at each step ("" for none).
func run(e *Evaluator, r compose.AlertRule, subject Subject, values []float64) []string {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []string
	for i, v := range values {
		got := e.Observe(t0.Add(time.Duration(i)*time.Second), []string{r.Metric}, []Observation{{Rule: r, Subject: subject, Value: v}})
		s := ""
		for _, a := range got {
			s += a.Status
		}
		out = append(out, s)
	}
	return out
}

func TestEvaluatorFor(t *testing.T) {
	web := Subject{Service: "web", Container: "p-web-r1-1"}
	r := rule(compose.AlertCPU, 80, 80, 3*time.Second)

	// Above for 2 s (< for 3 s), then below: nothing.
	e := NewEvaluator("p")
	assert.DeepEqual(t, run(e, r, web, []float64{90, 90, 90, 10, 90, 90, 10}), []string{"", "", "", "", "", "", ""})
	assert.Check(t, is.Equal(e.Firing(), 0))

	// Above for 3 s: fires once at t=3; below for 3 s: resolves once at t=3 after the drop.
	e = NewEvaluator("p")
	assert.DeepEqual(t, run(e, r, web, []float64{90, 90, 90, 90, 95, 10, 10, 10, 10, 10}),
		[]string{"", "", "", "firing", "", "", "", "", "resolved", ""})

	// for 0: fires at the first value above, resolves at the first at or below.
	e = NewEvaluator("p")
	assert.DeepEqual(t, run(e, rule(compose.AlertCPU, 80, 80, 0), web, []float64{10, 81, 80}), []string{"", "firing", "resolved"})
}

func TestEvaluatorNoFlapping(t *testing.T) {
	web := Subject{Service: "web", Container: "c1"}
	// A value hovering around the threshold while firing: the resolve count restarts
	// at every value above resolve-below, so it resolves only after 2 s in a row below.
	e := NewEvaluator("p")
	r := rule(compose.AlertMemory, 80, 60, 2*time.Second)
	got := run(e, r, web, []float64{90, 90, 90, 50, 85, 50, 70, 50, 79, 50, 50, 50})
	assert.DeepEqual(t, got, []string{"", "", "firing", "", "", "", "", "", "", "", "", "resolved"})

	// Between the thresholds (60 < v ≤ 80) a firing alert stays firing, however long.
	e = NewEvaluator("p")
	got = run(e, rule(compose.AlertMemory, 80, 60, 0), web, []float64{90, 70, 75, 70, 79, 70, 60})
	assert.DeepEqual(t, got, []string{"firing", "", "", "", "", "", "resolved"})
}

func TestEvaluatorYesNoAndContent(t *testing.T) {
	c := Subject{Service: "web", Container: "c1"}
	r := rule(compose.AlertUnhealthy, 0, 0, 2*time.Second)
	e := NewEvaluator("proj")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []Alert
	for i, v := range []float64{1, 1, 1, 0, 0, 0} {
		all = append(all, e.Observe(t0.Add(time.Duration(i)*time.Second), []string{r.Metric}, []Observation{{Rule: r, Subject: c, Value: v}})...)
	}
	assert.Assert(t, is.Len(all, 2))
	f, res := all[0], all[1]
	assert.Check(t, is.Equal(f.Status, StatusFiring))
	assert.Check(t, is.Equal(f.Project, "proj"))
	assert.Check(t, is.Equal(f.Container, "c1"))
	assert.Check(t, is.Equal(f.StartsAt, t0))
	assert.Check(t, is.Equal(f.Time, t0.Add(2*time.Second)))
	assert.Check(t, is.Equal(f.Summary, "2026-01-01T00:00:02Z firing unhealthy: web (c1): unhealthy for 2s"))
	assert.Check(t, is.Equal(res.Status, StatusResolved))
	assert.Check(t, is.Equal(res.StartsAt, t0))
	assert.Check(t, is.Equal(*res.EndsAt, t0.Add(5*time.Second)))
	assert.Check(t, is.Equal(res.Summary, "2026-01-01T00:00:05Z resolved unhealthy: web (c1): healthy again for 2s"))
}

func TestEvaluatorGoneAndUnread(t *testing.T) {
	c1 := Subject{Service: "web", Container: "c1"}
	c2 := Subject{Service: "web", Container: "c2"}
	cpu := rule(compose.AlertCPU, 50, 50, 0)
	er := rule(compose.AlertErrorRate, 5, 5, 0)
	svc := Subject{Service: "web"}
	e := NewEvaluator("p")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := e.Observe(t0, []string{"cpu", "error-rate"}, []Observation{
		{Rule: cpu, Subject: c1, Value: 99}, {Rule: cpu, Subject: c2, Value: 99}, {Rule: er, Subject: svc, Value: 20},
	})
	assert.Check(t, is.Len(got, 3))
	// The router could not be read (error-rate left out): its alert stays firing; c2
	// is gone: resolved.
	got = e.Observe(t0.Add(time.Second), []string{"cpu"}, []Observation{{Rule: cpu, Subject: c1, Value: 99}})
	assert.Assert(t, is.Len(got, 1))
	assert.Check(t, is.Equal(got[0].Container, "c2"))
	assert.Check(t, is.Equal(got[0].Status, StatusResolved))
	assert.Check(t, is.Contains(got[0].Summary, "(gone)"))
	assert.Check(t, is.Equal(e.Firing(), 2))
}

func TestWindow(t *testing.T) {
	w := Window[uint64]{Span: 10 * time.Second}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, _, ok := w.Ends()
	assert.Check(t, !ok)
	for i, v := range []uint64{5, 5, 6, 8} { // at 0, 4, 8, 12 s
		w.Add(t0.Add(time.Duration(i*4)*time.Second), v)
	}
	base, latest, ok := w.Ends()
	assert.Check(t, ok)
	// The window's start is 2 s: the base is the sample at 0 s (the newest at or before).
	assert.Check(t, is.Equal(Increase(base, latest), uint64(3)))
	w.Add(t0.Add(20*time.Second), 8) // start 10 s: base is the sample at 8 s (6)
	base, latest, _ = w.Ends()
	assert.Check(t, is.Equal(Increase(base, latest), uint64(2)))
	assert.Check(t, is.Equal(Increase(7, 2), uint64(2)), "a counter that went back counts from zero")
}

// A unit that is a word stands apart from the number; a symbol does not.
func TestSummaryUnits(t *testing.T) {
	c := Subject{Service: "web", Container: "c1"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rule compose.AlertRule
		want string
	}{
		{rule(compose.AlertOOM, 0, 0, 0), "oom 1 kills > 0 kills"},
		{rule(compose.AlertMemory, 80, 80, 0), "memory 90% > 80%"},
	} {
		v := 1.0
		if tc.rule.Metric == compose.AlertMemory {
			v = 90
		}
		got := NewEvaluator("p").Observe(t0, []string{tc.rule.Metric}, []Observation{{Rule: tc.rule, Subject: c, Value: v}})
		assert.Assert(t, is.Len(got, 1))
		assert.Check(t, is.Contains(got[0].Summary, tc.want))
	}
}
