package alerting

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Notification statuses.
const (
	StatusFiring   = "firing"   // the rule's condition held for its `for`
	StatusResolved = "resolved" // the resolve condition held for `for` again, or the subject is gone
	StatusEvent    = "event"    // a guard action or a failed scheduled backup: no firing or resolved, one notification
)

// Notification sources.
const (
	SourceMonitor = "monitor"
	SourceGuard   = "guard"
	SourceBackup  = "backup" // a failed run of `backup --every`
)

// Alert is one notification: the JSON body a webhook receives, the stdin of an exec
// target and the data of a body template (docs/observability.md#alerts).
type Alert struct {
	Status  string `json:"status"`
	Source  string `json:"source"`
	Project string `json:"project"`
	Service string `json:"service,omitempty"`
	// Container is the container the rule judged; empty for a service's rule
	// (error-rate, p99, deploy).
	Container string `json:"container,omitempty"`
	Rule      string `json:"rule"`
	Metric    string `json:"metric"`
	Severity  string `json:"severity"`
	// Value is the metric's value at this evaluation, in Unit; Threshold the rule's
	// above, ResolveBelow its resolve threshold.
	Value        float64 `json:"value"`
	Threshold    float64 `json:"threshold"`
	ResolveBelow float64 `json:"resolve_below"`
	Unit         string  `json:"unit,omitempty"`
	For          string  `json:"for"`
	Window       string  `json:"window,omitempty"`
	// StartsAt is when the condition began (the first evaluation above the threshold);
	// EndsAt, on a resolved notification, when it resolved.
	StartsAt time.Time  `json:"starts_at"`
	EndsAt   *time.Time `json:"ends_at,omitempty"`
	Time     time.Time  `json:"time"`
	// Summary is one human line, what the stderr target prints.
	Summary string `json:"summary"`
	// Guard is the guard's own alert (docs/guard.md, its JSON schema), source guard only.
	Guard json.RawMessage `json:"guard,omitempty"`
	// Backup is the failed run of `backup --every` (docs/backup.md, its JSON), source
	// backup only.
	Backup json.RawMessage `json:"backup,omitempty"`
}

// Units of the metrics' values.
var units = map[string]string{
	"cpu": "%", "memory": "%", "restarts": "restarts", "unhealthy": "", "oom": "kills",
	"error-rate": "%", "p99": "ms", "deploy": "", "drill-age": "h",
}

func (a *Alert) summarize() {
	who := a.Service
	if who == "" { // a rule on the project itself (drill-age)
		who = "project " + a.Project
	}
	if a.Container != "" {
		who += " (" + a.Container + ")"
	}
	what := a.Metric
	switch a.Metric {
	case "unhealthy":
		what = "unhealthy"
		if a.Status == StatusResolved {
			what = "healthy again"
		}
	case "deploy":
		what = "last rollout failed or rolled back"
		if a.Status == StatusResolved {
			what = "deployed again"
		}
	default:
		op := ">"
		if a.Status == StatusResolved {
			op = "<="
		}
		th := a.Threshold
		if a.Status == StatusResolved {
			th = a.ResolveBelow
		}
		unit := a.Unit
		if unit == units["oom"] || unit == units["restarts"] { // words: "2 kills"; symbols stay attached: "80%", "300ms"
			unit = " " + unit
		}
		what = fmt.Sprintf("%s %s%s %s %s%s", a.Metric, num(a.Value), unit, op, num(th), unit)
		if a.Window != "" {
			what += " over " + a.Window
		}
	}
	if a.For != "0s" && a.For != "" {
		what += " for " + a.For
	}
	a.Summary = fmt.Sprintf("%s %s %s: %s: %s", a.Time.Format(time.RFC3339), a.Status, a.Rule, who, what)
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
