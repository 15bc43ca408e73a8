package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/internal/testimage"
	"github.com/docker-lifecycle/docker-lifecycle/internal/trivydb"
)

// The scan tests run real trivy (scripts/build-trivy.sh; LIFECYCLE_TRIVY or the cached
// build) fully offline, on a tiny vulnerability database written with trivy-db's own
// packages: one CRITICAL advisory for golang.org/x/text below 0.3.8.

const (
	vulnModule  = "golang.org/x/text"
	vulnID      = "CVE-2022-32149"
	vulnFixedIn = "0.3.8"
)

// A fake GitHub token, as trivy's builtin github-pat rule matches it; built at run time
// so the repository itself never holds a token-shaped string.
var plantedToken = "ghp_" + strings.Repeat("R4nd0mT0k3n", 4)[:36]

// appMain uses x/text (so the module is in the binary's build info) and runs until SIGTERM.
const appMain = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/text/language"
)

func main() {
	fmt.Println("app", language.English)
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, os.Interrupt)
	<-c
}
`

type scanFixture struct {
	trivy    string
	env      []string // the plugin's environment: LIFECYCLE_TRIVY and an offline trivy
	vulnBin  []byte   // the app built with golang.org/x/text v0.3.7
	fixedBin []byte   // … with v0.3.8
}

var (
	scanOnce sync.Once
	scanFix  *scanFixture
	scanErr  error
	scanSkip error
)

// trivyBinary is LIFECYCLE_TRIVY or the build of scripts/build-trivy.sh.
func trivyBinary() string {
	if p := os.Getenv("LIFECYCLE_TRIVY"); p != "" {
		return p
	}
	cache := os.Getenv("DOCKER_LIFECYCLE_CACHE")
	if cache == "" {
		if c, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(c, "docker-lifecycle")
		}
	}
	return filepath.Join(cache, "trivy-v0.74.0", "trivy")
}

// scanSetup builds the database and the binaries once for all scan tests (in the
// suite's directory, removed at teardown).
func scanSetup(t *testing.T) *scanFixture {
	t.Helper()
	s := setup(t)
	scanOnce.Do(func() {
		bin := trivyBinary()
		if _, err := os.Stat(bin); err != nil {
			scanSkip = fmt.Errorf("no trivy at %s", bin)
			return
		}
		scanFix, scanErr = newScanFixture(s, bin)
	})
	if scanSkip != nil {
		skipFor(t, "trivy", "set LIFECYCLE_TRIVY=/path/to/trivy (v0.74.0), or build it with scripts/build-trivy.sh", scanSkip)
	}
	assert.NilError(t, scanErr)
	return scanFix
}

func newScanFixture(s *suite, bin string) (*scanFixture, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp(s.configDir, "scan")
	if err != nil {
		return nil, err
	}
	cache := filepath.Join(dir, "trivy-cache")
	if err := trivydb.Write(cache, []trivydb.GoAdvisory{{
		ID: vulnID, Module: vulnModule, Fixed: vulnFixedIn, Severity: "CRITICAL",
		Title: "golang.org/x/text/language: ParseAcceptLanguage takes a long time to parse complex tags",
	}}); err != nil {
		return nil, err
	}
	f := &scanFixture{
		trivy: bin,
		env: []string{"LIFECYCLE_TRIVY=" + bin, "TRIVY_CACHE_DIR=" + cache, "TRIVY_SKIP_DB_UPDATE=true",
			"TRIVY_SKIP_JAVA_DB_UPDATE=true", "TRIVY_OFFLINE_SCAN=true"},
	}
	for _, b := range []struct {
		version string
		out     *[]byte
	}{{"v0.3.7", &f.vulnBin}, {"v" + vulnFixedIn, &f.fixedBin}} {
		path, err := testimage.GoProgram(ctx, filepath.Join(dir, b.version), testimage.GOARCH(), appMain, vulnModule+"@"+b.version)
		if err != nil {
			return nil, err
		}
		if *b.out, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// scanImages are one test's images, removed when the test ends.
type scanImages struct{ vuln, fixed, secret string }

func (f *scanFixture) images(t *testing.T) scanImages {
	t.Helper()
	s := setup(t)
	ctx := context.Background()
	tag := fmt.Sprintf("%s-scan-%04d", imageRepo, rand.IntN(10000))
	imgs := scanImages{vuln: tag + ":vuln", fixed: tag + ":fixed", secret: tag + ":secret"}
	t.Cleanup(func() {
		for _, ref := range []string{imgs.vuln, imgs.fixed, imgs.secret} {
			_ = s.plainDocker("image", "rm", "-f", ref)
		}
	})
	labels := map[string]string{testLabel: "e2e"}
	entry := []string{"USER 65534:65534", `ENTRYPOINT ["/app"]`}
	app := func(b []byte) testimage.File { return testimage.File{Path: "/app", Mode: 0o755, Data: b} }
	assert.NilError(t, testimage.BuildFiles(ctx, s.engine, imgs.vuln, []testimage.File{app(f.vulnBin)}, entry, labels))
	assert.NilError(t, testimage.BuildFiles(ctx, s.engine, imgs.fixed, []testimage.File{app(f.fixedBin)}, entry, labels))
	config := []byte("# deploy settings\nGITHUB_TOKEN=" + plantedToken + "\nREGION=eu-west-1\n")
	assert.NilError(t, testimage.BuildFiles(ctx, s.engine, imgs.secret, []testimage.File{
		app(f.fixedBin), {Path: "/etc/app/deploy.env", Mode: 0o644, Data: config},
	}, entry, labels))
	return imgs
}

func (imgs scanImages) compose(doc string) string {
	return strings.NewReplacer("{{vuln}}", imgs.vuln, "{{fixed}}", imgs.fixed, "{{secret}}", imgs.secret).Replace(doc)
}

type scanDoc struct {
	Project  string
	Scanner  struct{ Name, Version string }
	FailOn   string `json:"fail_on"`
	Blocking int
	Passed   bool
	Images   []struct {
		Image           string
		Services        []string
		Vulnerabilities map[string]int
		Secrets         int
		Blocking        int
		Passed          bool
		Findings        []struct {
			Kind, ID, Severity, Package, Installed, Fixed, Target string
			Blocking                                              bool
			Trivy                                                 map[string]any
		}
	}
}

func TestScanGateBlocksCriticalAndPassesFixedImage(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	f := scanSetup(t)
	imgs := f.images(t)
	p := setup(t).newProject(t, imgs.compose(`
x-lifecycle:
  scan: {fail-on: CRITICAL}
services:
  api:
    image: {{vuln}}
  web:
    image: {{fixed}}
  worker:
    image: {{fixed}}
`))
	p.env = f.env

	r := p.lifecycle("scan")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	for _, want := range []string{"SERVICE", "api", "BLOCKED (1)", "pass", vulnID, vulnModule, "v0.3.7", vulnFixedIn} {
		assert.Check(t, is.Contains(r.stdout, want))
	}
	assert.Check(t, is.Contains(r.stderr, "findings at or above CRITICAL would stop a deploy"))

	r = p.lifecycle("scan", "--format", "json")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	var doc scanDoc
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
	assert.Check(t, is.Equal(doc.Scanner.Name, "trivy"))
	assert.Check(t, is.Equal(doc.FailOn, "CRITICAL"))
	assert.Check(t, is.Equal(doc.Blocking, 1))
	assert.Check(t, is.Len(doc.Images, 2), "web and worker share one image, scanned once")
	for _, img := range doc.Images {
		switch img.Image {
		case imgs.vuln:
			assert.Check(t, is.DeepEqual(img.Services, []string{"api"}))
			assert.Check(t, is.Equal(img.Vulnerabilities["CRITICAL"], 1))
			assert.Assert(t, is.Len(img.Findings, 1))
			fd := img.Findings[0]
			assert.Check(t, fd.Kind == "vulnerability" && fd.ID == vulnID && fd.Package == vulnModule && fd.Installed == "v0.3.7" && fd.Fixed == vulnFixedIn && fd.Blocking, "%+v", fd)
			assert.Check(t, is.Equal(fd.Trivy["VulnerabilityID"], vulnID), "trivy's own finding is inside")
		case imgs.fixed:
			assert.Check(t, is.DeepEqual(img.Services, []string{"web", "worker"}))
			assert.Check(t, img.Passed && len(img.Findings) == 0, "%+v", img)
		default:
			t.Errorf("unexpected image %s", img.Image)
		}
	}

	r = p.lifecycle("scan", "--format", "sarif")
	var sarif struct {
		Version string
		Runs    []struct {
			Results []struct{ RuleID, Level string }
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &sarif), r.stdout)
	assert.Check(t, is.Equal(sarif.Version, "2.1.0"))
	assert.Assert(t, len(sarif.Runs) == 1 && len(sarif.Runs[0].Results) == 1)
	assert.Check(t, is.Equal(sarif.Runs[0].Results[0].RuleID, vulnID))
	assert.Check(t, is.Equal(sarif.Runs[0].Results[0].Level, "error"))

	// Only the fixed services: the scan passes.
	r = p.lifecycle("scan", "web", "worker")
	assert.Check(t, is.Equal(r.code, 0), r.String())
	assert.Check(t, is.Contains(r.stdout, "Passed: nothing at or above CRITICAL"))

	// The gate stops the deploy before anything reaches the engine, listing the finding.
	r = p.lifecycle("deploy")
	assert.Check(t, r.code != 0, r.String())
	for _, want := range []string{"the image scan gate stops the deploy: 1 findings at or above CRITICAL", "api (" + imgs.vuln + "): CRITICAL " + vulnID, "--skip-scan"} {
		assert.Check(t, is.Contains(r.stderr, want))
	}
	assert.Check(t, is.Len(p.objects(), 0), "nothing reached the engine")

	// The fixed image passes the gate and deploys.
	p.write(imgs.compose(`
x-lifecycle:
  scan: {fail-on: CRITICAL}
services:
  web:
    image: {{fixed}}
`))
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Passed"), r.stderr)
	assert.Check(t, is.Len(p.containers("status=running"), 1))
}

func TestScanGateBlocksPlantedSecret(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	f := scanSetup(t)
	imgs := f.images(t)
	p := setup(t).newProject(t, imgs.compose(`
x-lifecycle:
  scan: {}
services:
  app:
    image: {{secret}}
`))
	// This test gives trivy the image as a `docker save` archive, as for ssh:// engines.
	p.env = append([]string{"LIFECYCLE_SCAN_SOURCE=archive"}, f.env...)
	r := p.lifecycle("scan", "--format", "json")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	var doc scanDoc
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &doc), r.stdout)
	assert.Assert(t, is.Len(doc.Images, 1))
	assert.Check(t, is.Equal(doc.Images[0].Secrets, 1))
	var secret bool
	for _, fd := range doc.Images[0].Findings {
		if fd.Kind == "secret" {
			secret = true
			assert.Check(t, is.Equal(fd.ID, "github-pat"))
			assert.Check(t, is.Equal(fd.Target, "/etc/app/deploy.env"))
			assert.Check(t, fd.Blocking)
		}
	}
	assert.Check(t, secret, r.stdout)

	r = p.lifecycle("deploy")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "secret github-pat"))
	assert.Check(t, is.Contains(r.stderr, "/etc/app/deploy.env line 2"))
	for _, out := range []string{r.stdout, r.stderr} {
		assert.Check(t, !strings.Contains(out, plantedToken), "the token is never printed")
	}
	assert.Check(t, is.Len(p.objects(), 0))

	// The gate is skipped on request, and the deploy goes through.
	r = p.mustLifecycle("deploy", "--skip-scan")
	assert.Check(t, !strings.Contains(r.stderr, "Scanning"), r.stderr)
}

// fakeScanner writes a program standing in for trivy that answers `version` as trivy
// 0.74.0 does and behaves as body on `image`.
func fakeScanner(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), fmt.Sprintf("trivy-%d", rand.IntN(1e6)))
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{\"Version\":\"0.74.0\"}'; exit 0; fi\n" + body + "\n"
	assert.NilError(t, os.WriteFile(p, []byte(script), 0o755))
	return p
}

func TestScanGateFailsClosed(t *testing.T) {
	t.Parallel() // no load; the one bound (hang: < 40 s) is loose: each case in its own project (e2e/doc.go)
	s := setup(t)
	noTrivyPath := "PATH=" + filepath.Dir(mustLookPath(t, "docker")) + ":/usr/bin:/bin"
	for _, tc := range []struct {
		name    string
		env     []string
		timeout string
		want    []string
		maxTime time.Duration
	}{
		{name: "missing", env: []string{"LIFECYCLE_TRIVY=", noTrivyPath},
			want: []string{"no image scanner (trivy) found", "install trivy v0.74.0", "on PATH", "set LIFECYCLE_TRIVY to the path of its binary", "--skip-scan"}},
		{name: "not executable", env: []string{"LIFECYCLE_TRIVY=/nonexistent/trivy"},
			want: []string{"LIFECYCLE_TRIVY=/nonexistent/trivy is not an executable file", "--skip-scan"}},
		{name: "crash", env: []string{"LIFECYCLE_TRIVY=" + fakeScanner(t, "echo 'panic: runtime error: index out of range' >&2; kill -SEGV $$")},
			want: []string{"the image scanner (trivy) failed", "killed by signal segmentation fault", "panic: runtime error", "--skip-scan"}},
		{name: "panic", env: []string{"LIFECYCLE_TRIVY=" + fakeScanner(t, "echo 'panic: boom' >&2; exit 2")},
			want: []string{"trivy exited with code 2 (it panicked)", "panic: boom"}},
		{name: "garbage", env: []string{"LIFECYCLE_TRIVY=" + fakeScanner(t, "echo '<html>not a report</html>'")},
			want: []string{"not a JSON report", "<html>not a report</html>"}},
		{name: "hang", env: []string{"LIFECYCLE_TRIVY=" + fakeScanner(t, "sleep 300")}, timeout: "1s",
			want: []string{"trivy did not finish within 1s (x-lifecycle.scan.timeout) and was stopped"}, maxTime: 40 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			timeout := ""
			if tc.timeout != "" {
				timeout = ", timeout: " + tc.timeout
			}
			p := s.newProject(t, `
x-lifecycle:
  scan: {fail-on: HIGH`+timeout+`}
services:
  web:
    image: {{image:v1}}
`)
			p.env = tc.env
			started := time.Now()
			r := p.lifecycle("deploy")
			assert.Check(t, is.Equal(r.code, 1), r.String())
			for _, want := range tc.want {
				assert.Check(t, is.Contains(r.stderr, want))
			}
			// trivy runs as a binary only: no advice to load a trivy image.
			assert.Check(t, !strings.Contains(r.stderr, "aquasec"), r.stderr)
			if tc.maxTime > 0 {
				assert.Check(t, time.Since(started) < tc.maxTime, "took %s", time.Since(started))
			}
			assert.Check(t, is.Len(p.objects(), 0), "nothing changed on the engine")
			r = p.lifecycle("scan")
			assert.Check(t, is.Equal(r.code, 1), r.String())
			assert.Check(t, is.Contains(r.stderr, tc.want[0]))
			if tc.name == "missing" {
				// Skipping the gate deploys without a scanner.
				p.mustLifecycle("deploy", "--skip-scan")
				assert.Check(t, is.Len(p.containers("status=running"), 1))
			}
		})
	}
}

// TestScanGateIsOptIn: without x-lifecycle.scan, deploy does not scan (and needs no
// scanner); --scan asks for the gate anyway.
func TestScanGateIsOptIn(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
services:
  web:
    image: {{image:v1}}
`)
	p.env = []string{"LIFECYCLE_TRIVY=/nonexistent/trivy"}
	r := p.lifecycle("deploy", "--scan")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stderr, "is not an executable file"))
	assert.Check(t, is.Len(p.objects(), 0))
	r = p.lifecycle("deploy", "--scan", "--skip-scan")
	assert.Check(t, is.Equal(r.code, 125), r.String())
	p.mustLifecycle("deploy")
}

func mustLookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	assert.NilError(t, err)
	return p
}

// TestScanOverhead is the benchmark of docs/benchmarks.md ("Scan overhead"); it runs only
// with LIFECYCLE_BENCH_SCAN=N (rounds). Each round, interleaved: the plugin's `scan` of
// one image, and the same trivy command run directly on an archive saved beforehand,
// with and without the `docker save` that makes the archive.
func TestScanOverhead(t *testing.T) {
	rounds := 0
	fmt.Sscan(os.Getenv("LIFECYCLE_BENCH_SCAN"), &rounds)
	if rounds <= 0 {
		t.Skip("set LIFECYCLE_BENCH_SCAN=ROUNDS to run the scan benchmark")
	}
	s := setup(t)
	f := scanSetup(t)
	imgs := f.images(t)
	// A large image: the vulnerable app plus a 170 MB Go binary with ~600 modules (trivy
	// itself), which trivy's Go analyzer reads module by module.
	large := imgs.vuln + "-large"
	t.Cleanup(func() { _ = s.plainDocker("image", "rm", "-f", large) })
	trivyBin, err := os.ReadFile(f.trivy)
	assert.NilError(t, err)
	assert.NilError(t, testimage.BuildFiles(context.Background(), s.engine, large, []testimage.File{
		{Path: "/app", Mode: 0o755, Data: f.vulnBin}, {Path: "/usr/local/bin/trivy", Mode: 0o755, Data: trivyBin},
	}, []string{`ENTRYPOINT ["/app"]`}, map[string]string{testLabel: "e2e"}))
	for _, ref := range []string{imgs.vuln, large} {
		benchScan(t, s, f, ref, rounds)
	}
}

func benchScan(t *testing.T, s *suite, f *scanFixture, ref string, rounds int) {
	p := s.newProject(t, `
x-lifecycle:
  scan: {}
services:
  api:
    image: `+ref+`
`)
	p.env = f.env
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	args := []string{"image", "--input", archive, "--format", "json", "--exit-code", "0", "--scanners", "vuln,secret", "--quiet", "--timeout", "5m0s"}
	env := append([]string{"TRIVY_DISABLE_TELEMETRY=true", "TRIVY_SKIP_VERSION_CHECK=true"}, f.env...)
	direct := func(withSave bool) time.Duration {
		started := time.Now()
		if withSave {
			r := s.docker(t, dir, nil, "save", "-o", archive, ref)
			assert.Assert(t, r.code == 0, r.String())
		}
		r := s.run(t, f.trivy, dir, env, args...)
		assert.Assert(t, r.code == 0 && strings.Contains(r.stdout, vulnID), r.String())
		return time.Since(started)
	}
	daemonArgs := append([]string{"image", "--image-src", "docker", "--docker-host", "unix:///var/run/docker.sock"}, args[3:]...)
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		daemonArgs[4] = h
	}
	daemonArgs = append(daemonArgs, ref)
	daemon := func() time.Duration {
		started := time.Now()
		r := s.run(t, f.trivy, dir, env, daemonArgs...)
		assert.Assert(t, r.code == 0 && strings.Contains(r.stdout, vulnID), r.String())
		return time.Since(started)
	}
	plugin := func(source string) time.Duration {
		p.env = append([]string{"LIFECYCLE_SCAN_SOURCE=" + source}, f.env...)
		started := time.Now()
		r := p.lifecycle("scan", "--format", "json")
		assert.Assert(t, r.code == 1 && strings.Contains(r.stdout, vulnID), r.String())
		return time.Since(started)
	}
	r := s.docker(t, dir, nil, "save", "-o", archive, ref)
	assert.Assert(t, r.code == 0, r.String())
	direct(false) // warm trivy's layer cache and the page cache
	plugin("archive")
	plugin("docker")
	daemon()
	var pa, pd, dr, ds, dd []time.Duration
	for range rounds {
		pa = append(pa, plugin("archive"))
		ds = append(ds, direct(true))
		pd = append(pd, plugin("docker"))
		dd = append(dd, daemon())
		dr = append(dr, direct(false))
	}
	med := func(d []time.Duration) time.Duration {
		d = append([]time.Duration(nil), d...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Microseconds())/1000) }
	over := func(a, b time.Duration) string { return fmt.Sprintf("%+.1f%%", 100*(float64(a)/float64(b)-1)) }
	st, err := os.Stat(archive)
	assert.NilError(t, err)
	t.Logf("image %s (archive %.1f MB), %d rounds, medians in ms:", ref, float64(st.Size())/1e6, rounds)
	t.Logf("| `docker lifecycle scan` (trivy reads the engine: the default for local engines) | %s |", ms(med(pd)))
	t.Logf("| `trivy image --image-src docker --docker-host … REF`, direct | %s |", ms(med(dd)))
	t.Logf("| `docker lifecycle scan`, LIFECYCLE_SCAN_SOURCE=archive (as for ssh:// engines) | %s |", ms(med(pa)))
	t.Logf("| `docker save` + `trivy image --input archive.tar …`, direct | %s |", ms(med(ds)))
	t.Logf("| `trivy image --input` alone, on an archive saved beforehand | %s |", ms(med(dr)))
	t.Logf("overhead: engine source %s (%+.0f ms); archive %s (%+.0f ms)",
		over(med(pd), med(dd)), float64((med(pd)-med(dd)).Microseconds())/1000, over(med(pa), med(ds)), float64((med(pa)-med(ds)).Microseconds())/1000)
}
