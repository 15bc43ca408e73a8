package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// `backup --every DURATION`: a backup at start and every DURATION after, until the
// command's context ends (docs/backup.md, "Scheduled backups"). Each run is Backup as
// the one-shot command runs it (retention included); a failed run is reported and the
// loop goes on: the next run may well succeed (a full disk freed, a service back up).

// MinBackupInterval is the shortest --every: below, the loop would mostly be busy
// pausing or stopping the services it backs up.
const MinBackupInterval = time.Second

// BackupReport is a backup as `backup --format json` prints it: the manifest's
// fields, the backup's location and what retention pruned (docs/backup.md).
type BackupReport struct {
	Manifest
	Location string   `json:"location"`
	Pruned   []string `json:"pruned"`
}

// NewBackupReport is res as `backup --format json` prints it.
func NewBackupReport(res BackupResult) BackupReport {
	pruned := res.Pruned
	if pruned == nil {
		pruned = []string{}
	}
	return BackupReport{Manifest: res.Manifest, Location: res.Location, Pruned: pruned}
}

// BackupRun is one run of `backup --every`: one line of its `--format json` output and
// the "backup" field of the alert a failed run sends (docs/backup.md).
type BackupRun struct {
	Project  string    `json:"project"`
	Run      int       `json:"run"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// OK is false when the run failed, also when it wrote a backup but a hook after it
	// or the pruning failed (Backup is then set).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Backup is what the run wrote; nil when it wrote nothing.
	Backup *BackupReport `json:"backup"`
	// Drill is the drill of that backup (`backup --every --drill`); nil without
	// --drill, or when the run wrote no backup or the drill could not start. A drill
	// that did not pass fails the run (OK false, Error says why).
	Drill *DrillResult `json:"drill,omitempty"`
	// Interrupted: the run was cancelled (SIGINT, SIGTERM) before it completed; the
	// loop ends with it.
	Interrupted bool `json:"interrupted,omitempty"`
	// Next is when the next run starts; nil when the loop ends after this run.
	Next *time.Time `json:"next"`
}

// BackupSchedule is how often `backup --every` runs, and where each run is told.
type BackupSchedule struct {
	Every time.Duration
	// Drill, when set, drills every backup a run wrote completely (Drill), before the
	// run is reported: a schedule that proves each backup restorable, and keeps the
	// drill record that history, monitor and the drill-age rule read fresh.
	Drill *ScheduledDrill
	// Report receives every run once it ended, failed ones included, before the wait
	// for the next; its error is the run's (nil when OK).
	Report func(BackupRun, error)
}

// ScheduledDrill is what a scheduled drill needs besides the backup: the project's
// compose file (the scratch project is made from it) and the drill's options (their
// Target and Backup are each run's).
type ScheduledDrill struct {
	Project *compose.Project
	Options DrillOptions
}

// BackupEvery backs project up at once, then every s.Every (measured from the first
// run's start, so the times do not drift by the runs' durations; a run longer than the
// interval makes the next start at the next slot, the missed ones are skipped, not made
// up), applying opts.Retention after each, until ctx ends. A failed run is reported
// and does not end the loop. ctx ending between runs ends the loop with nil; during a
// run, the run is cancelled as an interrupted `backup` is (the partial backup removed,
// paused or stopped containers resumed, the hooks' after commands run) and its error
// is returned.
func BackupEvery(ctx context.Context, eng engine.Engine, project string, events progress.Writer, opts BackupOptions, s BackupSchedule) error {
	if s.Every <= 0 {
		return fmt.Errorf("backup interval %s: must be positive (at least %s on the command line)", s.Every, MinBackupInterval)
	}
	first := time.Now()
	for n := 1; ; n++ {
		started := time.Now()
		res, err := Backup(ctx, eng, project, events, opts)
		run := BackupRun{Project: project, Run: n, Started: started.UTC(), Finished: time.Now().UTC(), OK: err == nil}
		if res.Location != "" {
			report := NewBackupReport(res)
			run.Backup = &report
		}
		if err == nil && s.Drill != nil {
			run.Drill, err = drillScheduled(ctx, eng, events, opts.Target, res, *s.Drill)
			run.OK, run.Finished = err == nil, time.Now().UTC()
		}
		if err != nil {
			run.Error = err.Error()
		}
		if err != nil && ctx.Err() != nil {
			run.Interrupted = true
			s.Report(run, err)
			return fmt.Errorf("backup run %d of project %s: %w", n, project, err)
		}
		if ctx.Err() != nil {
			// The run completed as the signal came: it is reported, and nothing follows.
			s.Report(run, err)
			return nil
		}
		next := nextBackupRun(first, s.Every, time.Now())
		run.Next = &next
		s.Report(run, err)
		wait := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-wait.C:
		}
	}
}

// drillScheduled drills the backup res of a scheduled run; the result is nil when
// the drill did not get as far as its scratch project.
func drillScheduled(ctx context.Context, eng engine.Engine, events progress.Writer, target BackupTarget, res BackupResult, d ScheduledDrill) (*DrillResult, error) {
	opts := d.Options
	opts.Target, opts.Backup = target, res.Name
	dres, err := Drill(ctx, eng, d.Project, events, opts)
	if err != nil {
		err = fmt.Errorf("the drill of %s did not pass: %w", res.Location, err)
	}
	if dres.ScratchProject == "" {
		return nil, err
	}
	return &dres, err
}

// nextBackupRun is the first slot first + k·every after now.
func nextBackupRun(first time.Time, every time.Duration, now time.Time) time.Time {
	slots := now.Sub(first)/every + 1
	return first.Add(slots * every).UTC()
}

// BackupFailedNotification is a failed run of `backup --every` as a notification for
// the alert targets: status event, source backup, severity critical (the project's
// data is not being backed up), the run under "backup".
func BackupFailedNotification(run BackupRun) alerting.Alert {
	raw, _ := json.Marshal(run)
	summary := fmt.Sprintf("%s backup run %d of project %s failed: %s", run.Finished.Format(time.RFC3339), run.Run, run.Project, run.Error)
	if run.Backup != nil {
		summary = fmt.Sprintf("%s backup run %d of project %s wrote %s but failed: %s", run.Finished.Format(time.RFC3339), run.Run, run.Project, run.Backup.Location, run.Error)
	}
	return alerting.Alert{
		Status: alerting.StatusEvent, Source: alerting.SourceBackup, Project: run.Project,
		Rule: "backup", Metric: "backup", Severity: "critical", For: "0s",
		StartsAt: run.Started, Time: run.Finished, Summary: summary, Backup: raw,
	}
}
