package e2e

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/internal/testimage"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// testLabel marks every image the e2e suite builds, so they can all be removed.
const testLabel = "io.lifecycle.test"

// Images the suite builds from ./internal/testapp; VERSION in each is its tag.
var imageVersions = []string{"v1", "v2", "v3", "v4"}

// imageRepo is unique per test process, so concurrent runs never remove each other's images.
var imageRepo = fmt.Sprintf("lifecycle-e2e-%d", os.Getpid())

func imageRef(version string) string { return imageRepo + ":" + version }

// suite is the shared setup of all e2e tests: a DOCKER_CONFIG with the plugin installed
// and the test images on the engine. It is built once, on first use.
type suite struct {
	configDir string
	started   time.Time // when the suite began: images it made are newer
	moduleDir string
	engine    engine.Engine
	host      string // the engine's endpoint: unix:///var/run/docker.sock, a rootless or Docker Desktop socket, …

	agentOnce  sync.Once
	agentTag   string
	agentErr   error
	agentBuilt bool // the suite created the agent image, so teardown removes it
	// agentPreexisting: the plugin's agent image was on the engine before the suite
	// ran; otherwise the deploys of the suite created it and teardown removes it.
	agentPreexisting bool
}

// agentImage returns the agent image, creating it once from the embedded binary; the
// test is skipped (failed in CI) when the test binary was built without `make agent`.
func (s *suite) agentImage(t *testing.T) string {
	t.Helper()
	if _, err := agentimage.Binary(runtime.GOARCH); err != nil {
		skipFor(t, "the agent binaries", "run make agent", err)
	}
	s.agentOnce.Do(func() {
		ctx := context.Background()
		bin, _ := agentimage.Binary(runtime.GOARCH)
		_, existed := s.engine.InspectImage(ctx, agentimage.Tag(bin))
		s.agentTag, s.agentErr = agentimage.Ensure(ctx, s.engine, runtime.GOARCH)
		s.agentBuilt = existed != nil && s.agentErr == nil
	})
	assert.NilError(t, s.agentErr)
	return s.agentTag
}

var (
	suiteOnce sync.Once
	theSuite  *suite
	suiteErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if theSuite != nil {
		theSuite.teardown()
	}
	reportSkips()
	reportDurations()
	os.Exit(code)
}

// skipped collects the tests skipped for want of a tool, by tool, so that a run on a
// machine without trivy or Compose v2 says so at its end instead of passing quietly.
var skipped struct {
	sync.Mutex
	tools []string          // in the order first seen
	count map[string]int    // tool → tests skipped
	how   map[string]string // tool → how to enable its tests
}

// skipFor skips t, which needs tool and cannot get it (why), and records it for the
// summary with how to enable it. In CI (CI set) a missing tool fails the test instead:
// there every test must run.
func skipFor(t *testing.T, tool, how string, why error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI (%s): %v", tool, how, why)
	}
	skipped.Lock()
	if skipped.count == nil {
		skipped.count, skipped.how = map[string]int{}, map[string]string{}
	}
	if skipped.count[tool] == 0 {
		skipped.tools = append(skipped.tools, tool)
	}
	skipped.count[tool]++
	skipped.how[tool] = how
	skipped.Unlock()
	t.Skipf("needs %s: %v; to run it: %s", tool, why, how)
}

// skipSummaryEnv names a file the skip summary is also written to: `go test ./...` shows
// the output of a passing package only with -v, so make test prints that file.
const skipSummaryEnv = "LIFECYCLE_E2E_SKIPPED"

// reportSkips prints one line per missing tool: how many tests it cost and how to enable
// them (go test -v names the tests).
func reportSkips() {
	skipped.Lock()
	defer skipped.Unlock()
	var b strings.Builder
	for _, tool := range skipped.tools {
		n := skipped.count[tool]
		fmt.Fprintf(&b, "e2e: skipped %d %s needing %s: %s\n", n, plural(n, "test"), tool, skipped.how[tool])
	}
	if b.Len() == 0 {
		return
	}
	fmt.Print(b.String())
	if path := os.Getenv(skipSummaryEnv); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: write the skip summary: %v\n", err)
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// setup returns the suite, building it on first use; e2e tests call it first.
func setup(t *testing.T) *suite {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e test: skipped with -short")
	}
	suiteOnce.Do(func() { theSuite, suiteErr = newSuite() })
	if suiteErr != nil {
		t.Fatalf("e2e setup: %v", suiteErr)
	}
	timeTest(t)
	return theSuite
}

// durations are the tests' wall times, from their first setup call (a parallel test
// calls it once it runs) to the end of their cleanups, for the summary that says where
// the suite's time goes (CI's budget is 30 minutes: docs/benchmarks.md §14).
var durations struct {
	sync.Mutex
	timed map[*testing.T]bool
	lines []testDuration
}

type testDuration struct {
	name string
	took time.Duration
}

// timeTest records t's duration once, however often t calls setup.
func timeTest(t *testing.T) {
	durations.Lock()
	defer durations.Unlock()
	if durations.timed == nil {
		durations.timed = map[*testing.T]bool{}
	}
	if durations.timed[t] {
		return
	}
	durations.timed[t] = true
	start := time.Now()
	t.Cleanup(func() { // runs after every cleanup registered after the first setup
		durations.Lock()
		defer durations.Unlock()
		durations.lines = append(durations.lines, testDuration{t.Name(), time.Since(start)})
	})
}

// durationsEnv names a file the tests' durations are written to, longest first (make
// test prints the head of it).
const durationsEnv = "LIFECYCLE_E2E_DURATIONS"

func reportDurations() {
	path := os.Getenv(durationsEnv)
	if path == "" {
		return
	}
	durations.Lock()
	defer durations.Unlock()
	lines := slices.Clone(durations.lines)
	slices.SortFunc(lines, func(a, b testDuration) int { return cmp.Compare(b.took, a.took) })
	var buf strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&buf, "%8.1fs %s\n", l.took.Seconds(), l.name)
	}
	if err := os.WriteFile(path, []byte(buf.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: write the durations: %v\n", err)
	}
}

func newSuite() (*suite, error) {
	ctx := context.Background()
	// The suite's DOCKER_CONFIG has no contexts, so the plugin talks to DOCKER_HOST or the
	// default socket; every docker call here, and client.FromEnv below, does the same.
	// DOCKER_HOST is set to the engine of the current context, so that is the one tested.
	host, err := engineHost()
	if err != nil {
		return nil, err
	}
	if err := os.Setenv("DOCKER_HOST", host); err != nil {
		return nil, err
	}
	if out, err := exec.Command("docker", "--context", "default", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("no Docker engine at %s: %v: %s", host, err, out)
	}
	moduleDir, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	configDir, err := os.MkdirTemp("", "lifecycle-e2e-config")
	if err != nil {
		return nil, err
	}
	s := &suite{configDir: configDir, moduleDir: moduleDir, host: host, started: time.Now()}
	pluginPath := filepath.Join(configDir, "cli-plugins", "docker-lifecycle")
	build := exec.Command("go", "build", "-trimpath", "-tags", "crashhook", "-ldflags",
		"-X github.com/docker-lifecycle/docker-lifecycle/plugin/meta.Version=v0.0.0-e2e", "-o", pluginPath, "./cmd/docker-lifecycle")
	build.Dir = moduleDir
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build plugin: %v: %s", err, out)
	}
	api, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	s.engine = engine.NewMoby(api)
	if _, err := s.engine.Ping(ctx); err != nil {
		return nil, err
	}
	if bin, err := agentimage.Binary(runtime.GOARCH); err == nil {
		s.agentTag = agentimage.Tag(bin)
		_, err := s.engine.InspectImage(ctx, s.agentTag)
		s.agentPreexisting = err == nil
	}
	bin, err := testimage.Binary(ctx, moduleDir, configDir, testimage.GOARCH())
	if err != nil {
		return nil, err
	}
	for _, v := range imageVersions {
		if err := testimage.Build(ctx, s.engine, bin, imageRef(v), v, map[string]string{testLabel: "e2e"}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *suite) teardown() {
	if s.agentTag != "" && (s.agentBuilt || !s.agentPreexisting) {
		_ = s.plainDocker("image", "rm", "-f", s.agentTag)
	}
	for _, v := range imageVersions {
		_ = s.plainDocker("image", "rm", "-f", imageRef(v))
	}
	_ = s.plainDocker("image", "prune", "-f", "--filter", "label="+testLabel)
	s.removeDetachedImages()
	_ = os.RemoveAll(s.configDir)
}

// removeDetachedImages removes the guard/monitor --detach images made since the suite
// began. Their tag is the digest of the plugin binary, shared by the parallel detached
// tests, so no test removes it in its own cleanup (it would pull the image from under
// another test's next --detach); parallel builds under that tag leave the earlier ones
// untagged, which go too.
func (s *suite) removeDetachedImages() {
	cmd := exec.Command("docker", "images", "--no-trunc", "--filter", "label="+rollout.LabelDetachedImage+"=true", "--format", "{{.ID}} {{.CreatedAt}}")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
	out, err := cmd.Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		id, created, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		t, err := time.Parse("2006-01-02 15:04:05 -0700 MST", created)
		if err == nil && !t.Before(s.started.Truncate(time.Second)) {
			_ = s.plainDocker("image", "rm", "-f", id)
		}
	}
}

// engineHost is the endpoint of the engine to test: DOCKER_HOST when set, else the
// current context's (read with the user's own DOCKER_CONFIG: rootless engines and Docker
// Desktop have their own socket). A context that needs more than its host (TLS, ssh)
// cannot be handed on through DOCKER_HOST alone: the suite asks for DOCKER_HOST then.
func engineHost() (string, error) {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h, nil
	}
	out, err := exec.Command("docker", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}").CombinedOutput()
	host := strings.TrimSpace(string(out))
	switch {
	case err != nil:
		return "", fmt.Errorf("read the current docker context's endpoint: %v: %s", err, out)
	case !strings.HasPrefix(host, "unix://") && !strings.HasPrefix(host, "npipe://"):
		return "", fmt.Errorf("the current docker context reaches %s: set DOCKER_HOST (and DOCKER_TLS_VERIFY, DOCKER_CERT_PATH if it uses TLS) for the e2e tests", host)
	}
	return host, nil
}

// plainDocker runs docker outside any test (setup and teardown), with the suite's config.
func (s *suite) plainDocker(args ...string) error {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
	return cmd.Run()
}

// result is one finished command.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// docker runs the real docker CLI with the suite's DOCKER_CONFIG.
func (s *suite) docker(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return s.run(t, "docker", dir, env, args...)
}

// run runs a program with the suite's DOCKER_CONFIG and returns its output and exit code.
func (s *suite) run(t *testing.T, program, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "DOCKER_CONFIG="+s.configDir, "NO_COLOR=1"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", program, strings.Join(args, " "), err)
	}
	return r
}

// execDocker prepares a docker CLI command with the suite's DOCKER_CONFIG, for callers
// that need stdin or a process of their own.
func execDocker(ctx context.Context, s *suite, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir, "NO_COLOR=1")
	return cmd
}

// project is one test's compose project, with its own name and directory; everything
// carrying its name is removed when the test ends, pass or fail.
type project struct {
	t    *testing.T
	s    *suite
	name string
	dir  string
	env  []string
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

func (s *suite) newProject(t *testing.T, composeYAML string) *project {
	t.Helper()
	name := fmt.Sprintf("e2e-%s-%04d", strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-"), rand.IntN(10000))
	if len(name) > 50 {
		name = name[len(name)-50:]
		name = "e2e" + strings.TrimLeft(name, "-")
	}
	p := &project{t: t, s: s, name: name, dir: t.TempDir()}
	p.write(composeYAML)
	t.Cleanup(p.cleanup)
	return p
}

// recreate makes the project's default strategy recreate (top-level x-lifecycle), for
// tests of recreate semantics: containers named <project>-<service>-<n> that publish their
// own host ports, stopped before their replacement starts. The compose file must not
// have a top-level x-lifecycle of its own.
func recreate(composeYAML string) string {
	return "x-lifecycle: {strategy: recreate}\n" + composeYAML
}

// router is the name of the project's traffic router container.
func (p *project) router() string { return p.name + "-lifecycle-router" }

// write replaces the compose file; {{image:v1}} expands to the test image of v1.
func (p *project) write(composeYAML string) {
	p.t.Helper()
	for _, v := range imageVersions {
		composeYAML = strings.ReplaceAll(composeYAML, "{{image:"+v+"}}", imageRef(v))
	}
	assert.NilError(p.t, os.WriteFile(filepath.Join(p.dir, "compose.yaml"), []byte(composeYAML), 0o644))
}

// lifecycle runs `docker lifecycle -p NAME ARGS…` in the project directory.
func (p *project) lifecycle(args ...string) result {
	p.t.Helper()
	return p.s.docker(p.t, p.dir, p.env, append([]string{"lifecycle", "-p", p.name, "--progress", "plain"}, args...)...)
}

// mustLifecycle is lifecycle that fails the test on a non-zero exit.
func (p *project) mustLifecycle(args ...string) result {
	p.t.Helper()
	r := p.lifecycle(args...)
	assert.Equal(p.t, r.code, 0, "docker lifecycle %s\n%s", strings.Join(args, " "), r)
	return r
}

// containers lists the project's container names with a docker ps filter.
func (p *project) containers(extraFilters ...string) []string {
	p.t.Helper()
	args := []string{"ps", "-a", "--format", "{{.Names}}", "--filter", "label=com.docker.compose.project=" + p.name}
	for _, f := range extraFilters {
		args = append(args, "--filter", f)
	}
	r := p.s.docker(p.t, p.dir, nil, args...)
	assert.Equal(p.t, r.code, 0, r.String())
	return lines(r.stdout)
}

// objects counts every container, network and volume labelled with the project.
func (p *project) objects() []string {
	p.t.Helper()
	var out []string
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", "label=com.docker.compose.project=" + p.name}
		if kind == "container" {
			args = []string{"ps", "-aq", "--filter", "label=com.docker.compose.project=" + p.name}
		}
		r := p.s.docker(p.t, p.dir, nil, args...)
		for _, id := range lines(r.stdout) {
			out = append(out, kind+" "+id)
		}
	}
	return out
}

func (p *project) inspect(format, object string) string {
	p.t.Helper()
	r := p.s.docker(p.t, p.dir, nil, "inspect", "--format", format, object)
	assert.Equal(p.t, r.code, 0, r.String())
	return strings.TrimSpace(r.stdout)
}

func (p *project) cleanup() {
	sh := func(script string) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+p.s.configDir)
		_ = cmd.Run()
	}
	f := "label=com.docker.compose.project=" + p.name
	sh("docker ps -aq --filter " + f + " | xargs -r docker rm -fv >/dev/null 2>&1")
	sh("docker network ls -q --filter " + f + " | xargs -r docker network rm >/dev/null 2>&1")
	sh("docker volume ls -q --filter " + f + " | xargs -r docker volume rm -f >/dev/null 2>&1")
	sh("docker volume rm -f lifecycle-lock-" + p.name + " >/dev/null 2>&1")
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// freePort returns a TCP port on 127.0.0.1 that is free right now.
func freePort(t *testing.T) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	low, high := portsOutsideEphemeralRange()
	for range 1000 {
		port := low + rand.IntN(high-low+1)
		if portsGiven[port] {
			continue
		}
		// The router binds every address of its namespace; a test process on 127.0.0.1.
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port
	}
	t.Fatalf("no free port in %d-%d after 1000 tries", low, high)
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{} // never handed out twice in one run
)

// portsOutsideEphemeralRange is where freePort picks from. A port the kernel chose
// (listen on :0) is in the ephemeral range, the same range the local ports of outgoing
// connections come from: under load (the tests' clients, the router's connections to
// backends) one of those can take the port between the test picking it and the router
// binding it ("bind: address already in use"). A port below the range is never taken
// that way.
func portsOutsideEphemeralRange() (low, high int) {
	low, high = 20000, 32767
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil {
		return low, high
	}
	switch {
	case first > 12000:
		return 10000, first - 1
	case last < 55000:
		return last + 1, 65000
	}
	return low, high // a machine-wide range: fall back to the usual gap
}
