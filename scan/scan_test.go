package scan

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func readReport(t *testing.T) *Report {
	t.Helper()
	b, err := os.ReadFile("testdata/report.json")
	assert.NilError(t, err)
	r, err := ParseReport(b)
	assert.NilError(t, err)
	return r
}

func TestBlocks(t *testing.T) {
	assert.Check(t, Blocks("CRITICAL", "CRITICAL"))
	assert.Check(t, Blocks("CRITICAL", "HIGH"))
	assert.Check(t, !Blocks("HIGH", "CRITICAL"))
	assert.Check(t, Blocks("UNKNOWN", "UNKNOWN"))
	assert.Check(t, !Blocks("CRITICAL", FailOnNone))
	assert.Check(t, !Blocks("whatever", "LOW"), "an unknown severity ranks as UNKNOWN")
	_, err := ParseSeverity("severe")
	assert.Check(t, is.ErrorContains(err, "valid: UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL, NONE"))
	s, err := ParseSeverity(" high ")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(s, "HIGH"))
}

func TestJudge(t *testing.T) {
	r := readReport(t)
	res := Judge(r, "CRITICAL")
	assert.Check(t, is.Equal(res.ImageID, "sha256:1111"))
	assert.Check(t, is.DeepEqual(res.Vulnerabilities, map[string]int{"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 1, "UNKNOWN": 0}))
	assert.Check(t, is.Equal(res.Secrets, 1))
	assert.Check(t, is.Equal(res.Blocking, 2))
	assert.Check(t, !res.Passed)
	var order []string
	for _, f := range res.Findings {
		order = append(order, f.ID)
	}
	assert.Check(t, is.DeepEqual(order, []string{"CVE-2022-32149", "github-pat", "CVE-2000-0003", "CVE-2000-0002"}))
	vuln := res.Findings[0]
	assert.Check(t, is.Equal(vuln.Describe(), "CRITICAL CVE-2022-32149 in golang.org/x/text v0.3.7 (app; fixed in 0.3.8)"))
	var raw map[string]any
	assert.NilError(t, json.Unmarshal(vuln.Trivy, &raw), "trivy's own object is kept")
	assert.Check(t, is.Equal(raw["Status"], "fixed"))
	assert.Check(t, is.Equal(res.Findings[1].Describe(), "CRITICAL secret github-pat (GitHub Personal Access Token) in /etc/app/config.env line 2"))

	assert.Check(t, is.Equal(Judge(r, "LOW").Blocking, 4))
	none := Judge(r, FailOnNone)
	assert.Check(t, none.Passed && none.Blocking == 0)

	all := Result{FailOn: "CRITICAL", Images: []ImageResult{res, Judge(r, FailOnNone)}}
	all.Images[0].Services = []string{"web"}
	all.Summarize()
	assert.Check(t, is.Equal(all.Blocking, 2))
	err := all.BlockedError()
	assert.Check(t, errors.Is(err, ErrBlocked))
	assert.Check(t, is.ErrorContains(err, "2 findings at or above CRITICAL"))
	assert.Check(t, is.ErrorContains(err, "web (/tmp/lifecycle-scan-1/image-0.tar): CRITICAL CVE-2022-32149"))
	assert.Check(t, is.ErrorContains(err, "--skip-scan"))
	assert.Check(t, !strings.Contains(err.Error(), "****"), "secret matches are never quoted")
}

func TestParseReportRefusesWhatIsNotAReport(t *testing.T) {
	for _, tc := range []struct{ out, want string }{
		{"", "trivy printed no report"},
		{"Segmentation fault", "not a JSON report"},
		{`{"SchemaVersion": 2}{"x": 1}`, "data after its JSON report"},
		{`{"SchemaVersion": 1, "Results": []}`, "schema version 1"},
		{`{"SchemaVersion": 2, "Results": [{"Target": "a", "Vulnerabilities": [{"PkgName": "x"}]}]}`, "unreadable vulnerability in a"},
		{`{"SchemaVersion": 2, "Results": [{"Target": "a", "Secrets": [{"Match": "ghp_x"}]}]}`, "unreadable secret finding in a"},
		{`[1, 2]`, "not a JSON report"},
	} {
		_, err := ParseReport([]byte(tc.out))
		assert.Check(t, is.ErrorContains(err, tc.want), "%q", tc.out)
		if err != nil {
			assert.Check(t, !strings.Contains(err.Error(), "ghp_x"))
		}
	}
	r, err := ParseReport([]byte(`{"SchemaVersion": 2, "ArtifactName": "x"}`))
	assert.NilError(t, err, "an image without findings has no Results")
	assert.Check(t, Judge(r, "LOW").Passed)
}

func TestArgs(t *testing.T) {
	assert.Check(t, is.DeepEqual(Args("/t/a.tar", Options{IgnoreUnfixed: true, IgnoreFile: "/p/.trivyignore", Timeout: time.Minute}),
		[]string{"image", "--input", "/t/a.tar", "--format", "json", "--exit-code", "0", "--scanners", "vuln,secret", "--quiet",
			"--timeout", "1m0s", "--ignore-unfixed", "--ignorefile", "/p/.trivyignore"}))
}

func TestScannerEnvKeepsTheUsersChoice(t *testing.T) {
	env := scannerEnv([]string{"PATH=/bin", "TRIVY_DISABLE_TELEMETRY=false"})
	assert.Check(t, is.DeepEqual(env, []string{"PATH=/bin", "TRIVY_DISABLE_TELEMETRY=false", "TRIVY_SKIP_VERSION_CHECK=true"}))
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	bin := fakeTrivy(t, dir, "exit 0")
	p, err := Find(func(string) string { return bin })
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p, bin))

	_, err = Find(func(string) string { return filepath.Join(dir, "nope") })
	assert.Check(t, errors.Is(err, ErrScannerMissing))
	assert.Check(t, is.ErrorContains(err, "LIFECYCLE_TRIVY="))
	assert.Check(t, is.ErrorContains(err, "--skip-scan"))

	t.Setenv("PATH", dir) // no "trivy" there
	_, err = Find(func(string) string { return "" })
	assert.Check(t, errors.Is(err, ErrScannerMissing))
	assert.Check(t, is.Error(err, "no image scanner (trivy) found: no trivy on PATH and LIFECYCLE_TRIVY is not set: "+
		"install trivy v0.74.0 (the version docker lifecycle is tested with; 0.50.0 or newer works) on PATH "+
		"(https://trivy.dev/latest/getting-started/installation/), or set LIFECYCLE_TRIVY to the path of its binary; "+
		"or run deploy with --skip-scan to deploy without the gate"))
}

// The hint offers only what Find accepts: no trivy image, which it never runs.
func TestInstallHintOffersOnlyWhatWorks(t *testing.T) {
	for _, want := range []string{"install trivy v0.74.0", "on PATH", "set LIFECYCLE_TRIVY to the path of its binary", "--skip-scan"} {
		assert.Check(t, is.Contains(InstallHint, want))
	}
	for _, bad := range []string{"aquasec", "image on the engine", "load the"} {
		assert.Check(t, !strings.Contains(InstallHint, bad), "%q in the hint: %s", bad, InstallHint)
	}
}

// fakeTrivy writes a shell script standing in for trivy: `version` answers as trivy
// 0.74.0 does, and image runs body.
func fakeTrivy(t *testing.T, dir, body string) string {
	t.Helper()
	script := "#!/bin/sh\nif [ \"$1\" = version ]; then echo '{\"Version\":\"0.74.0\"}'; exit 0; fi\n" + body + "\n"
	p := filepath.Join(dir, "trivy-fake")
	assert.NilError(t, os.WriteFile(p, []byte(script), 0o755))
	return p
}

func TestScanFailsClosed(t *testing.T) {
	defer func(g time.Duration) { killGrace = g }(killGrace)
	killGrace = 0
	report, err := os.ReadFile("testdata/report.json")
	assert.NilError(t, err)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"report", "cat " + filepath.Join(mustAbs(t, "testdata"), "report.json"), ""},
		{"panic", "echo 'panic: runtime error: invalid memory address' >&2; exit 2", "trivy exited with code 2 (it panicked):\n    panic: runtime error"},
		{"fatal", "echo 'FATAL\tFatal error\timage scan error' >&2; exit 1", "trivy exited with code 1:\n    FATAL"},
		{"signal", "kill -SEGV $$", "killed by signal segmentation fault"},
		{"garbage", "echo 'this is not json'", `not a JSON report`},
		{"nothing", "exit 0", "trivy printed no report"},
		{"hang", "sleep 60 & sleep 60", "did not finish within 1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tr := Trivy{Path: fakeTrivy(t, dir, tc.body), Version: "0.74.0"}
			started := time.Now()
			timeout := time.Minute
			if tc.name == "hang" {
				timeout = time.Second
			}
			r, err := tr.Scan(context.Background(), dir, "archive.tar", Options{Timeout: timeout})
			assert.Check(t, time.Since(started) < 10*time.Second, "the hang is cut short")
			if tc.want == "" {
				assert.NilError(t, err)
				assert.Check(t, is.Len(r.Results, 2))
				assert.Check(t, len(report) > 0)
				return
			}
			assert.Check(t, errors.Is(err, ErrScannerFailed), "%v", err)
			assert.Check(t, is.ErrorContains(err, tc.want))
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	assert.NilError(t, err)
	return a
}

func TestProbe(t *testing.T) {
	dir := t.TempDir()
	write := func(script string) string {
		p := filepath.Join(dir, "t")
		_ = os.Remove(p)
		assert.NilError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+script+"\n"), 0o755))
		return p
	}
	tr, err := Probe(context.Background(), write(`echo '{"Version":"0.74.0","VulnerabilityDB":{"Version":2}}'`))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(tr.Version, "0.74.0"))

	tr, err = Probe(context.Background(), write(`echo '{"Version":"dev"}'`))
	assert.NilError(t, err, "a build without version stamp is accepted")
	assert.Check(t, is.Equal(tr.Version, "dev"))

	_, err = Probe(context.Background(), write(`echo '{"Version":"0.40.1"}'`))
	assert.Check(t, is.ErrorContains(err, "is trivy 0.40.1, the gate needs 0.50.0 or newer"))

	_, err = Probe(context.Background(), write(`echo 'Version: 0.74.0'`))
	assert.Check(t, is.ErrorContains(err, "does not answer `version --format json` as trivy does"))

	_, err = Probe(context.Background(), write(`kill -SEGV $$`))
	assert.Check(t, errors.Is(err, ErrScannerFailed))
	assert.Check(t, is.ErrorContains(err, "killed by signal"))
}
