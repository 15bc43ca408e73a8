package rollout

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// MonitorTarget is all the monitor needs of a compose project, resolved: the detached
// monitor runs in a container without the compose files, so the plugin resolves the
// project on the user's side and passes this (JSON) to it, as it does the guard's
// GuardTarget. The foreground monitor goes through the same value.
type MonitorTarget struct {
	Project string `json:"project"`
	// Alerts are x-lifecycle.alerts resolved; nil: metrics only.
	Alerts *MonitorAlerts `json:"alerts,omitempty"`
	// BackupTo is x-lifecycle.backup.to resolved (BackupTo): where the drill records are.
	BackupTo string `json:"backup_to,omitempty"`
}

// MonitorAlerts are the project's alert rules and targets.
type MonitorAlerts struct {
	Interval compose.Duration `json:"interval"`
	// Rules are each service's rules (the project's, replaced by name by its own).
	Rules map[string][]compose.AlertRule `json:"rules"`
	// Targets receive the notifications; none: stderr.
	Targets []compose.AlertTarget `json:"targets,omitempty"`
}

// NewMonitorTarget resolves what the monitor needs of p (nil: a project known by its
// name alone, metrics only).
func NewMonitorTarget(name string, p *compose.Project) MonitorTarget {
	t := MonitorTarget{Project: name}
	if p == nil {
		return t
	}
	t.BackupTo = BackupTo(p)
	if a := NewAlertOptions(p); a != nil {
		t.Alerts = &MonitorAlerts{Interval: compose.Duration(a.Interval), Rules: a.Rules, Targets: p.Spec.Alerts.Targets}
	}
	return t
}

// AlertOptions are the target's rules as Monitor takes them; nil without rules.
func (t MonitorTarget) AlertOptions() *AlertOptions {
	if t.Alerts == nil {
		return nil
	}
	return &AlertOptions{Interval: time.Duration(t.Alerts.Interval), Rules: t.Alerts.Rules}
}

// DecodeMonitorTarget reads a target written by Encode, strictly.
func DecodeMonitorTarget(b []byte) (MonitorTarget, error) {
	var t MonitorTarget
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return MonitorTarget{}, fmt.Errorf("monitor target (the resolved project the detached monitor is given): %w", err)
	}
	if t.Project == "" {
		return MonitorTarget{}, fmt.Errorf("monitor target: no project name")
	}
	if t.Alerts != nil && t.Alerts.Interval <= 0 {
		return MonitorTarget{}, fmt.Errorf("monitor target: alerts without an interval")
	}
	return t, nil
}

// Encode is the target's JSON (the detached monitor's --target argument).
func (t MonitorTarget) Encode() string {
	b, _ := json.Marshal(t) // plain data: cannot fail
	return string(b)
}
