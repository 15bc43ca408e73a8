package plugin

import (
	"encoding/json"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

type planOptions struct {
	format        string
	removeOrphans bool
	hosts         []string
}

func newPlanCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := planOptions{}
	cmd := &cobra.Command{
		Use:   "plan [OPTIONS] [SERVICE...]",
		Short: "Print the steps a deploy would run, each with its cause; change nothing",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", planFormats...)
	cmd.Flags().BoolVar(&opts.removeOrphans, "remove-orphans", false, "Plan the removal of containers of services not in the project")
	hostsFlag(cmd.Flags(), &opts.hosts, "Print the batches and each host's plan for")
	return cmd
}

// planFormats are the --format values of the commands that print a plan or a matrix.
var planFormats = []string{"table", "json"}

func runPlan(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts planOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, err := project.load(ctx)
	if err != nil {
		return err
	}
	if hosts, err := hostNames(opts.hosts, p); err != nil {
		return err
	} else if len(hosts) > 0 { // the plan of deploy --dry-run across hosts (docs/multihost.md)
		return runHostsDeploy(ctx, dockerCli, project, p.Spec.Hosts, hosts,
			deployOptions{dryRun: true, format: opts.format, removeOrphans: opts.removeOrphans, pull: rollout.PullPolicy}, services)
	}
	eng, err := connectProject(ctx, dockerCli, p)
	if err != nil {
		return err
	}
	_, onSwarm, err := rollout.SwarmTarget(ctx, eng, false)
	if err != nil {
		return err
	}
	if onSwarm { // the plan of deploy --dry-run on Swarm (docs/swarm.md)
		if opts.removeOrphans {
			return usageError("--remove-orphans does not work on Swarm yet (docs/swarm.md)")
		}
		swarmPlan, err := rollout.DeploySwarm(ctx, eng, p, progress.Nop, rollout.SwarmDeployOptions{Services: services, DryRun: true})
		if err != nil {
			return exitError(ctx, err)
		}
		return writeSwarmPlan(dockerCli, swarmPlan, opts.format)
	}
	plan, err := rollout.Plan(ctx, eng, p, rollout.DeployOptions{Services: services, RemoveOrphans: opts.removeOrphans})
	if err != nil {
		return exitError(ctx, err)
	}
	return writePlan(dockerCli.Out(), plan, opts.format)
}

// writePlan prints a plan as text, or as the documented JSON document.
func writePlan(w io.Writer, plan strategies.Plan, format string) error {
	if format == "json" {
		if plan.Steps == nil {
			plan.Steps = []strategies.Step{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	return plan.WriteText(w)
}

// completeServices completes service names from the compose project.
func completeServices(project *projectOptions) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		p, err := project.load(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return p.ServiceNames(), cobra.ShellCompDirectiveNoFileComp
	}
}
