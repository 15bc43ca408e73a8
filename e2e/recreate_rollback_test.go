package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// A database-like service: it mounts its volume read-write, so it runs the recreate
// strategy (one copy at a time).
const recreateDBProject = `
%s
services:
  db:
    image: {{image:%s}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, timeout: 1s, retries: 60}
    volumes: ["data:/data"]
volumes:
  data:
`

// containerID is the engine's ID of a container, by name.
func containerID(t *testing.T, p *project, name string) string {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "inspect", "--format", "{{.Id}} {{.State.Status}}", name)
	assert.Assert(t, r.code == 0, r.String())
	id, state, _ := strings.Cut(strings.TrimSpace(r.stdout), " ")
	t.Logf("%s: %s %s", name, id[:12], state)
	return id + " " + state
}

// TestRecreateRollback: a recreate service keeps its previous revision's container
// (stopped, renamed <project>-db-r1-1); `rollback db` stops revision 2, keeps it, and
// starts revision 1's own container again under the service's name; a rollback of the
// rollback returns to revision 2's container. A plain rollback keeps the data as it is.
func TestRecreateRollback(t *testing.T) {
	t.Parallel() // no load and no timing (e2e/doc.go)
	s := setup(t)
	start := time.Now()
	defer func() { t.Logf("took %s after the suite's setup", time.Since(start).Round(100*time.Millisecond)) }()
	p := s.newProject(t, strings.Replace(strings.Replace(recreateDBProject, "%s", "", 1), "%s", "v1", 1))
	db := p.name + "-db-1"
	p.mustLifecycle("deploy")
	v1 := containerID(t, p, db)
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "A"})
	p.write(strings.Replace(strings.Replace(recreateDBProject, "%s", "", 1), "%s", "v2", 1))
	p.mustLifecycle("deploy")
	v2 := containerID(t, p, db)
	assert.Check(t, is.Equal(containerID(t, p, p.name+"-db-r1-1"), strings.Replace(v1, "running", "exited", 1)), "revision 1 is kept, stopped")
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "B"})

	r := p.lifecycle("rollback")
	assert.Check(t, r.code != 0 && strings.Contains(r.stderr, "a recreate service is rolled back only when named"), r.String())

	r = p.mustLifecycle("rollback", "db", "--dry-run")
	assert.Check(t, is.Regexp(`rename\s+`+db+` -> `+p.name+`-db-r2-1\s`, r.stdout))
	assert.Check(t, is.Regexp(`rename\s+`+p.name+`-db-r1-1 -> `+db+`\s`, r.stdout))
	assert.Check(t, is.Equal(containerID(t, p, db), v2), "a dry run changes nothing")

	r = p.mustLifecycle("rollback", "db")
	assert.Check(t, is.Contains(r.stdout, "Rolled back db to revision 1"), r.String())
	assert.Check(t, is.Equal(containerID(t, p, db), v1), "revision 1's own container runs again")
	assert.Check(t, is.Equal(containerID(t, p, p.name+"-db-r2-1"), strings.Replace(v2, "running", "exited", 1)))
	assert.Check(t, is.Equal(readFile(t, s, db, "/data/state"), "B"), "a plain rollback keeps the data")
	h := p.mustLifecycle("history", "db", "--format", "{{.Revision}} {{.Result}}")
	assert.Check(t, is.Contains(h.stdout, "1 rollback"), h.stdout)

	p.mustLifecycle("rollback", "db")
	assert.Check(t, is.Equal(containerID(t, p, db), v2), "the rollback of the rollback")
	assert.Check(t, is.Len(p.containers("label=com.docker.compose.service=db"), 2), "nothing was removed")
}

// TestRecreateRollbackWithData: with x-lifecycle.backup.before-deploy, `rollback db
// --with-data` of a recreate service stops revision 2, restores the volume from the
// backup taken before revision 2 was deployed, and only then starts revision 1 on it:
// revision 1 never runs on revision 2's data, revision 2 is stopped once, for the
// restore, and kept.
func TestRecreateRollbackWithData(t *testing.T) {
	t.Parallel()
	s := setup(t)
	start := time.Now()
	defer func() { t.Logf("took %s after the suite's setup", time.Since(start).Round(100*time.Millisecond)) }()
	backups := t.TempDir()
	yaml := func(version string) string {
		head := `x-lifecycle: {backup: {before-deploy: true, to: "` + backups + `"}}`
		return strings.Replace(strings.Replace(recreateDBProject, "%s", head, 1), "%s", version, 1)
	}
	p := s.newProject(t, yaml("v1"))
	db := p.name + "-db-1"
	p.mustLifecycle("deploy")
	v1 := containerID(t, p, db)
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "A"})

	p.write(yaml("v2"))
	r := p.mustLifecycle("deploy")
	took := regexp.MustCompile(`Backed up before deploy: (\S+)`).FindStringSubmatch(r.stderr)
	assert.Assert(t, took != nil, "no pre-deploy backup:\n%s", r.stderr)
	location := took[1]
	v2 := containerID(t, p, db)
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "B"})

	r = p.mustLifecycle("rollback", "db", "--with-data", "--dry-run")
	assert.Check(t, is.Contains(r.stdout, "Would restore "+p.name+"_data of db from "+location), r.stdout)
	assert.Check(t, is.Equal(readFile(t, s, db, "/data/state"), "B"), "a dry run changes nothing")

	r = p.mustLifecycle("rollback", "db", "--with-data")
	assert.Check(t, is.Contains(r.stdout, "Rolled back db to revision 1, "+p.name+"_data restored from "+location), r.String())
	assert.Check(t, is.Equal(containerID(t, p, db), v1), "revision 1's own container runs again")
	assert.Check(t, is.Equal(containerID(t, p, p.name+"-db-r2-1"), strings.Replace(v2, "running", "exited", 1)), "revision 2 is kept")
	assert.Check(t, is.Equal(readFile(t, s, db, "/data/state"), "A"), "revision 1 runs on its data")

	// The order on the engine: revision 2 stopped for the restore (and by no one else
	// after it), the restore, then revision 1 started once.
	lines := strings.Split(r.stderr, "\n")
	at := func(re string) []int {
		var out []int
		for i, l := range lines {
			if regexp.MustCompile(re).MatchString(l) {
				out = append(out, i)
			}
		}
		return out
	}
	stopped := at(`Container /?` + regexp.QuoteMeta(db) + `\s+Stopping: restore of`)
	restored := at(`(?i)restored`)
	started := at(`Container /?` + regexp.QuoteMeta(db) + `\s+Starting`)
	assert.Assert(t, len(stopped) == 1 && len(restored) > 0 && len(started) == 1, "stopped %v restored %v started %v:\n%s", stopped, restored, started, r.stderr)
	assert.Check(t, stopped[0] < restored[0] && restored[len(restored)-1] < started[0], "stop, restore, start:\n%s", r.stderr)
	h := p.mustLifecycle("history", "db", "--format", "{{.Revision}} {{.Result}} {{.Backup}}")
	assert.Check(t, is.Contains(h.stdout, "1 rollback "+backups+"/"), "the rollback backed up the data it replaced:\n%s", h.stdout)
}

// TestRecreateRollbackFailure (docs/backup.md, "If the previous revision fails its
// gate"): revision 1's health check reads a file bound from the host, removed after
// revision 2 is deployed, so `rollback db` starts revision 1 and its gate fails. The
// command exits 1, removes nothing, stops revision 1 again (kept), and its error lists
// the containers as they are on the engine and the two ways on; once the file is back,
// the first, `rollback db --to 1`, finishes the rollback: revision 1 serves and the
// history records the rollback. The volume keeps its data throughout. (The other way,
// `--to 2` from the failed state, is TestRecreateRollbackFailureLosesNothing's on the
// fake; on the engine it is the plain rollback of TestRecreateRollback.)
func TestRecreateRollbackFailure(t *testing.T) {
	t.Parallel()
	s := setup(t)
	start := time.Now()
	defer func() { t.Logf("took %s after the suite's setup", time.Since(start).Round(100*time.Millisecond)) }()
	dir := countDir(t)
	okFile := filepath.Join(dir, "ok")
	assert.NilError(t, os.WriteFile(okFile, []byte("ok"), 0o644))
	yaml := func(version, check string) string {
		return fmt.Sprintf(`
services:
  db:
    image: {{image:%s}}
    healthcheck: {test: %s, interval: 300ms, timeout: 1s, retries: 3}
    volumes: ["data:/data", "%s:/health:ro"]
    environment: {QUIET: "1"}
volumes:
  data:
`, version, check, dir)
	}
	p := s.newProject(t, yaml("v1", `["CMD", "/testapp", "healthcheck", "http://127.0.0.1:8080/file?path=/health/ok"]`))
	db, kept2 := p.name+"-db-1", p.name+"-db-r2-1"
	p.mustLifecycle("deploy")
	v1 := containerID(t, p, db)
	p.write(yaml("v2", `["CMD", "/testapp", "healthcheck"]`))
	p.mustLifecycle("deploy")
	v2 := containerID(t, p, db)
	writeFiles(t, p, p.name+"_data", map[string]string{"state": "B"})

	assert.NilError(t, os.Remove(okFile))
	began := time.Now()
	r := p.lifecycle("rollback", "db")
	t.Logf("rollback db failed after %s", time.Since(began).Round(100*time.Millisecond))
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stderr, `service "db" (recreate): the rollback to revision 1 did not finish and nothing was removed`), r.String())
	assert.Check(t, is.Contains(r.stderr, "`docker lifecycle rollback db --to 1` finishes the rollback"), r.String())
	assert.Check(t, is.Contains(r.stderr, "`docker lifecycle rollback db --to 2` returns to revision 2"), r.String())
	// Each container the error lists is on the engine in the state it says.
	listed := regexp.MustCompile(`its containers now: (.*?)\. Fix the cause`).FindStringSubmatch(r.stderr)
	assert.Assert(t, listed != nil, r.String())
	want := map[string]string{db: strings.Fields(v1)[0], kept2: strings.Fields(v2)[0]}
	var names []string
	for _, c := range strings.Split(listed[1], ", ") {
		m := regexp.MustCompile(`^(\S+) \(revision (\d+)\) (\w+)`).FindStringSubmatch(c)
		if !assert.Check(t, m != nil, "listed as %q", c) {
			continue
		}
		names = append(names, m[1])
		on := p.inspect(`{{.Id}} {{.State.Status}} {{index .Config.Labels "io.lifecycle.revision"}}`, m[1])
		assert.Check(t, is.Equal(on, want[m[1]]+" "+m[3]+" "+m[2]), "%s as the error lists it: %q", m[1], c)
	}
	assert.Check(t, is.DeepEqual(names, []string{db, kept2}))
	// The revision that failed is stopped (kept): it does not go on running on the data,
	// unhealthy, and the way on starts it again.
	assert.Check(t, is.Equal(containerID(t, p, db), strings.Replace(v1, "running", "exited", 1)), r.String())
	assert.Check(t, is.Len(p.containers("label=com.docker.compose.service=db"), 2), "nothing was removed")
	assert.Check(t, is.Equal(readFile(t, s, db, "/data/state"), "B"), "the volume keeps its data")

	// The way on, once the cause is fixed: revision 1's own container serves.
	assert.NilError(t, os.WriteFile(okFile, []byte("ok"), 0o644))
	r = p.mustLifecycle("rollback", "db", "--to", "1")
	assert.Check(t, is.Contains(r.stdout, "Rolled back db to revision 1"), r.String())
	assert.Check(t, is.Equal(containerID(t, p, db), v1))
	assert.Check(t, is.Equal(containerID(t, p, kept2), strings.Replace(v2, "running", "exited", 1)), "revision 2 is kept")
	untilAnswers(t, p, db, "http://127.0.0.1:8080/", "v1", 10*time.Second)
	assert.Check(t, is.Equal(readFile(t, s, db, "/data/state"), "B"), "the volume keeps its data")
	h := p.mustLifecycle("history", "db", "--format", "{{.Revision}} {{.Result}}")
	assert.Check(t, is.Equal(lines(h.stdout)[0], "1 rollback"), "the rollback finished is recorded:\n%s", h.stdout)
}
