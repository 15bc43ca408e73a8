package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// backupEveryProject: HOOKS is replaced by a hooks entry (or nothing). No health
// check: the test needs none, and a frequent one makes pause slow (docs/backup.md).
const backupEveryProject = `
x-lifecycle:
  strategy: recreate
  backup:
    consistency: stop # every run stops db and starts it again: none may stay stopped
    HOOKS
services:
  db:
    image: {{image:v1}}
    user: "0:0"
    volumes: [data:/data]
volumes:
  data:
`

// backupRun is the part of a `backup --every --format json` line (docs/backup.md) the
// test checks.
type backupRun struct {
	Run         int        `json:"run"`
	Started     time.Time  `json:"started"`
	Finished    time.Time  `json:"finished"`
	OK          bool       `json:"ok"`
	Error       string     `json:"error"`
	Interrupted bool       `json:"interrupted"`
	Next        *time.Time `json:"next"`
	Backup      *struct {
		Location string   `json:"location"`
		Pruned   []string `json:"pruned"`
	} `json:"backup"`
}

// startBackupEvery starts `backup --every` in its own process group (a shell's
// foreground job), its output in buffers safe to read while it runs.
func startBackupEvery(t *testing.T, p *project, args ...string) (*exec.Cmd, *lockedBuffer, *lockedBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"lifecycle", "-p", p.name, "--progress", "plain", "backup"}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+p.s.configDir, "NO_COLOR=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	assert.NilError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return cmd, &stdout, &stderr, exited
}

// interrupt sends SIGINT to the command's process group, as Ctrl-C does, and returns
// its exit code.
func interrupt(t *testing.T, cmd *exec.Cmd, exited <-chan error, stderr *lockedBuffer) int {
	t.Helper()
	sent := time.Now()
	assert.NilError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	select {
	case err := <-exited:
		t.Logf("exited %s after SIGINT: %v", time.Since(sent).Round(time.Millisecond), err)
		if exit, ok := err.(*exec.ExitError); ok {
			return exit.ExitCode()
		}
		assert.NilError(t, err)
		return 0
	case <-time.After(15 * time.Second):
		t.Fatalf("backup --every still runs 15 s after SIGINT; stderr:\n%s", stderr.String())
		return -1
	}
}

// TestBackupEvery: `backup --every 2s --keep-last 2` backs up at start and every 2 s,
// one JSON line per run, retention after each (3 runs, 2 backups kept); SIGINT between
// runs ends it with exit 0. Then SIGINT during a run (in its before hook) exits 130 and
// leaves no partial backup, no copying container and the service running.
func TestBackupEvery(t *testing.T) {
	t.Parallel() // no load; the 2 s schedule tolerates a loaded machine (a late run skips a slot)
	s := setup(t)
	p := s.newProject(t, strings.Replace(backupEveryProject, "HOOKS", "", 1))
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	p.mustLifecycle("deploy")
	db := p.name + "-db-1"
	s.docker(t, p.dir, nil, "exec", db, "/testapp", "write", "/data/rows", "some rows")
	backups := t.TempDir()
	step("deployed")

	cmd, stdout, stderr, exited := startBackupEvery(t, p, "--to", backups, "--every", "2s", "--keep-last", "2", "--format", "json")
	lines := func() []string { return strings.Split(strings.TrimSpace(stdout.String()), "\n") }
	// SIGINT between runs: after the third run (or a later one), while the loop waits
	// for the next slot — with a good margin, as a run longer than the interval under
	// load leaves a short wait.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		got := lines()
		if len(got) < 3 {
			return poll.Continue("runs so far:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		var last backupRun
		if err := json.Unmarshal([]byte(got[len(got)-1]), &last); err != nil || last.Next == nil || time.Until(*last.Next) < 700*time.Millisecond {
			return poll.Continue("run %d: next run too close for a SIGINT between runs (%v)", len(got), err)
		}
		return poll.Success()
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(50*time.Millisecond))
	step("3 runs or more")
	assert.Check(t, is.Equal(interrupt(t, cmd, exited, stderr), 0), stderr.String())
	step("interrupted between runs")

	var runs []backupRun
	for _, line := range lines() {
		var r backupRun
		assert.NilError(t, json.Unmarshal([]byte(line), &r), line)
		runs = append(runs, r)
	}
	assert.Assert(t, len(runs) >= 3, stdout.String())
	for i, r := range runs {
		t.Logf("run %d: started +%s, took %s", r.Run, r.Started.Sub(runs[0].Started).Round(time.Millisecond), r.Finished.Sub(r.Started).Round(time.Millisecond))
		assert.Check(t, is.Equal(r.Run, i+1))
		assert.Check(t, r.OK, "run %d: %s", r.Run, r.Error)
		assert.Assert(t, r.Backup != nil, "run %d", r.Run)
		assert.Check(t, r.Next != nil, "run %d", r.Run)
	}
	assert.Check(t, is.DeepEqual(runs[2].Backup.Pruned, []string{runs[0].Backup.Location}), "keep-last 2: the third run prunes the first")
	kept, err := filepath.Glob(filepath.Join(backups, p.name+"-*", "manifest.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Len(kept, 2), "%v", kept)
	entries, err := os.ReadDir(backups)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 2))
	assert.Check(t, is.Contains(stderr.String(), "next backup of project "+p.name+" at "))

	// SIGINT during a run: the before hook sleeps, the backup's directory is begun.
	p.write(strings.Replace(backupEveryProject, "HOOKS",
		"hooks: [{service: db, before: [/testapp, sleep, 5s], after: [/testapp, rm, /data/none], on-failure: continue}]", 1))
	cmd, stdout, stderr, exited = startBackupEvery(t, p, "--to", backups, "--every", "1h", "--format", "json")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if !strings.Contains(stderr.String(), "Running before hook") {
			return poll.Continue("stderr:\n%s", stderr.String())
		}
		return poll.Success()
	}, poll.WithTimeout(15*time.Second), poll.WithDelay(100*time.Millisecond))
	step("in the before hook")
	assert.Check(t, is.Equal(interrupt(t, cmd, exited, stderr), 130), stderr.String())
	step("interrupted during a run")
	var last backupRun
	assert.NilError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &last), stdout.String())
	assert.Check(t, last.Interrupted)
	assert.Check(t, last.Backup == nil)
	assert.Check(t, is.Contains(stderr.String(), "interrupted"))
	entries, err = os.ReadDir(backups)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 2), "no partial backup")

	copiers := s.docker(t, p.dir, nil, "ps", "-aq", "--filter", "label=io.lifecycle.role=backup", "--filter", "name="+p.name+"-backup-")
	assert.Check(t, is.Equal(strings.TrimSpace(copiers.stdout), ""), "copying containers left: %s", copiers)
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", db), "running"))
	read := s.docker(t, p.dir, nil, "exec", db, "/testapp", "cat", "/data/rows")
	assert.Check(t, is.Equal(read.stdout, "some rows"), read.String())
}

// backupDrillProject: db's verify command reads /data/FILE through the test app's
// /file endpoint (404 for a missing file).
const backupDrillProject = `
x-lifecycle:
  strategy: recreate
  backup:
    consistency: none
    verify:
      - {service: db, command: ["/testapp", "healthcheck", "http://127.0.0.1:8080/file?path=/data/FILE"], timeout: 10s}
services:
  db:
    image: {{image:v1}}
    user: "0:0"
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 60}
    volumes: [data:/data]
volumes:
  data:
`

// backupDrillRun is the drill part of a `backup --every --drill --format json` line.
type backupDrillRun struct {
	backupRun
	Drill *struct {
		ScratchProject string  `json:"scratch_project"`
		RTOSeconds     float64 `json:"rto_seconds"`
		Passed         bool    `json:"passed"`
		CleanedUp      bool    `json:"cleaned_up"`
	} `json:"drill"`
}

// TestBackupEveryDrill: `backup --every --drill` drills each backup it wrote before it
// reports the run: a passing drill is in the run's JSON and in the backup's drill
// record (so history shows it), a failing one fails the run; either way the scratch
// project is gone.
func TestBackupEveryDrill(t *testing.T) {
	t.Parallel() // no load and no timing (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, strings.Replace(backupDrillProject, "FILE", "hello.txt", 1))
	cleanupDrills(t, s, p.name)
	p.mustLifecycle("deploy")
	s.docker(t, p.dir, nil, "exec", p.name+"-db-1", "/testapp", "write", "/data/hello.txt", "hello")
	backups := t.TempDir()

	firstRun := func(file string) (backupDrillRun, string) {
		t.Helper()
		p.write(strings.Replace(backupDrillProject, "FILE", file, 1))
		cmd, stdout, stderr, exited := startBackupEvery(t, p, "--to", backups, "--every", "1h", "--drill", "--format", "json")
		poll.WaitOn(t, func(poll.LogT) poll.Result {
			if !strings.Contains(stdout.String(), "\n") {
				return poll.Continue("no run yet; stderr:\n%s", stderr.String())
			}
			return poll.Success()
		}, poll.WithTimeout(2*time.Minute), poll.WithDelay(100*time.Millisecond))
		assert.Check(t, is.Equal(interrupt(t, cmd, exited, stderr), 0), stderr.String())
		var run backupDrillRun
		assert.NilError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout.String())), &run), stdout.String())
		assert.Assert(t, run.Backup != nil && run.Drill != nil, stdout.String())
		assert.Check(t, run.Drill.CleanedUp)
		scratch := &project{t: t, s: s, name: run.Drill.ScratchProject, dir: p.dir}
		assert.Check(t, is.Len(scratch.objects(), 0), "the scratch project is gone")
		return run, stderr.String()
	}

	run, stderr := firstRun("hello.txt")
	assert.Check(t, run.OK, "%s\n%s", run.Error, stderr)
	assert.Check(t, run.Drill.Passed && run.Drill.RTOSeconds > 0)
	_, err := os.Stat(filepath.Join(run.Backup.Location, "drill-passed.json"))
	assert.Check(t, err, "the drill record is next to the archives")
	t.Logf("drill RTO %.1fs, run took %s", run.Drill.RTOSeconds, run.Finished.Sub(run.Started).Round(time.Millisecond))

	run, stderr = firstRun("missing.txt")
	assert.Check(t, !run.OK && !run.Drill.Passed)
	assert.Check(t, is.Contains(run.Error, "the drill of "+run.Backup.Location+" did not pass"))
	assert.Check(t, is.Contains(stderr, "backup run 1 of project "+p.name+" failed: the drill of"))
}
