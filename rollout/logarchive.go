package rollout

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// logArchiveTimeout bounds the archive of one container's logs: a slow engine or disk
// delays the removal by at most this, never the rollout's outcome.
const logArchiveTimeout = 20 * time.Second

// logArchiveTimeLayout is the archive time in a file's name: sortable, no colons.
const logArchiveTimeLayout = "20060102T150405Z"

// logArchiveSuffix ends every archive file; pruning touches only such files.
const logArchiveSuffix = ".log.zst"

// LogArchive is where the logs of removed containers are written and how long the
// files are kept (x-lifecycle.logs.archive, resolved against the project directory).
type LogArchive struct {
	Dir       string
	Retention time.Duration // 0: keep every file
}

// ProjectLogArchive is the project's x-lifecycle.logs.archive, nil when not set.
func ProjectLogArchive(p *compose.Project) *LogArchive {
	if p == nil || p.Spec.Logs == nil || p.Spec.Logs.Archive == nil {
		return nil
	}
	dir := p.Spec.Logs.Archive.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(p.Project.WorkingDir, dir)
	}
	return &LogArchive{Dir: dir, Retention: time.Duration(p.Spec.Logs.Archive.Retention)}
}

// ArchivedLog is one container's archive file.
type ArchivedLog struct {
	Container string `json:"container"`
	Service   string `json:"service"`
	Revision  int    `json:"revision"`
	Path      string `json:"path"`
	Lines     int    `json:"lines"`
	Bytes     int64  `json:"bytes"` // compressed size on disk
}

// logArchivePath is the file of a container archived at t:
// DIR/PROJECT/SERVICE/rREVISION/CONTAINER-ID12-TIME.log.zst (revision 0: containers
// without revisions, such as routers). The ID's first 12 characters keep apart
// containers of the same name archived in the same second (one per host of a
// multi-host deploy sharing the directory).
func logArchivePath(dir, project, service string, revision int, container, id string, t time.Time) string {
	if service == "" {
		service = "_"
	}
	name := container
	if id != "" {
		name += "-" + id[:min(12, len(id))]
	}
	return filepath.Join(dir, project, service, "r"+strconv.Itoa(revision), name+"-"+t.UTC().Format(logArchiveTimeLayout)+logArchiveSuffix)
}

// archiveContainerLogs writes every log line the engine holds for the container to
// its archive file, one line each: the engine's RFC 3339 timestamp, the stream
// (stdout or stderr) and the text. The file appears complete or not at all (written
// to a temporary file in the same directory, synced, then renamed).
func archiveContainerLogs(ctx context.Context, eng engine.Engine, dir, project string, src logSource, now time.Time) (ArchivedLog, error) {
	path := logArchivePath(dir, project, src.service, src.revision, src.c.Name, src.c.ID, now)
	out := ArchivedLog{Container: src.c.Name, Service: src.service, Revision: src.revision, Path: path}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return out, fmt.Errorf("archive the logs of container %s: %w (check that %s is writable)", src.c.Name, err, dir)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".archive-*.tmp")
	if err != nil {
		return out, fmt.Errorf("archive the logs of container %s: %w (check that %s is writable)", src.c.Name, err, dir)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw, err := zstd.NewWriter(tmp, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return out, err
	}
	bw := bufio.NewWriterSize(zw, 64*1024)
	err = eng.ContainerLogs(ctx, src.c.ID, engine.LogOptions{Tail: -1}, func(l engine.LogLine) error {
		out.Lines++
		bw.WriteString(l.Time.UTC().Format(time.RFC3339Nano))
		bw.WriteByte(' ')
		bw.WriteString(l.Stream)
		bw.WriteByte(' ')
		bw.WriteString(l.Text)
		return bw.WriteByte('\n')
	})
	if err != nil {
		zw.Close()
		return out, fmt.Errorf("read the logs of container %s: %w", src.c.Name, err)
	}
	if err := bw.Flush(); err != nil {
		zw.Close()
		return out, fmt.Errorf("archive the logs of container %s: %w", src.c.Name, err)
	}
	if err := zw.Close(); err != nil {
		return out, fmt.Errorf("archive the logs of container %s: %w", src.c.Name, err)
	}
	if err := tmp.Sync(); err != nil {
		return out, fmt.Errorf("archive the logs of container %s: %w", src.c.Name, err)
	}
	if info, err := tmp.Stat(); err == nil {
		out.Bytes = info.Size()
	}
	if err := tmp.Close(); err != nil {
		return out, fmt.Errorf("archive the logs of container %s: %w", src.c.Name, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return out, fmt.Errorf("archive the logs of container %s: %w", src.c.Name, err)
	}
	committed = true
	return out, nil
}

// archiveBeforeRemove archives a container a rollout is about to remove, bounded by
// logArchiveTimeout. It never fails the rollout: a failure is a progress warning on
// the container (its logs are lost with it).
func archiveBeforeRemove(ctx context.Context, eng engine.Engine, a *LogArchive, project, service string, revision int, name, id string, events progress.Writer) {
	ctx, cancel := context.WithTimeout(ctx, logArchiveTimeout)
	defer cancel()
	src := logSource{c: engine.Container{ID: id, Name: name}, service: service, revision: revision}
	progress.Emit(events, containerID(name), progress.Working, "Archiving logs", "")
	start := time.Now()
	got, err := archiveContainerLogs(ctx, eng, a.Dir, project, src, start)
	if err != nil {
		progress.Emit(events, containerID(name), progress.Warning, "Logs not archived", err.Error())
		return
	}
	progress.Emit(events, containerID(name), progress.Done, "Logs archived",
		fmt.Sprintf("%d lines, %d bytes in %s, %s", got.Lines, got.Bytes, time.Since(start).Round(time.Millisecond), got.Path))
}

// ArchiveLogsOptions select what `logs --archive DIR` archives.
type ArchiveLogsOptions struct {
	Dir      string
	Services []string // empty: every service (and the routers)
	Revision int      // 0: every revision
}

// ArchiveLogs writes the logs of the project's containers (every revision, running
// or stopped, as `logs` shows them) to DIR, one file per container holding every line
// the engine keeps for it up to now; the containers are left as they are. It is what
// a deploy does before removing a container, done now (before a `down`, say). It
// archives every container it can and reports every failure at once.
func ArchiveLogs(ctx context.Context, eng engine.Engine, project string, opts ArchiveLogsOptions, events progress.Writer) ([]ArchivedLog, error) {
	if err := checkServicesExist(ctx, eng, project, opts.Services); err != nil {
		return nil, err
	}
	sources, err := logSources(ctx, eng, project, LogsOptions{Services: opts.Services, Revision: opts.Revision})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var (
		out  []ArchivedLog
		errs []error
	)
	for _, src := range sources {
		progress.Emit(events, containerID(src.c.Name), progress.Working, "Archiving logs", "")
		cctx, cancel := context.WithTimeout(ctx, logArchiveTimeout)
		got, err := archiveContainerLogs(cctx, eng, opts.Dir, project, src, now)
		cancel()
		if err != nil {
			progress.Emit(events, containerID(src.c.Name), progress.Error, "Error", err.Error())
			errs = append(errs, err)
			continue
		}
		progress.Emit(events, containerID(src.c.Name), progress.Done, "Logs archived", fmt.Sprintf("%d lines, %d bytes", got.Lines, got.Bytes))
		out = append(out, got)
	}
	return out, errors.Join(errs...)
}

// PruneLogArchive removes the project's archive files older than retention (by the
// archive time in their name) and the directories that leaves empty. It touches
// nothing outside DIR/PROJECT, and there only files named like an archive file.
func PruneLogArchive(dir, project string, retention time.Duration, now time.Time) ([]string, error) {
	if retention <= 0 {
		return nil, nil
	}
	root := filepath.Join(dir, project)
	cutoff := now.Add(-retention)
	var removed []string
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			if path != root {
				dirs = append(dirs, path)
			}
			return nil
		}
		t, ok := logArchiveTime(d.Name())
		if !ok || !t.Before(cutoff) {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return err
		}
		removed = append(removed, path)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return removed, fmt.Errorf("prune the log archive %s: %w", root, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- { // deepest first; a non-empty one stays
		os.Remove(dirs[i])
	}
	return removed, nil
}

// logArchiveTime reads the archive time from a file name …-TIME.log.zst.
func logArchiveTime(name string) (time.Time, bool) {
	base, ok := strings.CutSuffix(name, logArchiveSuffix)
	if !ok || len(base) < len(logArchiveTimeLayout)+1 {
		return time.Time{}, false
	}
	t, err := time.Parse(logArchiveTimeLayout, base[len(base)-len(logArchiveTimeLayout):])
	return t, err == nil
}

// archiveLogs archives the logs of the container step s removes. The remove step
// waits for it (the container must exist while its logs are read), but nothing on
// the rollout's critical path waits for a remove of an old container.
func (x *executor) archiveLogs(ctx context.Context, s strategies.Step) {
	revision := s.Revision
	if revision == 0 {
		// Some remove steps (a service gone from the file) carry no revision: the
		// container's label has it.
		if d, err := x.eng.InspectContainer(ctx, s.ContainerID); err == nil {
			revision, _ = strconv.Atoi(d.Labels[compose.LabelRevision])
		}
	}
	archiveBeforeRemove(ctx, x.eng, x.archive, x.project.Name, s.Service, revision, s.Target, s.ContainerID, x.events)
}

// pruneLogArchive applies the archive's retention once the plan has run; a failure
// is a warning.
func (x *executor) pruneLogArchive() {
	if x.archive == nil {
		return
	}
	removed, err := PruneLogArchive(x.archive.Dir, x.project.Name, x.archive.Retention, time.Now())
	if err != nil {
		progress.Emit(x.events, "Project "+x.project.Name, progress.Warning, "Log archive not pruned", err.Error())
		return
	}
	if len(removed) > 0 {
		progress.Emit(x.events, "Project "+x.project.Name, progress.Done, "Log archive pruned",
			fmt.Sprintf("%d files older than %s removed", len(removed), compose.Days(x.archive.Retention)))
	}
}
