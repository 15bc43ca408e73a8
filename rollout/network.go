package rollout

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/segments"
)

// ObserveNetworks gives a segmented project the engine's networks and their subnets,
// so segment subnets skip what the engine uses. Projects without x-lifecycle.network
// make no call.
func ObserveNetworks(ctx context.Context, eng engine.Engine, p *compose.Project) error {
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

// NetworkPlan is `network plan --format json`.
type NetworkPlan struct {
	Project      string                     `json:"project"`
	Segmentation bool                       `json:"segmentation"`
	Default      string                     `json:"default,omitempty"`
	Pool         string                     `json:"pool,omitempty"`
	Size         int                        `json:"size,omitempty"`
	Services     []NetworkPlanService       `json:"services"`
	Policy       map[string]map[string]bool `json:"policy"`
	Networks     []NetworkPlanNetwork       `json:"networks"`
	Router       []string                   `json:"router"`
	Warnings     []string                   `json:"warnings"`
}

type NetworkPlanService struct {
	Name     string   `json:"name"`
	Isolated bool     `json:"isolated"`
	TalksTo  []string `json:"talks_to"`
	Ingress  bool     `json:"ingress"`
	Egress   bool     `json:"egress"`
	Networks []string `json:"networks"`
}

type NetworkPlanNetwork struct {
	Name     string   `json:"name"`
	Key      string   `json:"key"`
	Kind     string   `json:"kind"`
	Internal bool     `json:"internal"`
	Subnet   string   `json:"subnet"`
	Members  []string `json:"members"`
	Exists   bool     `json:"exists"`
}

func BuildNetworkPlan(p *compose.Project) (NetworkPlan, segments.Matrix, error) {
	spec := compose.NetworkSpec(p)
	layout, err := compose.NetworkLayout(p)
	if err != nil {
		return NetworkPlan{}, segments.Matrix{}, err
	}
	policy := segments.Policy(spec)
	out := NetworkPlan{Project: p.Name, Segmentation: compose.Segmented(p), Policy: policy.Map(), Router: compose.RouterNetworks(p), Warnings: []string{}}
	var observed map[string][]netip.Prefix
	if ns := p.Spec.Network; ns != nil {
		out.Default, out.Pool, out.Size, observed = ns.Default, ns.Pool, ns.Size, ns.Observed
	}
	members := map[string][]string{} // engine network name → services
	for _, s := range spec.Services {
		row := NetworkPlanService{Name: s.Name, Isolated: s.Isolated, TalksTo: append([]string{}, s.TalksTo...), Networks: []string{}}
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
		row := NetworkPlanNetwork{Name: nc.Name, Key: nc.Labels[compose.LabelNetwork], Kind: "compose", Internal: nc.Internal, Subnet: "engine default", Members: members[nc.Name]}
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

// PlanNetwork is `network plan`: the segmentation plan, with the networks that exist on
// the engine marked (a segmented project's were observed when it was opened).
func PlanNetwork(ctx context.Context, eng engine.Engine, p *compose.Project) (NetworkPlan, segments.Matrix, error) {
	if compose.Segmented(p) {
		return BuildNetworkPlan(p)
	}
	networks, err := eng.ListNetworks(ctx, map[string]string{compose.LabelProject: p.Name})
	if err != nil {
		return NetworkPlan{}, segments.Matrix{}, err
	}
	subnets := map[string][]netip.Prefix{}
	for _, n := range networks {
		subnets[n.Name] = n.Subnets
	}
	plan, policy, err := BuildNetworkPlan(p)
	if err != nil {
		return plan, policy, err
	}
	for i := range plan.Networks {
		if s, ok := subnets[plan.Networks[i].Name]; ok {
			plan.Networks[i].Exists = true
			if len(s) > 0 {
				plan.Networks[i].Subnet = s[0].String()
			}
		}
	}
	return plan, policy, nil
}
