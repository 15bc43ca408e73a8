package e2e

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A valid two-service project; bad-input cases break one thing in it.
const validProject = `
services:
  db:
    image: {{image:v1}}
  web:
    image: {{image:v1}}
    depends_on: [db]
`

// TestBadInputIsRefusedBeforeAnyEngineWrite: every kind of bad input fails with one
// readable message on stderr that names what is wrong and where, and the engine is not
// touched: no container, network or volume of the project exists afterwards.
func TestBadInputIsRefusedBeforeAnyEngineWrite(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	type badInput struct {
		name string
		yaml string
		args []string // default: deploy
		code int      // default: 1
		want []string // substrings of the message, in any order
	}
	cases := []badInput{
		{
			name: "malformed yaml",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n   ports: [\"8080\"]\n",
			want: []string{"compose.yaml", "yaml"},
		},
		{
			name: "unknown compose key",
			yaml: "services:\n  web:\n    imagee: {{image:v1}}\n",
			want: []string{"compose.yaml", `unknown compose key "imagee" under services.web`, "check its spelling"},
		},
		{
			name: "unknown x-lifecycle key in a service",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    x-lifecycle: {strateg: recreate}\n",
			want: []string{"compose.yaml", `service "web"`, `unknown key "strateg"`, "strategy"},
		},
		{
			name: "unknown x-lifecycle key of the project",
			yaml: "x-lifecycle: {wait-timeot: 10s}\nservices:\n  web:\n    image: {{image:v1}}\n",
			want: []string{"compose.yaml", "x-lifecycle", `unknown key "wait-timeot"`, "wait-timeout"},
		},
		{
			name: "mistyped x-lifecycle value",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    x-lifecycle: {wait-timeout: 5}\n",
			want: []string{"compose.yaml", `service "web"`, "wait-timeout", `duration such as "30s"`},
		},
		{
			// canary runs two revisions side by side: not with a read-write named volume.
			name: "strategy that cannot run twice",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    volumes: [data:/data]\n    x-lifecycle: {strategy: canary}\nvolumes:\n  data:\n",
			want: []string{"compose.yaml", `service "web"`, `"canary" runs old and new containers side by side`, `volume "data" read-write`, `use "recreate"`},
		},
		{
			name: "failure_action unknown",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    deploy: {update_config: {failure_action: retry}}\n",
			want: []string{"compose.yaml", `service "web"`, "failure_action", `want rollback, pause or continue, got "retry"`},
		},
		{
			name: "unknown strategy",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    x-lifecycle: {strategy: yolo}\n",
			want: []string{"compose.yaml", `service "web"`, `unknown strategy "yolo"`, "recreate"},
		},
		{
			name: "missing required variable",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    environment: {TAG: \"${LIFECYCLE_E2E_UNSET_TAG:?set TAG}\"}\n",
			want: []string{"LIFECYCLE_E2E_UNSET_TAG", "set TAG"},
		},
		{
			name: "depends_on an unknown service",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    depends_on: [dbb]\n",
			want: []string{`"web"`, `"dbb"`, "depends on undefined service"},
		},
		{
			name: "dependency cycle",
			yaml: "services:\n  a:\n    image: {{image:v1}}\n    depends_on: [b]\n  b:\n    image: {{image:v1}}\n    depends_on: [a]\n",
			want: []string{"dependency cycle", "a", "b"},
		},
		{
			name: "unsupported compose keys, all named at once",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    use_api_socket: true\n  api:\n    image: {{image:v1}}\n    pre_start: [{command: [\"true\"]}]\n",
			want: []string{"compose.yaml", `service "web": key "use_api_socket"`, `service "api": key "pre_start"`, "not supported"},
		},
		{
			name: "unsupported deploy key",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    deploy: {placement: {constraints: [\"node.role==manager\"]}}\n",
			want: []string{"compose.yaml", `service "web"`, "deploy.placement", "not supported"},
		},
		{
			name: "service without image",
			yaml: "services:\n  web:\n    environment: {A: b}\n",
			want: []string{`service "web"`, "neither an image nor a build"},
		},
		{
			// Only the recreate strategy: behind the router (rolling, the default) replicas
			// share the published port.
			name: "replicas with a host port under recreate",
			yaml: "services:\n  web:\n    image: {{image:v1}}\n    ports: [\"127.0.0.1:18080:8080\"]\n    deploy: {replicas: 2}\n    x-lifecycle: {strategy: recreate}\n",
			want: []string{"compose.yaml", `service "web"`, "18080", "2 replicas", "recreate strategy"},
		},
		{
			name: "unknown service on the command line",
			yaml: validProject,
			args: []string{"deploy", "wbe"},
			want: []string{"no such service", `"wbe"`, "db, web"},
		},
	}
	// Usage errors: bad flag values (durations, enums, templates), flags that exclude each
	// other, wrong arguments. All exit 125 and say what is allowed.
	for _, u := range []struct {
		args []string
		want []string
	}{
		{[]string{"deploy", "--wait-timeout", "-1s"}, []string{`"-1s"`, "--wait-timeout", "use a duration of 0 or more"}},
		{[]string{"deploy", "--wait-timeout", "soon"}, []string{`"soon"`, "--wait-timeout", "use a duration of 0 or more"}},
		{[]string{"rollback", "--wait-timeout", "-1s"}, []string{"--wait-timeout", "use a duration of 0 or more"}},
		{[]string{"secrets", "rotate", "--wait-timeout", "-1m", "key"}, []string{"--wait-timeout", "use a duration of 0 or more"}},
		{[]string{"network", "top", "--interval", "10ms"}, []string{"--interval", "use a duration from 100ms to 1m0s"}},
		{[]string{"--progress", "fancy", "deploy"}, []string{`"fancy"`, "--progress", "use auto, tty, plain, json or quiet"}},
		{[]string{"deploy", "--progress", "fancy"}, []string{`"fancy"`, "--progress", "use auto, tty, plain, json or quiet"}},
		{[]string{"config", "--format", "toml"}, []string{`"toml"`, "--format", "use yaml or json"}},
		{[]string{"plan", "--format", "bogus"}, []string{`"bogus"`, "--format", "use table or json"}},
		{[]string{"deploy", "--dry-run", "--format", "bogus"}, []string{`"bogus"`, "--format", "use table or json"}},
		{[]string{"network", "plan", "--format", "sarif"}, []string{`"sarif"`, "--format", "use table or json"}},
		{[]string{"lint", "--format", "xml"}, []string{`"xml"`, "--format", "use table, json or sarif"}},
		{[]string{"scan", "--format", "xml"}, []string{`"xml"`, "--format", "use table, json or sarif"}},
		{[]string{"scan", "--fail-on", "SEVERE"}, []string{"--fail-on", `"SEVERE"`, "UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL, NONE"}},
		{[]string{"ps", "--format", "{{.Name"}, []string{"--format", "template parsing error", "unclosed action", "use table, json or a Go template"}},
		{[]string{"history", "--format", "{{.Name"}, []string{"--format", "template parsing error", "use table, json or a Go template"}},
		{[]string{"deploy", "--scan", "--skip-scan"}, []string{"--scan and --skip-scan exclude each other"}},
		{[]string{"deploy", "--dry-run", "--verify-network"}, []string{"--dry-run changes nothing", "network verify"}},
		{[]string{"deploy", "--format", "json"}, []string{"--format is the format of the --dry-run plan", "add --dry-run"}},
		{[]string{"rollback", "--format", "json"}, []string{"--format is the format of the --dry-run plan", "add --dry-run"}},
		{[]string{"rollback", "--to", "0", "web"}, []string{"--to must be a revision number, 1 or more"}},
		{[]string{"rollback", "--to", "2"}, []string{"--to needs exactly one SERVICE"}},
		{[]string{"down", "--timeout", "-5"}, []string{"--timeout must be 0 or more seconds"}},
		{[]string{"pause"}, []string{"'docker lifecycle pause' needs exactly one SERVICE"}},
		{[]string{"secrets", "rotate"}, []string{"'docker lifecycle secrets rotate' needs exactly one NAME"}},
		{[]string{"unlock", "now"}, []string{"'docker lifecycle unlock' accepts no arguments"}},
		{[]string{"deploi"}, []string{`unknown command "deploi"`, "docker lifecycle --help"}},
		{[]string{"deploy", "--wait", "1s"}, []string{"unknown flag: --wait", "docker lifecycle deploy --help"}},
	} {
		cases = append(cases, badInput{name: strings.Join(u.args, " "), yaml: validProject, args: u.args, code: 125, want: u.want})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := s.newProject(t, tc.yaml)
			args := tc.args
			if args == nil {
				args = []string{"deploy"}
			}
			r := p.lifecycle(args...)
			code := tc.code
			if code == 0 {
				code = 1
			}
			t.Logf("docker lifecycle %s:\n%s", strings.Join(args, " "), r.stderr)
			assertOneMessage(t, r, code, tc.want...)
			assert.Check(t, is.Len(p.objects(), 0), "nothing may be created on bad input")
			assertNoLock(t, p)
		})
	}
}

// assertOneMessage checks a failed command: the exit code, a stderr that is exactly
// one error message (no usage text, no Go stack trace, not repeated) containing every
// wanted substring, and nothing on stdout.
func assertOneMessage(t *testing.T, r result, code int, want ...string) {
	t.Helper()
	assert.Check(t, is.Equal(r.code, code), "%s", r)
	msg := strings.TrimSpace(r.stderr)
	assert.Check(t, msg != "", "no message on stderr")
	for _, w := range want {
		assert.Check(t, is.Contains(msg, w))
	}
	assertReadable(t, msg)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), ""), "stdout of a failed command")
}

// assertReadable refuses output that is not meant for a person: Go stack traces and
// panics, usage dumps, and the same line printed twice.
func assertReadable(t *testing.T, msg string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic:", "runtime/", ".go:", "Usage:", "%!"} {
		assert.Check(t, !strings.Contains(msg, bad), "%q in the message:\n%s", bad, msg)
	}
	seen := map[string]bool{}
	for _, l := range lines(msg) {
		assert.Check(t, !seen[l], "line repeated in the message: %q\n%s", l, msg)
		seen[l] = true
	}
}

// assertNoLock checks that the project lock was released (or never taken).
func assertNoLock(t *testing.T, p *project) {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "volume", "ls", "-q", "--filter", "name=lifecycle-lock-"+p.name)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), ""), "lock left behind")
}

// TestBadInputLeavesDeployedProjectUntouched: bad input on a deployed project changes
// nothing: the same containers keep running.
func TestBadInputLeavesDeployedProjectUntouched(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, validProject)
	p.mustLifecycle("deploy")
	before := p.runningIDs()

	for _, bad := range []struct{ yaml, want string }{
		{"services:\n  db:\n    image: {{image:v2}}\n  web:\n    image: {{image:v2}}\n    depends_on: [db]\n    x-lifecycle: {strateg: recreate}\n", `unknown key "strateg"`},
		{"services:\n  db:\n    image: {{image:v2}}\n    depends_on: [web]\n  web:\n    image: {{image:v2}}\n    depends_on: [db]\n", "dependency cycle"},
		{"services:\n  db:\n    image: {{image:v2}}\n  web:\n    image: {{image:v2}}\n    depends_on: [db]\n    deploy: {placement: {constraints: [node.role==manager]}}\n", `"deploy.placement"`},
	} {
		p.write(bad.yaml)
		r := p.lifecycle("deploy")
		t.Logf("stderr:\n%s", r.stderr)
		assertOneMessage(t, r, 1, bad.want)
		assert.Check(t, is.DeepEqual(p.runningIDs(), before), "bad input changed the deployed project")
	}
	assertNoLock(t, p)
}

// runningIDs maps the project's running container names to their IDs.
func (p *project) runningIDs() map[string]string {
	p.t.Helper()
	r := p.s.docker(p.t, p.dir, nil, "ps", "--format", "{{.Names}} {{.ID}}", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+p.name, "--filter", "status=running")
	assert.Equal(p.t, r.code, 0, r.String())
	out := map[string]string{}
	for _, l := range lines(r.stdout) {
		name, id, _ := strings.Cut(l, " ")
		out[name] = id
	}
	return out
}

// TestLintJudgesARefusedFile: lint still lints a file that deploy refuses, prints its
// findings, then every refused key of every service, and exits 1.
func TestLintJudgesARefusedFile(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, "services:\n  web:\n    image: {{image:v1}}\n    privileged: true\n    use_api_socket: true\n  api:\n    image: {{image:v1}}\n    pre_start: [{command: [\"true\"]}]\n")
	r := p.lifecycle("lint")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stdout, "privileged"), "the findings are printed: %s", r)
	for _, want := range []string{`service "web": key "use_api_socket"`, `service "api": key "pre_start"`} {
		assert.Check(t, is.Contains(r.stderr, want), r.String())
	}
	r = p.lifecycle("deploy")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stderr, `service "web": key "use_api_socket"`), r.String())
	assert.Check(t, is.Contains(r.stderr, `service "api": key "pre_start"`), r.String())
	assert.Check(t, is.Len(p.objects(), 0))
}
