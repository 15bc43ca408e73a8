package compose

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// x-lifecycle.alerts (docs/observability.md#alerts): rules that `docker lifecycle
// monitor` evaluates every interval, and the targets their notifications (and the
// guard's actions) go to. The project's block holds the interval, the targets and rules
// for every service; a service's block holds rules of its own, which replace the
// project's rule of the same name for that service.

// Alert metrics: what a rule watches.
const (
	AlertCPU       = "cpu"        // CPU % of one core (100 = one core busy), per container
	AlertMemory    = "memory"     // memory used, % of the container's limit, per container
	AlertRestarts  = "restarts"   // restarts within the window, per container
	AlertUnhealthy = "unhealthy"  // the container's health check fails, per container
	AlertOOM       = "oom"        // OOM kills within the window, per container
	AlertErrorRate = "error-rate" // the router's 5xx responses, % of the service's requests in the window
	AlertP99       = "p99"        // the router's p99 latency of the service over the window, in ms
	AlertDeploy    = "deploy"     // the service's last rollout failed or was rolled back
	// AlertDrillAge is the project's: hours since the last restore drill that passed
	// among its backups in x-lifecycle.backup.to (docs/backup.md#drill).
	AlertDrillAge = "drill-age"
)

// AlertMetrics lists every metric a rule may watch.
var AlertMetrics = []string{AlertCPU, AlertMemory, AlertRestarts, AlertUnhealthy, AlertOOM, AlertErrorRate, AlertP99, AlertDeploy, AlertDrillAge}

// Defaults of x-lifecycle.alerts.
const (
	DefaultAlertInterval       = 5 * time.Second
	DefaultAlertWindow         = 5 * time.Minute
	DefaultAlertRestartsWindow = 10 * time.Minute
	DefaultWebhookTimeout      = 5 * time.Second
	DefaultWebhookRetries      = 3
	DefaultWebhookBackoff      = time.Second
	DefaultExecTimeout         = 10 * time.Second
	DefaultAlertSeverity       = "warning"
)

// AlertsSpec is the project's x-lifecycle.alerts.
type AlertsSpec struct {
	// Interval is how often `monitor` evaluates the rules.
	Interval Duration `mapstructure:"interval" json:"interval,omitempty" yaml:"interval,omitempty"`
	// Targets receive every notification; none: stderr.
	Targets []AlertTarget `mapstructure:"targets" json:"targets,omitempty" yaml:"targets,omitempty"`
	// Rules apply to every service (a service's rule of the same name replaces one).
	Rules []AlertRule `mapstructure:"rules" json:"rules,omitempty" yaml:"rules,omitempty"`
}

// ServiceAlertsSpec is a service's x-lifecycle.alerts; resolved, Rules are the rules
// that apply to the service (the project's, replaced by name by the service's own).
type ServiceAlertsSpec struct {
	Rules []AlertRule `mapstructure:"rules" json:"rules,omitempty" yaml:"rules,omitempty"`
}

// AlertRule is one rule: Metric above Above for For fires; at or below ResolveBelow
// (default Above) for For again resolves.
type AlertRule struct {
	// Name identifies the rule in notifications; default: the metric.
	Name   string `mapstructure:"name" json:"name,omitempty" yaml:"name,omitempty"`
	Metric string `mapstructure:"metric" json:"metric" yaml:"metric"`
	// Above is the threshold (cpu, memory, error-rate: percent; restarts, oom: a count;
	// p99: milliseconds or a duration such as "500ms"; drill-age: hours or a duration
	// such as "168h"); unhealthy and deploy take none.
	Above        *Threshold `mapstructure:"above" json:"above,omitempty" yaml:"above,omitempty"`
	ResolveBelow *Threshold `mapstructure:"resolve-below" json:"resolve-below,omitempty" yaml:"resolve-below,omitempty"`
	// For is how long the condition must hold to fire, and how long the resolve
	// condition must hold to resolve.
	For Duration `mapstructure:"for" json:"for,omitempty" yaml:"for,omitempty"`
	// Window is the time counted by restarts, oom, error-rate and p99.
	Window   Duration `mapstructure:"window" json:"window,omitempty" yaml:"window,omitempty"`
	Severity string   `mapstructure:"severity" json:"severity,omitempty" yaml:"severity,omitempty"`
}

// Threshold is a rule's number: 80, 0.5, "80%", or for p99 a duration ("500ms",
// read as milliseconds).
type Threshold float64

func (t Threshold) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(t), 'f', -1, 64)), nil
}

// UnmarshalJSON reads what MarshalText wrote (a number in a string), or a number: the
// detached monitor's target carries the rules as JSON.
func (t *Threshold) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(strings.Trim(string(b), `"`), 64)
	if err != nil {
		return fmt.Errorf("threshold %s: not a number", b)
	}
	*t = Threshold(f)
	return nil
}

// AlertTarget is one place notifications go to: exactly one of its keys.
type AlertTarget struct {
	Webhook *WebhookTarget `mapstructure:"webhook" json:"webhook,omitempty" yaml:"webhook,omitempty"`
	Exec    *ExecTarget    `mapstructure:"exec" json:"exec,omitempty" yaml:"exec,omitempty"`
	// Stderr writes one line per notification on the monitor's (or guard's) stderr.
	Stderr bool `mapstructure:"stderr" json:"stderr,omitempty" yaml:"stderr,omitempty"`
}

// WebhookTarget POSTs each notification to URL: the JSON body of
// docs/observability.md, or Body, a Go text/template over it.
type WebhookTarget struct {
	URL     string            `mapstructure:"url" json:"url" yaml:"url"`
	Body    string            `mapstructure:"body" json:"body,omitempty" yaml:"body,omitempty"`
	Headers map[string]string `mapstructure:"headers" json:"headers,omitempty" yaml:"headers,omitempty"`
	// Timeout bounds one attempt; Retries more attempts follow a failure (a transport
	// error, 429 or 5xx), Backoff apart, doubling.
	Timeout Duration `mapstructure:"timeout" json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Retries *int     `mapstructure:"retries" json:"retries,omitempty" yaml:"retries,omitempty"`
	Backoff Duration `mapstructure:"backoff" json:"backoff,omitempty" yaml:"backoff,omitempty"`
}

// ExecTarget runs Command on the host running monitor (or guard), the notification's
// JSON on its stdin, killed after Timeout.
type ExecTarget struct {
	Command []string `mapstructure:"command" json:"command" yaml:"command"`
	Timeout Duration `mapstructure:"timeout" json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

var thresholdType = reflect.TypeOf(Threshold(0))

func thresholdHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != thresholdType {
		return data, nil
	}
	switch v := data.(type) {
	case int:
		return Threshold(v), nil
	case int64:
		return Threshold(v), nil
	case uint64:
		return Threshold(v), nil
	case float64:
		return Threshold(v), nil
	case string:
		s := strings.TrimSpace(v)
		if f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64); err == nil {
			return Threshold(f), nil
		}
		if d, err := time.ParseDuration(s); err == nil {
			return Threshold(float64(d) / float64(time.Millisecond)), nil
		}
		return nil, fmt.Errorf("want a number such as 80, \"80%%\" or a duration such as \"500ms\" (p99) or \"168h\" (drill-age), got %q", v)
	}
	return nil, fmt.Errorf("want a number such as 80, got %s", describe(data))
}

// decodeAlerts decodes a project's (service false) or service's alerts block into out
// and returns every problem it has, each naming its key.
func decodeAlerts(raw any, service bool) (AlertsSpec, []string) {
	var spec AlertsSpec
	if raw == nil {
		return spec, nil
	}
	m, err := stringKeys(raw)
	if err != nil {
		return spec, []string{"alerts: " + err.Error()}
	}
	block, ok := m.(map[string]any)
	if !ok {
		return spec, []string{fmt.Sprintf("alerts: must be a mapping, got %s", describe(m))}
	}
	var problems []string
	valid := []string{"interval", "targets", "rules"}
	if service {
		valid = []string{"rules"}
	}
	for _, k := range sortedKeys(block) {
		if !slices.Contains(valid, k) {
			hint := ""
			if service && (k == "targets" || k == "interval") {
				hint = " (targets and interval are the project's: set them in the top-level x-lifecycle.alerts)"
			}
			problems = append(problems, fmt.Sprintf("alerts: unknown key %q (valid keys: %s)%s", k, strings.Join(valid, ", "), hint))
		}
	}
	if v, ok := block["interval"]; ok && !service {
		d, err := durationHook(nil, durationType, v)
		switch {
		case err != nil:
			problems = append(problems, "alerts.interval: "+err.Error())
		case time.Duration(d.(Duration)) < 200*time.Millisecond:
			problems = append(problems, fmt.Sprintf("alerts.interval: %s is too short (at least 200ms)", d))
		default:
			spec.Interval = d.(Duration)
		}
	}
	if v, ok := block["targets"]; ok && !service {
		list, ok := v.([]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("alerts.targets: must be a list, got %s", describe(v)))
		}
		for i, item := range list {
			key := fmt.Sprintf("alerts.targets[%d]", i)
			var t AlertTarget
			if err := decodeStrict(item, &t); err != nil {
				problems = append(problems, key+": "+err.Error())
				continue
			}
			problems = append(problems, checkTarget(key, &t)...)
			spec.Targets = append(spec.Targets, t)
		}
	}
	if v, ok := block["rules"]; ok {
		list, ok := v.([]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("alerts.rules: must be a list, got %s", describe(v)))
		}
		names := map[string]int{}
		for i, item := range list {
			key := fmt.Sprintf("alerts.rules[%d]", i)
			item = drillAgeHours(item)
			var r AlertRule
			if err := decodeStrict(item, &r); err != nil {
				problems = append(problems, key+": "+err.Error())
				continue
			}
			problems = append(problems, checkRule(key, &r)...)
			if service && r.Metric == AlertDrillAge {
				problems = append(problems, fmt.Sprintf("%s: metric drill-age is the project's (its backups are): set it in the top-level x-lifecycle.alerts.rules", key))
			}
			if j, dup := names[r.Name]; dup && r.Name != "" {
				problems = append(problems, fmt.Sprintf("%s: name %q is already the name of alerts.rules[%d]: give each rule its own name", key, r.Name, j))
			}
			names[r.Name] = i
			spec.Rules = append(spec.Rules, r)
		}
	}
	return spec, problems
}

// drillAgeHours turns a drill-age rule's duration thresholds ("168h") into hours, the
// rule's unit, before the generic decoding reads durations as milliseconds (p99's).
func drillAgeHours(item any) any {
	m, ok := item.(map[string]any)
	if !ok || m["metric"] != AlertDrillAge {
		return item
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
		if s, ok := v.(string); ok && (k == "above" || k == "resolve-below") {
			if d, err := time.ParseDuration(s); err == nil {
				out[k] = d.Hours()
			}
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkRule validates a decoded rule and fills its defaults.
func checkRule(key string, r *AlertRule) []string {
	var problems []string
	if !slices.Contains(AlertMetrics, r.Metric) {
		if r.Metric == "" {
			problems = append(problems, fmt.Sprintf("%s: key \"metric\" is required (valid: %s)", key, strings.Join(AlertMetrics, ", ")))
		} else {
			problems = append(problems, fmt.Sprintf("%s.metric: unknown metric %q (valid: %s)", key, r.Metric, strings.Join(AlertMetrics, ", ")))
		}
		return problems
	}
	if r.Name == "" {
		r.Name = r.Metric
	}
	if r.Severity == "" {
		r.Severity = DefaultAlertSeverity
	}
	switch r.Metric {
	case AlertUnhealthy, AlertDeploy:
		if r.Above != nil || r.ResolveBelow != nil {
			problems = append(problems, fmt.Sprintf("%s: metric %s takes no threshold (above, resolve-below): it is a yes or no", key, r.Metric))
		}
	case AlertOOM:
		if r.Above == nil {
			r.Above = new(Threshold) // any OOM kill in the window
		}
	default:
		if r.Above == nil {
			problems = append(problems, fmt.Sprintf("%s: metric %s needs a threshold: key \"above\"", key, r.Metric))
		}
	}
	if r.Above != nil {
		if *r.Above < 0 {
			problems = append(problems, fmt.Sprintf("%s.above: must not be negative, got %v", key, float64(*r.Above)))
		}
		if r.ResolveBelow == nil {
			v := *r.Above
			r.ResolveBelow = &v
		} else if *r.ResolveBelow > *r.Above {
			problems = append(problems, fmt.Sprintf("%s.resolve-below: %v is above the firing threshold %v: the resolve threshold must be at or below \"above\"", key, float64(*r.ResolveBelow), float64(*r.Above)))
		}
	}
	switch r.Metric {
	case AlertRestarts, AlertOOM, AlertErrorRate, AlertP99:
		if r.Window == 0 {
			r.Window = Duration(DefaultAlertWindow)
			if r.Metric == AlertRestarts {
				r.Window = Duration(DefaultAlertRestartsWindow)
			}
		}
	default:
		if r.Window != 0 {
			problems = append(problems, fmt.Sprintf("%s: key \"window\" is for restarts, oom, error-rate and p99, not %s", key, r.Metric))
		}
	}
	return problems
}

// checkTarget validates a decoded target and fills its defaults.
func checkTarget(key string, t *AlertTarget) []string {
	set := 0
	for _, b := range []bool{t.Webhook != nil, t.Exec != nil, t.Stderr} {
		if b {
			set++
		}
	}
	if set != 1 {
		return []string{fmt.Sprintf("%s: set exactly one of webhook, exec, stderr (got %d)", key, set)}
	}
	var problems []string
	if w := t.Webhook; w != nil {
		u, err := url.Parse(w.URL)
		switch {
		case w.URL == "":
			problems = append(problems, key+".webhook: key \"url\" is required")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			problems = append(problems, fmt.Sprintf("%s.webhook.url: want an http:// or https:// URL, got %q", key, w.URL))
		}
		if w.Body != "" {
			if _, err := template.New("body").Funcs(AlertTemplateFuncs).Parse(w.Body); err != nil {
				problems = append(problems, fmt.Sprintf("%s.webhook.body: not a Go template: %v", key, err))
			}
		}
		if w.Retries == nil {
			n := DefaultWebhookRetries
			w.Retries = &n
		} else if *w.Retries < 0 || *w.Retries > 10 {
			problems = append(problems, fmt.Sprintf("%s.webhook.retries: want 0 to 10, got %d", key, *w.Retries))
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(DefaultWebhookTimeout)
		}
		if w.Backoff == 0 {
			w.Backoff = Duration(DefaultWebhookBackoff)
		}
	}
	if e := t.Exec; e != nil {
		if len(e.Command) == 0 || e.Command[0] == "" {
			problems = append(problems, key+".exec: key \"command\" is required: a list such as [\"/usr/local/bin/page\", \"--team\", \"ops\"]")
		}
		if e.Timeout == 0 {
			e.Timeout = Duration(DefaultExecTimeout)
		}
	}
	return problems
}

// AlertTemplateFuncs are the functions a webhook body template may call: json writes
// its argument as JSON (a string quoted and escaped).
var AlertTemplateFuncs = template.FuncMap{"json": templateJSON}

func templateJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// alertsError joins a block's problems into one error.
func alertsError(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	if len(problems) == 1 {
		return errors.New(problems[0])
	}
	return fmt.Errorf("%d problems: %s", len(problems), strings.Join(problems, "; "))
}

// resolveAlerts gives a service its rules: the project's, each replaced by the
// service's rule of the same name, then the service's other rules.
func resolveAlerts(project AlertsSpec, spec *ServiceSpec) {
	own := spec.Alerts.Rules
	var rules []AlertRule
	for _, r := range project.Rules {
		if i := slices.IndexFunc(own, func(o AlertRule) bool { return o.Name == r.Name }); i >= 0 {
			rules = append(rules, own[i])
			continue
		}
		rules = append(rules, r)
	}
	for _, o := range own {
		if !slices.ContainsFunc(project.Rules, func(r AlertRule) bool { return r.Name == o.Name }) {
			rules = append(rules, o)
		}
	}
	spec.Alerts.Rules = rules
}

// AlertInterval is the project's evaluation interval, its default applied.
func (a AlertsSpec) AlertInterval() time.Duration {
	if a.Interval == 0 {
		return DefaultAlertInterval
	}
	return time.Duration(a.Interval)
}
