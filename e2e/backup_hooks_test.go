package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// backupHooksProject dumps into the volume before the copy and removes the dump after it,
// as a pg_dump hook would; BEFORE is replaced to make the dump fail, USER to run the
// hook as another user.
const backupHooksProject = `
x-lifecycle:
  strategy: recreate
  backup:
    consistency: none
    hooks:
      - service: db
        before: BEFORE
        after: [/testapp, rm, /data/dump.sql]
        timeout: 20s
        on-failure: ON_FAILURE
        USER
services:
  db:
    image: {{image:v1}}
    user: "0:0" # a fresh volume is root's; a database image owns its data directory
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    volumes: [data:/data]
    tmpfs: ["/scratch:mode=1777"] # where a hook run as another user than root can write
volumes:
  data:
`

type hookManifest struct {
	Hooks []struct {
		Service   string `json:"service"`
		Container string `json:"container"`
		Phase     string `json:"phase"`
		Error     string `json:"error"`
	} `json:"hooks"`
	Volumes []struct {
		Files int `json:"files"`
	} `json:"volumes"`
}

// TestBackupHooks: the before command's dump is in the archive and gone from the volume
// after the backup; a failing before command stops the backup (nothing written) unless
// on-failure is continue, and the manifest records each command's outcome.
func TestBackupHooks(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	yaml := func(before, onFailure string, user ...string) string {
		userLine := "# the container's user"
		if len(user) > 0 {
			userLine = "user: " + user[0]
		}
		return strings.NewReplacer("BEFORE", before, "ON_FAILURE", onFailure, "USER", userLine).Replace(backupHooksProject)
	}
	p := s.newProject(t, yaml("[/testapp, write, /data/dump.sql, dump-of-db]", "fail"))
	p.mustLifecycle("deploy")
	db := p.name + "-db-1"
	backups := t.TempDir()

	r := p.mustLifecycle("backup", "--to", backups, "--format", "json")
	var m hookManifest
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	assert.Assert(t, is.Len(m.Hooks, 2), r.stdout)
	for i, phase := range []string{"before", "after"} {
		assert.Check(t, is.Equal(m.Hooks[i].Phase, phase))
		assert.Check(t, is.Equal(m.Hooks[i].Container, db))
		assert.Check(t, is.Equal(m.Hooks[i].Error, ""))
	}
	assert.Check(t, is.Equal(m.Volumes[0].Files, 1), "the dump is the volume's one file in the archive")
	gone := s.docker(t, p.dir, nil, "exec", db, "/testapp", "cat", "/data/dump.sql")
	assert.Check(t, gone.code != 0, "the after command removed the dump from the live volume: %s", gone)

	// restored elsewhere, the archive holds the dump the before command wrote
	dirs, err := filepath.Glob(filepath.Join(backups, p.name+"-*"))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(dirs, 1))
	target := p.name + "-copy"
	t.Cleanup(func() { _ = s.plainDocker("volume", "rm", "-f", target+"_data") })
	p.mustLifecycle("restore", dirs[0], "--project", target)
	read := s.docker(t, p.dir, nil, "run", "--rm", "--network", "none", "--label", "com.docker.compose.project="+p.name,
		"-v", target+"_data:/probe", imageRef("v1"), "cat", "/probe/dump.sql")
	assert.Check(t, is.Equal(read.stdout, "dump-of-db"), read.String())

	// a failing dump stops the backup: nothing written, the after command still ran
	p.write(yaml("[/testapp, cat, /no/such/file]", "fail"))
	r = p.lifecycle("backup", "--to", backups)
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "backup hook before of service db: /testapp cat /no/such/file in container "+db+" exited with code 1"))
	assert.Check(t, is.Contains(r.stderr, "nothing was backed up"))
	entries, err := os.ReadDir(backups)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 1), "no second backup")

	// with on-failure: continue the copy goes on and the manifest says what failed
	p.write(yaml("[/testapp, cat, /no/such/file]", "continue"))
	r = p.mustLifecycle("backup", "--to", backups, "--format", "json")
	m = hookManifest{}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	assert.Assert(t, is.Len(m.Hooks, 2), r.stdout)
	assert.Check(t, is.Equal(m.Hooks[0].Error, "exit code 1"))
	assert.Check(t, is.Equal(m.Hooks[1].Error, "exit code 1"), "nothing to remove: the after command fails too, noted")

	// user: the hook runs as that user, not as the container's root (the file it writes
	// says which); the after command, as 1000 in root's /data, fails and is noted
	p.write(yaml("[/testapp, id, /scratch/hook-user]", "continue", `"1000:1000"`))
	r = p.mustLifecycle("backup", "--to", backups, "--format", "json")
	m = hookManifest{}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	assert.Assert(t, is.Len(m.Hooks, 2), r.stdout)
	assert.Check(t, is.Equal(m.Hooks[0].Error, ""), r.stderr)
	id := s.docker(t, p.dir, nil, "exec", db, "/testapp", "cat", "/scratch/hook-user")
	assert.Check(t, is.Equal(id.stdout, "1000:1000"), id.String())
}
