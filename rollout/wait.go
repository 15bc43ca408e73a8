package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ErrUnhealthy marks a container that failed its health gate.
var ErrUnhealthy = errors.New("container failed its health gate")

// runningStableFor is how long a container without a healthcheck must have been running
// to pass its gate.
const runningStableFor = time.Second

// firstPoll is the first pause between health polls; it doubles up to fastPoll while
// the wait is younger than fastPollFor, then up to PollInterval. Most gates pass within
// their first seconds, and each one on a dependency chain adds its detection delay to
// the deploy, so those seconds are polled every 100ms at most (the benchmark saw a fixed
// 250ms poll add ~200ms to every gate); a long wait still costs the engine few calls.
const (
	firstPoll   = 25 * time.Millisecond
	fastPoll    = 100 * time.Millisecond
	fastPollFor = 3 * time.Second
)

// logLinesOnFailure is how many log lines a failure message quotes.
const logLinesOnFailure = 10

// wait blocks until the step's container passes its gate: healthy (or running, without a
// healthcheck) for WaitHealthy, exited with code 0 for WaitCompleted; a routed service's
// container is then watched for update_config.monitor.
func (x *executor) wait(ctx context.Context, s strategies.Step) error {
	return x.waitGate(ctx, s, true)
}

// waitGate is wait, with the monitor window only when monitor is set: a rollback
// restarting the previous revision waits for its gate alone, because that revision
// served until this run and every second of monitoring is a second of missing
// capacity, paid once per container (it also ran out the rollback's time bound).
func (x *executor) waitGate(ctx context.Context, s strategies.Step, monitor bool) error {
	id := x.idOf(s)
	timeout := time.Duration(x.project.ServiceSpecs[s.Service].WaitTimeout)
	if x.opts.WaitTimeout > 0 {
		timeout = x.opts.WaitTimeout
	}
	text := "Waiting for health"
	if s.Action == strategies.WaitCompleted {
		text = "Waiting for completion"
	}
	progress.Emit(x.events, containerID(s.Target), progress.Working, text, "")
	began := time.Now()
	deadline := began.Add(timeout)
	pause := firstPoll
	for {
		d, err := x.eng.InspectContainer(ctx, id)
		if err != nil {
			return x.stepError(s, err)
		}
		ok, failure := gate(s.Action, d)
		if ok && monitor && s.Action == strategies.WaitHealthy && d.State == "running" {
			if err := x.monitor(ctx, s, id); err != nil {
				return err
			}
		}
		if ok {
			x.mu.Lock()
			x.healthy[s.Target] = true
			x.mu.Unlock()
			switch {
			case s.Action == strategies.WaitCompleted || d.State == "exited":
				progress.Emit(x.events, containerID(s.Target), progress.Done, "Completed", "exit code 0")
			case d.Health != "":
				progress.Emit(x.events, containerID(s.Target), progress.Done, "Healthy", "")
			default:
				progress.Emit(x.events, containerID(s.Target), progress.Done, "Running", "no healthcheck")
			}
			return nil
		}
		if failure == "" && time.Now().After(deadline) {
			failure = fmt.Sprintf("not healthy within %s (state %s%s)", timeout, d.State, healthSuffix(d))
		}
		if failure != "" {
			return x.stepError(s, fmt.Errorf("%w: %s%s", ErrUnhealthy, failure, x.diagnostics(d)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		ceiling := x.opts.PollInterval
		if time.Since(began) < fastPollFor {
			ceiling = min(ceiling, fastPoll)
		}
		pause = min(pause*2, ceiling)
	}
}

func healthSuffix(d engine.ContainerDetails) string {
	if d.Health == "" {
		return ""
	}
	return ", health " + d.Health
}

// gate decides whether a container passed (ok), failed for good (failure != ""), or is
// still on its way (neither).
func gate(action strategies.Action, d engine.ContainerDetails) (ok bool, failure string) {
	exited := d.State == "exited" || d.State == "dead"
	if action == strategies.WaitCompleted {
		if !exited {
			return false, ""
		}
		if d.ExitCode == 0 {
			return true, ""
		}
		return false, exitDescription(d)
	}
	switch {
	case exited && d.ExitCode == 0 && d.RestartCount == 0 && d.Health == "":
		// A one-shot service (no healthcheck) that finished its work.
		return true, ""
	case exited || d.OOMKilled:
		return false, exitDescription(d)
	case d.State == "restarting" || d.RestartCount > 0:
		// The engine resets ExitCode when it restarts the container: only a restarting
		// container still has the code of its last exit.
		last := ""
		if d.State == "restarting" {
			last = " (last " + exitDescription(d) + ")"
		}
		times := "times"
		if d.RestartCount == 1 {
			times = "time"
		}
		return false, fmt.Sprintf("crash-looping: restarted %d %s%s", d.RestartCount, times, last)
	case d.Health == "unhealthy":
		return false, "health check failing"
	case d.Health == "healthy":
		return true, ""
	case d.Health == "" && d.State == "running":
		// Without a healthcheck, "up" can only mean it stayed running for a moment: a
		// process that crashes at once must not pass.
		return time.Since(d.StartedAt) >= runningStableFor, ""
	}
	return false, ""
}

func exitDescription(d engine.ContainerDetails) string {
	desc := fmt.Sprintf("exited with code %d", d.ExitCode)
	if d.OOMKilled {
		desc += " (OOMKilled: raise its memory limit)"
	}
	if d.Error != "" {
		desc += ": " + d.Error
	}
	return desc
}

// diagnostics quotes the last health check output and log lines of a failed container.
func (x *executor) diagnostics(d engine.ContainerDetails) string {
	var b strings.Builder
	if n := len(d.HealthLog); n > 0 {
		fmt.Fprintf(&b, "\n  last health check: %s", d.HealthLog[n-1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	logs, err := x.eng.ContainerLogTail(ctx, d.ID, logLinesOnFailure)
	if err == nil && strings.TrimSpace(logs) != "" {
		fmt.Fprintf(&b, "\n  last log lines of %s:", d.Name)
		for _, line := range strings.Split(strings.TrimRight(logs, "\n"), "\n") {
			fmt.Fprintf(&b, "\n    %s", line)
		}
	}
	return b.String()
}

// monitor keeps watching a routed service's new container for update_config.monitor
// (rollback_config.monitor in a rollback) after it passed its gate: a container that
// crashes or turns unhealthy soon after starting fails the batch like one that never
// came up.
func (x *executor) monitor(ctx context.Context, s strategies.Step, id string) error {
	update, key := x.updateConfig(s.Service)
	window := time.Duration(update.Monitor)
	if !x.project.ServiceSpecs[s.Service].Routed() || window <= 0 {
		return nil
	}
	progress.Emit(x.events, containerID(s.Target), progress.Working, "Monitoring", fmt.Sprintf("%s.monitor %s", key, window))
	end := time.Now().Add(window)
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(x.opts.PollInterval, time.Until(end))):
		}
		d, err := x.eng.InspectContainer(ctx, id)
		if err != nil {
			return x.stepError(s, err)
		}
		if ok, failure := gate(s.Action, d); !ok {
			if failure == "" {
				failure = fmt.Sprintf("no longer healthy (state %s%s)", d.State, healthSuffix(d))
			}
			return x.stepError(s, fmt.Errorf("%w: during %s.monitor: %s%s", ErrUnhealthy, key, failure, x.diagnostics(d)))
		}
	}
	return nil
}
