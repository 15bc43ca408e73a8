package plugin

import (
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

func newPromoteCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "promote [SERVICE...]",
		Short: "Switch blue-green services with manual promotion to their new colour",
		Long: `Switch all traffic of blue-green services (x-lifecycle.blue-green.promote: manual) to the
new colour that the last deploy brought up and left waiting, then stop the old colour
after scale-down-delay (its containers are kept for rollback).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := commandContext(cmd)
			defer cancel()
			p, eng, err := openProject(ctx, dockerCli, project)
			if err != nil {
				return err
			}
			events, err := newProgress(dockerCli, project.progress)
			if err != nil {
				return err
			}
			started := time.Now()
			plan, err := rollout.Deploy(ctx, eng, p, events, rollout.DeployOptions{
				Services: args, LocalEngine: isLocalEngine(dockerCli), Command: "docker lifecycle promote",
				Checkpoint: crashCheckpoint(), Promote: true,
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
		},
		ValidArgsFunction: completeServices(project),
	}
}
