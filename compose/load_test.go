package compose

import (
	"context"
	"errors"
	"github.com/google/go-cmp/cmp/cmpopts"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// composeEnv are the variables compose-go reads from the environment; tests clear them
// so a developer's shell does not change what Load sees.
var composeEnv = []string{
	"COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR",
	"COMPOSE_DISABLE_ENV_FILE", "COMPOSE_ENV_FILES",
}

// unsetEnv unsets variables for the duration of the test.
func unsetEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, k := range names {
		t.Setenv(k, "") // restores the old value after the test
		assert.NilError(t, os.Unsetenv(k))
	}
}

// writeFiles writes files (name → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		assert.NilError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		assert.NilError(t, os.WriteFile(path, []byte(content), 0o644))
	}
}

// loadFiles writes files into a new directory and loads it as the project directory.
// ConfigFiles and EnvFiles in opts are relative to that directory.
func loadFiles(t *testing.T, files map[string]string, opts LoadOptions) (*Project, string, error) {
	t.Helper()
	unsetEnv(t, composeEnv...)
	dir := t.TempDir()
	writeFiles(t, dir, files)
	opts.WorkingDir = dir
	opts.ConfigFiles = inDir(dir, opts.ConfigFiles)
	opts.EnvFiles = inDir(dir, opts.EnvFiles)
	p, err := Load(context.Background(), opts)
	return p, dir, err
}

func inDir(dir string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

// resolved is the spec Load gives a service that sets nothing but its strategy and
// wait-timeout: every rollout default, written out here so that a change of default
// shows in the tests.
// ignoreStrategyReason: TestStrategyReasons checks the reasons.
var ignoreStrategyReason = cmpopts.IgnoreFields(ServiceSpec{}, "StrategyReason")

func resolved(strategy string, wait Duration) ServiceSpec {
	return ServiceSpec{
		Strategy:    strategy,
		WaitTimeout: wait,
		History:     ptr(5),
		Drain:       Duration(10 * time.Second),
		Protocol:    "auto",
		SniffWindow: Duration(200 * time.Millisecond),
		BlueGreen:   BlueGreenSpec{Promote: PromoteAuto},
		Canary: CanarySpec{
			Steps:    []CanaryStep{{Weight: 10, Pause: Duration(30 * time.Second)}, {Weight: 50, Pause: Duration(30 * time.Second)}},
			Analysis: AnalysisSpec{MaxErrorRate: new(0.01)},
		},
		Update:   UpdateSpec{Parallelism: 1, Order: OrderStartFirst, FailureAction: FailureRollback},
		Rollback: UpdateSpec{Parallelism: 1, Order: OrderStartFirst, FailureAction: FailureRollback},
		Guard: GuardSpec{
			Backoff: GuardBackoff{Start: Duration(10 * time.Second), Cap: Duration(5 * time.Minute), ResetAfter: Duration(10 * time.Minute)},
			Budget:  3, Window: Duration(10 * time.Minute), RollbackWindow: new(Duration(30 * time.Minute)),
		},
	}
}

func TestLoadResolvesLifecycleSpec(t *testing.T) {
	const twoMinutes = Duration(2 * time.Minute)
	tests := []struct {
		name     string
		compose  string
		files    map[string]string
		project  ProjectSpec
		services map[string]ServiceSpec
	}{
		{
			name: "no x-lifecycle anywhere: defaults",
			compose: `
services:
  web:
    image: nginx
`,
			project:  ProjectSpec{WaitTimeout: twoMinutes},
			services: map[string]ServiceSpec{"web": resolved(StrategyRolling, twoMinutes)},
		},
		{
			name: "project wait-timeout is inherited, a service's own wins",
			compose: `
x-lifecycle:
  wait-timeout: 5m
services:
  web:
    image: nginx
  api:
    image: api
    x-lifecycle:
      strategy: recreate
      wait-timeout: 30s
  worker:
    image: worker
    x-lifecycle: {}
  zero:
    image: zero
    x-lifecycle:
      wait-timeout: 0s
`,
			project: ProjectSpec{WaitTimeout: Duration(5 * time.Minute)},
			services: map[string]ServiceSpec{
				"web":    resolved(StrategyRolling, Duration(5*time.Minute)),
				"api":    resolved(StrategyRecreate, Duration(30*time.Second)),
				"worker": resolved(StrategyRolling, Duration(5*time.Minute)),
				"zero":   resolved(StrategyRolling, Duration(5*time.Minute)),
			},
		},
		{
			name: "policy defaults: size strings, cpus as string, pids",
			compose: `
x-lifecycle:
  policy:
    defaults:
      memory: 512M
      cpus: "0.5"
      pids: 200
services:
  web:
    image: nginx
`,
			project: ProjectSpec{
				WaitTimeout: twoMinutes,
				Policy:      PolicySpec{Defaults: ResourceDefaults{Memory: 536870912, CPUs: 0.5, Pids: 200}},
			},
			services: map[string]ServiceSpec{"web": resolved(StrategyRolling, twoMinutes)},
		},
		{
			name: "policy defaults: cpus as int and float, memory in G",
			compose: `
x-lifecycle:
  wait-timeout: 90s
  policy:
    defaults:
      memory: 1G
      cpus: 2
services:
  web:
    image: nginx
    x-lifecycle:
      wait-timeout: 1h
`,
			project: ProjectSpec{
				WaitTimeout: Duration(90 * time.Second),
				Policy:      PolicySpec{Defaults: ResourceDefaults{Memory: 1 << 30, CPUs: 2}},
			},
			services: map[string]ServiceSpec{"web": resolved(StrategyRolling, Duration(time.Hour))},
		},
		{
			name: "x-lifecycle values are interpolated",
			compose: `
x-lifecycle:
  policy:
    defaults:
      cpus: ${LCTEST_CPUS}
services:
  web:
    image: nginx
    x-lifecycle:
      wait-timeout: ${LCTEST_WAIT:-45s}
`,
			files: map[string]string{".env": "LCTEST_CPUS=0.25\n"},
			project: ProjectSpec{
				WaitTimeout: twoMinutes,
				Policy:      PolicySpec{Defaults: ResourceDefaults{CPUs: 0.25}},
			},
			services: map[string]ServiceSpec{"web": resolved(StrategyRolling, Duration(45*time.Second))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, "LCTEST_CPUS", "LCTEST_WAIT")
			files := map[string]string{"compose.yaml": tc.compose}
			for k, v := range tc.files {
				files[k] = v
			}
			p, _, err := loadFiles(t, files, LoadOptions{ProjectName: "shop"})
			assert.NilError(t, err)
			assert.DeepEqual(t, p.Spec, tc.project)
			assert.DeepEqual(t, p.ServiceSpecs, tc.services, ignoreStrategyReason)
			for name := range tc.services {
				_, ok := p.Project.Services[name]
				assert.Check(t, ok, "compose service %s", name)
			}
		})
	}
}

func TestLoadInterpolation(t *testing.T) {
	const compose = `
services:
  web:
    image: nginx:${LCTEST_TAG:-latest}
    environment:
      GREETING: hello ${LCTEST_WHO:-nobody}
`
	tests := []struct {
		name     string
		files    map[string]string
		envFiles []string
		osEnv    map[string]string
		image    string
		greeting string
	}{
		{name: "nothing set: defaults", image: "nginx:latest", greeting: "hello nobody"},
		{
			name:     ".env in the project directory",
			files:    map[string]string{".env": "LCTEST_TAG=1.25\nLCTEST_WHO=dotenv\n"},
			image:    "nginx:1.25",
			greeting: "hello dotenv",
		},
		{
			name:     "--env-file replaces .env",
			files:    map[string]string{".env": "LCTEST_TAG=1.25\nLCTEST_WHO=dotenv\n", "prod.env": "LCTEST_TAG=1.27\n"},
			envFiles: []string{"prod.env"},
			image:    "nginx:1.27",
			greeting: "hello nobody",
		},
		{
			name:     "several --env-file: later files win",
			files:    map[string]string{"a.env": "LCTEST_TAG=a\nLCTEST_WHO=a\n", "b.env": "LCTEST_TAG=b\n"},
			envFiles: []string{"a.env", "b.env"},
			image:    "nginx:b",
			greeting: "hello a",
		},
		{
			name:     "the shell environment wins over .env",
			files:    map[string]string{".env": "LCTEST_TAG=1.25\nLCTEST_WHO=dotenv\n"},
			osEnv:    map[string]string{"LCTEST_TAG": "from-shell"},
			image:    "nginx:from-shell",
			greeting: "hello dotenv",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, "LCTEST_TAG", "LCTEST_WHO")
			for k, v := range tc.osEnv {
				t.Setenv(k, v)
			}
			files := map[string]string{"compose.yaml": compose}
			for k, v := range tc.files {
				files[k] = v
			}
			p, _, err := loadFiles(t, files, LoadOptions{ProjectName: "shop", EnvFiles: tc.envFiles})
			assert.NilError(t, err)
			web := p.Project.Services["web"]
			assert.Equal(t, web.Image, tc.image)
			assert.Assert(t, web.Environment["GREETING"] != nil)
			assert.Equal(t, *web.Environment["GREETING"], tc.greeting)
		})
	}
}

func TestLoadProfiles(t *testing.T) {
	const compose = `
services:
  web:
    image: nginx
  debug:
    image: busybox
    profiles: [debug]
    x-lifecycle:
      wait-timeout: 10s
`
	tests := []struct {
		name     string
		profiles []string
		osEnv    string
		want     []string
	}{
		{name: "no profile", want: []string{"web"}},
		{name: "--profile debug", profiles: []string{"debug"}, want: []string{"debug", "web"}},
		{name: "COMPOSE_PROFILES", osEnv: "debug", want: []string{"debug", "web"}},
		{name: "other profile", profiles: []string{"other"}, want: []string{"web"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, composeEnv...)
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"compose.yaml": compose})
			if tc.osEnv != "" {
				t.Setenv("COMPOSE_PROFILES", tc.osEnv)
			}
			p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, ProjectName: "shop", Profiles: tc.profiles})
			assert.NilError(t, err)
			assert.DeepEqual(t, sortedServiceNames(p.Project), tc.want)
			assert.Equal(t, len(p.ServiceSpecs), len(tc.want))
			if _, ok := p.Project.Services["debug"]; ok {
				assert.Equal(t, p.ServiceSpecs["debug"].WaitTimeout, Duration(10*time.Second))
			} else {
				_, disabled := p.DisabledServices["debug"]
				assert.Check(t, disabled, "debug should be a disabled service")
			}
		})
	}
}

func TestLoadProjectName(t *testing.T) {
	tests := []struct {
		name    string
		dirName string
		compose string
		opts    LoadOptions
		osEnv   string
		want    string
	}{
		{
			name:    "-p wins over name:",
			compose: "name: fromfile\nservices:\n  web:\n    image: nginx\n",
			opts:    LoadOptions{ProjectName: "shop"},
			want:    "shop",
		},
		{
			name:    "name: in the compose file",
			compose: "name: fromfile\nservices:\n  web:\n    image: nginx\n",
			want:    "fromfile",
		},
		{
			name:    "COMPOSE_PROJECT_NAME",
			compose: "services:\n  web:\n    image: nginx\n",
			osEnv:   "fromenv",
			want:    "fromenv",
		},
		{
			name:    "directory name, normalized",
			dirName: "My.Shop",
			compose: "services:\n  web:\n    image: nginx\n",
			want:    "myshop",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, composeEnv...)
			dir := t.TempDir()
			if tc.dirName != "" {
				dir = filepath.Join(dir, tc.dirName)
			}
			writeFiles(t, dir, map[string]string{"compose.yaml": tc.compose})
			if tc.osEnv != "" {
				t.Setenv("COMPOSE_PROJECT_NAME", tc.osEnv)
			}
			opts := tc.opts
			opts.WorkingDir = dir
			p, err := Load(context.Background(), opts)
			assert.NilError(t, err)
			assert.Equal(t, p.Name, tc.want)
			assert.Equal(t, ContainerName(p.Name, "web", 1), tc.want+"-web-1")
		})
	}
}

func TestLoadMultipleFiles(t *testing.T) {
	const base = `
x-lifecycle:
  wait-timeout: 1m
services:
  web:
    image: nginx:1
    x-lifecycle:
      strategy: recreate
  db:
    image: postgres
`
	t.Run("override merges", func(t *testing.T) {
		p, dir, err := loadFiles(t, map[string]string{
			"compose.yaml": base,
			"prod.yaml": `
services:
  web:
    image: nginx:2
    x-lifecycle:
      wait-timeout: 3m
`,
		}, LoadOptions{ProjectName: "shop", ConfigFiles: []string{"compose.yaml", "prod.yaml"}})
		assert.NilError(t, err)
		assert.Equal(t, p.Project.Services["web"].Image, "nginx:2")
		assert.DeepEqual(t, p.ServiceSpecs["web"], resolved(StrategyRecreate, Duration(3*time.Minute)), ignoreStrategyReason)
		assert.DeepEqual(t, p.ServiceSpecs["db"], resolved(StrategyRolling, Duration(time.Minute)), ignoreStrategyReason)
		assert.DeepEqual(t, p.ComposeFiles, []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "prod.yaml")})
	})

	tests := []struct {
		name     string
		files    map[string]string
		config   []string // -f; none: compose.yaml and compose.override.yaml are found
		blame    string   // the file the error must name
		innocent string   // a file the error must not name
		contains []string
	}{
		{
			name: "bad service key in the override file",
			files: map[string]string{
				"compose.yaml": base,
				"prod.yaml":    "services:\n  web:\n    x-lifecycle:\n      strateg: recreate\n",
			},
			config:   []string{"compose.yaml", "prod.yaml"},
			blame:    "prod.yaml",
			innocent: "compose.yaml",
			contains: []string{`service "web"`, `unknown key "strateg"`},
		},
		{
			name: "bad project key in the override file",
			files: map[string]string{
				"compose.yaml": base,
				"prod.yaml":    "x-lifecycle:\n  policy:\n    defaultz: {}\n",
			},
			config:   []string{"compose.yaml", "prod.yaml"},
			blame:    "prod.yaml",
			innocent: "compose.yaml",
			contains: []string{`x-lifecycle`, `unknown key "policy.defaultz"`},
		},
		{
			name: "bad key in the base file, override touches another service",
			files: map[string]string{
				"compose.yaml": strings.Replace(base, "strategy: recreate", "strateg: recreate", 1),
				"prod.yaml":    "services:\n  db:\n    x-lifecycle:\n      wait-timeout: 5s\n",
			},
			config:   []string{"compose.yaml", "prod.yaml"},
			blame:    "compose.yaml",
			innocent: "prod.yaml",
			contains: []string{`service "web"`, `unknown key "strateg"`},
		},
		{
			name: "compose.override.yaml found by default",
			files: map[string]string{
				"compose.yaml":          base,
				"compose.override.yaml": "services:\n  db:\n    x-lifecycle:\n      wait-timeout: 5\n",
			},
			blame:    "compose.override.yaml",
			contains: []string{`service "db"`, `'wait-timeout' want a duration`},
		},
		{
			name: "unsupported key in the override file",
			files: map[string]string{
				"compose.yaml": base,
				"prod.yaml":    "services:\n  db:\n    use_api_socket: true\n",
			},
			config:   []string{"compose.yaml", "prod.yaml"},
			blame:    "prod.yaml",
			innocent: "compose.yaml",
			contains: []string{`service "db"`, `key "use_api_socket"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, dir, err := loadFiles(t, tc.files, LoadOptions{ProjectName: "shop", ConfigFiles: tc.config})
			assert.Assert(t, err != nil)
			t.Log(err)
			assert.Check(t, is.Contains(err.Error(), filepath.Join(dir, tc.blame)+": "))
			if tc.innocent != "" {
				assert.Check(t, !strings.Contains(err.Error(), filepath.Join(dir, tc.innocent)), "error names %s", tc.innocent)
			}
			for _, s := range tc.contains {
				assert.Check(t, is.Contains(err.Error(), s))
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	svc := func(extra string) string {
		return "services:\n  web:\n    image: nginx\n" + extra
	}
	tests := []struct {
		name     string
		compose  string
		files    map[string]string
		opts     LoadOptions
		is       []error
		contains []string // "{file}" stands for the compose.yaml path
	}{
		// x-lifecycle at service level
		{
			name:     "unknown service key",
			compose:  svc("    x-lifecycle:\n      strateg: recreate\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "x-lifecycle", `unknown key "strateg"`, "valid keys: strategy, wait-timeout"},
		},
		{
			name:     "keys are case-sensitive",
			compose:  svc("    x-lifecycle:\n      Strategy: recreate\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, `unknown key "Strategy"`},
		},
		{
			name:     "wait-timeout as a number",
			compose:  svc("    x-lifecycle:\n      wait-timeout: 5\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "'wait-timeout'", `want a duration such as "30s" or "2m", got a number`},
		},
		{
			name:     "wait-timeout not a duration",
			compose:  svc("    x-lifecycle:\n      wait-timeout: abc\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "'wait-timeout'", `got "abc"`},
		},
		{
			name:     "negative wait-timeout",
			compose:  svc("    x-lifecycle:\n      wait-timeout: -5s\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "'wait-timeout'", `duration "-5s" must not be negative`},
		},
		{
			name:     "unknown strategy",
			compose:  svc("    x-lifecycle:\n      strategy: bogus\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, `key "strategy"`, `unknown strategy "bogus" (valid: rolling, blue-green, canary, recreate)`},
		},
		{
			name:     "unknown project strategy",
			compose:  "x-lifecycle:\n  strategy: bluegreen\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", `key "strategy": unknown strategy "bluegreen" (valid: rolling, blue-green, canary, recreate)`},
		},
		{
			name:     "strategy not a string",
			compose:  svc("    x-lifecycle:\n      strategy: [recreate]\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "'strategy'"},
		},
		{
			name:     "service x-lifecycle is a list",
			compose:  svc("    x-lifecycle: [recreate]\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "x-lifecycle", "must be a mapping, got a list"},
		},
		{
			name:     "service x-lifecycle is a string",
			compose:  svc("    x-lifecycle: recreate\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "must be a mapping, got a string"},
		},
		// x-lifecycle at project level
		{
			name:     "unknown nested project key",
			compose:  "x-lifecycle:\n  policy:\n    defaultz: {}\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", `unknown key "policy.defaultz"`, "valid keys: require, deny, defaults"},
		},
		{
			name:     "unknown deeply nested project key",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      memroy: 1G\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", `unknown key "policy.defaults.memroy"`, "valid keys: memory, cpus, pids"},
		},
		{
			name:     "project key with underscore",
			compose:  "x-lifecycle:\n  wait_timeout: 1m\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", `unknown key "wait_timeout"`, "valid keys: strategy, wait-timeout, policy, scan"},
		},
		{
			name:     "project wait-timeout as a number",
			compose:  "x-lifecycle:\n  wait-timeout: 5\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "'wait-timeout' want a duration"},
		},
		{
			name:     "bad memory size",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      memory: 12XB\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "'policy.defaults.memory'", `want a size such as "512M" or "1G", got "12XB"`},
		},
		{
			name:     "negative cpus",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      cpus: -1\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "'policy.defaults.cpus'", "cpus must be a positive number, got -1"},
		},
		{
			name:     "cpus NaN as a string",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      cpus: \"NaN\"\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "'policy.defaults.cpus'", "cpus must be a positive number, got NaN"},
		},
		{
			name:     "cpus infinite as a string",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      cpus: \"+Inf\"\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "'policy.defaults.cpus'", "cpus must be a positive number, got +Inf"},
		},
		{
			name:     "cpus .nan is refused by compose-go already",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      cpus: .nan\n" + svc(""),
			contains: []string{"validating {file}: ", "unsupported value: NaN"},
		},
		{
			name:     "pids not a number",
			compose:  "x-lifecycle:\n  policy:\n    defaults:\n      pids: many\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "'policy.defaults.pids'"},
		},
		{
			name:     "project x-lifecycle is a string",
			compose:  "x-lifecycle: fast\n" + svc(""),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: top-level invalid x-lifecycle: ", "must be a mapping, got a string"},
		},
		// compose-go's own errors
		{
			name:     "malformed YAML",
			compose:  "services:\n  web:\n    image: nginx\n   bad: [\n",
			opts:     LoadOptions{ProjectName: "-"},
			contains: []string{"{file}: ", "did not find expected key"},
		},
		{
			name:     "malformed YAML with a project name",
			compose:  "services:\n  web:\n    image: nginx\n   bad: [\n",
			contains: []string{"failed to parse {file}: ", "did not find expected key"},
		},
		{
			name:     "unknown compose key",
			compose:  "services:\n  web:\n    imagee: nginx\n",
			contains: []string{"{file}: ", `unknown compose key "imagee" under services.web`},
		},
		{
			name:     "missing required variable",
			compose:  "services:\n  web:\n    image: nginx:${LCTEST_REQUIRED:?LCTEST_REQUIRED is required}\n",
			contains: []string{"services.web.image", "required variable LCTEST_REQUIRED is missing a value: LCTEST_REQUIRED is required"},
		},
		{
			name:     "depends_on an undefined service",
			compose:  svc("    depends_on: [db]\n"),
			contains: []string{`service "web" depends on undefined service "db"`},
		},
		{
			name:     "depends_on a service disabled by its profile",
			compose:  svc("    depends_on: [db]\n  db:\n    image: postgres\n    profiles: [db]\n"),
			contains: []string{`service "web" depends on undefined service "db"`},
		},
		{
			name:     "dependency cycle",
			compose:  "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a]\n",
			is:       []error{ErrDependencyCycle},
			contains: []string{"dependency cycle: a -> b -> a"},
		},
		{
			name:     "dependency cycle of three",
			compose:  "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n  d:\n    image: x\n    depends_on: [a]\n",
			is:       []error{ErrDependencyCycle},
			contains: []string{"dependency cycle: a -> b -> c -> a"},
		},
		{
			name:     "service depends on itself",
			compose:  "services:\n  a:\n    image: x\n    depends_on: [a]\n",
			is:       []error{ErrDependencyCycle},
			contains: []string{"dependency cycle: a -> a"},
		},
		{
			name:     "neither image nor build",
			compose:  "services:\n  web:\n    command: [sleep, '1']\n",
			contains: []string{`service "web" has neither an image nor a build context specified`},
		},
		// keys docker lifecycle does not support
		{name: "use_api_socket", compose: svc("    use_api_socket: true\n"), is: []error{ErrUnsupported}, contains: []string{"{file}: ", `service "web"`, `key "use_api_socket" is not supported by docker lifecycle: it hands the Docker socket`}},
		{name: "network_mode service: with ports", compose: svc("    network_mode: service:db\n    ports: [\"80\"]\n  db:\n    image: postgres\n"), contains: []string{`service "web"`, `network_mode "service:db" with ports`}},
		{name: "secret without a source", compose: svc("    secrets: [token]\nsecrets:\n  token:\n    x-lifecycle: {}\n"), contains: []string{`secrets.token: one of file|environment must be set`}},
		{name: "secret x-lifecycle typo", compose: svc("    secrets: [token]\nsecrets:\n  token:\n    environment: TOKEN\n    x-lifecycle: {command: pass show token}\n"), is: []error{ErrInvalidSpec}, contains: []string{`secret "token"`, `unknown key "command"`}},
		{name: "secret external", compose: svc("    secrets: [token]\nsecrets:\n  token:\n    external: true\n"), is: []error{ErrUnsupported}, contains: []string{`secret "token": external secrets are not supported`}},
		{name: "secret target outside /run/secrets", compose: svc("    secrets: [{source: token, target: /etc/token}]\nsecrets:\n  token:\n    environment: TOKEN\n"), is: []error{ErrUnsupported}, contains: []string{`target /etc/token is not supported`}},
		{name: "config external", compose: svc("    configs: [conf]\nconfigs:\n  conf:\n    external: true\n"), is: []error{ErrUnsupported}, contains: []string{`service "web"`, `config "conf": external configs are not supported`}},
		{name: "all unsupported keys at once", compose: svc("    use_api_socket: true\n    pre_start: [{command: [x]}]\n    deploy:\n      placement:\n        constraints: [node.role==manager]\n  other:\n    image: x\n    credential_spec: {file: a.json}\n"), is: []error{ErrUnsupported}, contains: []string{`service "web": key "pre_start"`, `service "web": key "use_api_socket"`, `service "web": key "deploy.placement"`, `service "other": key "credential_spec"`}},
		{name: "deploy.placement", compose: svc("    deploy:\n      placement:\n        constraints: [node.role==manager]\n"), is: []error{ErrUnsupported}, contains: []string{"{file}: ", `service "web"`, `key "deploy.placement"`, "one engine is one node"}},
		{name: "deploy.labels", compose: svc("    deploy:\n      labels: {a: b}\n"), is: []error{ErrUnsupported}, contains: []string{`service "web"`, `key "deploy.labels"`}},
		{name: "deploy.mode global", compose: svc("    deploy:\n      mode: global\n"), is: []error{ErrUnsupported}, contains: []string{"{file}: ", `service "web"`, `deploy.mode "global"`, "only replicated"}},
		{name: "volume type npipe", compose: svc("    volumes: [{type: npipe, source: a, target: /b}]\n"), is: []error{ErrUnsupported}, contains: []string{`service "web"`, `volume type "npipe" (target /b)`}},
		{
			name:     "pull_policy refresh without pull_refresh_after",
			compose:  svc("    pull_policy: refresh\n"),
			contains: []string{"{file}: ", `service "web"`, `pull_policy refresh needs pull_refresh_after, a positive duration such as 12h or 2d (got "")`},
		},
		// one container owns a host port: only the recreate strategy cannot have replicas
		// next to a published port (a routed strategy's router owns the port)
		{
			name:     "host port with deploy.replicas 3",
			compose:  svc("    ports: [\"8080:80\"]\n    deploy:\n      replicas: 3\n    x-lifecycle: {strategy: recreate}\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "publishes host port 8080 and has 3 replicas with the recreate strategy"},
		},
		{
			name:     "host port with scale 2",
			compose:  "x-lifecycle: {strategy: recreate}\n" + svc("    ports: [\"127.0.0.1:8080:80\"]\n    scale: 2\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{"{file}: ", `service "web"`, "publishes host port 8080 and has 2 replicas with the recreate strategy"},
		},
		{
			name:     "host port with replicas, recreate by default for its read-write volume",
			compose:  svc("    ports: [\"8080:80\"]\n    volumes: [data:/data]\n    deploy:\n      replicas: 2\nvolumes:\n  data: {}\n"),
			is:       []error{ErrInvalidSpec},
			contains: []string{`service "web"`, "publishes host port 8080 and has 2 replicas with the recreate strategy"},
		},
		// files
		{
			name:     "no compose file",
			files:    map[string]string{"README": "nothing here"},
			contains: []string{"no configuration file provided", "(run in a directory with a compose.yaml or pass -f)"},
		},
		{
			name:     "-f names a missing file",
			opts:     LoadOptions{ConfigFiles: []string{"nope.yaml"}},
			is:       []error{os.ErrNotExist},
			contains: []string{"nope.yaml", "no such file or directory"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, "LCTEST_REQUIRED")
			files := map[string]string{}
			if tc.compose != "" {
				files["compose.yaml"] = tc.compose
			}
			for k, v := range tc.files {
				files[k] = v
			}
			opts := tc.opts
			switch opts.ProjectName {
			case "":
				opts.ProjectName = "shop"
			case "-": // no project name: compose-go reads name: from the files first
				opts.ProjectName = ""
			}
			p, dir, err := loadFiles(t, files, opts)
			assert.Assert(t, err != nil, "loaded %+v", p)
			t.Log(err)
			for _, target := range tc.is {
				assert.Check(t, errors.Is(err, target), "want errors.Is(%v)", target)
			}
			for _, s := range tc.contains {
				s = strings.ReplaceAll(s, "{file}", filepath.Join(dir, "compose.yaml"))
				assert.Check(t, is.Contains(err.Error(), s))
			}
			if !errors.Is(err, ErrDependencyCycle) {
				assert.Check(t, !strings.Contains(err.Error(), "dependency cycle"))
			}
		})
	}
}

// Supported keys, with what compose-go fills in on its own (build context, default
// network, empty environment, port mode, bind options…), must not trip checkSupported.
func TestLoadAcceptsSupportedKeys(t *testing.T) {
	p, _, err := loadFiles(t, map[string]string{
		"compose.yaml": `
services:
  web:
    image: nginx
    build:
      context: .
      args: {A: b}
    pull_policy: missing
    restart: unless-stopped
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: /docker-entrypoint.sh
    environment: [A=1]
    env_file: [app.env]
    labels: [a=b]
    label_file: labels.txt
    ports: ["80", "127.0.0.1::443"]
    expose: ["3000"]
    volumes: [data:/data, ./src:/src:ro, /anon, {type: tmpfs, target: /t}]
    tmpfs: [/run]
    networks: {front: {aliases: [www]}}
    healthcheck: {test: [CMD, "true"], interval: 5s}
    depends_on: {db: {condition: service_healthy}}
    user: "1000:1000"
    working_dir: /app
    hostname: web
    domainname: example.com
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
    read_only: true
    privileged: false
    init: true
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    sysctls: {net.core.somaxconn: 1024}
    shm_size: 64m
    extra_hosts: ["h:1.2.3.4"]
    dns: 8.8.8.8
    dns_search: example.com
    dns_opt: [ndots:2]
    logging: {driver: json-file, options: {max-size: 10m}}
    stop_signal: SIGQUIT
    stop_grace_period: 20s
    mem_limit: 256m
    mem_reservation: 64m
    cpus: 0.5
    pids_limit: 100
    tty: true
    stdin_open: true
    group_add: [audio]
    oom_score_adj: 100
    deploy:
      mode: replicated
      replicas: 2
      resources:
        limits: {memory: 256M, cpus: "0.5", pids: 100}
        reservations: {memory: 64M}
      restart_policy: {condition: on-failure}
      x-custom: 1
    x-lifecycle: {strategy: recreate}
    x-other: anything
  db:
    build: ./db
    profiles: [""]
  job:
    image: busybox
    profiles: [jobs]
    devices: ["/dev/fuse:/dev/fuse"]
networks:
  front: {}
volumes:
  data: {}
`,
		"app.env":    "FROMFILE=1\n",
		"labels.txt": "fromfile=1\n",
	}, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	assert.DeepEqual(t, sortedServiceNames(p.Project), []string{"db", "web"})
	// compose-go fills these in; they are allowed keys.
	db := p.Project.Services["db"]
	assert.Assert(t, db.Build != nil)
	assert.Equal(t, db.Build.Dockerfile, "Dockerfile")
	_, ok := db.Networks["default"]
	assert.Check(t, ok, "compose-go attaches the default network")
	assert.Check(t, db.Environment != nil, "compose-go sets an empty environment")
	assert.Equal(t, p.Project.Services["web"].Ports[0].Mode, "ingress")
}

func TestFirstUnsupported(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		svc  types.ServiceConfig
		want string
	}{
		{name: "zero", svc: types.ServiceConfig{}, want: ""},
		{name: "supported keys", svc: types.ServiceConfig{
			Name: "web", Restart: "always",
			ContainerSpec: types.ContainerSpec{Image: "nginx", Init: &yes, Environment: types.MappingWithEquals{}, CustomLabels: types.Labels{"a": "b"}},
			WorkloadSpec:  types.WorkloadSpec{Tty: true},
			Extensions:    types.Extensions{"x-lifecycle": map[string]any{}},
		}, want: ""},
		{name: "inline ContainerSpec field", svc: types.ServiceConfig{ContainerSpec: types.ContainerSpec{UseAPISocket: true}}, want: "use_api_socket"},
		{name: "inline WorkloadSpec field", svc: types.ServiceConfig{WorkloadSpec: types.WorkloadSpec{Dockerfile: "x"}}, want: "dockerfile"},
		{name: "top-level field", svc: types.ServiceConfig{Net: "x"}, want: "net"},
		{name: "several: all, by name", svc: types.ServiceConfig{
			Net:           "x",
			ContainerSpec: types.ContainerSpec{LogDriver: "syslog", CredentialSpec: &types.CredentialSpecConfig{}},
		}, want: "credential_spec,log_driver,net"},
		{name: "empty but non-nil slice counts as set", svc: types.ServiceConfig{PreStart: []types.PreStartHook{}}, want: "pre_start"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, strings.Join(setKeys(reflect.ValueOf(tc.svc), supportedServiceKeys), ","), tc.want)
		})
	}
}

// checkDependencies is reached only for projects compose-go let through (Load sees
// compose-go's own errors first), so it is tested on projects built by hand.
func TestCheckDependencies(t *testing.T) {
	svc := func(name string, deps ...string) types.ServiceConfig {
		s := types.ServiceConfig{Name: name, ContainerSpec: types.ContainerSpec{Image: "x"}}
		if len(deps) > 0 {
			s.DependsOn = types.DependsOnConfig{}
			for _, d := range deps {
				s.DependsOn[d] = types.ServiceDependency{Condition: types.ServiceConditionStarted}
			}
		}
		return s
	}
	project := func(services ...types.ServiceConfig) *types.Project {
		p := &types.Project{Name: "shop", Services: types.Services{}, DisabledServices: types.Services{}}
		for _, s := range services {
			p.Services[s.Name] = s
		}
		return p
	}
	tests := []struct {
		name    string
		project *types.Project
		is      error
		want    string
	}{
		{name: "no dependencies", project: project(svc("a"), svc("b"))},
		{name: "chain", project: project(svc("a", "b"), svc("b", "c"), svc("c"))},
		{name: "diamond", project: project(svc("a", "b", "c"), svc("b", "d"), svc("c", "d"), svc("d"))},
		{name: "undefined", project: project(svc("a", "ghost")), want: `service "a" depends on undefined service "ghost": define it or remove it from depends_on`},
		{name: "two-cycle", project: project(svc("a", "b"), svc("b", "a")), is: ErrDependencyCycle, want: "dependency cycle: a -> b -> a"},
		{name: "cycle not through the first service", project: project(svc("a", "b"), svc("b", "c"), svc("c", "b")), is: ErrDependencyCycle, want: "dependency cycle: b -> c -> b"},
		{name: "self", project: project(svc("z", "z")), is: ErrDependencyCycle, want: "dependency cycle: z -> z"},
	}
	disabled := project(svc("a", "dbg"))
	disabled.DisabledServices["dbg"] = svc("dbg")
	tests = append(tests, struct {
		name    string
		project *types.Project
		is      error
		want    string
	}{name: "dependency on a disabled service is ignored", project: disabled})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fromTypes(tc.project, false)
			if tc.want == "" {
				assert.NilError(t, err)
				return
			}
			assert.Error(t, err, tc.want)
			if tc.is != nil {
				assert.Check(t, errors.Is(err, tc.is))
			}
		})
	}
}

func TestFileLocator(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"a.yaml":   "services:\n  web:\n    image: x\n    x-lifecycle: {}\n",
		"b.yaml":   "services:\n  web:\n    image: y\n  db:\n    image: z\n",
		"bad.yaml": "services: [\n",
	})
	l := newFileLocator(inDir(dir, []string{"a.yaml", "b.yaml", "bad.yaml", "missing.yaml"}))
	assert.Equal(t, l.find("services", "web", ExtensionKey), filepath.Join(dir, "a.yaml"))
	assert.Equal(t, l.find("services", "web"), filepath.Join(dir, "b.yaml"))
	assert.Equal(t, l.find("services", "db"), filepath.Join(dir, "b.yaml"))
	assert.Equal(t, l.find("services", "nope"), filepath.Join(dir, "a.yaml"), "not found: the first file")
	assert.Equal(t, newFileLocator(nil).find("services"), "compose file")
}
