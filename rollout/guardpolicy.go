package rollout

import (
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// The guard's decisions, pure: one guardTracker per watched container, fed with health
// observations and the clock by the runtime loop (guard.go), which does what decide says.

// Docker's healthcheck defaults, for a healthcheck that leaves interval or retries unset.
const (
	dockerHealthInterval = 30 * time.Second
	dockerHealthRetries  = 3
)

// guardPolicy is one container's guard policy with `after` resolved.
type guardPolicy struct {
	after        time.Duration
	backoffStart time.Duration
	backoffCap   time.Duration
	resetAfter   time.Duration
	budget       int
	window       time.Duration
}

// newGuardPolicy resolves spec for a container whose healthcheck probes every interval
// and is called unhealthy after retries failures (zero: docker's defaults): `after`
// defaults to interval × retries, the time the engine takes to call it unhealthy.
func newGuardPolicy(spec compose.GuardSpec, interval time.Duration, retries int) guardPolicy {
	if interval <= 0 {
		interval = dockerHealthInterval
	}
	if retries <= 0 {
		retries = dockerHealthRetries
	}
	after := time.Duration(spec.After)
	if after == 0 {
		after = interval * time.Duration(retries)
	}
	return guardPolicy{
		after: after, backoffStart: time.Duration(spec.Backoff.Start), backoffCap: time.Duration(spec.Backoff.Cap),
		resetAfter: time.Duration(spec.Backoff.ResetAfter), budget: spec.Budget, window: time.Duration(spec.Window),
	}
}

// guardVerdict is what a tracker asks the loop to do now.
type guardVerdict int

const (
	verdictNone       guardVerdict = iota // nothing (now; see the deadline)
	verdictRestart                        // restart the container, then call restarted
	verdictQuarantine                     // the budget is spent: alert once, restart no more
)

// guardTracker is the state of one container: failing since when, healthy since when,
// the guard's own restarts of it within the window, and the backoff.
type guardTracker struct {
	policy guardPolicy
	// failingSince is the start of the first failing probe of the current streak (zero:
	// not unhealthy); healthySince when it was last seen turning healthy (zero: not healthy).
	failingSince time.Time
	healthySince time.Time
	// restarts are the guard's restarts of the container, oldest first (pruned to the window).
	restarts    []time.Time
	lastRestart time.Time
	// delay is the backoff the next restart waits after lastRestart (0 before the first).
	delay       time.Duration
	quarantined bool
}

func newGuardTracker(p guardPolicy) *guardTracker { return &guardTracker{policy: p} }

// observe records the container's health at now: "unhealthy" with the start of its
// failing streak (zero: now), "healthy", or anything else (starting, no healthcheck,
// not running), which is neither.
func (g *guardTracker) observe(health string, failingSince, now time.Time) {
	switch health {
	case "unhealthy":
		if !g.healthySince.IsZero() && now.Sub(g.healthySince) >= g.policy.resetAfter {
			g.delay = 0 // healthy long enough: the backoff starts over
		}
		g.healthySince = time.Time{}
		if g.failingSince.IsZero() {
			if failingSince.IsZero() || failingSince.After(now) {
				failingSince = now
			}
			g.failingSince = failingSince
		}
	case "healthy":
		g.failingSince = time.Time{}
		if g.healthySince.IsZero() {
			g.healthySince = now
		}
	default:
		g.failingSince, g.healthySince = time.Time{}, time.Time{}
	}
}

// due is when the container should be restarted: `after` past the first failing
// probe, and the backoff past the guard's last restart. Zero: it is not unhealthy.
func (g *guardTracker) due() time.Time {
	if g.failingSince.IsZero() || g.quarantined {
		return time.Time{}
	}
	at := g.failingSince.Add(g.policy.after)
	if !g.lastRestart.IsZero() {
		if b := g.lastRestart.Add(g.delay); b.After(at) {
			at = b
		}
	}
	return at
}

// decide says what to do at now; with verdictNone, deadline (if not zero) is when to ask again.
func (g *guardTracker) decide(now time.Time) (v guardVerdict, deadline time.Time) {
	at := g.due()
	switch {
	case at.IsZero():
		return verdictNone, time.Time{}
	case now.Before(at):
		return verdictNone, at
	case g.inWindow(now) >= g.policy.budget:
		g.quarantined = true
		return verdictQuarantine, time.Time{}
	}
	return verdictRestart, time.Time{}
}

// inWindow counts the guard's restarts within the window before now (and forgets older ones).
func (g *guardTracker) inWindow(now time.Time) int {
	from := now.Add(-g.policy.window)
	i := 0
	for i < len(g.restarts) && !g.restarts[i].After(from) {
		i++
	}
	g.restarts = g.restarts[i:]
	return len(g.restarts)
}

// restarted records a restart made at now: the next one waits the doubled backoff.
func (g *guardTracker) restarted(now time.Time) {
	g.restarts = append(g.restarts, now)
	g.lastRestart = now
	switch {
	case g.delay == 0:
		g.delay = g.policy.backoffStart
	default:
		g.delay = min(2*g.delay, g.policy.backoffCap)
	}
	g.failingSince, g.healthySince = time.Time{}, time.Time{}
}
