package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
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

// observeNetworks gives a segmented project the engine's networks and their subnets,
// so segment subnets skip what the engine uses. Projects without x-lifecycle.network
// make no call.
func observeNetworks(ctx context.Context, eng engine.Engine, p *compose.Project) error {
	if !compose.Segmented(p) {
		return nil
	}
	networks, err := eng.ListNetworks(ctx, nil)
	if err != nil {
		return err
	}
	subnets := map[string][]netip.Prefix{}
	for _, n := range networks {
		subnets[n.Name] = append([]netip.Prefix{}, n.Subnets...)
	}
	compose.ObserveNetworks(p, subnets)
	return nil
}

// networkPlan is `network plan --format json`.
type networkPlan struct {
	Project      string                     `json:"project"`
	Segmentation bool                       `json:"segmentation"`
	Default      string                     `json:"default,omitempty"`
	Pool         string                     `json:"pool,omitempty"`
	Size         int                        `json:"size,omitempty"`
	Services     []networkPlanService       `json:"services"`
	Policy       map[string]map[string]bool `json:"policy"`
	Networks     []networkPlanNetwork       `json:"networks"`
	Router       []string                   `json:"router"`
	Warnings     []string                   `json:"warnings"`
}

type networkPlanService struct {
	Name     string   `json:"name"`
	Isolated bool     `json:"isolated"`
	TalksTo  []string `json:"talks_to"`
	Ingress  bool     `json:"ingress"`
	Egress   bool     `json:"egress"`
	Networks []string `json:"networks"`
}

type networkPlanNetwork struct {
	Name     string   `json:"name"`
	Key      string   `json:"key"`
	Kind     string   `json:"kind"`
	Internal bool     `json:"internal"`
	Subnet   string   `json:"subnet"`
	Members  []string `json:"members"`
	Exists   bool     `json:"exists"`
}

func buildNetworkPlan(p *compose.Project) (networkPlan, segments.Matrix, error) {
	spec := compose.NetworkSpec(p)
	layout, err := compose.NetworkLayout(p)
	if err != nil {
		return networkPlan{}, segments.Matrix{}, err
	}
	policy := segments.Policy(spec)
	out := networkPlan{Project: p.Name, Segmentation: compose.Segmented(p), Policy: policy.Map(), Router: compose.RouterNetworks(p), Warnings: []string{}}
	var observed map[string][]netip.Prefix
	if ns := p.Spec.Network; ns != nil {
		out.Default, out.Pool, out.Size, observed = ns.Default, ns.Pool, ns.Size, ns.Observed
	}
	members := map[string][]string{} // engine network name → services
	for _, s := range spec.Services {
		row := networkPlanService{Name: s.Name, Isolated: s.Isolated, TalksTo: append([]string{}, s.TalksTo...), Networks: []string{}}
		if n := p.ServiceSpecs[s.Name].Network; n != nil {
			row.Ingress = n.Ingress != nil && *n.Ingress
			row.Egress = n.Egress != nil && *n.Egress
		}
		if !s.Isolated {
			row.Ingress, row.Egress = compose.BehindRouter(p, s.Name), true // compose's networks are not internal
		}
		for _, k := range s.Networks {
			name := p.Networks[k].Name
			row.Networks = append(row.Networks, name)
			members[name] = append(members[name], s.Name)
		}
		for _, m := range layout.Services[s.Name] {
			row.Networks = append(row.Networks, m.Network)
		}
		sort.Strings(row.Networks)
		out.Services = append(out.Services, row)
	}
	kinds := map[string]segments.Network{}
	for _, n := range layout.Networks {
		kinds[n.Name] = n
	}
	create, _ := compose.Networks(p)
	for _, nc := range create {
		row := networkPlanNetwork{Name: nc.Name, Key: nc.Labels[compose.LabelNetwork], Kind: "compose", Internal: nc.Internal, Subnet: "engine default", Members: members[nc.Name]}
		if seg, ok := kinds[nc.Name]; ok {
			row.Kind, row.Members = string(seg.Kind), seg.Members
		}
		if row.Members == nil {
			row.Members = []string{}
		}
		if nc.IPAM != nil && len(nc.IPAM.Config) > 0 && nc.IPAM.Config[0].Subnet.IsValid() {
			row.Subnet = nc.IPAM.Config[0].Subnet.String()
		}
		if subnets, ok := observed[nc.Name]; ok {
			row.Exists = true
			if len(subnets) > 0 {
				row.Subnet = subnets[0].String()
			}
		}
		out.Networks = append(out.Networks, row)
	}
	if out.Segmentation {
		if _, err := compose.SegmentSubnets(p); err != nil {
			out.Warnings = append(out.Warnings, err.Error()+": the engine's default pools give the subnets")
		}
		for _, d := range segments.Diff(policy, segments.Topology(spec, layout), nil) {
			if d.From < d.To {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%s and %s share a compose network although the policy denies it: `network verify` will report it", d.From, d.To))
			}
		}
	}
	return out, policy, nil
}

func runNetworkPlan(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts networkOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	if !compose.Segmented(p) {
		// Still show whether the compose networks exist.
		networks, err := eng.ListNetworks(ctx, map[string]string{compose.LabelProject: p.Name})
		if err != nil {
			return err
		}
		subnets := map[string][]netip.Prefix{}
		for _, n := range networks {
			subnets[n.Name] = n.Subnets
		}
		plan, policy, err := buildNetworkPlan(p)
		if err != nil {
			return err
		}
		for i := range plan.Networks {
			if s, ok := subnets[plan.Networks[i].Name]; ok {
				plan.Networks[i].Exists = true
				if len(s) > 0 {
					plan.Networks[i].Subnet = s[0].String()
				}
			}
		}
		return writeNetworkPlan(dockerCli.Out(), plan, policy, opts.format)
	}
	if err := observeNetworks(ctx, eng, p); err != nil {
		return err
	}
	plan, policy, err := buildNetworkPlan(p)
	if err != nil {
		return err
	}
	return writeNetworkPlan(dockerCli.Out(), plan, policy, opts.format)
}

func writeNetworkPlan(w io.Writer, plan networkPlan, policy segments.Matrix, format string) error {
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
	res, err := probeNetwork(ctx, eng, p)
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

func writeVerify(w io.Writer, res verifyResult, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintln(w, "Policy (rows may open connections to columns):")
	if err := res.policy.WriteTable(w, nil); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nObserved (probes from inside each service's network namespace):")
	if err := res.policy.WriteTable(w, func(from, to string) string {
		return res.Observed[from][to].text()
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
		fmt.Fprintf(w, "  %s (%s)\n", d, o.detail())
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
