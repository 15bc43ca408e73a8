package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

const archiveCompose = `
name: demo
x-lifecycle:
  strategy: recreate
  logs:
    archive: {dir: archive, retention: 2d}
services:
  web:
    image: app:%s
    x-lifecycle: {history: 0} # removed, not kept for a rollback: its logs are archived
`

// recordedEvents keeps the progress events for the test to look at.
type recordedEvents struct {
	mu     sync.Mutex
	events []progress.Event
}

func (r *recordedEvents) Event(e progress.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}
func (r *recordedEvents) Close() error { return nil }
func (r *recordedEvents) find(id string, s progress.Status) (progress.Event, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.ID == id && e.Status == s {
			return e, true
		}
	}
	return progress.Event{}, false
}

// readArchive decompresses an archive file.
func readArchive(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	zr, err := zstd.NewReader(bytes.NewReader(b))
	assert.NilError(t, err)
	defer zr.Close()
	plain, err := io.ReadAll(zr)
	assert.NilError(t, err)
	return string(plain)
}

func archiveFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// loggingFake is the world's engine with container logs: two lines per container,
// read while the container exists (recorded as "logs NAME").
func loggingFake(w *world, logsErr error) *engine.Fake {
	f := w.fake()
	f.ContainerLogsFn = func(_ context.Context, id string, opts engine.LogOptions, emit func(engine.LogLine) error) error {
		w.mu.Lock()
		c, ok := w.containers[id]
		if ok {
			w.record("logs %s", c.Name)
		}
		w.mu.Unlock()
		if !ok {
			return fmt.Errorf("container %s: %w", id, engine.ErrNotFound)
		}
		if logsErr != nil {
			return logsErr
		}
		t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		if err := emit(engine.LogLine{Time: t0, Stream: "stdout", Text: "hello from " + c.Labels["com.docker.compose.config-hash"][:4]}); err != nil {
			return err
		}
		return emit(engine.LogLine{Time: t0.Add(time.Millisecond), Stream: "stderr", Text: "bye"})
	}
	return f
}

// A deploy that removes a container archives its logs first, under
// PROJECT/SERVICE/rREVISION/, each line with its timestamp and stream; the new
// container's logs are not archived.
func TestDeployArchivesLogsBeforeRemoving(t *testing.T) {
	w := newWorld()
	p := loadProject(t, fmt.Sprintf(archiveCompose, "1"))
	f := loggingFake(w, nil)
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	root := filepath.Join(p.Project.WorkingDir, "archive")
	assert.Check(t, is.Len(archiveFiles(t, root), 0), "nothing removed, nothing archived")
	oldHash, oldID := "", ""
	for id, c := range w.containers {
		oldHash, oldID = c.Labels["com.docker.compose.config-hash"][:4], id
	}

	// A file older than the retention (2d) is pruned after the deploy.
	expired := logArchivePath(root, "demo", "web", 0, "demo-web-0", "", time.Now().Add(-49*time.Hour))
	assert.NilError(t, os.MkdirAll(filepath.Dir(expired), 0o755))
	assert.NilError(t, os.WriteFile(expired, nil, 0o644))

	p2 := loadProject(t, fmt.Sprintf(archiveCompose, "2"))
	p2.Project.WorkingDir = p.Project.WorkingDir
	events := &recordedEvents{}
	_, err = Deploy(context.Background(), f, p2, events, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	assert.Check(t, w.index("logs demo-web-1") >= 0 && w.index("logs demo-web-1") < w.index("remove demo-web-1"), "calls: %v", w.calls)
	files := archiveFiles(t, root)
	assert.Assert(t, is.Len(files, 1))
	assert.Check(t, is.Regexp(`^demo/web/r1/demo-web-1-`+regexp.QuoteMeta(oldID[:min(12, len(oldID))])+`-\d{8}T\d{6}Z\.log\.zst$`, files[0]))
	assert.Check(t, is.Equal(readArchive(t, filepath.Join(root, files[0])),
		"2026-12-03T10:00:00Z stdout hello from "+oldHash+"\n2026-12-03T10:00:00.001Z stderr bye\n"))
	e, ok := events.find("Project demo", progress.Done)
	assert.Check(t, ok && e.Text == "Log archive pruned", "%+v", e)
	_, ok = events.find("Container demo-web-1", progress.Warning)
	assert.Check(t, !ok, "no warning when the archive is written")
}

// A failure to archive does not fail the deploy: the container is removed, a warning
// says why its logs were not archived, and no partial file is left.
func TestArchiveFailureIsAWarning(t *testing.T) {
	w := newWorld()
	p := loadProject(t, fmt.Sprintf(archiveCompose, "1"))
	f := loggingFake(w, errors.New("log driver none does not support reading"))
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	p2 := loadProject(t, fmt.Sprintf(archiveCompose, "2"))
	p2.Project.WorkingDir = p.Project.WorkingDir
	events := &recordedEvents{}
	_, err = Deploy(context.Background(), f, p2, events, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	assert.Check(t, w.index("remove demo-web-1") >= 0)
	warn, ok := events.find("Container demo-web-1", progress.Warning)
	assert.Assert(t, ok)
	assert.Check(t, is.Equal(warn.Text, "Logs not archived"))
	assert.Check(t, is.Contains(warn.Detail, "read the logs of container demo-web-1: log driver none does not support reading"))
	assert.Check(t, is.Len(archiveFiles(t, filepath.Join(p.Project.WorkingDir, "archive")), 0), "no temporary file left")

	// An unwritable directory is a warning too.
	dir := filepath.Join(t.TempDir(), "file")
	assert.NilError(t, os.WriteFile(dir, nil, 0o644))
	events = &recordedEvents{}
	archiveBeforeRemove(context.Background(), loggingFake(w, nil), &LogArchive{Dir: dir}, "demo", "web", 2, "demo-web-1", "x", events)
	warn, ok = events.find("Container demo-web-1", progress.Warning)
	assert.Assert(t, ok)
	assert.Check(t, is.Contains(warn.Detail, "check that "+dir+" is writable"))
}

// The new containers a failed deploy removes are archived first: their logs are what
// explains the failure. The old revision's container, removed by the recreate before
// the new one was created, is archived too, each under its own revision.
func TestFailedDeployArchivesTheRemovedNewContainers(t *testing.T) {
	w := newWorld()
	p := loadProject(t, fmt.Sprintf(archiveCompose, "1"))
	f := loggingFake(w, nil)
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)

	w.health = func(string) engine.ContainerDetails {
		return engine.ContainerDetails{State: "running", Health: "unhealthy", HealthLog: []string{"exit 1: connection refused"}}
	}
	p2 := loadProject(t, fmt.Sprintf(archiveCompose, "2"))
	p2.Project.WorkingDir = p.Project.WorkingDir
	events := &recordedEvents{}
	_, err = Deploy(context.Background(), f, p2, events, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.Check(t, errors.Is(err, ErrDeployFailed), "got %v", err)
	assert.Check(t, is.Len(w.containers, 0), "the failed container is removed")

	root := filepath.Join(p.Project.WorkingDir, "archive")
	files := archiveFiles(t, root)
	assert.Assert(t, is.Len(files, 2), "files: %v", files)
	assert.Check(t, is.Regexp(`^demo/web/r1/demo-web-1-`, files[0]))
	assert.Check(t, is.Regexp(`^demo/web/r2/demo-web-1-.+-\d{8}T\d{6}Z\.log\.zst$`, files[1]))
	assert.Check(t, is.Regexp("^2026-12-03T10:00:00Z stdout hello from \\w{4}\n2026-12-03T10:00:00.001Z stderr bye\n$", readArchive(t, filepath.Join(root, files[1]))))

	// The archive is written while the container exists, before the cleanup removes it.
	events.mu.Lock()
	defer events.mu.Unlock()
	archived, removing := -1, -1
	for i, e := range events.events {
		switch {
		case e.ID == "Container demo-web-1" && e.Text == "Logs archived" && strings.Contains(e.Detail, "/r2/"):
			archived = i
		case e.ID == "Container demo-web-1" && e.Detail == "deploy failed: removing the new container":
			removing = i
		}
	}
	assert.Check(t, archived >= 0 && removing > archived, "archived at %d, removing at %d: %+v", archived, removing, events.events)
}

// A tolerated failure (update_config.max_failure_ratio) removes the failed new
// container during the rollout: its logs are archived first as well.
func TestToleratedFailureArchivesTheRemovedContainer(t *testing.T) {
	extra := "      update_config: {max_failure_ratio: 0.5}\nx-lifecycle:\n  logs:\n    archive: {dir: archive}\n"
	w := newWorld()
	f := loggingFake(w, nil)
	p := loadProject(t, routedCompose("app:1", extra))
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	w.health = func(name string) engine.ContainerDetails {
		if name == "demo-web-r2-1" {
			return engine.ContainerDetails{State: "exited", ExitCode: 3}
		}
		return engine.ContainerDetails{State: "running"}
	}
	p2 := loadProject(t, routedCompose("app:2", extra))
	p2.Project.WorkingDir = p.Project.WorkingDir
	_, err = Deploy(context.Background(), f, p2, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	files := archiveFiles(t, filepath.Join(p.Project.WorkingDir, "archive"))
	var failed []string
	for _, f := range files {
		if strings.HasPrefix(f, "demo/web/r2/") {
			failed = append(failed, f)
		}
	}
	assert.Assert(t, is.Len(failed, 1), "files: %v", files)
	assert.Check(t, is.Regexp(`^demo/web/r2/demo-web-r2-1-`, failed[0]))
	assert.Check(t, w.index("logs demo-web-r2-1") >= 0 && w.index("logs demo-web-r2-1") < w.index("remove demo-web-r2-1"), "calls: %v", w.calls)
}

// `logs --archive` writes every listed container of the project, filtered by service
// and revision, and leaves the containers alone.
func TestArchiveLogsNow(t *testing.T) {
	w := newWorld()
	p := loadProject(t, fmt.Sprintf(archiveCompose, "1"))
	f := loggingFake(w, nil)
	_, err := Deploy(context.Background(), f, p, progress.Nop, DeployOptions{WaitTimeout: 2 * time.Second})
	assert.NilError(t, err)
	dir := t.TempDir()
	got, err := ArchiveLogs(context.Background(), f, "demo", ArchiveLogsOptions{Dir: dir}, progress.Nop)
	assert.NilError(t, err)
	assert.Assert(t, is.Len(got, 1))
	assert.Check(t, is.Equal(got[0].Container, "demo-web-1"))
	assert.Check(t, is.Equal(got[0].Revision, 1))
	assert.Check(t, is.Equal(got[0].Lines, 2))
	assert.Check(t, got[0].Bytes > 0)
	assert.Check(t, is.Contains(readArchive(t, got[0].Path), " stderr bye\n"))
	assert.Check(t, is.Len(w.containers, 1), "the container stays")

	got, err = ArchiveLogs(context.Background(), f, "demo", ArchiveLogsOptions{Dir: dir, Revision: 7}, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 0))
	_, err = ArchiveLogs(context.Background(), f, "demo", ArchiveLogsOptions{Dir: dir, Services: []string{"nope"}}, progress.Nop)
	assert.Check(t, is.ErrorContains(err, "nope"))
}

// Retention removes this project's archive files older than it (by the time in their
// name) and the directories left empty; newer files, other projects' files and files
// that are not archive files stay.
func TestPruneLogArchive(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	write := func(rel string) {
		path := filepath.Join(dir, rel)
		assert.NilError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		assert.NilError(t, os.WriteFile(path, []byte("x"), 0o644))
	}
	old := logArchivePath(dir, "demo", "web", 1, "demo-web-1", "", now.Add(-15*24*time.Hour))
	recent := logArchivePath(dir, "demo", "web", 2, "demo-web-1", "0123456789abcdef", now.Add(-13*24*time.Hour))
	other := logArchivePath(dir, "demo2", "web", 1, "demo2-web-1", "", now.Add(-30*24*time.Hour))
	for _, path := range []string{old, recent, other} {
		rel, _ := filepath.Rel(dir, path)
		write(rel)
	}
	write("demo/notes.txt")
	removed, err := PruneLogArchive(dir, "demo", 14*24*time.Hour, now)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(removed, []string{old}))
	assert.Check(t, is.DeepEqual(archiveFiles(t, dir), []string{
		"demo/notes.txt",
		"demo/web/r2/demo-web-1-0123456789ab-20261120T120000Z.log.zst",
		"demo2/web/r1/demo2-web-1-20261103T120000Z.log.zst",
	}))
	_, err = os.Stat(filepath.Join(dir, "demo", "web", "r1"))
	assert.Check(t, os.IsNotExist(err), "the emptied revision directory is removed")

	// No archive yet: nothing to do, no error.
	removed, err = PruneLogArchive(filepath.Join(dir, "none"), "demo", time.Hour, now)
	assert.NilError(t, err)
	assert.Check(t, is.Len(removed, 0))
}

// BenchmarkArchiveContainerLogs: the archive's own cost (format, compress, write,
// sync, rename) for 100,000 JSON lines of about 60 bytes, the engine's read left out.
func BenchmarkArchiveContainerLogs(b *testing.B) {
	dir := b.TempDir()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f := &engine.Fake{ContainerLogsFn: func(_ context.Context, _ string, _ engine.LogOptions, emit func(engine.LogLine) error) error {
		for i := 1; i <= 100000; i++ {
			if err := emit(engine.LogLine{Time: t0.Add(time.Duration(i) * time.Millisecond), Stream: "stdout",
				Text: fmt.Sprintf(`{"level":"info","seq":%d,"msg":"request served"}`, i)}); err != nil {
				return err
			}
		}
		return nil
	}}
	src := logSource{c: engine.Container{ID: "x", Name: "demo-web-r1-1"}, service: "web", revision: 1}
	var got ArchivedLog
	for i := 0; i < b.N; i++ {
		var err error
		got, err = archiveContainerLogs(context.Background(), f, dir, "demo", src, t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(got.Bytes), "bytes/file")
}
