package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type backupOptions struct {
	to             string
	consistency    string
	format         string
	encryptTo      []string
	encryptToFiles []string
	keep           rollout.Retention
	every          time.Duration
	drill          bool
	identities     []string
}

func newBackupCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts backupOptions
	cmd := &cobra.Command{
		Use:   "backup [OPTIONS] --to DIR [--every DURATION] [VOLUME|SERVICE...]",
		Short: "Archive the project's named volumes (or those named, or mounted by the services named) into DIR",
		Long: `docker lifecycle backup [OPTIONS] --to DIR|s3://BUCKET/PREFIX [--every DURATION] [VOLUME|SERVICE...]

archives the project's named volumes (or those named, or mounted by the services
named) into a new backup <project>-<timestamp> with a manifest, then applies the
--keep-* retention to the project's older backups there. With --every DURATION it
runs until SIGINT/SIGTERM: a backup at start and every DURATION after, each followed
by the retention; a failed run is reported and the next one still runs. See
docs/backup.md.

backup list and backup prune read (and prune removes in) the target only. A volume
named list or prune is backed up by its engine name (<project>_list).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every misuse at once, before anything is read or written.
			var problems []string
			if opts.to == "" {
				problems = append(problems, "--to DIR|s3://BUCKET/PREFIX is required: where the backup is written")
			}
			problems = append(problems, keepFlagProblems(opts.keep)...)
			modes := []string{compose.ConsistencyPause, compose.ConsistencyStop, compose.ConsistencyNone}
			if opts.consistency != "" && !slices.Contains(modes, opts.consistency) {
				problems = append(problems, fmt.Sprintf("--consistency must be one of pause, stop, none, got %q", opts.consistency))
			}
			if opts.format != "" && opts.format != "json" {
				problems = append(problems, fmt.Sprintf("--format must be json or empty, got %q", opts.format))
			}
			if cmd.Flags().Changed("every") && opts.every < rollout.MinBackupInterval {
				problems = append(problems, fmt.Sprintf("--every must be at least %s (e.g. 6h, 24h), got %s", rollout.MinBackupInterval, opts.every))
			}
			if opts.drill && opts.every == 0 {
				problems = append(problems, "--drill drills each backup of a schedule: use it with --every (after a single backup, run `docker lifecycle drill DIR/latest`)")
			}
			if len(opts.identities) > 0 && !opts.drill {
				problems = append(problems, "--identity decrypts the backups that --drill drills: use it with --drill")
			}
			if opts.drill && len(opts.encryptTo)+len(opts.encryptToFiles) > 0 && len(opts.identities) == 0 {
				problems = append(problems, "--drill of encrypted backups needs the identity that decrypts them: add --identity FILE")
			}
			if len(problems) > 0 {
				return usageError("%s", strings.Join(problems, "; "))
			}
			return runBackup(cmd, dockerCli, project, opts, args)
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "Directory under which <project>-<timestamp>/ is written, or s3://BUCKET/PREFIX (endpoint and credentials from AWS_* variables)")
	cmd.Flags().StringArrayVar(&opts.encryptTo, "encrypt-to", nil, "Encrypt the archives with age to this recipient (age1…; repeatable)")
	cmd.Flags().StringArrayVar(&opts.encryptToFiles, "encrypt-to-file", nil, "Encrypt the archives with age to the recipients in this file, one a line (like age -R; repeatable)")
	cmd.Flags().IntVar(&opts.keep.Last, "keep-last", 0, "After the backup, prune this project's backups in the target but the N newest")
	cmd.Flags().IntVar(&opts.keep.Daily, "keep-daily", 0, "After the backup, keep the newest backup of each of the N last days that have one (with the other --keep-* rules)")
	cmd.Flags().IntVar(&opts.keep.Weekly, "keep-weekly", 0, "Keep the newest backup of each of the N last ISO weeks that have one")
	cmd.Flags().IntVar(&opts.keep.Monthly, "keep-monthly", 0, "Keep the newest backup of each of the N last months that have one")
	cmd.Flags().StringVar(&opts.consistency, "consistency", "", "pause, stop or none: what happens to the containers mounting a volume while it is copied (default: x-lifecycle.backup.consistency, else pause)")
	cmd.Flags().StringVar(&opts.format, "format", "", "Print the manifest as 'json' (with --every: one JSON object per run, a line each)")
	cmd.Flags().DurationVar(&opts.every, "every", 0, "Run until SIGINT/SIGTERM: a backup now and every DURATION after (e.g. 6h; at least 1s), retention after each")
	cmd.Flags().BoolVar(&opts.drill, "drill", false, "With --every: drill each backup after it is written (as `drill`: restore into an isolated scratch project, verify, remove it); a drill that fails fails the run")
	cmd.Flags().StringArrayVar(&opts.identities, "identity", nil, "With --drill: age identity file that decrypts the encrypted backups (like age -i; repeatable)")
	// `backup list` and `backup prune`: a volume or service named list or prune is
	// backed up by its engine name (<project>_list) or the volumes it mounts.
	cmd.AddCommand(newBackupListCommand(dockerCli, project), newBackupPruneCommand(dockerCli, project))
	return cmd
}

// keepFlagProblems reports every negative --keep-* value (backup and backup prune).
func keepFlagProblems(r rollout.Retention) []string {
	var problems []string
	for _, keep := range []struct {
		flag string
		n    int
	}{{"keep-last", r.Last}, {"keep-daily", r.Daily}, {"keep-weekly", r.Weekly}, {"keep-monthly", r.Monthly}} {
		if keep.n < 0 {
			problems = append(problems, fmt.Sprintf("--%s must not be negative, got %d", keep.flag, keep.n))
		}
	}
	return problems
}

func runBackup(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts backupOptions, targets []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	var files []rollout.RecipientsFile
	var readErrs []error
	for _, name := range opts.encryptToFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			readErrs = append(readErrs, fmt.Errorf("--encrypt-to-file: %w", err))
			continue
		}
		files = append(files, rollout.RecipientsFile{Name: name, Content: string(b)})
	}
	recipients, err := rollout.ParseRecipients(opts.encryptTo, files)
	if err := errors.Join(append(readErrs, err)...); err != nil {
		return usageError("%v", err)
	}
	target, err := rollout.OpenTarget(opts.to)
	if err != nil {
		return err
	}
	backupOpts := rollout.BackupOptions{Targets: targets, Target: target, Recipients: recipients, Retention: opts.keep,
		Consistency: opts.consistency, ToolVersion: meta.Version}
	// The compose file is optional (-p NAME is enough); when it loads, it gives the
	// consistency mode, the hooks and the files recorded in the manifest (with -p NAME
	// alone no hook runs).
	p, name, err := project.loadOptional(ctx)
	if err != nil {
		return err
	}
	if p != nil {
		backupOpts.ComposeFiles = p.ComposeFiles
		backupOpts.Hooks = p.Spec.Backup.Hooks
		if backupOpts.Consistency == "" {
			backupOpts.Consistency = p.Spec.Backup.Mode()
		}
	}
	eng, events, err := connectWithProgress(ctx, dockerCli, project.progress)
	if err != nil {
		return err
	}
	if opts.every > 0 {
		defer events.Close()
		var drill *rollout.ScheduledDrill
		if opts.drill {
			if p == nil {
				return usageError("--drill makes its scratch project from the compose file, and none was found: run it in the project's directory, or name the file with -f")
			}
			identities, err := readIdentities(opts.identities)
			if err != nil {
				return usageError("%v", err)
			}
			drill = &rollout.ScheduledDrill{Project: p, Options: rollout.DrillOptions{Identities: identities}}
		}
		return runBackupEvery(ctx, dockerCli, p, name, eng, events, backupOpts, opts, drill)
	}
	res, err := rollout.Backup(ctx, eng, name, events, backupOpts)
	_ = events.Close()
	if err != nil && res.Location == "" {
		return exitError(ctx, err)
	}
	// A backup written but not fully pruned is still reported, then the error.
	if opts.format == "json" {
		if perr := printBackupJSON(dockerCli.Out(), res); perr != nil {
			return perr
		}
	} else {
		printBackup(dockerCli.Out(), name, rollout.NewBackupReport(res))
	}
	if err != nil {
		return exitError(ctx, err)
	}
	return nil
}

// printBackupJSON is `backup --format json`: the manifest's fields, the backup's
// location and the backups retention pruned (docs/backup.md).
func printBackupJSON(out io.Writer, res rollout.BackupResult) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(rollout.NewBackupReport(res))
}

func printBackup(out io.Writer, project string, b rollout.BackupReport) {
	fmt.Fprintf(out, "Backup of project %s written to %s\n", project, b.Location)
	printManifestSummary(out, b.Manifest)
	for _, p := range b.Pruned {
		fmt.Fprintf(out, "Pruned %s\n", p)
	}
}

func printManifestSummary(out io.Writer, m rollout.Manifest) {
	for _, v := range m.Volumes {
		fmt.Fprintf(out, "  %-20s %8d files %12d bytes -> %s (%d bytes, sha256 %.12s)\n", v.Name, v.Files, v.Size, v.Archive, v.ArchiveBytes, v.SHA256)
	}
}

type restoreOptions struct {
	project    string
	force      bool
	identities []string
}

func newRestoreCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] BACKUP_DIR|s3://BUCKET/PREFIX/BACKUP",
		Short: "Restore a backup's volumes, after checking every archive against its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd, dockerCli, project, opts, args[0])
		},
	}
	cmd.Flags().StringVar(&opts.project, "project", "", "Restore into this project (volumes named <project>_<volume>); default: the backup's own")
	cmd.Flags().BoolVar(&opts.force, "force", false, "Write into volumes that already hold files (files not in the backup stay)")
	cmd.Flags().StringArrayVar(&opts.identities, "identity", nil, "age identity file that decrypts an encrypted backup (like age -i; repeatable)")
	return cmd
}

func runRestore(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts restoreOptions, location string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	restoreOpts := rollout.RestoreOptions{Project: opts.project, Force: opts.force, LatestOf: project.projectName}
	identities, err := readIdentities(opts.identities)
	if err != nil {
		return usageError("%v", err)
	}
	restoreOpts.Identities = identities
	where, backup, err := rollout.SplitBackupLocation(location)
	if err != nil {
		return usageError("%v", err)
	}
	target, err := rollout.OpenTarget(where)
	if err != nil {
		return err
	}
	eng, events, err := connectWithProgress(ctx, dockerCli, project.progress)
	if err != nil {
		return err
	}
	volumes, err := rollout.Restore(ctx, eng, target, backup, events, restoreOpts)
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	for _, v := range volumes {
		fmt.Fprintf(dockerCli.Out(), "Restored volume %s\n", v)
	}
	return nil
}
