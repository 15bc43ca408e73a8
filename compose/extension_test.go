package compose

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func decodeYAML(t *testing.T, doc string) any {
	t.Helper()
	var raw any
	assert.NilError(t, yaml.Unmarshal([]byte(doc), &raw))
	return raw
}

func TestDecodeProjectSpec(t *testing.T) {
	tests := []struct {
		doc     string
		want    ProjectSpec
		wantErr string
	}{
		{doc: "", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "{}", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "wait-timeout: 0s", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "wait-timeout: 1m30s", want: ProjectSpec{WaitTimeout: Duration(90 * time.Second)}},
		{doc: "policy: ~", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout)}},
		{
			doc:  "policy: {defaults: {memory: 512M, cpus: '0.5', pids: 100}}",
			want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout), Policy: PolicySpec{Defaults: ResourceDefaults{Memory: 512 << 20, CPUs: 0.5, Pids: 100}}},
		},
		{
			doc:  "policy: {defaults: {memory: 1048576, cpus: 0.25}}",
			want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout), Policy: PolicySpec{Defaults: ResourceDefaults{Memory: 1 << 20, CPUs: 0.25}}},
		},
		{
			doc:  "policy: {defaults: {memory: 1gb, cpus: 3}}",
			want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout), Policy: PolicySpec{Defaults: ResourceDefaults{Memory: 1 << 30, CPUs: 3}}},
		},
		{doc: "backup: {consistency: stop}", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout), Backup: BackupSpec{Consistency: ConsistencyStop}}},
		{doc: "backup: {consistency: none}", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout), Backup: BackupSpec{Consistency: ConsistencyNone}}},
		{doc: "backup: {consistency: freeze}", wantErr: `key "backup.consistency": unknown mode "freeze" (valid: pause, stop, none)`},
		{doc: "backup: {consistancy: stop}", wantErr: `unknown key "backup.consistancy" (valid keys: consistency, verify, hooks, before-deploy, to)`},
		{doc: "backup: {before-deploy: true, to: backups}", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout), Backup: BackupSpec{BeforeDeploy: true, To: "backups"}}},
		{doc: "backup: {before-deploy: true}", wantErr: `key "backup.to": required with backup.before-deploy: true`},
		{doc: "backup: {before-deploy: yes-please, to: b}", wantErr: `before-deploy`},
		{doc: "backup: {before_deploy: true, to: b}", wantErr: `unknown key "backup.before_deploy"`},
		{doc: "[a]", wantErr: "must be a mapping, got a list"},
		{doc: "42", wantErr: "must be a mapping, got a number"},
		{doc: "true", wantErr: "must be a mapping, got a boolean"},
		{doc: "wait-timeout: 5", wantErr: `'wait-timeout' want a duration such as "30s" or "2m", got a number`},
		{doc: "wait-timeout: -1s", wantErr: `'wait-timeout' duration "-1s" must not be negative`},
		{doc: "strategy: rolling", want: ProjectSpec{Strategy: StrategyRolling, WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "strategy: blue-green", want: ProjectSpec{Strategy: StrategyBlueGreen, WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "strategy: canary", want: ProjectSpec{Strategy: StrategyCanary, WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "strategy: recreate", want: ProjectSpec{Strategy: StrategyRecreate, WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "strategy: ''", want: ProjectSpec{WaitTimeout: Duration(DefaultWaitTimeout)}},
		{doc: "strategy: Rolling", wantErr: `key "strategy": unknown strategy "Rolling" (valid: rolling, blue-green, canary, recreate)`},
		{doc: "strategy: [rolling]", wantErr: "'strategy' expected type 'string'"},
		{doc: "Wait-Timeout: 1s", wantErr: `unknown key "Wait-Timeout" (valid keys: strategy, wait-timeout, policy, scan, network, backup, logs, guard, alerts, hosts)`},
		{doc: "policy: {defaultz: {}}", wantErr: `unknown key "policy.defaultz" (valid keys: require, deny, defaults)`},
		{doc: "policy: {defaults: {memory: 1G, swap: 1G}}", wantErr: `unknown key "policy.defaults.swap" (valid keys: memory, cpus, pids)`},
		{doc: "policy: {defaults: {memory: 0}}", wantErr: "size must be positive, got 0"},
		{doc: "policy: {defaults: {memory: -1}}", wantErr: "size must be positive, got -1"},
		{doc: "policy: {defaults: {memory: 0M}}", wantErr: `want a size such as "512M" or "1G", got "0M"`},
		{doc: "policy: {defaults: {memory: 1.5}}", wantErr: `want a size such as "512M", got a number`},
		{doc: "policy: {defaults: {cpus: 0}}", wantErr: "cpus must be a positive number, got 0"},
		{doc: "policy: {defaults: {cpus: .inf}}", wantErr: "cpus must be a positive number, got +Inf"},
		{doc: "policy: {defaults: {cpus: .nan}}", wantErr: "cpus must be a positive number, got NaN"},
		{doc: "policy: {defaults: {cpus: 'NaN'}}", wantErr: "cpus must be a positive number, got NaN"},
		{doc: "policy: {defaults: {cpus: [1]}}", wantErr: "want a number of CPUs such as 0.5, got a list"},
		{doc: "policy: {defaults: {cpus: one}}", wantErr: `want a number of CPUs such as "0.5", got "one"`},
		// keys YAML allows but x-lifecycle cannot have (mapstructure used to panic on them)
		{doc: "1: one", wantErr: "key 1 must be a string, got a number"},
		{doc: "policy: {~: 1}", wantErr: "key <nil> must be a string, got null"},
		{doc: "policy: {defaults: {1: 2}}", wantErr: "key 1 must be a string, got a number"},
		// a key with a dot of its own (validKeys used to panic on it)
		{doc: "wait-timeout.x: 1s", wantErr: `unknown key "wait-timeout.x" (valid keys: strategy, wait-timeout, policy, scan, network, backup, logs, guard, alerts, hosts)`},
		{doc: "policy: {defaults: {memory.x: 1G}}", wantErr: `unknown key "policy.defaults.memory.x" (valid keys: memory, cpus, pids)`},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := DecodeProjectSpec(decodeYAML(t, tc.doc))
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

// DecodeServiceSpec only decodes: the strategy stays empty when unset (resolveRollout
// picks the default from the compose service) and the rollout settings keep their zero
// values until resolveRollout fills them in.
func TestDecodeServiceSpec(t *testing.T) {
	project := ProjectSpec{WaitTimeout: Duration(3 * time.Minute)}
	wait := project.WaitTimeout
	tests := []struct {
		doc     string
		want    ServiceSpec
		wantErr string
	}{
		{doc: "", want: ServiceSpec{WaitTimeout: wait}},
		{doc: "strategy: recreate", want: ServiceSpec{Strategy: StrategyRecreate, WaitTimeout: wait}},
		{doc: "strategy: ''", want: ServiceSpec{WaitTimeout: wait}},
		{doc: "wait-timeout: 10s", want: ServiceSpec{WaitTimeout: Duration(10 * time.Second)}},
		{doc: "wait-timeout: 0s", want: ServiceSpec{WaitTimeout: wait}},
		{doc: "strategy: rolling", want: ServiceSpec{Strategy: StrategyRolling, WaitTimeout: wait}},
		{doc: "strategy: blue-green", want: ServiceSpec{Strategy: StrategyBlueGreen, WaitTimeout: wait}},
		{doc: "strategy: canary", want: ServiceSpec{Strategy: StrategyCanary, WaitTimeout: wait}},
		{
			doc:  "history: 2\ndrain: 30s\nprotocol: tcp",
			want: ServiceSpec{WaitTimeout: wait, History: ptr(2), Drain: Duration(30 * time.Second), Protocol: "tcp"},
		},
		{doc: "history: 0", want: ServiceSpec{WaitTimeout: wait, History: ptr(0)}},
		{
			doc: "strategy: blue-green\nblue-green: {promote: manual, scale-down-delay: 1m, preview-port: '127.0.0.1:8081'}",
			want: ServiceSpec{Strategy: StrategyBlueGreen, WaitTimeout: wait, BlueGreen: BlueGreenSpec{
				Promote: PromoteManual, ScaleDownDelay: Duration(time.Minute), PreviewPort: "127.0.0.1:8081",
			}},
		},
		{
			doc: "strategy: canary\ncanary:\n  steps: [{weight: 5, pause: 1m}, {weight: 100}]\n  analysis: {max-error-rate: 0.05, max-p99: 250ms, min-requests: 20}",
			want: ServiceSpec{Strategy: StrategyCanary, WaitTimeout: wait, Canary: CanarySpec{
				Steps:    []CanaryStep{{Weight: 5, Pause: Duration(time.Minute)}, {Weight: 100}},
				Analysis: AnalysisSpec{MaxErrorRate: new(0.05), MaxP99: Duration(250 * time.Millisecond), MinRequests: 20},
			}},
		},
		{doc: "strategy: Recreate", wantErr: `key "strategy": unknown strategy "Recreate" (valid: rolling, blue-green, canary, recreate)`},
		{doc: "strategy: bogus", wantErr: `unknown strategy "bogus" (valid: rolling, blue-green, canary, recreate)`},
		{doc: "strategy: 5", wantErr: "'strategy' expected type 'string'"},
		{doc: "strategy: recreate\npolicy: {}", wantErr: `unknown key "policy" (valid keys: strategy, wait-timeout, allow, history, drain, protocol, sniff-window, active-check, blue-green, canary, network, guard, alerts)`},
		{doc: "Strategy: recreate", wantErr: `unknown key "Strategy"`},
		{doc: "wait-timeout: forever", wantErr: `got "forever"`},
		// update and rollback come from compose's deploy keys, never from x-lifecycle
		{doc: "update: {parallelism: 2}", wantErr: `unknown key "update"`},
		{doc: "rollback: {}", wantErr: `unknown key "rollback"`},
		// unknown keys in the nested blocks are named by their dotted path
		{doc: "blue-green: {colour: blue}", wantErr: `unknown key "blue-green.colour" (valid keys: promote, scale-down-delay, preview-port)`},
		{doc: "blue-green: {promote: manual, scale_down_delay: 1m}", wantErr: `unknown key "blue-green.scale_down_delay" (valid keys: promote, scale-down-delay, preview-port)`},
		{doc: "canary: {stepz: []}", wantErr: `unknown key "canary.stepz" (valid keys: steps, analysis)`},
		{doc: "canary: {analysis: {max-p95: 1s}}", wantErr: `unknown key "canary.analysis.max-p95" (valid keys: max-error-rate, max-p99, min-requests)`},
		// TODO: validKeys lists the canary keys here instead of weight, pause (it does
		// not step through "steps[0]"); only the dotted path is checked.
		{doc: "canary: {steps: [{weight: 10, wieght: 20}]}", wantErr: `unknown key "canary.steps[0].wieght"`},
		{doc: "canary: {steps: {weight: 10}}", wantErr: "'canary.steps' source data must be an array or slice"},
		{doc: "canary: {steps: [10, 50]}", wantErr: "'canary.steps[0]' expected a map or struct"},
		{doc: "blue-green: manual", wantErr: "'blue-green' expected a map or struct"},
		{doc: "history: many", wantErr: "'history' expected type 'int'"},
		{doc: "drain: 5", wantErr: `'drain' want a duration such as "30s" or "2m", got a number`},
		{doc: "drain: -1s", wantErr: `'drain' duration "-1s" must not be negative`},
		{doc: "protocol: 5", wantErr: "'protocol' expected type 'string'"},
		{doc: "canary: {analysis: {max-error-rate: high}}", wantErr: "'canary.analysis.max-error-rate' expected type 'float64'"},
		{doc: "blue-green: {scale-down-delay: soon}", wantErr: `'blue-green.scale-down-delay' want a duration`},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			got, err := DecodeServiceSpec(decodeYAML(t, tc.doc), project)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			assert.NilError(t, err)
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

// Specs are printed (dry-run, JSON output) in the units the compose file uses.
func TestSpecMarshal(t *testing.T) {
	spec := ProjectSpec{
		WaitTimeout: Duration(90 * time.Second),
		Policy:      PolicySpec{Defaults: ResourceDefaults{Memory: 512 << 20, CPUs: 0.5, Pids: 10}},
	}
	b, err := json.Marshal(spec)
	assert.NilError(t, err)
	assert.Equal(t, string(b), `{"wait-timeout":"1m30s","policy":{"defaults":{"memory":"512MiB","cpus":"0.5","pids":10}}}`)

	spec.Strategy = StrategyCanary
	b, err = json.Marshal(spec)
	assert.NilError(t, err)
	assert.Check(t, strings.HasPrefix(string(b), `{"strategy":"canary","wait-timeout":"1m30s",`), string(b))

	svc := ServiceSpec{
		Strategy: StrategyRolling, WaitTimeout: Duration(time.Minute), History: ptr(3), Drain: Duration(15 * time.Second), Protocol: "http",
		BlueGreen: BlueGreenSpec{Promote: PromoteAuto},
		Canary:    CanarySpec{Steps: []CanaryStep{{Weight: 10, Pause: Duration(30 * time.Second)}}, Analysis: AnalysisSpec{MaxErrorRate: new(0.01)}},
		Update:    UpdateSpec{Parallelism: 1, Order: OrderStartFirst, FailureAction: FailureRollback},
		Rollback:  UpdateSpec{Parallelism: 2, Delay: Duration(time.Second), Order: OrderStopFirst, FailureAction: FailurePause},
	}
	b, err = json.Marshal(svc)
	assert.NilError(t, err)
	assert.Equal(t, string(b), `{"strategy":"rolling","wait-timeout":"1m0s","history":3,"drain":"15s","protocol":"http",`+
		`"blue-green":{"promote":"auto"},`+
		`"canary":{"steps":[{"weight":10,"pause":"30s"}],"analysis":{"max-error-rate":0.01,"min-requests":0}}}`)

	var d Duration
	assert.NilError(t, d.UnmarshalText([]byte("2m")))
	assert.Equal(t, d, Duration(2*time.Minute))
	assert.ErrorContains(t, d.UnmarshalText([]byte("soon")), "invalid duration")
}

func TestTakeKey(t *testing.T) {
	raw := map[string]any{
		"strategy": "rolling",
		"alerts":   map[string]any{"interval": "5s"},
		"backup":   map[string]any{"consistency": "stop", "verify": []any{"x"}},
	}
	rest, v := takeKey(raw, "alerts")
	assert.Check(t, is.DeepEqual(v, map[string]any{"interval": "5s"}))
	assert.Check(t, is.DeepEqual(rest, map[string]any{"strategy": "rolling", "backup": raw["backup"]}))

	rest, v = takeKey(raw, "backup", "verify")
	assert.Check(t, is.DeepEqual(v, []any{"x"}))
	assert.Check(t, is.DeepEqual(rest, map[string]any{"strategy": "rolling", "alerts": raw["alerts"], "backup": map[string]any{"consistency": "stop"}}))
	assert.Check(t, is.Len(raw["backup"].(map[string]any), 2), "raw is left as it is")

	rest, v = takeKey(raw, "backup", "missing")
	assert.Check(t, v == nil)
	assert.Check(t, is.DeepEqual(rest, raw))
	rest, v = takeKey("not a mapping", "alerts")
	assert.Check(t, v == nil && rest == "not a mapping")
}
