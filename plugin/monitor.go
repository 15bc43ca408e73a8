package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
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
	format string
	detachFlags
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
the alert targets (webhook, exec, stderr); see docs/observability.md#alerts.

With --detach --mount-docker-socket the monitor runs as a container on the engine instead
(<project>-monitor, restart unless-stopped, on the default bridge network; a new --detach
replaces it, down removes it), its port published on the engine's host at --listen's
address (an IP; an empty host is refused). It holds the engine's socket, which is root on
the engine's host: hence the explicit flag. Exec alert targets cannot run in it.
--status shows the detached monitor: its container, its metrics URL, its alert rules and
targets; it exits non-zero when no monitor runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			switch {
			case opts.detach:
				return runMonitorDetach(cmd, dockerCli, project, opts)
			case opts.status:
				return runMonitorStatus(cmd, dockerCli, project, opts)
			}
			return runMonitor(cmd, dockerCli, project, opts)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&opts.listen, "listen", "127.0.0.1:9464", "Address (host:port) of the metrics endpoint; no authentication, so keep it on loopback unless the network is trusted; with --detach, where the port is published on the engine's host")
	opts.declare(flags, compose.RoleMonitor, "Show the detached monitor: its container, metrics URL, alert rules and targets; exit 1 when none runs")
	enumFlag(flags, &opts.format, "format", "text", "With --detach or --status: text or json", "text", "json")
	return cmd
}

// validate reports every misuse of the flags at once, before anything is created.
func (o monitorOptions) validate() error {
	problems := o.problems(compose.RoleMonitor)
	if o.format == "json" && !o.detach && !o.status {
		problems = append(problems, "--format is for --detach and --status (the metrics are in Prometheus' text format)")
	}
	if o.status && (o.target != "" || o.mountSocket) {
		problems = append(problems, "--status takes neither --target nor --mount-docker-socket")
	}
	if o.detach {
		if _, _, err := rollout.MonitorPublish(o.listen); err != nil {
			problems = append(problems, err.Error())
		}
		if o.target != "" {
			problems = append(problems, "--target is the detached monitor's own argument, not for --detach")
		}
	}
	if len(problems) > 0 {
		return usageError("%s", strings.Join(problems, "; "))
	}
	return nil
}

// monitorTarget is the project resolved for the monitor: from --target in the detached
// monitor's container, else from the compose file when there is one (it holds
// x-lifecycle.alerts), else the project's name alone (-p; metrics only). A file with a
// broken x-lifecycle is an error, not a monitor silently without its alerts.
func monitorTarget(ctx context.Context, dockerCli command.Cli, project *projectOptions, opts monitorOptions) (rollout.MonitorTarget, engine.Engine, error) {
	if opts.target != "" {
		t, err := rollout.DecodeMonitorTarget([]byte(opts.target))
		if err != nil {
			return t, nil, err
		}
		eng, err := connect(ctx, dockerCli)
		return t, eng, err
	}
	p, err := project.load(ctx)
	switch {
	case err == nil:
		eng, err := connect(ctx, dockerCli)
		return rollout.NewMonitorTarget(p.Name, p), eng, err
	case errors.Is(err, compose.ErrInvalidSpec):
		return rollout.MonitorTarget{}, nil, err
	}
	name, eng, err := openProjectName(ctx, dockerCli, project)
	return rollout.NewMonitorTarget(name, nil), eng, err
}

func runMonitor(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts monitorOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	target, eng, err := monitorTarget(ctx, dockerCli, project, opts)
	if err != nil {
		return err
	}
	name := target.Project
	alerts := target.AlertOptions()
	if alerts != nil {
		targets, err := alerting.NewTargets(target.Alerts.Targets, dockerCli.Err())
		if err != nil {
			return err
		}
		logf := func(s string) { fmt.Fprintln(dockerCli.Err(), s) }
		notifier := alerting.NewNotifier(targets, logf)
		defer notifier.Close(10 * time.Second)
		alerts.Notify, alerts.Log = notifier.Notify, logf
		describeAlerts(dockerCli.Err(), alerts, targets)
	}
	err = rollout.Monitor(ctx, eng, name, rollout.MonitorOptions{
		Listen: opts.listen,
		Serving: func(addr string) {
			fmt.Fprintf(dockerCli.Err(), "serving metrics of project %s on http://%s/metrics (Ctrl-C stops)\n", name, addr)
		},
		Alerts:   alerts,
		BackupTo: target.BackupTo,
	})
	return exitError(ctx, err)
}

func runMonitorDetach(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts monitorOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	publish, loopback, err := rollout.MonitorPublish(opts.listen)
	if err != nil {
		return err
	}
	target, eng, err := monitorTarget(ctx, dockerCli, project, opts)
	if err != nil {
		return err
	}
	if !loopback {
		fmt.Fprintf(dockerCli.Err(), "warning: the metrics endpoint has no authentication and is published on %s of the engine's host: whoever reaches that address reads the project's names and numbers (and a port docker publishes bypasses host firewall rules such as ufw's)\n", publish.HostIP)
	}
	bin, err := ownExecutable()
	if err == nil {
		var res rollout.DetachResult
		res, err = rollout.DetachMonitor(ctx, eng, target, publish, rollout.DetachOptions{
			MountDockerSocket: opts.mountSocket, Executable: bin,
			Progress: func(s string) { fmt.Fprintln(dockerCli.Err(), s) },
		})
		if err == nil {
			url := "http://" + net.JoinHostPort(publish.HostIP, strconv.Itoa(publish.Port)) + "/metrics"
			return renderDetached(dockerCli.Out(), dockerCli.Err(), compose.RoleMonitor, target.Project, res, opts.format, "metrics at "+url+" of the engine's host")
		}
	}
	return exitError(ctx, fmt.Errorf("monitor --detach of project %s: %w", target.Project, err))
}

func runMonitorStatus(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts monitorOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	r, err := rollout.MonitorStatus(ctx, eng, name)
	if err == nil {
		err = renderDetachedStatus(dockerCli.Out(), compose.RoleMonitor, r.Project, r, r.Container, r.Running, opts.format,
			writeMonitorStatus, "docker lifecycle monitor --detach --mount-docker-socket")
	}
	return exitError(ctx, err)
}

// writeMonitorStatus is the --status table.
func writeMonitorStatus(w io.Writer, r rollout.MonitorStatusReport, now time.Time) error {
	c := r.Container
	alerts := "none (metrics only)"
	if a := r.Alerts; a != nil {
		services := make([]string, 0, len(a.Rules))
		n := 0
		for s, k := range a.Rules {
			services = append(services, s)
			n += k
		}
		sort.Strings(services)
		alerts = fmt.Sprintf("%d rules on %s, every %s, to %s", n, strings.Join(services, ", "), a.Interval, strings.Join(a.Targets, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "MONITOR\t%s\nCONTAINER\t%s\nSTATE\t%s\nSINCE\t%s\nRESTARTS\t%d\nIMAGE\t%s\nMETRICS\t%s\nALERTS\t%s\n", r.Project, c.Name, c.State, detachedSince(c, now), c.Restarts, c.Image, r.URL, alerts)
	return tw.Flush()
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
