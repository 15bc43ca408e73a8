package plugin

import (
	"fmt"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type monitorOptions struct {
	listen string
}

func newMonitorCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := monitorOptions{}
	cmd := &cobra.Command{
		Use:   "monitor [OPTIONS]",
		Short: "Serve the project's metrics for Prometheus until stopped",
		Long: `Serve Prometheus metrics of the project at http://LISTEN/metrics, in the foreground until
Ctrl-C or SIGTERM: per container CPU, memory and its limit, network and block I/O, pids,
restarts, health and up; per service its running and healthy containers and current
revision; per route and backend the router's requests by status class, errors and latency
histogram. The numbers are those of 'stats' (one stats stream per container). The endpoint
has no authentication: an address other than loopback exposes the project's names and
numbers to whoever reaches it. The metrics are listed in docs/observability.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMonitor(cmd, dockerCli, project, opts)
		},
	}
	cmd.Flags().StringVar(&opts.listen, "listen", "127.0.0.1:9464", "Address (host:port) of the metrics endpoint; no authentication, so keep it on loopback unless the network is trusted")
	return cmd
}

func runMonitor(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts monitorOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	err = rollout.Monitor(ctx, eng, name, rollout.MonitorOptions{
		Listen: opts.listen,
		Serving: func(addr string) {
			fmt.Fprintf(dockerCli.Err(), "serving metrics of project %s on http://%s/metrics (Ctrl-C stops)\n", name, addr)
		},
	})
	return exitError(ctx, err)
}
