package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// runBackupEvery is `backup --every`: rollout.BackupEvery, each run rendered as it
// ends — the backup on stdout (or one JSON object a line), a failure and the next run's
// time on stderr, a failure also to the project's alert targets (p nil: -p NAME alone,
// no targets).
func runBackupEvery(ctx context.Context, dockerCli command.Cli, p *compose.Project, project string, eng engine.Engine,
	events progress.Writer, backupOpts rollout.BackupOptions, opts backupOptions, drill *rollout.ScheduledDrill) error {
	var notifier *alerting.Notifier
	if p != nil {
		var err error
		if notifier, err = alertTargetsNotifier(p, dockerCli.Err(), "backup"); err != nil {
			return err
		}
		if notifier != nil {
			defer notifier.Close(10 * time.Second)
		}
	}
	out, errOut := dockerCli.Out(), dockerCli.Err()
	drilled := ""
	if drill != nil {
		drilled = ", drilling each backup"
	}
	fmt.Fprintf(errOut, "backing up project %s to %s now and every %s%s, until SIGINT or SIGTERM\n", project, opts.to, opts.every, drilled)
	report := func(run rollout.BackupRun, err error) {
		if opts.format == "json" {
			_ = json.NewEncoder(out).Encode(run)
		} else if run.Backup != nil {
			printBackup(out, project, *run.Backup)
			if d := run.Drill; d != nil && d.Passed {
				fmt.Fprintf(out, "Drill of %s passed: RTO %.1fs (restore %.1fs, healthy %.1fs), %d verify commands\n",
					d.Backup, d.RTOSeconds, d.RestoreSeconds, d.HealthySeconds, len(d.Checks))
			}
		}
		switch {
		case run.Interrupted:
			return // the command's error says it
		case err != nil:
			fmt.Fprintf(errOut, "backup run %d of project %s failed: %v\n", run.Run, project, err)
			if notifier != nil {
				notifier.Notify(rollout.BackupFailedNotification(run))
			}
		}
		if run.Next != nil {
			fmt.Fprintf(errOut, "next backup of project %s at %s (in %s)\n", project, run.Next.Format(time.RFC3339), time.Until(*run.Next).Round(time.Second))
		}
	}
	err := rollout.BackupEvery(ctx, eng, project, events, backupOpts, rollout.BackupSchedule{Every: opts.every, Drill: drill, Report: report})
	return exitError(ctx, err)
}
