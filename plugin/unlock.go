package plugin

import (
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/lock"
)

func newUnlockCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock",
		Short: "Remove a stale project lock left by a deploy that was killed",
		Long: `Remove the project's deploy lock. Deploys take the lock so that two of them never
interleave; a deploy killed on another machine leaves it behind. Only run this when the
holder it names is gone.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUnlock(cmd, dockerCli, project)
		},
	}
}

func runUnlock(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	holder, held, err := lock.Break(ctx, eng, name)
	if err != nil {
		return err
	}
	if !held {
		fmt.Fprintf(dockerCli.Out(), "Project %s is not locked.\n", name)
		return nil
	}
	fmt.Fprintf(dockerCli.Out(), "Removed the lock of project %s held by %s\n", name, holder)
	return nil
}
