package plugin

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type guardOptions struct {
	format string
}

func newGuardCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := guardOptions{}
	cmd := &cobra.Command{
		Use:   "guard [OPTIONS]",
		Short: "Keep the project's containers running: restart the unhealthy ones, report execs and OOM kills",
		Long: `Watch the project's containers through the engine's event stream, in the foreground until
Ctrl-C or SIGTERM. A container that fails its health check for x-lifecycle.guard's 'after'
(default: its healthcheck's interval × retries, counted from the first failing probe) is
restarted; restarts of one container are spaced by a backoff (10s doubling to 5m, reset
after 10m healthy) within a budget (3 in 10m), after which the container is quarantined:
left as it is, for inspection, with an alert. A 'docker exec' into a project container and
an OOM kill are reported. Every alert is one line on stderr; with --format json also one
JSON object per line on stdout (schema in docs/guard.md). After a reconnection of the
event stream, and at start, the containers are listed and inspected again, so a restarted
guard does not restart a container twice.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGuard(cmd, dockerCli, project, opts)
		},
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "text", "Output format: text (alerts on stderr), or json (also one JSON object per alert on stdout)", "text", "json")
	return cmd
}

func runGuard(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts guardOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	announced := false
	err = rollout.Guard(ctx, eng, rollout.NewGuardTarget(p), rollout.GuardOptions{
		Alert: func(a rollout.GuardAlert) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(dockerCli.Err(), a.String())
			if opts.format == "json" {
				b, err := json.Marshal(a)
				if err == nil {
					_, _ = dockerCli.Out().Write(append(b, '\n'))
				}
			}
		},
		Watching: func(n int) {
			mu.Lock()
			defer mu.Unlock()
			if !announced {
				fmt.Fprintf(dockerCli.Err(), "guarding project %s: %d running containers (Ctrl-C stops)\n", p.Name, n)
				announced = true
			}
		},
	})
	return exitError(ctx, err)
}
