package compose

import (
	"math"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// fuzzSeeds are x-lifecycle documents, valid and invalid, shared by both fuzzers:
// a service document is usually an invalid project document and vice versa.
var fuzzSeeds = []string{
	"",
	"~",
	"{}",
	"strategy: recreate",
	"strategy: recreate\nwait-timeout: 30s",
	"wait-timeout: 0s",
	"wait-timeout: -1s",
	"wait-timeout: 5",
	"wait-timeout: abc",
	"wait-timeout: 9999999999999h",
	"wait-timeout: [1s]",
	"strategy: canary",
	"strategy: bogus",
	"strategy: 5",
	"strategy: [recreate]",
	"strateg: recreate",
	"wait-timeout.x: 1s",
	"strategy.x: recreate",
	"[a, b]",
	"just a string",
	"42",
	"true",
	"1: one",
	"? [a]\n: b",
	"policy: {defaults: {memory: 512M, cpus: '0.5', pids: 100}}",
	"wait-timeout: 5m\npolicy:\n  defaults:\n    memory: 1G\n    cpus: 2\n    pids: 10",
	"policy: {defaults: {memory: 0}}",
	"policy: {defaults: {memory: -5}}",
	"policy: {defaults: {memory: 1.5}}",
	"policy: {defaults: {memory: 12XB}}",
	"policy: {defaults: {cpus: .nan}}",
	"policy: {defaults: {cpus: .inf}}",
	"policy: {defaults: {cpus: NaN}}",
	"policy: {defaults: {cpus: -1}}",
	"policy: {defaults: {cpus: abc}}",
	"policy: {defaults: {pids: abc}}",
	"policy: {defaultz: {}}",
	"policy: {defaults: {memory: 1G, extra: 1}}",
	"policy: {defaults.memory: 1G}",
	"policy: [a]",
	"policy: {defaults: [a]}",
	"policy: ~",
	"policy: {defaults: ~}",
	"a: &x {b: *x}",
	"a: &a [*a]",
	"<<: {strategy: recreate}",
	"strategy: !!binary aGVsbG8=",
	"wait-timeout: !!int 5",
	"Strategy: recreate",
	"POLICY: {}",
	"policy: {~: 1}",
	"policy: {defaults: {1: 2}}",
	"policy: {&0000000: {0}}",
	"policy: {defaults: {memory.x: 1G}}",
	"strategy: rolling",
	"strategy: blue-green",
	"strategy: ''",
	"history: 0",
	"history: -1",
	"drain: 5s",
	"protocol: tcp",
	"protocol: auto",
	"sniff-window: 50ms",
	"protocol: udp",
	"blue-green: {promote: manual, scale-down-delay: 1m, preview-port: '127.0.0.1:8081'}",
	"blue-green: {promote: sometimes}",
	"blue-green: {preview-port: '99999'}",
	"blue-green: {colour: blue}",
	"canary: {steps: [{weight: 10}, {weight: 100, pause: 1m}]}",
	"canary: {steps: [{weight: 50}, {weight: 10}]}",
	"canary: {steps: [{weight: 0}]}",
	"canary: {steps: [{weight: 101}]}",
	"canary: {steps: [{weight: 10, wieght: 20}]}",
	"canary: {steps: [10, 50]}",
	"canary: {analysis: {max-error-rate: 1.5, min-requests: -1}}",
	"canary: {analysis: {max-error-rate: -0.5}}",
	"canary: {analysis: {max-error-rate: .nan}}",
	"canary: {analysis: {max-p99: 250ms, min-requests: 10}}",
}

func unmarshalFuzzInput(t *testing.T, doc string) (any, bool) {
	t.Helper()
	var raw any
	if err := yaml.Unmarshal([]byte(doc), &raw); err != nil {
		return nil, false
	}
	return raw, true
}

func FuzzDecodeServiceSpec(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		raw, ok := unmarshalFuzzInput(t, doc)
		if !ok {
			return
		}
		project, err := DecodeProjectSpec(nil)
		if err != nil {
			t.Fatalf("default project spec: %v", err)
		}
		spec, err := DecodeServiceSpec(raw, project)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error message for %q", doc)
			}
			return
		}
		// An unset strategy stays empty: resolveRollout picks the default, which
		// depends on the compose service.
		if spec.Strategy != "" && !slices.Contains(strategies, spec.Strategy) {
			t.Fatalf("decoded %q: strategy %q is not valid", doc, spec.Strategy)
		}
		if spec.WaitTimeout <= 0 {
			t.Fatalf("decoded %q: wait-timeout %v must be positive", doc, spec.WaitTimeout)
		}
		explicit := spec.Strategy

		// Resolved for a service that can run twice, the spec is complete and valid, or
		// the error says why.
		svc := types.ServiceConfig{Name: "web", ContainerSpec: types.ContainerSpec{Image: "nginx"}}
		if err := resolveRollout(svc, &spec, "", false); err != nil {
			if err.Error() == "" {
				t.Fatalf("empty resolve error message for %q", doc)
			}
			return
		}
		checkResolved(t, doc, spec)
		if explicit == "" && spec.Strategy != StrategyRolling {
			t.Fatalf("resolved %q: default strategy %q, want rolling", doc, spec.Strategy)
		}
		if explicit != "" && spec.Strategy != explicit {
			t.Fatalf("resolved %q: strategy %q, want the explicit %q", doc, spec.Strategy, explicit)
		}
	})
}

// checkResolved fails unless spec is what resolveRollout promises: every default filled
// in and every value in its range.
func checkResolved(t *testing.T, doc string, spec ServiceSpec) {
	t.Helper()
	if !slices.Contains(strategies, spec.Strategy) {
		t.Fatalf("resolved %q: strategy %q is not valid", doc, spec.Strategy)
	}
	if spec.History == nil || *spec.History < 0 {
		t.Fatalf("resolved %q: history %v", doc, spec.History)
	}
	if spec.Drain <= 0 {
		t.Fatalf("resolved %q: drain %v must be positive", doc, spec.Drain)
	}
	if spec.Protocol != "auto" && spec.Protocol != "http" && spec.Protocol != "tcp" {
		t.Fatalf("resolved %q: protocol %q", doc, spec.Protocol)
	}
	if spec.BlueGreen.PreviewPort != "" {
		t.Fatalf("resolved %q: preview-port %q is not supported and must be refused", doc, spec.BlueGreen.PreviewPort)
	}
	if spec.BlueGreen.Promote != PromoteAuto && spec.BlueGreen.Promote != PromoteManual {
		t.Fatalf("resolved %q: promote %q", doc, spec.BlueGreen.Promote)
	}
	if len(spec.Canary.Steps) == 0 {
		t.Fatalf("resolved %q: no canary steps", doc)
	}
	prev := 0
	for i, s := range spec.Canary.Steps {
		if s.Weight <= prev || s.Weight > 100 {
			t.Fatalf("resolved %q: canary step %d weight %d after %d", doc, i, s.Weight, prev)
		}
		if s.Pause <= 0 {
			t.Fatalf("resolved %q: canary step %d pause %v", doc, i, s.Pause)
		}
		prev = s.Weight
	}
	if r := spec.Canary.Analysis.MaxErrorRate; r == nil || !(*r >= 0 && *r <= 1) {
		t.Fatalf("resolved %q: max-error-rate %v", doc, r)
	}
	if spec.Canary.Analysis.MinRequests < 0 {
		t.Fatalf("resolved %q: min-requests %d", doc, spec.Canary.Analysis.MinRequests)
	}
	for _, u := range []UpdateSpec{spec.Update, spec.Rollback} {
		if u.Parallelism < 1 || (u.Order != OrderStartFirst && u.Order != OrderStopFirst) ||
			(u.FailureAction != FailureRollback && u.FailureAction != FailurePause) || u.MaxFailureRatio != 0 {
			t.Fatalf("resolved %q: update spec %+v", doc, u)
		}
	}
}

func FuzzDecodeProjectSpec(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		raw, ok := unmarshalFuzzInput(t, doc)
		if !ok {
			return
		}
		spec, err := DecodeProjectSpec(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error message for %q", doc)
			}
			return
		}
		if spec.WaitTimeout <= 0 {
			t.Fatalf("decoded %q: wait-timeout %v must be positive", doc, spec.WaitTimeout)
		}
		d := spec.Policy.Defaults
		if d.Memory < 0 {
			t.Fatalf("decoded %q: negative memory default %d", doc, d.Memory)
		}
		if c := float64(d.CPUs); c < 0 || math.IsNaN(c) || math.IsInf(c, 0) {
			t.Fatalf("decoded %q: cpus default %v is not a positive finite number", doc, c)
		}
		// Pids is not checked: a negative value is accepted, and resources() ignores it.

		// A decoded spec must feed a service decode without error.
		svc, err := DecodeServiceSpec(nil, spec)
		if err != nil {
			t.Fatalf("service defaults from %q: %v", doc, err)
		}
		if svc.WaitTimeout != spec.WaitTimeout {
			t.Fatalf("service did not inherit wait-timeout %v: got %v", spec.WaitTimeout, svc.WaitTimeout)
		}
	})
}
