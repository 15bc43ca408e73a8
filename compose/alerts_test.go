package compose

import (
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLoadAlerts(t *testing.T) {
	compose := `
x-lifecycle:
  alerts:
    interval: 2s
    targets:
      - webhook: {url: "http://127.0.0.1:9/hook", body: '{"text": {{json .Summary}}}'}
      - exec: {command: [/bin/cat]}
      - stderr: true
    rules:
      - {metric: cpu, above: 80, resolve-below: 60, for: 1m}
      - {metric: unhealthy, for: 30s}
      - {name: slow, metric: p99, above: 500ms}
services:
  web:
    image: nginx
    x-lifecycle:
      alerts:
        rules:
          - {metric: cpu, above: "150%", for: 10s, severity: critical}
          - {metric: error-rate, above: 5, window: 1m}
  db:
    image: nginx
`
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
	assert.NilError(t, err)
	a := p.Spec.Alerts
	assert.Check(t, is.Equal(a.AlertInterval().String(), "2s"))
	assert.Assert(t, is.Len(a.Targets, 3))
	assert.Check(t, is.Equal(*a.Targets[0].Webhook.Retries, DefaultWebhookRetries))
	assert.Check(t, is.Equal(a.Targets[1].Exec.Timeout, Duration(DefaultExecTimeout)))
	assert.Check(t, a.Targets[2].Stderr)

	names := func(rules []AlertRule) (out []string) {
		for _, r := range rules {
			out = append(out, r.Name)
		}
		return out
	}
	web, db := p.ServiceSpecs["web"].Alerts.Rules, p.ServiceSpecs["db"].Alerts.Rules
	assert.Check(t, is.DeepEqual(names(db), []string{"cpu", "unhealthy", "slow"}))
	assert.Check(t, is.DeepEqual(names(web), []string{"cpu", "unhealthy", "slow", "error-rate"}))
	assert.Check(t, is.Equal(float64(*web[0].Above), 150.0))
	assert.Check(t, is.Equal(float64(*web[0].ResolveBelow), 150.0), "resolve-below defaults to above")
	assert.Check(t, is.Equal(web[0].Severity, "critical"))
	assert.Check(t, is.Equal(float64(*db[0].ResolveBelow), 60.0))
	assert.Check(t, is.Equal(float64(*db[2].Above), 500.0), "p99 in ms")
	assert.Check(t, is.Equal(web[3].Window.String(), "1m0s"))
	assert.Check(t, is.Equal(db[1].Severity, DefaultAlertSeverity))
}

func TestLoadAlertsErrors(t *testing.T) {
	tests := []struct {
		name     string
		compose  string
		contains []string
	}{
		{
			name: "every problem of the project's block at once",
			compose: `
x-lifecycle:
  alerts:
    intervall: 1s
    targets:
      - webhook: {url: "ftp://x"}
      - {stderr: true, exec: {command: [x]}}
      - exec: {comand: [x]}
    rules:
      - {metric: cpux, above: 1}
      - {metric: cpu}
      - {metric: unhealthy, above: 3}
      - {metric: memory, above: 50, resolve-below: 70, fr: 1s}
services:
  web:
    image: nginx
`,
			contains: []string{"top-level", "8 problems",
				`alerts: unknown key "intervall" (valid keys: interval, targets, rules)`,
				`alerts.targets[0].webhook.url: want an http:// or https:// URL, got "ftp://x"`,
				`alerts.targets[1]: set exactly one of webhook, exec, stderr (got 2)`,
				`alerts.targets[2]: unknown key "exec.comand" (valid keys: command, timeout)`,
				`alerts.rules[0].metric: unknown metric "cpux"`,
				`alerts.rules[1]: metric cpu needs a threshold: key "above"`,
				`alerts.rules[2]: metric unhealthy takes no threshold`,
				`alerts.rules[3]: unknown key "fr"`,
			},
		},
		{
			name:     "a bad webhook template",
			compose:  "x-lifecycle: {alerts: {targets: [{webhook: {url: 'http://h/', body: '{{.Summary'}}]}}\nservices:\n  web:\n    image: nginx\n",
			contains: []string{"top-level", "alerts.targets[0].webhook.body: not a Go template"},
		},
		{
			name:     "a service's block: targets are the project's; a bad threshold; with another key's problem",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle:\n      strategyy: rolling\n      alerts: {targets: [], rules: [{metric: cpu, above: lots}, {metric: memory, above: 50, resolve-below: 70}]}\n",
			contains: []string{`service "web"`, `unknown key "strategyy"`, `alerts: unknown key "targets" (valid keys: rules) (targets and interval are the project's`, `want a number such as 80`, `alerts.rules[1].resolve-below: 70 is above the firing threshold 50`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, err := loadFiles(t, map[string]string{"compose.yaml": tc.compose}, LoadOptions{})
			assert.ErrorIs(t, err, ErrInvalidSpec)
			msg := err.Error()
			assert.Check(t, strings.HasPrefix(msg, filepath.Join(dir, "compose.yaml")+": "), msg)
			for _, c := range tc.contains {
				assert.Check(t, is.Contains(msg, c))
			}
		})
	}
}

// Alert rules change what monitor judges, not a container: a deploy never replaces a
// container for them.
func TestAlertsLeaveTheConfigHash(t *testing.T) {
	a, _, err := loadFiles(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n"}, LoadOptions{})
	assert.NilError(t, err)
	b, _, err := loadFiles(t, map[string]string{"compose.yaml": "x-lifecycle: {alerts: {rules: [{metric: oom}]}}\nservices:\n  web:\n    image: nginx\n    x-lifecycle: {alerts: {rules: [{metric: cpu, above: 3}]}}\n"}, LoadOptions{})
	assert.NilError(t, err)
	ha, err := ConfigHash(a, "web")
	assert.NilError(t, err)
	hb, err := ConfigHash(b, "web")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(ha, hb))
}

// drill-age is the project's rule, in hours: a duration is read as hours, not as p99's
// milliseconds.
func TestLoadDrillAgeRule(t *testing.T) {
	compose := `
x-lifecycle:
  backup: {to: ./backups}
  alerts:
    rules:
      - {name: stale-drill, metric: drill-age, above: 168h}
      - {name: very-stale, metric: drill-age, above: 720, resolve-below: 24h}
services:
  web:
    image: nginx
`
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
	assert.NilError(t, err)
	rules := p.Spec.Alerts.Rules
	assert.Assert(t, is.Len(rules, 2))
	assert.Check(t, is.Equal(float64(*rules[0].Above), 168.0))
	assert.Check(t, is.Equal(float64(*rules[1].Above), 720.0))
	assert.Check(t, is.Equal(float64(*rules[1].ResolveBelow), 24.0))
}

func TestLoadDrillAgeRuleErrors(t *testing.T) {
	t.Run("in a service's block", func(t *testing.T) {
		compose := "x-lifecycle: {backup: {to: ./b}}\nservices:\n  web:\n    image: nginx\n    x-lifecycle:\n      alerts: {rules: [{metric: drill-age, above: 24}]}\n"
		_, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
		assert.ErrorIs(t, err, ErrInvalidSpec)
		assert.Check(t, is.Contains(err.Error(), `service "web"`))
		assert.Check(t, is.Contains(err.Error(), "alerts.rules[0]: metric drill-age is the project's (its backups are): set it in the top-level x-lifecycle.alerts.rules"))
	})
	t.Run("without backup.to", func(t *testing.T) {
		compose := "x-lifecycle: {alerts: {rules: [{metric: drill-age, above: 24h}]}}\nservices:\n  web:\n    image: nginx\n"
		_, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
		assert.ErrorIs(t, err, ErrInvalidSpec)
		assert.Check(t, is.Contains(err.Error(), "metric drill-age reads the drills of the project's backups in x-lifecycle.backup.to, which is not set"))
	})
	t.Run("a threshold that is neither hours nor a duration", func(t *testing.T) {
		compose := "x-lifecycle: {backup: {to: ./b}, alerts: {rules: [{metric: drill-age, above: a week}]}}\nservices:\n  web:\n    image: nginx\n"
		_, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
		assert.ErrorIs(t, err, ErrInvalidSpec)
		assert.Check(t, is.Contains(err.Error(), `alerts.rules[0]: 'above' want a number`))
		assert.Check(t, is.Contains(err.Error(), `"168h" (drill-age)`))
	})
}
