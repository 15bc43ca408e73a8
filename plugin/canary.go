package plugin

import (
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// The canary control commands talk to the deploy that is running the canary (usually
// in another terminal or a CI job): see rollout.CanarySignal.

func newPauseCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	return canaryCommand(dockerCli, project, rollout.SignalPause, "Hold a running canary at its current weight",
		"Paused the canary of %s: it stays at its current weight until `docker lifecycle resume %[1]s`\n")
}

func newResumeCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	return canaryCommand(dockerCli, project, rollout.SignalResume, "Let a paused canary go on",
		"Resumed the canary of %s\n")
}

func newAbortCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	return canaryCommand(dockerCli, project, rollout.SignalAbort, "Stop a running canary: all traffic back to the stable revision, new containers removed",
		"Aborting the canary of %s: the deploy rolls it back and exits with code 3\n")
}

func canaryCommand(dockerCli command.Cli, project *projectOptions, signal rollout.CanarySignal, short, done string) *cobra.Command {
	return &cobra.Command{
		Use:   string(signal) + " SERVICE",
		Short: short,
		Args:  exactlyOne("SERVICE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCanarySignal(cmd, dockerCli, project, signal, args[0], done)
		},
		ValidArgsFunction: completeServices(project),
	}
}

func runCanarySignal(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, signal rollout.CanarySignal, service, done string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	if err := rollout.SendCanarySignal(ctx, eng, p, service, signal); err != nil {
		return err
	}
	fmt.Fprintf(dockerCli.Out(), done, service)
	return nil
}
