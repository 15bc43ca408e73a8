package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// CanarySignal is an operator's word to a running canary deploy. The deploy process
// holds the project lock, so the signal travels through the engine: a labelled volume
// that the canary's analysis polls for, which works from any machine using the context.
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

// observeCanary waits out a canary step's pause while honouring the operator's
// signals: time paused does not count, promote ends the wait, abort fails it.
func (x *executor) observeCanary(ctx context.Context, s strategies.Step) (promoted bool, err error) {
	id := "Service " + s.Service
	remaining := time.Duration(s.Duration)
	paused := false
	const poll = 250 * time.Millisecond
	for remaining > 0 {
		signals, err := canarySignals(ctx, x.eng, x.project.Name, s.Service)
		if err != nil {
			return false, err
		}
		switch {
		case signals[SignalAbort]:
			return false, fmt.Errorf("%w by `docker lifecycle abort %s`", ErrCanaryAborted, s.Service)
		case signals[SignalPromote]:
			progress.Emit(x.events, id, progress.Info, "Promoted", "by `docker lifecycle promote`: the remaining analysis is skipped")
			return true, nil
		case signals[SignalPause] && !paused:
			paused = true
			progress.Emit(x.events, id, progress.Warning, "Paused", fmt.Sprintf("%s left in this step; `docker lifecycle resume %s` goes on", remaining.Round(time.Second), s.Service))
		case !signals[SignalPause] && paused:
			paused = false
			progress.Emit(x.events, id, progress.Working, "Resumed", "")
		}
		step := min(poll, remaining)
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
