package plugin

import (
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

func newPromoteCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "promote [SERVICE...]",
		Short: "Switch blue-green services waiting for promotion, or take a running canary to 100 %",
		Long: `For blue-green services with promote: manual, switch all traffic to the new colour
that the last deploy brought up and left waiting, then stop the old colour after
scale-down-delay (its containers are kept for rollback).
For a canary service whose deploy is running, skip the remaining steps and analysis:
the running deploy routes 100 % to the new revision.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPromote(cmd, dockerCli, project, args)
		},
		ValidArgsFunction: completeServices(project),
	}
}

func runPromote(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	if len(services) == 1 && p.ServiceSpecs[services[0]].Strategy == compose.StrategyCanary {
		if err := rollout.SendCanarySignal(ctx, eng, p, services[0], rollout.SignalPromote); err != nil {
			return err
		}
		fmt.Fprintf(dockerCli.Out(), "Promoting the canary of %s: the running deploy routes 100 %% to it now\n", services[0])
		return nil
	}
	events, view, err := newDeployProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	started := time.Now()
	plan, err := rollout.Deploy(ctx, eng, p, events, rollout.DeployOptions{
		Services: services, LocalEngine: isLocalEngine(dockerCli), Command: "docker lifecycle promote",
		Checkpoint: crashCheckpoint(), Promote: true, View: view,
	})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if plan.Empty() {
		fmt.Fprintln(dockerCli.Out(), "Nothing to promote.")
		return nil
	}
	fmt.Fprintf(dockerCli.Out(), "Promoted %s in %s\n", strings.Join(plan.Services(), ", "), time.Since(started).Round(100*time.Millisecond))
	return nil
}
