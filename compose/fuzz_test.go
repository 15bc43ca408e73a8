package compose

import (
	"math"
	"testing"

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
		if spec.Strategy != StrategyRecreate {
			t.Fatalf("decoded %q: strategy %q is not valid", doc, spec.Strategy)
		}
		if spec.WaitTimeout <= 0 {
			t.Fatalf("decoded %q: wait-timeout %v must be positive", doc, spec.WaitTimeout)
		}
	})
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
