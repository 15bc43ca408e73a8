package plugin

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type backupPruneOptions struct {
	from   string
	keep   rollout.Retention
	dryRun bool
	format string
}

func newBackupPruneCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts backupPruneOptions
	cmd := &cobra.Command{
		Use:   "prune --from DIR|s3://BUCKET/PREFIX --keep-last N|--keep-daily N|… [OPTIONS]",
		Short: "Remove the project's backups in a target that the --keep-* rules do not keep; touches the target only",
		Long: `prune applies the retention that backup --keep-* applies after a backup, on its own:
a backup is kept when any rule keeps it (restic's semantics). Only the project's own
backups are considered, matched by manifest, never by name: another project's backups
and directories whose manifest cannot be read are left alone. --dry-run shows what
would go. It reads and removes in the target only: no engine call, and -p PROJECT is
enough without a compose file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Every misuse at once, before anything is read or removed.
			var problems []string
			if opts.from == "" {
				problems = append(problems, "--from DIR|s3://BUCKET/PREFIX is required: where the backups are")
			}
			problems = append(problems, keepFlagProblems(opts.keep)...)
			if !opts.keep.Enabled() && len(keepFlagProblems(opts.keep)) == 0 {
				problems = append(problems, "give at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly (a positive N): prune never removes every backup")
			}
			if len(problems) > 0 {
				return usageError("%s", strings.Join(problems, "; "))
			}
			return runBackupPrune(cmd, dockerCli, project, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.from, "from", "", "Directory or s3://BUCKET/PREFIX holding the backups (endpoint and credentials from AWS_* variables)")
	flags.IntVar(&opts.keep.Last, "keep-last", 0, "Keep the N newest backups of the project")
	flags.IntVar(&opts.keep.Daily, "keep-daily", 0, "Keep the newest backup of each of the N last days (UTC) that have one")
	flags.IntVar(&opts.keep.Weekly, "keep-weekly", 0, "Keep the newest backup of each of the N last ISO weeks that have one")
	flags.IntVar(&opts.keep.Monthly, "keep-monthly", 0, "Keep the newest backup of each of the N last months that have one")
	flags.BoolVar(&opts.dryRun, "dry-run", false, "Show what would be removed; remove nothing")
	enumFlag(flags, &opts.format, "format", "text", "Output format", "text", "json")
	return cmd
}

func runBackupPrune(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts backupPruneOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	// The compose file is optional (-p NAME is enough); no engine call.
	_, name, err := project.loadOptional(ctx)
	if err != nil {
		return err
	}
	target, err := rollout.OpenTarget(opts.from)
	if err != nil {
		return err
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	res, err := rollout.PruneBackups(ctx, target, name, opts.keep, opts.dryRun, events)
	_ = events.Close()
	if opts.format == "json" {
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		if perr := enc.Encode(res); perr != nil {
			return perr
		}
	} else {
		verb := "Pruned"
		if res.DryRun {
			verb = "Would prune"
		}
		for _, b := range res.Pruned {
			fmt.Fprintf(dockerCli.Out(), "%s %s (%s)\n", verb, b.Location, b.Created.UTC().Format(time.RFC3339))
		}
		for _, b := range res.Kept {
			fmt.Fprintf(dockerCli.Out(), "Kept %s (%s)\n", b.Location, b.Created.UTC().Format(time.RFC3339))
		}
		for _, u := range res.Unreadable {
			fmt.Fprintf(dockerCli.Out(), "Left alone %s (manifest unreadable)\n", u)
		}
	}
	if err != nil {
		return exitError(ctx, err)
	}
	return nil
}
