package plugin

import (
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type deployOptions struct {
	dryRun        bool
	removeOrphans bool
	waitTimeout   time.Duration
	format        string
	scan          bool
	skipScan      bool
	verifyNetwork bool
	build         bool
	pull          string
	swarm         bool
	hosts         []string
}

func newDeployCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := deployOptions{}
	cmd := &cobra.Command{
		Use:   "deploy [OPTIONS] [SERVICE...]",
		Short: "Converge the project on the engine: dependency order, health gates, no change when up to date",
		Example: `  docker lifecycle deploy
  docker lifecycle deploy --dry-run
  docker lifecycle -f compose.yaml -f compose.prod.yaml deploy web`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.scan && opts.skipScan:
				return usageError("--scan and --skip-scan exclude each other: use one of them")
			case opts.dryRun && (opts.scan || opts.verifyNetwork || opts.build || cmd.Flags().Changed("pull")):
				return usageError("--dry-run changes nothing, so it runs no --scan, --verify-network, --build or --pull: use 'scan' or 'network verify' for those")
			case cmd.Flags().Changed("format") && !opts.dryRun:
				return usageError("--format is the format of the --dry-run plan: add --dry-run, or use 'plan --format'")
			}
			return runDeploy(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.dryRun, "dry-run", false, "Print the plan and change nothing")
	flags.BoolVar(&opts.removeOrphans, "remove-orphans", false, "Remove containers of services that are not in the project")
	durationFlag(flags, &opts.waitTimeout, "wait-timeout", 0, 0, 0, "How long to wait for each new container to become healthy (default: x-lifecycle wait-timeout, 2m)")
	enumFlag(flags, &opts.format, "format", "table", "Format of the --dry-run plan", planFormats...)
	flags.BoolVar(&opts.scan, "scan", false, "Run the image scan gate even without x-lifecycle.scan")
	flags.BoolVar(&opts.skipScan, "skip-scan", false, "Deploy without the image scan gate that x-lifecycle.scan turns on")
	flags.BoolVar(&opts.build, "build", false, "Build the images of services with a build: section first (services whose image is missing, or with pull_policy: build, are always built)")
	enumFlag(flags, &opts.pull, "pull", rollout.PullPolicy, "Pull images before the deploy: policy (each service's pull_policy, missing by default), always, missing or never", rollout.PullModes...)
	flags.BoolVar(&opts.swarm, "swarm", false, "Deploy as Swarm services (the default on a Swarm manager; see docs/swarm.md)")
	hostsFlag(flags, &opts.hosts, "Deploy, in batches and all or nothing, to")
	flags.BoolVar(&opts.verifyNetwork, "verify-network", false, "After the deploy, prove the network matches x-lifecycle.network (as `network verify`)")
	return cmd
}

func runDeploy(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts deployOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, err := project.load(ctx)
	if err != nil {
		return err
	}
	hosts, err := hostNames(opts.hosts, p)
	if err != nil {
		return err
	}
	if len(hosts) > 0 {
		return runHostsDeploy(ctx, dockerCli, project, p.Spec.Hosts, hosts, opts, services)
	}
	eng, err := connectProject(ctx, dockerCli, p)
	if err != nil {
		return err
	}
	node, onSwarm, err := rollout.SwarmTarget(ctx, eng, opts.swarm)
	if err != nil {
		return err
	}
	events, view, err := newDeployProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	if onSwarm {
		return runSwarmDeploy(ctx, dockerCli, eng, node, p, events, opts, services)
	}
	started := time.Now()
	plan, err := rollout.Deploy(ctx, eng, p, events, rollout.DeployOptions{
		Services: services, RemoveOrphans: opts.removeOrphans, DryRun: opts.dryRun,
		WaitTimeout: opts.waitTimeout, LocalEngine: isLocalEngine(dockerCli),
		Command: "docker lifecycle deploy", Checkpoint: crashCheckpoint(),
		Scan: (p.Spec.Scan.Enabled || opts.scan) && !opts.skipScan, ScanDockerHost: trivyDockerHost(dockerCli),
		Build: opts.build, Pull: opts.pull, RegistryAuth: registryAuth(dockerCli), ToolVersion: meta.Version, View: view,
	})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if opts.dryRun {
		return writePlan(dockerCli.Out(), plan, opts.format)
	}
	if plan.Empty() {
		fmt.Fprintf(dockerCli.Out(), "Project %s is up to date: nothing to do.\n", p.Name)
		return verifyAfterDeploy(ctx, dockerCli, eng, p, opts.verifyNetwork)
	}
	fmt.Fprintf(dockerCli.Out(), "Deployed project %s in %s: %d steps, services changed: %s\n",
		p.Name, time.Since(started).Round(100*time.Millisecond), len(plan.Steps), strings.Join(plan.Services(), ", "))
	return verifyAfterDeploy(ctx, dockerCli, eng, p, opts.verifyNetwork)
}

// registryAuth gives a pull the credentials `docker login` stored for the image's
// registry (the CLI's config file and credential helpers), as `docker pull` sends them.
func registryAuth(dockerCli command.Cli) rollout.RegistryAuth {
	return func(ref string) (string, error) {
		return command.RetrieveAuthTokenFromImage(dockerCli.ConfigFile(), ref)
	}
}
