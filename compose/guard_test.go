package compose

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func guardDur(s string) Duration {
	v, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return Duration(v)
}

func TestLoadGuardPolicy(t *testing.T) {
	defaults := GuardSpec{
		Backoff: GuardBackoff{Start: guardDur("10s"), Cap: guardDur("5m"), ResetAfter: guardDur("10m")},
		Budget:  3, Window: guardDur("10m"), RollbackWindow: new(guardDur("30m")),
	}
	tests := []struct {
		name    string
		compose string
		want    map[string]GuardSpec
	}{
		{
			name:    "no guard block: the defaults, after left to the container's healthcheck",
			compose: "services:\n  web:\n    image: nginx\n",
			want:    map[string]GuardSpec{"web": defaults},
		},
		{
			name: "project defaults, a service overrides key by key",
			compose: `
x-lifecycle:
  guard: {after: 20s, backoff: {start: 1s, cap: 8s}, budget: 5}
services:
  web:
    image: nginx
  api:
    image: nginx
    x-lifecycle:
      guard: {backoff: {start: 2s, reset-after: 1m}, window: 30s}
`,
			want: map[string]GuardSpec{
				"web": {After: guardDur("20s"), Backoff: GuardBackoff{Start: guardDur("1s"), Cap: guardDur("8s"), ResetAfter: guardDur("10m")}, Budget: 5, Window: guardDur("10m"), RollbackWindow: new(guardDur("30m"))},
				"api": {After: guardDur("20s"), Backoff: GuardBackoff{Start: guardDur("2s"), Cap: guardDur("8s"), ResetAfter: guardDur("1m")}, Budget: 5, Window: guardDur("30s"), RollbackWindow: new(guardDur("30m"))},
			},
		},
		{
			name:    "a start above the default cap raises the cap",
			compose: "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {backoff: {start: 10m}, window: 1h}}\n",
			want: map[string]GuardSpec{"web": {
				Backoff: GuardBackoff{Start: guardDur("10m"), Cap: guardDur("10m"), ResetAfter: guardDur("10m")}, Budget: 3, Window: guardDur("1h"), RollbackWindow: new(guardDur("30m")),
			}},
		},
		{
			name: "rollback-window: the project's, a service's own, and 0s (off) overriding the project's",
			compose: `
x-lifecycle:
  guard: {rollback-window: 5m}
services:
  web:
    image: nginx
  api:
    image: nginx
    x-lifecycle: {guard: {rollback-window: 2h}}
  db:
    image: nginx
    x-lifecycle: {guard: {rollback-window: 0s}}
`,
			want: map[string]GuardSpec{
				"web": {Backoff: defaults.Backoff, Budget: 3, Window: guardDur("10m"), RollbackWindow: new(guardDur("5m"))},
				"api": {Backoff: defaults.Backoff, Budget: 3, Window: guardDur("10m"), RollbackWindow: new(guardDur("2h"))},
				"db":  {Backoff: defaults.Backoff, Budget: 3, Window: guardDur("10m"), RollbackWindow: new(Duration(0))},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := loadFiles(t, map[string]string{"compose.yaml": tc.compose}, LoadOptions{})
			assert.NilError(t, err)
			for name, want := range tc.want {
				assert.DeepEqual(t, p.ServiceSpecs[name].Guard, want)
			}
		})
	}
}

func TestLoadGuardErrors(t *testing.T) {
	tests := []struct {
		name     string
		compose  string
		contains []string
	}{
		{
			name:     "unknown key in a service's guard",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {afterr: 1s}}\n",
			contains: []string{`service "web"`, `unknown key "guard.afterr" (valid keys: after, backoff, budget, window, rollback-window)`},
		},
		{
			name:     "rollback-window as a number",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {rollback-window: 30}}\n",
			contains: []string{`service "web"`, `'guard.rollback-window' want a duration such as "30s"`},
		},
		{
			name:     "a negative rollback-window",
			compose:  "x-lifecycle: {guard: {rollback-window: -5m}}\nservices:\n  web:\n    image: nginx\n",
			contains: []string{"top-level", `'guard.rollback-window' duration "-5m" must not be negative`},
		},
		{
			name:     "unknown key in the project's backoff",
			compose:  "x-lifecycle: {guard: {backoff: {max: 1m}}}\nservices:\n  web:\n    image: nginx\n",
			contains: []string{"top-level", `unknown key "guard.backoff.max" (valid keys: start, cap, reset-after)`},
		},
		{
			name:     "a duration as a number",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {after: 30}}\n",
			contains: []string{`service "web"`, `'guard.after' want a duration such as "30s"`},
		},
		{
			name:     "a negative duration",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {window: -1m}}\n",
			contains: []string{`'guard.window' duration "-1m" must not be negative`},
		},
		{
			name:     "a negative budget",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {budget: -1}}\n",
			contains: []string{`service "web"`, `key "guard.budget" must be a number of restarts of 1 or more, got -1`},
		},
		{
			name:     "cap below start in one block",
			compose:  "x-lifecycle: {guard: {backoff: {start: 1m, cap: 10s}}}\nservices:\n  web:\n    image: nginx\n",
			contains: []string{"top-level", `key "guard.backoff.cap" (10s) must not be below guard.backoff.start (1m0s)`},
		},
		{
			name:     "cap below start across the project's and the service's blocks",
			compose:  "x-lifecycle: {guard: {backoff: {cap: 10s}}}\nservices:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {backoff: {start: 1m}}}\n",
			contains: []string{`service "web"`, `counting the project's x-lifecycle.guard: raise the cap or lower the start`},
		},
		{
			name:     "a window shorter than the backoff",
			compose:  "services:\n  web:\n    image: nginx\n    x-lifecycle: {guard: {backoff: {start: 1m}, window: 30s}}\n",
			contains: []string{`service "web"`, `key "guard.window" (30s) is shorter than guard.backoff.start (1m0s)`, "widen the window"},
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
