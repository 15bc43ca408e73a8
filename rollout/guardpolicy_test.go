package rollout

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testGuardPolicy(after, start, capDelay, reset time.Duration, budget int, window time.Duration) guardPolicy {
	return guardPolicy{after: after, backoffStart: start, backoffCap: capDelay, resetAfter: reset, budget: budget, window: window}
}

// crashLoop drives a tracker through a container that fails its first probe failAt
// after every (re)start; the engine reports it unhealthy `after` later (the default
// after is its interval × retries). It returns the gaps between restarts (the first
// from the first failing probe) and when the container was quarantined (zero: not
// within limit).
func crashLoop(p guardPolicy, failAt time.Duration, limit time.Duration) (gaps []time.Duration, quarantined time.Duration) {
	g := newGuardTracker(p)
	failing := t0
	g.observe("unhealthy", failing, failing.Add(p.after))
	now, last := failing.Add(p.after), failing
	for now.Sub(t0) < limit {
		v, deadline := g.decide(now)
		switch v {
		case verdictNone:
			if deadline.IsZero() {
				return gaps, 0
			}
			now = deadline
		case verdictRestart:
			gaps = append(gaps, now.Sub(last))
			last = now
			g.restarted(now)
			g.observe("starting", time.Time{}, now)
			failing = now.Add(failAt)
			now = failing.Add(p.after) // the engine's unhealthy event
			g.observe("unhealthy", failing, now)
		case verdictQuarantine:
			return gaps, now.Sub(t0)
		}
	}
	return gaps, 0
}

func secs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Second
	}
	return out
}

func TestGuardBackoffGaps(t *testing.T) {
	tests := []struct {
		name   string
		policy guardPolicy
		failAt time.Duration
		limit  time.Duration
		want   []time.Duration
		quar   time.Duration
	}{
		{
			name:   "defaults: 10s doubling to the 5 min cap (the first restart `after` past the first failing probe)",
			policy: testGuardPolicy(2*time.Second, 10*time.Second, 5*time.Minute, 10*time.Minute, 1000, 10*time.Minute),
			failAt: time.Second, limit: 30 * time.Minute,
			want: secs(2, 10, 20, 40, 80, 160, 300, 300, 300, 300),
		},
		{
			name:   "a container slower to fail than the backoff: its own pace (fail + after) wins",
			policy: testGuardPolicy(3*time.Second, time.Second, 4*time.Second, time.Minute, 1000, time.Minute),
			failAt: 5 * time.Second, limit: 60 * time.Second,
			want: secs(3, 8, 8, 8, 8, 8, 8, 8),
		},
		{
			name:   "the tests' small backoff: 1s, 2s, 4s, cap 4s",
			policy: testGuardPolicy(600*time.Millisecond, time.Second, 4*time.Second, time.Minute, 1000, time.Second),
			failAt: 200 * time.Millisecond, limit: 20 * time.Second,
			want: []time.Duration{600 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second},
		},
		{
			name:   "budget 3 in 10 min: three restarts, then quarantine when the fourth is due",
			policy: testGuardPolicy(2*time.Second, 10*time.Second, 5*time.Minute, 10*time.Minute, 3, 10*time.Minute),
			failAt: time.Second, limit: time.Hour,
			want: secs(2, 10, 20), quar: 72 * time.Second, // 2 + 10 + 20 + 40
		},
		{
			name:   "the budget counts only the restarts inside the window",
			policy: testGuardPolicy(time.Second, 10*time.Second, 20*time.Second, time.Hour, 2, 30*time.Second),
			failAt: time.Second, limit: 3 * time.Minute,
			want: secs(1, 10, 20, 20, 20, 20, 20, 20, 20, 20),
		},
		{
			name:   "budget 1: one restart, then quarantine",
			policy: testGuardPolicy(time.Second, 5*time.Second, time.Minute, time.Hour, 1, time.Hour),
			failAt: time.Second, limit: time.Hour,
			want: secs(1), quar: 6 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gaps, quar := crashLoop(tc.policy, tc.failAt, tc.limit)
			assert.Check(t, is.DeepEqual(gaps, tc.want))
			assert.Check(t, is.Equal(quar, tc.quar))
		})
	}
}

func TestGuardQuarantineIsFinal(t *testing.T) {
	g := newGuardTracker(testGuardPolicy(time.Second, time.Second, time.Second, time.Hour, 1, time.Hour))
	g.observe("unhealthy", t0, t0)
	v, _ := g.decide(t0.Add(time.Second))
	assert.Assert(t, is.Equal(v, verdictRestart))
	g.restarted(t0.Add(time.Second))
	g.observe("unhealthy", t0.Add(2*time.Second), t0.Add(2*time.Second))
	v, _ = g.decide(t0.Add(5 * time.Second))
	assert.Assert(t, is.Equal(v, verdictQuarantine))
	// Whatever happens next, no restart and no second quarantine alert.
	for _, h := range []string{"healthy", "unhealthy", "starting", "unhealthy"} {
		g.observe(h, time.Time{}, t0.Add(time.Minute))
		v, deadline := g.decide(t0.Add(2 * time.Hour))
		assert.Check(t, is.Equal(v, verdictNone), h)
		assert.Check(t, deadline.IsZero(), h)
	}
}

func TestGuardAfterCountsFromTheFirstFailingProbe(t *testing.T) {
	p := testGuardPolicy(10*time.Second, time.Second, time.Second, time.Hour, 3, time.Hour)
	t.Run("waits for after", func(t *testing.T) {
		g := newGuardTracker(p)
		g.observe("unhealthy", t0, t0.Add(4*time.Second))
		v, deadline := g.decide(t0.Add(4 * time.Second))
		assert.Check(t, is.Equal(v, verdictNone))
		assert.Check(t, deadline.Equal(t0.Add(10*time.Second)), deadline)
		v, _ = g.decide(t0.Add(10 * time.Second))
		assert.Check(t, is.Equal(v, verdictRestart))
	})
	t.Run("a guard started late (re-synchronised) restarts at once", func(t *testing.T) {
		g := newGuardTracker(p)
		g.observe("unhealthy", t0, t0.Add(time.Minute))
		v, _ := g.decide(t0.Add(time.Minute))
		assert.Check(t, is.Equal(v, verdictRestart))
	})
	t.Run("a container that recovers in time is left alone", func(t *testing.T) {
		g := newGuardTracker(p)
		g.observe("unhealthy", t0, t0.Add(6*time.Second))
		g.observe("healthy", time.Time{}, t0.Add(8*time.Second))
		v, deadline := g.decide(t0.Add(time.Minute))
		assert.Check(t, is.Equal(v, verdictNone))
		assert.Check(t, deadline.IsZero())
	})
	t.Run("repeated unhealthy reports keep the first failing probe", func(t *testing.T) {
		g := newGuardTracker(p)
		g.observe("unhealthy", t0, t0.Add(time.Second))
		g.observe("unhealthy", t0.Add(5*time.Second), t0.Add(6*time.Second))
		_, deadline := g.decide(t0.Add(6 * time.Second))
		assert.Check(t, deadline.Equal(t0.Add(10*time.Second)), deadline)
	})
	t.Run("a failing-since in the future (clock skew) counts from now", func(t *testing.T) {
		g := newGuardTracker(p)
		g.observe("unhealthy", t0.Add(time.Hour), t0)
		_, deadline := g.decide(t0)
		assert.Check(t, deadline.Equal(t0.Add(10*time.Second)), deadline)
	})
}

func TestGuardBackoffResetsAfterHealthy(t *testing.T) {
	p := testGuardPolicy(time.Second, 10*time.Second, 5*time.Minute, time.Minute, 100, time.Hour)
	g := newGuardTracker(p)
	now := t0
	restart := func() {
		t.Helper()
		v, deadline := g.decide(now)
		if v == verdictNone && !deadline.IsZero() {
			now = deadline
			v, _ = g.decide(now)
		}
		assert.Assert(t, is.Equal(v, verdictRestart))
		g.restarted(now)
	}
	// Three restarts build the backoff up to 40s.
	for range 3 {
		g.observe("unhealthy", now, now)
		restart()
	}
	assert.Check(t, is.Equal(g.delay, 40*time.Second))

	t.Run("healthy for less than reset-after: the backoff stays", func(t *testing.T) {
		g.observe("healthy", time.Time{}, now.Add(2*time.Second))
		now = now.Add(50 * time.Second) // healthy for 48s < 1m
		g.observe("unhealthy", now, now)
		_, deadline := g.decide(now)
		assert.Check(t, deadline.Equal(g.lastRestart.Add(40*time.Second)) || deadline.Equal(now.Add(time.Second)), deadline)
		last := g.lastRestart
		restart()
		assert.Check(t, is.Equal(now.Sub(last), 51*time.Second)) // after (1s) past the failing probe, beyond the 40s backoff
		assert.Check(t, is.Equal(g.delay, 80*time.Second))
	})
	t.Run("healthy for reset-after: the backoff starts over", func(t *testing.T) {
		g.observe("healthy", time.Time{}, now.Add(5*time.Second))
		now = now.Add(5*time.Second + time.Minute)
		g.observe("unhealthy", now, now)
		restart()
		assert.Check(t, is.Equal(g.delay, 10*time.Second))
		g.observe("unhealthy", now, now)
		last := now
		restart()
		assert.Check(t, is.Equal(now.Sub(last), 10*time.Second))
	})
}

func TestNewGuardPolicyAfter(t *testing.T) {
	spec := compose.GuardSpec{Backoff: compose.GuardBackoff{Start: compose.Duration(time.Second), Cap: compose.Duration(time.Minute), ResetAfter: compose.Duration(time.Minute)}, Budget: 3, Window: compose.Duration(time.Minute)}
	assert.Check(t, is.Equal(newGuardPolicy(spec, 300*time.Millisecond, 2).after, 600*time.Millisecond), "interval × retries")
	assert.Check(t, is.Equal(newGuardPolicy(spec, 0, 0).after, 90*time.Second), "docker's defaults: 30s × 3")
	spec.After = compose.Duration(5 * time.Second)
	p := newGuardPolicy(spec, 300*time.Millisecond, 2)
	assert.Check(t, is.Equal(p, guardPolicy{after: 5 * time.Second, backoffStart: time.Second, backoffCap: time.Minute, resetAfter: time.Minute, budget: 3, window: time.Minute}))
}
