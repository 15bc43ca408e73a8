package plugin

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli-plugins/plugin"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// Exit codes beyond 0 (ok) and 1 (error); usage errors exit 125 through docker/cli.
const (
	// ExitRolledBack: the deploy failed and was rolled back automatically; the previous
	// revision serves (distinct from 1, where the state may need a look).
	ExitRolledBack  = 3
	ExitInterrupted = 130
)

// projectOptions are the compose-style flags shared by every command.
type projectOptions struct {
	configFiles []string
	projectName string
	profiles    []string
	envFiles    []string
	projectDir  string
	progress    string
}

func (o *projectOptions) load(ctx context.Context) (*compose.Project, error) {
	return compose.Load(ctx, o.loadOptions())
}

// loadOptional is load for commands that work with `-p NAME` alone: the project (nil
// when its compose file does not load) and its name. The load's error is returned only
// when there is no name either.
func (o *projectOptions) loadOptional(ctx context.Context) (*compose.Project, string, error) {
	p, err := o.load(ctx)
	switch {
	case err == nil:
		return p, p.Name, nil
	case o.projectName == "":
		return nil, "", err
	}
	return nil, o.projectName, nil
}

func (o *projectOptions) loadOptions() compose.LoadOptions {
	return compose.LoadOptions{
		ConfigFiles: o.configFiles, ProjectName: o.projectName, Profiles: o.profiles,
		EnvFiles: o.envFiles, WorkingDir: o.projectDir,
	}
}

// NewRootCommand returns the `docker lifecycle` command tree.
func NewRootCommand(dockerCli command.Cli) *cobra.Command {
	opts := &projectOptions{}
	cmd := &cobra.Command{
		Use:   "lifecycle",
		Short: "Zero-downtime, policy-checked deploys of compose projects",
		Long: `docker lifecycle deploys the compose project in the current directory on the engine
of the current Docker context: health-gated, in dependency order, with its state kept
in the engine so that any machine with the same context sees the same project.`,
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Args:             noArgs,
		// --progress is checked here, not by flag parsing: before the subcommand it is
		// parsed while cobra looks for the subcommand, whose errors skip flagError.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := checkEnum(cmd, "progress", opts.progress, progress.Modes()); err != nil {
				return err
			}
			// cobra runs only the nearest persistent hook: this one replaces the plugin
			// framework's, which sets up the docker CLI (nil outside plugin.Run).
			if plugin.PersistentPreRunE == nil {
				return nil
			}
			return plugin.PersistentPreRunE(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.SetFlagErrorFunc(flagError)
	flags := cmd.PersistentFlags()
	flags.StringArrayVarP(&opts.configFiles, "file", "f", nil, "Compose configuration files")
	flags.StringVarP(&opts.projectName, "project-name", "p", "", "Project name")
	flags.StringArrayVar(&opts.profiles, "profile", nil, "Specify a profile to enable")
	flags.StringArrayVar(&opts.envFiles, "env-file", nil, "Specify an alternate environment file")
	flags.StringVar(&opts.projectDir, "project-directory", "", "Specify an alternate working directory (default: the path of the first compose file)")
	flags.StringVar(&opts.progress, "progress", progress.ModeAuto, "Set type of progress output ("+strings.Join(progress.Modes(), ", ")+")")

	cmd.AddCommand(
		newConfigCommand(dockerCli, opts),
		newPlanCommand(dockerCli, opts),
		newDeployCommand(dockerCli, opts),
		newPsCommand(dockerCli, opts),
		newDownCommand(dockerCli, opts),
		newHistoryCommand(dockerCli, opts),
		newSecretsCommand(dockerCli, opts),
		newRollbackCommand(dockerCli, opts),
		newPromoteCommand(dockerCli, opts),
		newPauseCommand(dockerCli, opts),
		newResumeCommand(dockerCli, opts),
		newAbortCommand(dockerCli, opts),
		newLintCommand(dockerCli, opts),
		newScanCommand(dockerCli, opts),
		newNetworkCommand(dockerCli, opts),
		newStatsCommand(dockerCli, opts),
		newWatchCommand(dockerCli, opts),
		newLogsCommand(dockerCli, opts),
		newMonitorCommand(dockerCli, opts),
		newGuardCommand(dockerCli, opts),
		newUnlockCommand(dockerCli, opts),
		newBackupCommand(dockerCli, opts),
		newRestoreCommand(dockerCli, opts),
		newDrillCommand(dockerCli, opts),
		newDRCommand(dockerCli, opts),
		newVersionCommand(dockerCli),
	)
	return cmd
}

// commandContext is cancelled on Ctrl-C or SIGTERM, so a deploy stops between steps and
// cleans up; the docker CLI also cancels plugins through its socket.
func commandContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	// Once the command is done, a late SIGINT or SIGTERM is ignored rather than given
	// its default action back: a signal sent to the whole process group (systemd
	// stopping a unit, kill -INT -PGID) reaches the docker CLI too, which closes the
	// plugin socket, and that may end the command before this process has handled its
	// own copy; killed by that late copy, the plugin would make the CLI exit 255
	// instead of the command's own code (seen in TestBackupEvery under load).
	return ctx, func() {
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		stop()
	}
}

// openProject loads the compose project, then connects to the engine: compose errors
// come first, before any engine call.
func openProject(ctx context.Context, dockerCli command.Cli, project *projectOptions) (*compose.Project, engine.Engine, error) {
	p, err := project.load(ctx)
	if err != nil {
		return nil, nil, err
	}
	eng, err := connectProject(ctx, dockerCli, p)
	return p, eng, err
}

// connectProject checks the loaded project's policy, then connects to the engine of
// the current context and gives the project that engine's networks.
func connectProject(ctx context.Context, dockerCli command.Cli, p *compose.Project) (engine.Engine, error) {
	if err := rollout.ValidatePolicy(p); err != nil {
		return nil, err
	}
	eng, err := connect(ctx, dockerCli)
	if err == nil {
		err = rollout.ObserveNetworks(ctx, eng, p) // segment subnets skip the engine's (x-lifecycle.network only)
	}
	return eng, err
}

// openProjectName is openProject for commands that need only the project name, so that
// `-p NAME` works without a compose file.
func openProjectName(ctx context.Context, dockerCli command.Cli, project *projectOptions) (string, engine.Engine, error) {
	_, name, err := project.loadOptional(ctx)
	if err != nil {
		return "", nil, err
	}
	eng, err := connect(ctx, dockerCli)
	return name, eng, err
}

// connect returns the engine of the current context once it answered (engine.Connect).
func connect(ctx context.Context, dockerCli command.Cli) (engine.Engine, error) {
	return engine.Connect(ctx, dockerCli.Client())
}

// isLocalEngine reports whether the engine runs on this host, so its published ports
// are this host's ports.
func isLocalEngine(dockerCli command.Cli) bool {
	host := dockerCli.DockerEndpoint().Host
	return strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "npipe://")
}

func newProgress(dockerCli command.Cli, mode string) (progress.Writer, error) {
	return progress.New(mode, dockerCli.Err(), dockerCli.Err().IsTerminal())
}

// connectWithProgress connects to the engine and opens the progress writer: what the
// commands that work on volumes (backup, restore, drill) need before their one call.
func connectWithProgress(ctx context.Context, dockerCli command.Cli, mode string) (engine.Engine, progress.Writer, error) {
	eng, err := connect(ctx, dockerCli)
	if err != nil {
		return nil, nil, err
	}
	events, err := newProgress(dockerCli, mode)
	if err != nil {
		return nil, nil, err
	}
	return eng, events, nil
}

// exitError maps errors to docker's exit codes at the edge of the program.
func exitError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var rolledBack *rollout.RolledBackError
	isRolledBack := errors.As(err, &rolledBack)
	var hostsRolledBack *rollout.HostsRolledBackError
	switch {
	// An interrupt (this command's context cancelled: Ctrl-C, SIGTERM, the docker CLI
	// closing the plugin socket) comes first: a deploy rolled back because of it exits 130
	// like any interrupted command, and the message says the previous revision serves. A
	// rollback whose cause is only some internal cancellation stays a rollback (3).
	case ctx.Err() != nil || (errors.Is(err, context.Canceled) && !isRolledBack):
		msg := err.Error()
		switch {
		case errors.As(err, &hostsRolledBack):
			msg = hostsRolledBack.Summary()
		case isRolledBack:
			msg = rolledBack.Summary()
		}
		return cli.StatusError{StatusCode: ExitInterrupted, Status: "interrupted: " + msg + "\nthe next deploy converges from here"}
	case isRolledBack, errors.As(err, &hostsRolledBack):
		return cli.StatusError{StatusCode: ExitRolledBack, Status: err.Error()}
	}
	return err
}
