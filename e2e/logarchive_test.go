package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// archivedSeqs decompresses an archive file and returns the seq numbers of its lines
// ("TIMESTAMP STREAM {"level":"info","seq":N}"), checking each line's form and that
// the timestamps never go back; total is the number of lines.
func archivedSeqs(t *testing.T, path string) (seqs []int, total int) {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	zr, err := zstd.NewReader(bytes.NewReader(b))
	assert.NilError(t, err)
	defer zr.Close()
	plain, err := io.ReadAll(zr)
	assert.NilError(t, err)
	var prev time.Time
	for _, l := range lines(string(plain)) {
		total++
		ts, rest, _ := strings.Cut(l, " ")
		stream, text, _ := strings.Cut(rest, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		assert.NilError(t, err, "line %q", l)
		assert.Check(t, !at.Before(prev), "timestamps in order: %q", l)
		prev = at
		assert.Check(t, is.Equal(stream, "stdout"), "line %q", l)
		var e struct{ Seq int }
		if json.Unmarshal([]byte(text), &e) == nil && e.Seq > 0 {
			seqs = append(seqs, e.Seq)
		}
	}
	return seqs, total
}

// checkNoGap checks seqs is 1, 2, …, n with n ≥ 1.
func checkNoGap(t *testing.T, seqs []int, what string) {
	t.Helper()
	assert.Assert(t, len(seqs) > 0, "%s: no seq line archived", what)
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("%s: line %d has seq %d, want %d (a gap or a line out of order)", what, i+1, n, i+1)
		}
	}
}

// TestLogArchive: with x-lifecycle.logs.archive, a deploy of v2 writes the logs of v1's
// container, which it removes, to ARCHIVE/PROJECT/SERVICE/r1/…log.zst: every line v1
// wrote, in order, each with its timestamp and stream. `logs --archive DIR` writes
// the current container's logs and leaves it running. A deploy that fails its health
// gate archives the new container its cleanup removes.
func TestLogArchive(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	const doc = `
x-lifecycle:
  logs:
    archive: {dir: archive, retention: 3d}
services:
  seq:
    image: %s
    environment: {QUIET: "1", LOG_SEQ_EVERY: "20ms"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    x-lifecycle: {history: 0} # no revision kept for rollback: v2's deploy removes v1
`
	p := s.newProject(t, fmt.Sprintf(doc, imageRef("v1")))
	p.mustLifecycle("deploy")
	v1 := p.name + "-seq-r1-1"
	time.Sleep(time.Second) // about 50 lines

	p.write(fmt.Sprintf(doc, imageRef("v2")))
	start := time.Now()
	r := p.mustLifecycle("deploy", "--progress", "plain")
	t.Logf("v2 deploy (with the archive of v1) took %s", time.Since(start))
	for _, l := range lines(r.stderr) {
		if strings.Contains(l, "Logs archived") {
			t.Logf("%s", l)
		}
	}
	assert.Check(t, is.Contains(r.stderr, "Logs archived"), r.String())
	assert.Check(t, !strings.Contains(r.stderr, "Logs not archived"), r.String())
	assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-seq-r2-1"}))

	files, err := filepath.Glob(filepath.Join(p.dir, "archive", p.name, "seq", "r1", v1+"-*.log.zst"))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(files, 1), "archive: %v", files)
	info, err := os.Stat(files[0])
	assert.NilError(t, err)
	seqs, _ := archivedSeqs(t, files[0])
	t.Logf("v1's archive: %d lines, %d bytes compressed", len(seqs), info.Size())
	checkNoGap(t, seqs, "v1's archive")
	assert.Check(t, len(seqs) >= 20, "v1 ran more than a second at 50 lines/s: %d lines", len(seqs))

	// logs --archive DIR: the running v2 container, left running.
	dir := t.TempDir()
	start = time.Now()
	r = p.mustLifecycle("logs", "--archive", dir, "--format", "json")
	took := time.Since(start)
	var written []struct {
		Container, Path string
		Revision, Lines int
		Bytes           int64
	}
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &written), r.String())
	assert.Assert(t, is.Len(written, 1), r.String())
	assert.Check(t, is.Equal(written[0].Container, p.name+"-seq-r2-1"))
	assert.Check(t, is.Equal(written[0].Revision, 2))
	assert.Check(t, strings.HasPrefix(written[0].Path, filepath.Join(dir, p.name, "seq", "r2", p.name+"-seq-r2-1-")), written[0].Path)
	seqs, total := archivedSeqs(t, written[0].Path)
	checkNoGap(t, seqs, "v2's archive")
	assert.Check(t, is.Equal(written[0].Lines, total))
	t.Logf("logs --archive: %d lines, %d bytes compressed, in %s (the command, startup included)", written[0].Lines, written[0].Bytes, took)
	assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-seq-r2-1"}))

	r = p.lifecycle("logs", "--archive", dir, "--follow")
	assert.Check(t, is.Contains(r.stderr, "it does not take --follow"), r.String())

	// A deploy whose new container fails its health gate: the cleanup removes it, and
	// archives its logs first (they are what explains the failure), under r3.
	failing := strings.Replace(fmt.Sprintf(doc, imageRef("v1")),
		`["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100`,
		`["CMD", "/testapp", "healthcheck", "http://127.0.0.1:1/"], interval: 300ms, retries: 2`, 1)
	p.write(failing)
	start = time.Now()
	r = p.lifecycle("deploy", "--progress", "plain")
	t.Logf("failed v3 deploy (with the archive of its container) took %s, exit %d", time.Since(start), r.code)
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, "health"), r.String())
	v3 := p.name + "-seq-r3-1"
	archivedLine := ""
	for _, l := range lines(r.stderr) {
		if strings.Contains(l, v3) && strings.Contains(l, "Logs archived") {
			archivedLine = l
			t.Logf("%s", l)
		}
	}
	assert.Check(t, archivedLine != "", r.String())
	assert.Check(t, !strings.Contains(r.stderr, "Logs not archived"), r.String())
	assert.Check(t, is.DeepEqual(p.containers(), []string{p.name + "-seq-r2-1"}), "the failed container is removed, v2 stays")
	files, err = filepath.Glob(filepath.Join(p.dir, "archive", p.name, "seq", "r3", v3+"-*.log.zst"))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(files, 1), "archive: %v\n%s", files, r.String())
	seqs, _ = archivedSeqs(t, files[0])
	t.Logf("the failed v3's archive: %d lines", len(seqs))
	checkNoGap(t, seqs, "the failed v3's archive")
}
