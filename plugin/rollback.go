package plugin

import (
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type rollbackOptions struct {
	to          int
	dryRun      bool
	waitTimeout time.Duration
	format      string
}

func newRollbackCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := rollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] [SERVICE...]",
		Short: "Start a previous revision's retained containers again, through the service's strategy",
		Long: `Roll services back to a previous revision: its retained (stopped) containers start
again through the service's strategy and deploy.rollback_config, with no pull and no
build; the current containers are stopped and kept, so a rollback can be rolled back.
Without --to, each service goes back to the revision that served before the current one.`,
		Example: `  docker lifecycle rollback
  docker lifecycle rollback web --to 3
  docker lifecycle rollback --dry-run`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.to < 0 || (opts.to == 0 && cmd.Flags().Changed("to")):
				return usageError("--to must be a revision number, 1 or more (see 'docker lifecycle history SERVICE')")
			case opts.to > 0 && len(args) != 1:
				return usageError("--to needs exactly one SERVICE: revisions are numbered per service")
			case cmd.Flags().Changed("format") && !opts.dryRun:
				return usageError("--format is the format of the --dry-run plan: add --dry-run")
			}
			return runRollback(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	flags := cmd.Flags()
	flags.IntVar(&opts.to, "to", 0, "Revision to roll back to (default: the one before the current)")
	flags.BoolVar(&opts.dryRun, "dry-run", false, "Print the plan and change nothing")
	durationFlag(flags, &opts.waitTimeout, "wait-timeout", 0, 0, 0, "How long to wait for each container to become healthy")
	enumFlag(flags, &opts.format, "format", "table", "Format of the --dry-run plan", planFormats...)
	return cmd
}

func runRollback(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts rollbackOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	targets, err := rollout.RollbackTargets(ctx, eng, p, services, opts.to)
	if err != nil {
		return err
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	started := time.Now()
	names := make([]string, 0, len(targets))
	for s := range targets {
		names = append(names, s)
	}
	plan, err := rollout.Deploy(ctx, eng, p, events, rollout.DeployOptions{
		Services: names, DryRun: opts.dryRun, WaitTimeout: opts.waitTimeout, LocalEngine: isLocalEngine(dockerCli),
		Command: "docker lifecycle rollback", Checkpoint: crashCheckpoint(), Rollback: targets,
	})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if opts.dryRun {
		return writePlan(dockerCli.Out(), plan, opts.format)
	}
	var parts []string
	for _, s := range plan.Services() {
		if rev, ok := targets[s]; ok {
			parts = append(parts, fmt.Sprintf("%s to revision %d", s, rev))
		}
	}
	if len(parts) == 0 {
		fmt.Fprintf(dockerCli.Out(), "Nothing to roll back: the services already run the revisions asked for.\n")
		return nil
	}
	fmt.Fprintf(dockerCli.Out(), "Rolled back %s in %s\n", strings.Join(parts, ", "), time.Since(started).Round(100*time.Millisecond))
	return nil
}
