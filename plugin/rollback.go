package plugin

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

type rollbackOptions struct {
	to          int
	dryRun      bool
	waitTimeout time.Duration
	format      string
	withData    bool
	hosts       []string
	swarm       bool
}

func newRollbackCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := rollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] [SERVICE...]",
		Short: "Start a previous revision's retained containers again, through the service's strategy",
		Long: `Roll services back to a previous revision: its retained (stopped) containers start
again through the service's strategy and deploy.rollback_config, with no pull and no
build; the current containers are stopped and kept, so a rollback can be rolled back.
Without --to, each service goes back to the revision that served before the current one.
Without services, the routed ones: a recreate service (a database, typically) is rolled
back only when named (stop, its kept container takes the service's name back, start).
With --with-data, the services' named volumes are restored from the backup that
x-lifecycle.backup.before-deploy took before the revision being left was deployed, after
the revision left stopped and before the previous one starts (other containers mounting
them are stopped during the restore and started again).`,
		Example: `  docker lifecycle rollback
  docker lifecycle rollback web --to 3
  docker lifecycle rollback --dry-run
  docker lifecycle rollback db --with-data`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.to < 0 || (opts.to == 0 && cmd.Flags().Changed("to")):
				return usageError("--to must be a revision number, 1 or more (see 'docker lifecycle history SERVICE')")
			case opts.to > 0 && len(args) != 1:
				return usageError("--to needs exactly one SERVICE: revisions are numbered per service")
			case opts.withData && len(args) == 0:
				return usageError("--with-data restores volumes: name the SERVICE(s) explicitly")
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
	flags.BoolVar(&opts.withData, "with-data", false, "Also restore the services' volumes from the backup taken before the revision being left was deployed (x-lifecycle.backup.before-deploy)")
	durationFlag(flags, &opts.waitTimeout, "wait-timeout", 0, 0, 0, "How long to wait for each container to become healthy")
	enumFlag(flags, &opts.format, "format", "table", "Format of the --dry-run plan", planFormats...)
	hostsFlag(flags, &opts.hosts, "Roll back, in batches and all or nothing, on")
	flags.BoolVar(&opts.swarm, "swarm", false, "Roll the project's Swarm services back to their previous spec (the default on a Swarm manager; see docs/swarm.md)")
	return cmd
}

func runRollback(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts rollbackOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	// On Swarm the project name is enough (-p NAME), as for ps and history.
	p, name, err := project.loadOptional(ctx)
	if err != nil {
		return err
	}
	if hosts, err := hostNames(opts.hosts, p); err != nil {
		return err
	} else if len(hosts) > 0 {
		if opts.swarm {
			return usageError("--swarm and multi-host rollbacks exclude each other: a Swarm manager schedules across its nodes itself (docs/swarm.md)")
		}
		if p == nil {
			if p, err = project.load(ctx); err != nil {
				return err
			}
		}
		if opts.withData {
			return usageError("--with-data restores volumes on one engine: use `docker --context HOST lifecycle rollback --with-data` on each host")
		}
		return runHostsRollback(ctx, dockerCli, project, p.Spec.Hosts, hosts, opts, services)
	}
	eng, err := connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	if _, onSwarm, err := rollout.SwarmTarget(ctx, eng, opts.swarm); err != nil {
		return err
	} else if onSwarm {
		return runSwarmRollback(ctx, dockerCli, eng, project, p, name, opts, services)
	}
	if p == nil {
		if p, err = project.load(ctx); err != nil {
			return err // the compose file's error: one engine needs it
		}
	}
	if err := rollout.ValidatePolicy(p); err != nil {
		return err
	}
	if err := rollout.ObserveNetworks(ctx, eng, p); err != nil {
		return err
	}
	targets, err := rollout.RollbackTargets(ctx, eng, p, services, opts.to)
	if err != nil {
		if opts.withData && errors.Is(err, rollout.ErrNothingToRollBack) {
			return fmt.Errorf("%w; nothing changed. The pre-deploy backups are listed by `docker lifecycle history SERVICE` (BACKUP): stop the service, `docker lifecycle restore BACKUP --force`, deploy the old version (docs/backup.md)", err)
		}
		return err
	}
	events, view, err := newDeployProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	started := time.Now()
	names := make([]string, 0, len(targets))
	for s := range targets {
		names = append(names, s)
	}
	deployOpts := rollout.DeployOptions{
		Services: names, DryRun: opts.dryRun, WaitTimeout: opts.waitTimeout, LocalEngine: isLocalEngine(dockerCli),
		Command: "docker lifecycle rollback", Checkpoint: crashCheckpoint(), Rollback: targets, ToolVersion: meta.Version, View: view,
	}
	var plan strategies.Plan
	var restores []rollout.DataRestore
	if opts.withData {
		// Checked before anything changes: a missing record or a damaged backup stops here.
		if restores, err = rollout.PlanDataRestore(ctx, eng, p, targets); err != nil {
			_ = events.Close()
			return exitError(ctx, err)
		}
		plan, err = rollout.RollbackWithData(ctx, eng, p, events, deployOpts, restores)
	} else {
		plan, err = rollout.Deploy(ctx, eng, p, events, deployOpts)
	}
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if opts.dryRun {
		if err := writePlan(dockerCli.Out(), plan, opts.format); err != nil || opts.format != "table" {
			return err
		}
		for _, r := range restores {
			fmt.Fprintf(dockerCli.Out(), "Would restore %s of %s from %s (taken %s, before revision %d was deployed)\n",
				strings.Join(r.EngineVolumes, ", "), r.Service, r.Backup, r.Created.UTC().Format(time.RFC3339), r.Leaving)
		}
		return nil
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
	for _, r := range restores {
		parts = append(parts, fmt.Sprintf("%s restored from %s", strings.Join(r.EngineVolumes, ", "), r.Backup))
	}
	fmt.Fprintf(dockerCli.Out(), "Rolled back %s in %s\n", strings.Join(parts, ", "), time.Since(started).Round(100*time.Millisecond))
	return nil
}
