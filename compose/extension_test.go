package compose

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"
	"gotest.tools/v3/assert"
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
		{doc: "[a]", wantErr: "must be a mapping, got a list"},
		{doc: "42", wantErr: "must be a mapping, got a number"},
		{doc: "true", wantErr: "must be a mapping, got a boolean"},
		{doc: "wait-timeout: 5", wantErr: `'wait-timeout' want a duration such as "30s" or "2m", got a number`},
		{doc: "wait-timeout: -1s", wantErr: `'wait-timeout' duration "-1s" must not be negative`},
		{doc: "Wait-Timeout: 1s", wantErr: `unknown key "Wait-Timeout" (valid keys: wait-timeout, policy)`},
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
		{doc: "wait-timeout.x: 1s", wantErr: `unknown key "wait-timeout.x" (valid keys: wait-timeout, policy)`},
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

func TestDecodeServiceSpec(t *testing.T) {
	project := ProjectSpec{WaitTimeout: Duration(3 * time.Minute)}
	tests := []struct {
		doc     string
		want    ServiceSpec
		wantErr string
	}{
		{doc: "", want: ServiceSpec{Strategy: StrategyRecreate, WaitTimeout: project.WaitTimeout}},
		{doc: "strategy: recreate", want: ServiceSpec{Strategy: StrategyRecreate, WaitTimeout: project.WaitTimeout}},
		{doc: "strategy: ''", want: ServiceSpec{Strategy: StrategyRecreate, WaitTimeout: project.WaitTimeout}},
		{doc: "wait-timeout: 10s", want: ServiceSpec{Strategy: StrategyRecreate, WaitTimeout: Duration(10 * time.Second)}},
		{doc: "wait-timeout: 0s", want: ServiceSpec{Strategy: StrategyRecreate, WaitTimeout: project.WaitTimeout}},
		{doc: "strategy: rolling", wantErr: `key "strategy": "rolling" is not available in this version yet; use "recreate"`},
		{doc: "strategy: blue-green", wantErr: `"blue-green" is not available in this version yet`},
		{doc: "strategy: canary", wantErr: `"canary" is not available in this version yet`},
		{doc: "strategy: Recreate", wantErr: `unknown strategy "Recreate" (valid: recreate)`},
		{doc: "strategy: 5", wantErr: "'strategy' expected type 'string'"},
		{doc: "strategy: recreate\npolicy: {}", wantErr: `unknown key "policy" (valid keys: strategy, wait-timeout, allow)`},
		{doc: "Strategy: recreate", wantErr: `unknown key "Strategy"`},
		{doc: "wait-timeout: forever", wantErr: `got "forever"`},
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

	var d Duration
	assert.NilError(t, d.UnmarshalText([]byte("2m")))
	assert.Equal(t, d, Duration(2*time.Minute))
	assert.ErrorContains(t, d.UnmarshalText([]byte("soon")), "invalid duration")
}
