package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// ErrNoMonitor: no detached monitor container exists for the project.
var ErrNoMonitor = errors.New("no detached monitor")

// MonitorStatusReport is `monitor --status` (docs/observability.md: the JSON schema).
type MonitorStatusReport struct {
	Project string `json:"project"`
	// Running: the monitor container runs (the command's exit code is 0).
	Running   bool                    `json:"running"`
	Container DetachedContainerStatus `json:"container"`
	// URL is the metrics endpoint, on the engine's host (the published port).
	URL string `json:"url,omitempty"`
	// Alerts are what the monitor was given: the interval, the number of rules of each
	// service, and the targets by name (webhooks without their URL's path and query).
	Alerts *MonitorAlertsStatus `json:"alerts,omitempty"`
}

// MonitorAlertsStatus summarises the detached monitor's alert rules and targets.
type MonitorAlertsStatus struct {
	Interval compose.Duration `json:"interval"`
	Rules    map[string]int   `json:"rules"`
	Targets  []string         `json:"targets"`
}

// MonitorStatus reports project's detached monitor. ErrNoMonitor when the project has
// no monitor container.
func MonitorStatus(ctx context.Context, eng engine.Engine, project string) (MonitorStatusReport, error) {
	r := MonitorStatusReport{Project: project}
	d, st, err := detachedStatus(ctx, eng, project, compose.RoleMonitor)
	if err != nil {
		return r, err
	}
	if d == nil {
		return r, fmt.Errorf("%w runs for project %s: start one with `docker lifecycle monitor --detach --mount-docker-socket` in the project's directory", ErrNoMonitor, project)
	}
	r.Running, r.Container = st.State == "running", st
	if d.HostConfig != nil {
		for _, bindings := range d.HostConfig.PortBindings {
			for _, b := range bindings {
				r.URL = "http://" + net.JoinHostPort(b.HostIP.String(), b.HostPort) + "/metrics"
			}
		}
	}
	if arg := targetArg(*d); arg != "" {
		t, err := DecodeMonitorTarget([]byte(arg))
		if err != nil {
			return r, fmt.Errorf("monitor container %s: %w", d.Name, err)
		}
		if t.Alerts != nil {
			a := &MonitorAlertsStatus{Interval: t.Alerts.Interval, Rules: map[string]int{}, Targets: []string{}}
			for service, rules := range t.Alerts.Rules {
				a.Rules[service] = len(rules)
			}
			targets, err := alerting.NewTargets(t.Alerts.Targets, io.Discard)
			if err != nil {
				return r, fmt.Errorf("monitor container %s: %w", d.Name, err)
			}
			for _, target := range targets {
				a.Targets = append(a.Targets, target.Name())
			}
			r.Alerts = a
		}
	}
	return r, nil
}
