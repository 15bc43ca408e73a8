package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// everyRuns runs BackupEvery until stop says so after a run, and returns its error and
// the runs reported.
func everyRuns(t *testing.T, f *backupFake, opts BackupOptions, every time.Duration, stop func([]BackupRun) bool) ([]BackupRun, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var runs []BackupRun
	err := BackupEvery(ctx, f, "shop", progress.Nop, opts, BackupSchedule{Every: every, Report: func(r BackupRun, err error) {
		mu.Lock()
		defer mu.Unlock()
		assert.Check(t, r.OK == (err == nil), "run %d: ok %v, error %v", r.Run, r.OK, err)
		runs = append(runs, r)
		if stop(runs) {
			cancel()
		}
	}})
	return runs, err
}

func TestBackupEveryRunsAndPrunesUntilStopped(t *testing.T) {
	f := newBackupFake(t, volumeTar(t, map[string]string{"a": "x"}), nil)
	out := t.TempDir()
	const every = 150 * time.Millisecond
	runs, err := everyRuns(t, f, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: out}, Retention: Retention{Last: 2}}, every,
		func(runs []BackupRun) bool { return len(runs) == 3 })
	assert.NilError(t, err, "stopped between runs: no error")
	assert.Assert(t, is.Len(runs, 3))
	for i, r := range runs {
		assert.Check(t, is.Equal(r.Run, i+1))
		assert.Check(t, r.OK, r.Error)
		assert.Assert(t, r.Backup != nil)
		assert.Check(t, r.Next != nil)
		// on the schedule from the first start, not from each run's end
		if i > 0 {
			assert.Check(t, r.Started.Sub(runs[0].Started) >= time.Duration(i)*every, "run %d started %s after the first", i+1, r.Started.Sub(runs[0].Started))
			// a run longer than the interval skips slots: still on a slot
			offset := r.Started.Sub(runs[0].Started)
			assert.Check(t, (offset.Round(every)-offset).Abs() < every/3, "run %d started %s after the first", i+1, offset)
		}
	}
	assert.Check(t, is.Len(runs[2].Backup.Pruned, 1), "the third run prunes the first: keep-last 2")
	assert.Check(t, is.Equal(runs[2].Backup.Pruned[0], runs[0].Backup.Location))
	entries, err := os.ReadDir(out)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 2))
}

func TestBackupEveryGoesOnAfterAFailedRun(t *testing.T) {
	f := newBackupFake(t, volumeTar(t, map[string]string{"a": "x"}), nil)
	copyFrom := f.CopyFromFn
	copies := 0
	f.CopyFromFn = func(ctx context.Context, id, path string) (io.ReadCloser, error) {
		if copies++; copies == 1 {
			return nil, errors.New("disk on fire")
		}
		return copyFrom(ctx, id, path)
	}
	out := t.TempDir()
	runs, err := everyRuns(t, f, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: out}}, 50*time.Millisecond,
		func(runs []BackupRun) bool { return len(runs) == 2 })
	assert.NilError(t, err)
	assert.Assert(t, is.Len(runs, 2))
	assert.Check(t, !runs[0].OK)
	assert.Check(t, is.Contains(runs[0].Error, "disk on fire"))
	assert.Check(t, runs[0].Backup == nil)
	assert.Check(t, runs[0].Next != nil, "a failed run does not end the loop")
	assert.Check(t, runs[1].OK, runs[1].Error)
	entries, err := os.ReadDir(out)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 1), "the failed run left nothing")

	n := BackupFailedNotification(runs[0])
	assert.Check(t, is.Equal(n.Status, alerting.StatusEvent))
	assert.Check(t, is.Equal(n.Source, alerting.SourceBackup))
	assert.Check(t, is.Equal(n.Severity, "critical"))
	assert.Check(t, is.Contains(n.Summary, "backup run 1 of project shop failed: "))
	var back BackupRun
	assert.NilError(t, json.Unmarshal(n.Backup, &back))
	assert.Check(t, is.Equal(back.Run, 1))
}

// A signal during a run cancels it: nothing half-written stays, the paused container
// is unpaused, and the loop ends with the run's error.
func TestBackupEveryInterruptedRun(t *testing.T) {
	f := newBackupFake(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.CopyFromFn = func(ctx context.Context, id, path string) (io.ReadCloser, error) {
		f.calls = append(f.calls, "copy-from "+path)
		cancel() // SIGINT while the volume is copied
		<-ctx.Done()
		return nil, ctx.Err()
	}
	out := t.TempDir()
	var runs []BackupRun
	err := BackupEvery(ctx, f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: out}},
		BackupSchedule{Every: time.Hour, Report: func(r BackupRun, _ error) { runs = append(runs, r) }})
	assert.Check(t, errors.Is(err, context.Canceled), "%v", err)
	assert.Assert(t, is.Len(runs, 1))
	assert.Check(t, runs[0].Interrupted)
	assert.Check(t, runs[0].Next == nil)
	assert.Check(t, is.Contains(f.calls, "unpause db1"))
	assert.Check(t, is.Contains(f.calls, "remove copier"))
	entries, err := os.ReadDir(out)
	assert.NilError(t, err)
	assert.Check(t, is.Len(entries, 0), "no partial backup")
}

func TestNextBackupRunSkipsMissedSlots(t *testing.T) {
	first := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		now  time.Duration
		want time.Duration
	}{{0, time.Hour}, {10 * time.Minute, time.Hour}, {time.Hour, 2 * time.Hour}, {150 * time.Minute, 3 * time.Hour}} {
		assert.Check(t, is.Equal(nextBackupRun(first, time.Hour, first.Add(c.now)), first.Add(c.want)), "now +%s", c.now)
	}
}

func TestBackupEveryRefusesANonPositiveInterval(t *testing.T) {
	err := BackupEvery(context.Background(), newBackupFake(t, nil, nil), "shop", progress.Nop, BackupOptions{}, BackupSchedule{})
	assert.ErrorContains(t, err, "must be positive")
}
