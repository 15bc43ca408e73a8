package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const predeployProject = `
x-lifecycle: {backup: {before-deploy: true, to: "{{backups}}"}}
services:
  web:
    image: {{image:%s}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, timeout: 1s, retries: 60}
    volumes: ["data:/data:ro"]
volumes:
  data:
`

// TestBackupBeforeDeployAndRollbackWithData: with x-lifecycle.backup.before-deploy, a
// deploy that changes a service mounting a volume backs the volume up first and records
// the backup on the new revision; `rollback --with-data` brings the previous revision
// back and its data with it (files the backup does not hold stay: restore --force).
// The service mounts the volume read-only, so it is routed (rolling); the recreate
// case is TestRecreateRollbackWithData. The test writes the data through a container
// of its own.
func TestBackupBeforeDeployAndRollbackWithData(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	backups := t.TempDir()
	compose := func(version string) string {
		return strings.ReplaceAll(strings.Replace(predeployProject, "%s", version, 1), "{{backups}}", backups)
	}
	p := s.newProject(t, compose("v1"))
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }

	p.mustLifecycle("deploy")
	step("deploy v1")
	running := func() string {
		names := p.containers("label=com.docker.compose.service=web", "status=running")
		assert.Assert(t, is.Len(names, 1), "%v", names)
		return names[0]
	}
	v1 := running()
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "A"})
	step("data A written")
	entries, err := os.ReadDir(backups)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "the first deploy has no data to back up")

	p.write(compose("v2"))
	t0 := time.Now()
	r := p.mustLifecycle("deploy")
	deployed := time.Since(t0)
	took := regexp.MustCompile(`Backed up before deploy: (\S+) in (\S+)`).FindStringSubmatch(r.stderr)
	assert.Assert(t, took != nil, "no pre-deploy backup in the progress:\n%s", r.stderr)
	t.Logf("deploy v2: %s in all, of which the pre-deploy backup %s", deployed.Round(10*time.Millisecond), took[2])
	step("deploy v2")
	location := took[1]
	assert.Check(t, is.Equal(filepath.Dir(location), backups))
	_, err = os.Stat(filepath.Join(location, "manifest.json"))
	assert.Check(t, err)
	h := p.mustLifecycle("history", "web", "--format", "json")
	byRev := map[int]string{}
	for _, line := range lines(h.stdout) {
		var row struct {
			Revision int
			Backup   string
		}
		assert.NilError(t, json.Unmarshal([]byte(line), &row), line)
		byRev[row.Revision] = row.Backup
	}
	assert.Check(t, is.DeepEqual(byRev, map[int]string{1: "", 2: location}))
	v2 := running()
	assert.Check(t, v2 != v1)
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "B", "later": "not in the backup"})
	step("data B written")

	r = p.mustLifecycle("rollback", "web", "--with-data", "--dry-run")
	assert.Check(t, is.Contains(r.stdout, "Would restore "+p.name+"_data of web from "+location))
	assert.Check(t, is.Equal(readFile(t, s, v2, "/data/state"), "B"), "a dry run changes nothing")
	step("dry run")

	r = p.mustLifecycle("rollback", "web", "--with-data")
	assert.Check(t, is.Contains(r.stdout, p.name+"_data restored from "+location), r.String())
	step("rollback --with-data")
	assert.Check(t, is.Equal(running(), v1), "revision 1 runs again")
	// Neither revision ran on the other's data: revision 2 was stopped for the restore,
	// and revision 1 was not (it started on the restored data, once).
	stoppedForRestore := regexp.MustCompile(`Container (\S+)\s+Stopping: restore of`).FindAllStringSubmatch(r.stderr, -1)
	assert.Check(t, is.Len(stoppedForRestore, 1), r.stderr)
	for _, m := range stoppedForRestore {
		assert.Check(t, is.Equal(strings.TrimPrefix(m[1], "/"), v2), "stopped for the restore: %s\n%s", m[1], r.stderr)
	}
	assert.Check(t, is.Equal(readFile(t, s, v1, "/data/state"), "A"))
	assert.Check(t, is.Equal(readFile(t, s, v1, "/data/later"), "not in the backup"), "restore --force leaves files the backup does not hold")
	h = p.mustLifecycle("history", "web", "--format", "{{.Revision}} {{.Result}} {{.Backup}}")
	assert.Check(t, is.Contains(h.stdout, "1 rollback "+backups+"/"), "the rollback backed up the data it replaced:\n%s", h.stdout)
}

// writeFiles copies files into a volume through the engine's archive API (the test
// image has no shell), through a created container of the project that mounts it.
func writeFiles(t *testing.T, p *project, volume string, files map[string]string) {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "create", "--label", "com.docker.compose.project="+p.name, "-v", volume+":/data", imageRef("v1"))
	assert.Assert(t, r.code == 0, r.String())
	container := strings.TrimSpace(r.stdout)
	defer func() { _ = p.s.plainDocker("rm", "-f", container) }()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.Close())
	cmd := exec.Command("docker", "cp", "-", container+":/data")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+p.s.configDir)
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, string(out))
}

// readFile reads one file of a container through the archive API.
func readFile(t *testing.T, s *suite, container, path string) string {
	t.Helper()
	cmd := exec.Command("docker", "cp", container+":"+path, "-")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
	out, err := cmd.Output()
	assert.NilError(t, err, "docker cp %s:%s", container, path)
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s:%s: not in the archive", container, path)
		}
		assert.NilError(t, err)
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			assert.NilError(t, err)
			return string(b)
		}
	}
}
