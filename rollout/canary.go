package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// CanarySignal is an operator's word to a running canary deploy. The deploy process
// holds the project lock, so the signal travels through the engine: a labelled volume
// that the canary's analysis polls for (waitCanaryStep), which works from any machine
// using the context; on Swarm it is a local volume on the manager the deploy talks to.
type CanarySignal string

const (
	// SignalPause holds the canary at its current weight until SignalResume.
	SignalPause CanarySignal = "pause"
	// SignalResume lifts a pause (it removes the pause signal).
	SignalResume CanarySignal = "resume"
	// SignalPromote skips the remaining analysis: the canary goes to 100 % now.
	SignalPromote CanarySignal = "promote"
	// SignalAbort fails the canary: 100 % back to the stable revision, new containers removed.
	SignalAbort CanarySignal = "abort"
)

const (
	labelSignal        = "io.lifecycle.canary-signal"
	labelSignalService = "io.lifecycle.canary-service"
)

var (
	// ErrNoCanary means no deploy is running a canary of the service.
	ErrNoCanary = errors.New("no canary in progress")
	// ErrCanaryAborted marks a canary stopped by `docker lifecycle abort`.
	ErrCanaryAborted = errors.New("canary aborted")
)

func signalVolume(project, service string, s CanarySignal) string {
	return fmt.Sprintf("%s_lifecycle-canary-%s-%s", project, service, s)
}

// SendCanarySignal tells the deploy that runs a canary of service what to do. It fails
// with ErrNoCanary when no deploy holds the project's lock or the service is no canary.
func SendCanarySignal(ctx context.Context, eng engine.Engine, p *compose.Project, service string, s CanarySignal) error {
	if _, ok := p.Project.Services[service]; !ok {
		return fmt.Errorf("%w: %q in project %s", strategies.ErrUnknownService, service, p.Name)
	}
	if p.ServiceSpecs[service].Strategy != compose.StrategyCanary {
		return fmt.Errorf("service %q uses the %s strategy: %w", service, p.ServiceSpecs[service].Strategy, ErrNoCanary)
	}
	if _, held, err := lock.Inspect(ctx, eng, p.Name); err != nil {
		return err
	} else if !held {
		return fmt.Errorf("project %s: no deploy is running: %w", p.Name, ErrNoCanary)
	}
	if s == SignalResume {
		err := eng.RemoveVolume(ctx, signalVolume(p.Name, service, SignalPause))
		if errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("the canary of service %q is not paused", service)
		}
		return err
	}
	_, err := eng.CreateVolume(ctx, engine.VolumeSpec{Name: signalVolume(p.Name, service, s), Labels: map[string]string{
		compose.LabelProject: p.Name, compose.LabelManagedBy: compose.ManagedByValue,
		labelSignal: string(s), labelSignalService: service,
	}})
	return err
}

// canarySignals reads the signals sent to the service's canary.
func canarySignals(ctx context.Context, eng engine.Engine, project, service string) (map[CanarySignal]bool, error) {
	vols, err := eng.ListVolumes(ctx, map[string]string{compose.LabelProject: project, labelSignalService: service})
	if err != nil {
		return nil, err
	}
	out := map[CanarySignal]bool{}
	for _, v := range vols {
		out[CanarySignal(v.Labels[labelSignal])] = true
	}
	return out, nil
}

// clearCanarySignals removes the signals of a project: a deploy starts and ends with
// none, so a signal never outlives the canary it was meant for.
func clearCanarySignals(ctx context.Context, eng engine.Engine, project string) {
	vols, err := eng.ListVolumes(ctx, map[string]string{compose.LabelProject: project, labelSignal: ""})
	if err != nil {
		return
	}
	for _, v := range vols {
		_ = eng.RemoveVolume(ctx, v.Name)
	}
}

// canarySignalPoll is how often a canary step's wait reads the operator's signals.
const canarySignalPoll = 250 * time.Millisecond

// waitCanaryStep waits out a canary step's pause d while honouring the operator's
// signals (SendCanarySignal): time paused does not count, promote ends the wait, abort
// fails it with ErrCanaryAborted. The deploy on one engine and on Swarm share it; id is
// the progress line, publish (nil for none) takes each change of the canary's state for
// the rollout view.
func waitCanaryStep(ctx context.Context, eng engine.Engine, project, service string, d time.Duration, events progress.Writer, id string, publish func(func(*CanaryState))) (promoted bool, err error) {
	if publish == nil {
		publish = func(func(*CanaryState)) {}
	}
	remaining := d
	paused := false
	for remaining > 0 {
		signals, err := canarySignals(ctx, eng, project, service)
		if err != nil {
			return false, err
		}
		switch {
		case signals[SignalAbort]:
			return false, fmt.Errorf("%w by `docker lifecycle abort %s`", ErrCanaryAborted, service)
		case signals[SignalPromote]:
			progress.Emit(events, id, progress.Info, "Promoted", "by `docker lifecycle promote`: the remaining analysis is skipped")
			publish(func(c *CanaryState) { c.Promoted, c.StepEnds, c.Paused = true, time.Time{}, false })
			return true, nil
		case signals[SignalPause] && !paused:
			paused = true
			progress.Emit(events, id, progress.Warning, "Paused", fmt.Sprintf("%s left in this step; `docker lifecycle resume %s` goes on", remaining.Round(time.Second), service))
			left := remaining
			publish(func(c *CanaryState) { c.Paused, c.PausedLeft, c.StepEnds = true, left.Milliseconds(), time.Time{} })
		case !signals[SignalPause] && paused:
			paused = false
			progress.Emit(events, id, progress.Working, "Resumed", "")
			ends := time.Now().Add(remaining).UTC()
			publish(func(c *CanaryState) { c.Paused, c.PausedLeft, c.StepEnds = false, 0, ends })
		}
		step := min(canarySignalPoll, remaining)
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(step):
		}
		if !paused {
			remaining -= step
		}
	}
	return false, nil
}

// analyze waits for a canary step's pause, then judges the new revision on the
// router's counters of that window.
func (x *executor) analyze(ctx context.Context, s strategies.Step) error {
	id := "Service " + s.Service
	a := x.project.ServiceSpecs[s.Service].Canary.Analysis
	client := x.routerClient(x.desired.Services[s.Service].RouterKey)
	before, err := routerStats(ctx, client)
	if err != nil {
		return x.stepError(s, err)
	}
	progress.Emit(x.events, id, progress.Working, "Analyzing", fmt.Sprintf("%s for %s", s.Cause, time.Duration(s.Duration)))
	x.state.stepStarted(ctx, s, time.Duration(s.Duration))
	promoted, err := waitCanaryStep(ctx, x.eng, x.project.Name, s.Service, time.Duration(s.Duration), x.events, id,
		func(change func(*CanaryState)) { x.state.canary(ctx, s.Service, change) })
	if err != nil {
		if errors.Is(err, ErrCanaryAborted) {
			x.state.verdict(ctx, s, "aborted by `docker lifecycle abort`")
		}
		return x.stepError(s, err)
	}
	if promoted {
		return nil
	}
	after, err := routerStats(ctx, client)
	if err != nil {
		return x.stepError(s, err)
	}
	w := canaryWindow(s.Service, revisionGroup(s.Revision), before, after)
	verdict := judge(w, a)
	detail := fmt.Sprintf("revision %d: %d requests, %.2f%% errors, p99 %s", s.Revision, w.Requests, 100*w.errorRate(), w.p99())
	if verdict != "" {
		x.state.verdict(ctx, s, "failed: "+verdict+" ("+detail+")")
		return x.stepError(s, fmt.Errorf("%w: canary analysis failed: %s (%s)", ErrAnalysisFailed, verdict, detail))
	}
	progress.Emit(x.events, id, progress.Done, "Analysis passed", detail)
	x.state.verdict(ctx, s, "passed: "+detail)
	return nil
}

// ErrAnalysisFailed means the canary's counters broke the analysis limits.
var ErrAnalysisFailed = errors.New("canary analysis failed")

type window struct{ router.Counters }

func (w window) errorRate() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Responses5xx+w.Errors) / float64(w.Requests)
}

func (w window) p99() time.Duration { return w.Latency.Quantile(0.99).Round(time.Millisecond / 10) }

// canaryWindow sums, over the service's routes, the counters of the group's backends
// between two snapshots.
func canaryWindow(service, group string, before, after router.Snapshot) window {
	var sum router.Counters
	for _, route := range after.Routes {
		if compose.ServiceOfRoute(route.Name) != service {
			continue
		}
		ra, rb := &route, before.Route(route.Name)
		for _, b := range ra.Backends {
			if b.Group != group {
				continue
			}
			c := b.Counters
			if rb != nil {
				if prev := rb.Backend(b.ID); prev != nil && prev.Since.Equal(b.Since) {
					c = c.Sub(prev.Counters)
				}
			}
			sum = addCounters(sum, c)
		}
	}
	return window{sum}
}

func addCounters(a, b router.Counters) router.Counters {
	a.Requests += b.Requests
	a.Responses2xx += b.Responses2xx
	a.Responses5xx += b.Responses5xx
	a.Errors += b.Errors
	a.Latency.Count += b.Latency.Count
	a.Latency.SumNs += b.Latency.SumNs
	if len(a.Latency.Buckets) < len(b.Latency.Buckets) {
		a.Latency.Buckets = append(a.Latency.Buckets, make([]uint64, len(b.Latency.Buckets)-len(a.Latency.Buckets))...)
	}
	for i, n := range b.Latency.Buckets {
		a.Latency.Buckets[i] += n
	}
	return a
}

// judge returns why the window fails the analysis, or "".
func judge(w window, a compose.AnalysisSpec) string {
	switch {
	case int(w.Requests) < a.MinRequests:
		return fmt.Sprintf("%d requests, fewer than min-requests %d", w.Requests, a.MinRequests)
	case a.MaxErrorRate != nil && w.errorRate() > *a.MaxErrorRate:
		return fmt.Sprintf("error rate %.2f%% above max-error-rate %.2f%%", 100*w.errorRate(), 100**a.MaxErrorRate)
	case a.MaxP99 > 0 && w.p99() > time.Duration(a.MaxP99):
		return fmt.Sprintf("p99 %s above max-p99 %s", w.p99(), time.Duration(a.MaxP99))
	}
	return ""
}
