package plugin

import (
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type downOptions struct {
	volumes bool
	timeout int
	swarm   bool
}

func newDownCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := downOptions{timeout: -1}
	cmd := &cobra.Command{
		Use:   "down [OPTIONS]",
		Short: "Stop and remove the project's containers and networks (volumes with --volumes)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.timeout < 0 && cmd.Flags().Changed("timeout") {
				return usageError("--timeout must be 0 or more seconds, got %d", opts.timeout)
			}
			return runDown(cmd, dockerCli, project, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.volumes, "volumes", "v", false, "Remove the project's named volumes too")
	cmd.Flags().BoolVar(&opts.swarm, "swarm", false, "Remove the project's Swarm services, networks, secrets and configs (the default on a Swarm manager; see docs/swarm.md)")
	cmd.Flags().IntVarP(&opts.timeout, "timeout", "t", -1, "Seconds to wait for each container to stop before killing it (default: its stop_grace_period)")
	return cmd
}

func runDown(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts downOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	downOpts := rollout.DownOptions{RemoveVolumes: opts.volumes, Command: "docker lifecycle down"}
	if opts.timeout >= 0 {
		t := time.Duration(opts.timeout) * time.Second
		downOpts.Timeout = &t
	}
	_, onSwarm, err := rollout.SwarmTarget(ctx, eng, opts.swarm)
	if err != nil {
		_ = events.Close()
		return err
	}
	where := ""
	if onSwarm {
		where = " from Swarm"
		err = rollout.DownSwarm(ctx, eng, name, events, downOpts)
	} else {
		err = rollout.Down(ctx, eng, name, events, downOpts)
	}
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	fmt.Fprintf(dockerCli.Out(), "Removed project %s%s\n", name, where)
	return nil
}
