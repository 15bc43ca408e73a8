package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/segments"
)

type networkOptions struct {
	format string
}

func newNetworkCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Network segmentation from x-lifecycle.network: the planned matrix, and a proof of it",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newNetworkPlanCommand(dockerCli, project), newNetworkVerifyCommand(dockerCli, project), newNetworkTopCommand(dockerCli, project))
	return cmd
}

func newNetworkPlanCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := networkOptions{}
	cmd := &cobra.Command{
		Use:   "plan [OPTIONS]",
		Short: "Print the reachability matrix the rules allow and the networks that give it; change nothing",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNetworkPlan(cmd, dockerCli, project, opts)
		},
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", planFormats...)
	return cmd
}

func newNetworkVerifyCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := networkOptions{}
	cmd := &cobra.Command{
		Use:   "verify [OPTIONS]",
		Short: "Probe every service from inside each service's network namespace and compare with the policy",
		Long: `verify starts one short-lived agent container in the network namespace of each running
service (network_mode container:<id>, so no tool is needed in the service's image). It
resolves every other service's name and connects to its first exposed or target port,
prints the observed matrix next to the policy, and exits 1 on any difference.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNetworkVerify(cmd, dockerCli, project, opts)
		},
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", planFormats...)
	return cmd
}

func runNetworkPlan(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts networkOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	plan, policy, err := rollout.PlanNetwork(ctx, eng, p)
	if err != nil {
		return err
	}
	return writeNetworkPlan(dockerCli.Out(), plan, policy, opts.format)
}

func writeNetworkPlan(w io.Writer, plan rollout.NetworkPlan, policy segments.Matrix, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	if plan.Segmentation {
		fmt.Fprintf(w, "Project %s: network segmentation on (default %s, subnets /%d from %s)\n\n", plan.Project, plan.Default, plan.Size, plan.Pool)
	} else {
		fmt.Fprintf(w, "Project %s: no x-lifecycle.network rules; services reach each other through compose's networks\n\n", plan.Project)
	}
	fmt.Fprintln(w, "Policy (rows may open connections to columns):")
	if err := policy.WriteTable(w, nil); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tISOLATED\tTALKS TO\tINGRESS\tEGRESS")
	for _, s := range plan.Services {
		talks := strings.Join(s.TalksTo, ",")
		if !s.Isolated {
			talks = "(compose networks)"
		} else if talks == "" {
			talks = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, yesNo(s.Isolated), talks, yesNo(s.Ingress), yesNo(s.Egress))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tKIND\tINTERNAL\tSUBNET\tMEMBERS\tSTATE")
	for _, n := range plan.Networks {
		state := "to create"
		if n.Exists {
			state = "exists"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, yesNo(n.Internal), n.Subnet, strings.Join(n.Members, " "), state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(plan.Router) > 0 {
		fmt.Fprintf(w, "\nThe router (%s) joins: %s\n", compose.RouterName(plan.Project), strings.Join(plan.Router, ", "))
	}
	for _, warning := range plan.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warning)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runNetworkVerify(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts networkOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	return exitError(ctx, verifyNetwork(ctx, dockerCli.Out(), eng, p, opts.format))
}

// verifyAfterDeploy runs `network verify` at the end of a deploy with --verify-network.
func verifyAfterDeploy(ctx context.Context, dockerCli command.Cli, eng engine.Engine, p *compose.Project, on bool) error {
	if !on {
		return nil
	}
	return exitError(ctx, verifyNetwork(ctx, dockerCli.Out(), eng, p, "table"))
}

// verifyNetwork probes the project and prints the result; a difference from the policy
// is an error (exit 1).
func verifyNetwork(ctx context.Context, w io.Writer, eng engine.Engine, p *compose.Project, format string) error {
	res, err := rollout.ProbeNetwork(ctx, eng, p)
	if err != nil {
		return err
	}
	if err := writeVerify(w, res, format); err != nil {
		return err
	}
	if n := len(res.Differences); n > 0 {
		return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("network verify: the network of project %s differs from its policy in %d pairs", p.Name, n)}
	}
	if res.Probed == 0 {
		return cli.StatusError{StatusCode: 1, Status: fmt.Sprintf("network verify: no running service of project %s to probe from: deploy it first", p.Name)}
	}
	return nil
}

func writeVerify(w io.Writer, res rollout.VerifyResult, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintln(w, "Policy (rows may open connections to columns):")
	if err := res.Matrix.WriteTable(w, nil); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nObserved (probes from inside each service's network namespace):")
	if err := res.Matrix.WriteTable(w, func(from, to string) string {
		return res.Observed[from][to].Text()
	}); err != nil {
		return err
	}
	fmt.Fprintln(w, "  yes: connected · dns: name resolves (no port to try) · refused: resolves, port closed · -: unreachable · n/a: not running")
	for _, src := range sortedKeys(res.Skipped) {
		fmt.Fprintf(w, "not probed from %s: %s\n", src, res.Skipped[src])
	}
	if len(res.Differences) == 0 {
		fmt.Fprintf(w, "\nNetwork matches the policy: %d pairs probed from %d services in %.1fs\n", res.Probed, len(res.Sources), res.Seconds)
		return nil
	}
	fmt.Fprintf(w, "\n%d differences:\n", len(res.Differences))
	for _, d := range res.Differences {
		o := res.Observed[d.From][d.To]
		fmt.Fprintf(w, "  %s (%s)\n", d, o.Detail())
	}
	return nil
}

// sortedKeys is used for stable output of maps.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
