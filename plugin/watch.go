package plugin

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type watchOptions struct {
	wait     bool
	interval time.Duration
}

func newWatchCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := watchOptions{}
	cmd := &cobra.Command{
		Use:   "watch [OPTIONS] [SERVICE...]",
		Short: "Follow a rollout running elsewhere (another terminal, a CI job) with the rollout view",
		Long: `Attach the rollout view to the project's running deploy, rollback or promote, wherever it
runs: per service, each revision's containers and health, its router weight and the
router's request rate, error rate and p99; a canary's step, time left and verdicts. It is
read from the engine: the deploy lock (who runs the rollout), the state the rollout
publishes (its services and a canary's step), the containers and the router's counters.
watch ends with the rollout, with its result (exit code 3 when a service was rolled back,
1 when one failed), or on Ctrl-C (exit 0: the rollout goes on). Without a running rollout
it says so and exits 0, or with --wait waits for the next one.
The view goes to stderr: redrawn in place on a terminal, printed when it changes with
--progress plain, one JSON object per interval with --progress json.`,
		Example: `  docker lifecycle watch
  docker lifecycle watch web --wait
  docker lifecycle -p shop watch --progress json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWatch(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.wait, "wait", false, "When no rollout runs, wait for the next one instead of exiting")
	durationFlag(flags, &opts.interval, "interval", rollout.DefaultWatchInterval, 200*time.Millisecond, time.Minute, "Time between two views (rates are over it)")
	return cmd
}

func runWatch(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts watchOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	screen := newWatchScreen(dockerCli, project.progress)
	last, err := rollout.Watch(ctx, eng, name, rollout.WatchOptions{Services: services, Interval: opts.interval, Wait: opts.wait}, screen.show)
	screen.close()
	switch {
	case errors.Is(err, rollout.ErrNoRollout):
		fmt.Fprintf(dockerCli.Out(), "No rollout of project %s is running (its deploy lock is free); --wait waits for the next one.\n", name)
		return nil
	case ctx.Err() != nil:
		fmt.Fprintln(dockerCli.Err(), "Stopped watching; the rollout goes on.")
		return nil
	case err != nil:
		return err
	}
	return watchResult(dockerCli, last)
}

// newWatchScreen shows watch's views as --progress says (auto: tty on a terminal).
func newWatchScreen(dockerCli command.Cli, mode string) *rolloutScreen {
	if mode == progress.ModeAuto || mode == "" {
		mode = progress.ModePlain
		if dockerCli.Err().IsTerminal() {
			mode = progress.ModeTTY
		}
	}
	screen := &rolloutScreen{mode: mode, out: dockerCli.Err(), width: terminalWidth(dockerCli.Err())}
	if mode == progress.ModeTTY {
		screen.footer = progress.NewTTY(dockerCli.Err(), terminalHeight(dockerCli.Err()))
	}
	return screen
}

// watchResult prints the ended rollout's result and exits as the rollout did: 3 when a
// service was rolled back, 1 when one failed.
func watchResult(dockerCli command.Cli, v rollout.RolloutView) error {
	var parts []string
	for _, s := range v.Services {
		switch {
		case s.Result == "":
			parts = append(parts, s.Service+" ended without a result recorded")
		case s.Revision > 0:
			parts = append(parts, fmt.Sprintf("%s %s (revision %d)", s.Service, s.Result, s.Revision))
		default:
			parts = append(parts, s.Service+" "+s.Result)
		}
	}
	summary := "no service changed"
	if len(parts) > 0 {
		summary = strings.Join(parts, ", ")
	}
	rolledBack, failed := rollout.RolloutOutcome(v)
	switch {
	case len(failed) > 0:
		return fmt.Errorf("the rollout of %s by %s failed: %s; see `docker lifecycle history %s`", v.Project, v.Command, summary, failed[0])
	case len(rolledBack) > 0:
		return cli.StatusError{StatusCode: ExitRolledBack, Status: fmt.Sprintf("the rollout of %s by %s was rolled back: %s; `docker lifecycle history %s --timeline` explains it", v.Project, v.Command, summary, rolledBack[0])}
	}
	fmt.Fprintf(dockerCli.Out(), "Rollout of %s by %s ended: %s\n", v.Project, v.Command, summary)
	return nil
}
