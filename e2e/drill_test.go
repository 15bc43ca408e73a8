package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// drillProject publishes a port and checks, in its verify command, that a file of the
// backup is in the volume (the test image's /file endpoint answers 404 for a missing one).
const drillProject = `
x-lifecycle:
  strategy: recreate
  backup:
    consistency: none
    verify:
      - {service: db, command: ["/testapp", "healthcheck", "http://127.0.0.1:8080/file?path=/data/%s"], timeout: 10s}
services:
  db:
    image: {{image:v1}}
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 60}
    volumes: [data:/data]
volumes:
  data:
`

// drillJSON is the part of `drill --format json` (docs/backup.md) the test checks.
type drillJSON struct {
	ScratchProject string  `json:"scratch_project"`
	RestoreSeconds float64 `json:"restore_seconds"`
	HealthySeconds float64 `json:"healthy_seconds"`
	RTOSeconds     float64 `json:"rto_seconds"`
	Networks       []struct {
		Name     string `json:"name"`
		Internal bool   `json:"internal"`
	} `json:"networks"`
	PublishedPorts []string `json:"published_ports"`
	Checks         []struct {
		Service  string `json:"service"`
		ExitCode int    `json:"exit_code"`
		Passed   bool   `json:"passed"`
	} `json:"checks"`
	Passed    bool `json:"passed"`
	CleanedUp bool `json:"cleaned_up"`
}

// TestDrill backs up a project whose volume holds a known file, drills the backup
// (restored into a scratch project on internal networks, nothing published while it
// runs, the verify command finds the file, RTO reported, the scratch project removed),
// then drills with a verify command that fails: exit 1, and removed all the same. dr
// plan then shows both drills.
// cleanupDrills removes, when the test ends, whatever carries project's drill label: a
// drill that failed half way.
func cleanupDrills(t *testing.T, s *suite, project string) {
	t.Cleanup(func() {
		for _, kind := range [][]string{{"ps", "-aq"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
			cmd := exec.Command("sh", "-c", "docker "+strings.Join(kind, " ")+" --filter label=io.lifecycle.drill="+project+
				" | xargs -r docker "+map[string]string{"ps": "rm -fv", "network": "network rm", "volume": "volume rm -f"}[kind[0]])
			cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
			_ = cmd.Run()
		}
	})
}

func TestDrill(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	setupStart := time.Now()
	s := setup(t)
	t.Logf("setup %.1fs", time.Since(setupStart).Seconds())
	p := s.newProject(t, fmt.Sprintf(drillProject, "hello.txt", freePort(t)))
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	cleanupDrills(t, s, p.name)
	p.mustLifecycle("deploy")
	step("deploy")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 6}))
	_, err := tw.Write([]byte("hello\n"))
	assert.NilError(t, err)
	assert.NilError(t, tw.Close())
	fill := exec.Command("docker", "cp", "-", p.name+"-db-1:/data")
	fill.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
	fill.Stdin = &buf
	out, err := fill.CombinedOutput()
	assert.NilError(t, err, string(out))
	backups := t.TempDir()
	p.mustLifecycle("backup", "--to", backups)
	step("backup")

	// the drill, watched while it runs: its containers publish nothing
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := execDocker(ctx, s, "lifecycle", "-p", p.name, "--progress", "plain", "drill", filepath.Join(backups, "latest"), "--format", "json")
	cmd.Dir = p.dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	assert.NilError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	seen := map[string]string{} // scratch container → its ports column
	var runErr error
watch:
	for {
		select {
		case runErr = <-done:
			break watch
		case <-time.After(100 * time.Millisecond):
		}
		r := s.docker(t, p.dir, nil, "ps", "--format", "{{.Names}} {{.Ports}}", "--filter", "label=io.lifecycle.drill="+p.name)
		for _, l := range lines(r.stdout) {
			name, ports, _ := strings.Cut(l, " ")
			seen[name] = ports
		}
	}
	assert.NilError(t, runErr, "drill: %s\n%s", stdout.String(), stderr.String())
	step("drill")
	var res drillJSON
	assert.NilError(t, json.Unmarshal(stdout.Bytes(), &res), stdout.String())
	t.Logf("RTO %.2fs = restore %.2fs + healthy %.2fs", res.RTOSeconds, res.RestoreSeconds, res.HealthySeconds)
	assert.Check(t, strings.HasPrefix(res.ScratchProject, p.name+"-drill-"), res.ScratchProject)
	assert.Check(t, res.Passed && res.CleanedUp, stdout.String())
	assert.Check(t, res.RestoreSeconds > 0 && res.HealthySeconds > 0, stdout.String())
	assert.Check(t, is.Equal(res.RTOSeconds, res.RestoreSeconds+res.HealthySeconds))
	assert.Assert(t, is.Len(res.Checks, 1), stdout.String())
	assert.Check(t, res.Checks[0].Passed && res.Checks[0].ExitCode == 0)
	assert.Check(t, is.Len(res.PublishedPorts, 0))
	assert.Assert(t, len(res.Networks) > 0)
	for _, n := range res.Networks {
		assert.Check(t, n.Internal, n.Name)
	}
	assert.Check(t, len(seen) > 0, "the scratch containers were seen while the drill ran")
	for name, ports := range seen {
		assert.Check(t, strings.HasPrefix(name, res.ScratchProject), name)
		assert.Check(t, !strings.Contains(ports, "->"), "%s publishes %s", name, ports)
	}
	scratch := &project{t: t, s: s, name: res.ScratchProject, dir: p.dir}
	t.Cleanup(scratch.cleanup)
	assert.Check(t, is.Len(scratch.objects(), 0), "the scratch project is gone")
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", p.name+"-db-1"), "running"), "the project itself is untouched")
	records, err := filepath.Glob(filepath.Join(backups, "*", "drill.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(records, 1))

	// a verify command that fails: exit 1, the check's exit code, cleaned up all the same
	p.write(fmt.Sprintf(drillProject, "missing.txt", freePort(t)))
	r := p.lifecycle("drill", filepath.Join(backups, "latest"), "--format", "json")
	step("failing drill")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stderr, "1 of 1 verify commands failed"))
	var failed drillJSON
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &failed), r.String())
	assert.Check(t, !failed.Passed && failed.CleanedUp)
	assert.Assert(t, is.Len(failed.Checks, 1))
	assert.Check(t, is.Equal(failed.Checks[0].ExitCode, 1))
	scratch = &project{t: t, s: s, name: failed.ScratchProject, dir: p.dir}
	t.Cleanup(scratch.cleanup)
	assert.Check(t, is.Len(scratch.objects(), 0), "the failed drill's scratch project is gone")
	r = s.docker(t, p.dir, nil, "ps", "-aq", "--filter", "label=io.lifecycle.drill="+p.name)
	assert.Check(t, is.Equal(strings.TrimSpace(r.stdout), ""))

	// the runbook names the backup and both drills
	r = p.mustLifecycle("dr", "plan", "--from", backups)
	assert.Check(t, is.Contains(r.stdout, "Last drill: FAILED"))
	assert.Check(t, is.Contains(r.stdout, "Last good:  passed"))
	assert.Check(t, is.Contains(r.stdout, "docker lifecycle -p "+p.name+" restore "))
	step("dr plan")

	// history ends with the last good drill among the backups of x-lifecycle.backup.to
	// (the first drill: the newest drill failed)
	p.write(strings.Replace(fmt.Sprintf(drillProject, "hello.txt", freePort(t)), "consistency: none", "to: "+backups+"\n    consistency: none", 1))
	r = p.mustLifecycle("history")
	assert.Check(t, is.Contains(r.stdout, "Last good drill: "), r.String())
	assert.Check(t, is.Contains(r.stdout, "of backup "+backups+string(filepath.Separator)+p.name), r.String())
	step("history")
}
