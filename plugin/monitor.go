package plugin

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
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
numbers to whoever reaches it. The metrics are listed in docs/observability.md.

With x-lifecycle.alerts rules in the compose file, the monitor also evaluates them every
alerts.interval (cpu, memory, restarts, unhealthy, oom, error-rate, p99, deploy; each
with its 'for' and a resolve threshold) and sends firing and resolved notifications to
the alert targets (webhook, exec, stderr); see docs/observability.md#alerts.`,
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
	// The compose file, when there is one, holds x-lifecycle.alerts; with -p alone
	// the monitor serves metrics only. A file with a broken x-lifecycle is an error,
	// not a monitor silently without its alerts.
	var name string
	var eng engine.Engine
	p, err := project.load(ctx)
	switch {
	case err == nil:
		name = p.Name
		eng, err = connect(ctx, dockerCli)
	case errors.Is(err, compose.ErrInvalidSpec):
		return err
	default:
		name, eng, err = openProjectName(ctx, dockerCli, project)
	}
	if err != nil {
		return err
	}
	var alerts *rollout.AlertOptions
	var notifier *alerting.Notifier
	if p != nil {
		if alerts = rollout.NewAlertOptions(p); alerts != nil {
			targets, err := alerting.NewTargets(p.Spec.Alerts.Targets, dockerCli.Err())
			if err != nil {
				return err
			}
			logf := func(s string) { fmt.Fprintln(dockerCli.Err(), s) }
			notifier = alerting.NewNotifier(targets, logf)
			defer notifier.Close(10 * time.Second)
			alerts.Notify, alerts.Log = notifier.Notify, logf
			describeAlerts(dockerCli.Err(), alerts, targets)
		}
	}
	err = rollout.Monitor(ctx, eng, name, rollout.MonitorOptions{
		Listen: opts.listen,
		Serving: func(addr string) {
			fmt.Fprintf(dockerCli.Err(), "serving metrics of project %s on http://%s/metrics (Ctrl-C stops)\n", name, addr)
		},
		Alerts: alerts,
	})
	return exitError(ctx, err)
}

// describeAlerts says once what the monitor evaluates and where notifications go.
func describeAlerts(w io.Writer, a *rollout.AlertOptions, targets []alerting.Target) {
	services := make([]string, 0, len(a.Rules))
	n := 0
	for s, rules := range a.Rules {
		services = append(services, s)
		n += len(rules)
	}
	sort.Strings(services)
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.Name()
	}
	fmt.Fprintf(w, "alerts: %d rules on %s, every %s, to %s\n", n, strings.Join(services, ", "), a.Interval, strings.Join(names, ", "))
}
