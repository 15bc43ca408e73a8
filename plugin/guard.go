package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type guardOptions struct {
	format string
	detachFlags
	last int
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
after 10m healthy) within a budget (3 in 10m). When the budget is spent on a revision
deployed within x-lifecycle.guard.rollback-window (30m), the service is rolled back to its
previous revision as 'docker lifecycle rollback' does (history: guard-rollback); else the
container is quarantined: left as it is, for inspection, with an alert. A 'docker exec' into a project container and
an OOM kill are reported. Every alert is one line on stderr; with --format json also one
JSON object per line on stdout (schema in docs/guard.md). After a reconnection of the
event stream, and at start, the containers are listed and inspected again, so a restarted
guard does not restart a container twice.

With --detach --mount-docker-socket the guard runs as a container on the engine instead
(<project>-guard, restart unless-stopped; a new --detach replaces it, down removes it).
It holds the engine's socket, which is root on the engine's host: hence the explicit
flag. --status shows the detached guard, what it watches and its last actions; it exits
non-zero when no guard runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(cmd); err != nil {
				return err
			}
			switch {
			case opts.detach:
				return runGuardDetach(cmd, dockerCli, project, opts)
			case opts.status:
				return runGuardStatus(cmd, dockerCli, project, opts)
			}
			return runGuard(cmd, dockerCli, project, opts)
		},
	}
	flags := cmd.Flags()
	enumFlag(flags, &opts.format, "format", "text", "Output format: text (alerts on stderr; --status: a table), or json (also one JSON object per alert on stdout; --status: one JSON document)", "text", "table", "json")
	opts.declare(flags, compose.RoleGuard, "Show the detached guard: its container, what it watches, its last actions; exit 1 when none runs")
	flags.IntVar(&opts.last, "last", 10, "With --status: how many of the guard's last actions to show")
	return cmd
}

// validate reports every misuse of the flags at once, before anything is created.
func (o guardOptions) validate(cmd *cobra.Command) error {
	problems := o.problems(compose.RoleGuard)
	if cmd.Flags().Changed("last") && !o.status {
		problems = append(problems, "--last is for --status")
	}
	if o.last < 1 {
		problems = append(problems, fmt.Sprintf("--last must be 1 or more, got %d", o.last))
	}
	if o.target != "" && (o.detach || o.status) {
		problems = append(problems, "--target is the detached guard's own argument, not for --detach or --status")
	}
	if len(problems) > 0 {
		return usageError("%s", strings.Join(problems, "; "))
	}
	return nil
}

func runGuard(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts guardOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	var target rollout.GuardTarget
	var eng engine.Engine
	// The foreground guard has the compose project: it can roll a service back. The
	// detached one has only the target (docs/guard.md, "Escalation").
	var composeProject *compose.Project
	var notifier *alerting.Notifier
	if opts.target != "" {
		// The detached guard: no compose file here, the project comes resolved.
		t, err := rollout.DecodeGuardTarget([]byte(opts.target))
		if err != nil {
			return err
		}
		if eng, err = connect(ctx, dockerCli); err != nil {
			return err
		}
		target = t
	} else {
		p, projectEngine, err := openProject(ctx, dockerCli, project)
		if err != nil {
			return err
		}
		target, eng, composeProject = rollout.NewGuardTarget(p), projectEngine, p
		if notifier, err = alertTargetsNotifier(p, dockerCli.Err(), "guard"); err != nil {
			return err
		}
		if notifier != nil {
			defer notifier.Close(10 * time.Second)
		}
	}
	var mu sync.Mutex
	announced := false
	err := rollout.Guard(ctx, eng, target, rollout.GuardOptions{
		Project: composeProject,
		Alert: func(a rollout.GuardAlert) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintln(dockerCli.Err(), a.String())
			if notifier != nil {
				notifier.Notify(rollout.GuardNotification(a))
			}
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
				fmt.Fprintf(dockerCli.Err(), "guarding project %s: %d running containers (Ctrl-C stops)\n", target.Project, n)
				announced = true
			}
		},
	})
	return exitError(ctx, err)
}

func runGuardDetach(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts guardOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	bin, err := ownExecutable()
	if err == nil {
		var res rollout.DetachResult
		res, err = rollout.DetachGuard(ctx, eng, rollout.NewGuardTarget(p), rollout.DetachOptions{
			MountDockerSocket: opts.mountSocket, Executable: bin,
			Progress: func(s string) { fmt.Fprintln(dockerCli.Err(), s) },
		})
		if err == nil {
			return renderDetached(dockerCli.Out(), dockerCli.Err(), compose.RoleGuard, p.Name, res, opts.format, "`docker lifecycle guard --status` shows it")
		}
	}
	return exitError(ctx, fmt.Errorf("guard --detach of project %s: %w", p.Name, err))
}

func runGuardStatus(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts guardOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	r, err := rollout.GuardStatus(ctx, eng, name, opts.last)
	if err == nil {
		err = renderDetachedStatus(dockerCli.Out(), compose.RoleGuard, r.Project, r, r.Container, r.Running, opts.format,
			writeGuardStatus, "docker lifecycle guard --detach --mount-docker-socket")
	}
	return exitError(ctx, err)
}

// writeGuardStatus is the --status table: the container, the guarded services and
// containers, the last actions.
func writeGuardStatus(w io.Writer, r rollout.GuardStatusReport, now time.Time) error {
	c := r.Container
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "GUARD\t%s\nCONTAINER\t%s\nSTATE\t%s\nSINCE\t%s\nRESTARTS\t%d\nIMAGE\t%s\n", r.Project, c.Name, c.State, detachedSince(c, now), c.Restarts, c.Image)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tCONTAINERS\tAFTER\tBACKOFF\tBUDGET\tROUTED")
	for _, s := range r.Services {
		var names []string
		for _, ct := range s.Containers {
			h := ct.Health
			if h == "" {
				h = "no healthcheck"
			}
			names = append(names, ct.Name+" ("+h+")")
		}
		if len(names) == 0 {
			names = []string{"-"}
		}
		after := "interval×retries" // the healthcheck's, read from each container
		if s.Policy.After != 0 {
			after = s.Policy.After.String()
		}
		b := s.Policy.Backoff
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s→%s, reset %s\t%d in %s\t%t\n", s.Service, strings.Join(names, ", "), after, b.Start, b.Cap, b.ResetAfter, s.Policy.Budget, s.Policy.Window, s.Routed)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nLAST %d ACTIONS\n", len(r.Actions))
	tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCONTAINER\tKIND\tACTION\tREASON")
	for _, a := range r.Actions {
		who := a.Container
		if who == "" {
			who = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Time.UTC().Format(time.RFC3339), who, a.Kind, a.Action, a.Reason)
	}
	return tw.Flush()
}
