package compose

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/network"

	"github.com/docker-lifecycle/docker-lifecycle/segments"
)

// Network defaults (x-lifecycle.network).
const (
	NetworkDefaultOpen    = "open"
	NetworkDefaultIsolate = "isolate"
)

// LabelSegment marks segment networks with their kind (pair, own, egress, ingress, router).
const LabelSegment = "io.lifecycle.segment"

// ProjectNetworkSpec is the top-level x-lifecycle.network block.
type ProjectNetworkSpec struct {
	// Default is "open" (services without a network block keep compose's networks) or
	// "isolate" (the allow-list applies to every service).
	Default string `mapstructure:"default" json:"default,omitempty" yaml:"default,omitempty"`
	// Pool is the IPv4 range segment subnets come from; Size their prefix length.
	Pool string `mapstructure:"pool" json:"pool,omitempty" yaml:"pool,omitempty"`
	Size int    `mapstructure:"size" json:"size,omitempty" yaml:"size,omitempty"`
	// Active is true when segmentation is on: a service has a network block or
	// Default is isolate. Otherwise the project keeps compose's networks.
	// Not written: it follows from the blocks present.
	Active bool `mapstructure:"-" json:"-" yaml:"-"`
	// Observed maps the engine's networks to their subnets, so allocation skips
	// them; set by ObserveNetworks before planning (nil: nothing observed).
	Observed map[string][]netip.Prefix `mapstructure:"-" json:"-" yaml:"-"`
}

// ServiceNetworkSpec is a service's x-lifecycle.network block.
type ServiceNetworkSpec struct {
	// TalksTo is the allow-list: the services this one may reach (and that may reach
	// it: a shared network has no direction).
	TalksTo []string `mapstructure:"talks-to" json:"talks-to" yaml:"talks-to"`
	// Ingress: reachable from outside through the router (default: when it publishes ports).
	Ingress *bool `mapstructure:"ingress" json:"ingress,omitempty" yaml:"ingress,omitempty"`
	// Egress: internet access (default false for an isolated service).
	Egress *bool `mapstructure:"egress" json:"egress,omitempty" yaml:"egress,omitempty"`
	// Isolated is resolved: the allow-list applies to the service.
	// Not written: a service with a network block is isolated.
	Isolated bool `mapstructure:"-" json:"-" yaml:"-"`
}

// validateProjectNetwork checks the top-level block's values (DecodeProjectSpec).
func validateProjectNetwork(n *ProjectNetworkSpec) error {
	if n == nil {
		return nil
	}
	switch n.Default {
	case "", NetworkDefaultOpen, NetworkDefaultIsolate:
	default:
		return fmt.Errorf("key \"network.default\": unknown value %q (valid: %s, %s)", n.Default, NetworkDefaultOpen, NetworkDefaultIsolate)
	}
	pool, size := n.pool()
	if n.Pool != "" {
		p, err := netip.ParsePrefix(n.Pool)
		if err != nil || !p.Addr().Is4() || p.Bits() < 8 {
			return fmt.Errorf("key \"network.pool\": want an IPv4 range such as %q (a /8 or smaller), got %q", segments.DefaultPool, n.Pool)
		}
		pool = p.Masked()
	}
	if n.Size != 0 && (size < pool.Bits() || size > 30) {
		return fmt.Errorf("key \"network.size\": want a prefix length from %d (the pool's) to 30, got %d", pool.Bits(), n.Size)
	}
	return nil
}

func (n *ProjectNetworkSpec) pool() (netip.Prefix, int) {
	pool := netip.MustParsePrefix(segments.DefaultPool)
	size := segments.DefaultSize
	if n == nil {
		return pool, size
	}
	if p, err := netip.ParsePrefix(n.Pool); err == nil {
		pool = p.Masked()
	}
	if n.Size != 0 {
		size = n.Size
	}
	return pool, size
}

// resolveNetworks applies x-lifecycle.network once every service spec is decoded:
// it turns segmentation on when a service has a network block or the project isolates,
// checks talks-to names and the ingress/egress rules, and fills defaults. A project
// without any network key is left exactly as it was.
func resolveNetworks(p *Project, files *fileLocator) error {
	isolate := p.Spec.Network != nil && p.Spec.Network.Default == NetworkDefaultIsolate
	active := isolate
	for _, s := range p.ServiceSpecs {
		active = active || s.Network != nil
	}
	if !active {
		return nil
	}
	if p.Spec.Network == nil {
		p.Spec.Network = &ProjectNetworkSpec{}
	}
	ns := p.Spec.Network
	ns.Active = true
	if ns.Default == "" {
		ns.Default = NetworkDefaultOpen
	}
	pool, size := ns.pool()
	ns.Pool, ns.Size = pool.String(), size

	names := p.ServiceNames()
	for _, name := range names {
		s := p.ServiceSpecs[name]
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s: service %q: %w: %s", files.find("services", name, ExtensionKey), name, ErrInvalidSpec, fmt.Sprintf(format, args...))
		}
		n := &ServiceNetworkSpec{Isolated: isolate || s.Network != nil}
		if s.Network != nil {
			*n = *s.Network
			n.Isolated = true
		}
		var talks []string
		for _, peer := range n.TalksTo {
			switch {
			case peer == name:
				return fail("key \"network.talks-to\": a service cannot talk to itself")
			case slices.Contains(names, peer):
				if !slices.Contains(talks, peer) {
					talks = append(talks, peer)
				}
			case p.DisabledServices[peer].Name != "":
				// in a profile that is not active: nothing to talk to in this deploy
			default:
				return fail("key \"network.talks-to\": unknown service %q (services: %s)", peer, strings.Join(names, ", "))
			}
		}
		sort.Strings(talks)
		n.TalksTo = talks
		publishes := publishesPorts(p, name)
		if n.Isolated {
			if n.Ingress != nil && !*n.Ingress && publishes {
				return fail("key \"network.ingress\": ingress: false but publishes ports; remove the ports or set ingress: true")
			}
			if n.Ingress != nil && *n.Ingress && !publishes {
				return fail("key \"network.ingress\": ingress: true but publishes no ports (ingress comes through the router, which carries published ports)")
			}
			n.Ingress = &publishes
			if n.Egress == nil {
				n.Egress = new(false)
			}
			if publishes && !p.ServiceSpecs[name].Routed() && !*n.Egress {
				return fail("key \"network.egress\": strategy %s publishes its ports from the container itself, which internal networks cannot do; set egress: true (the service joins the egress network) or use a routed strategy", s.Strategy)
			}
		}
		s.Network = n
		p.ServiceSpecs[name] = s
	}
	return nil
}

// publishesPorts: the service has ports the router carries (routed strategies) or that
// its container publishes (recreate).
func publishesPorts(p *Project, service string) bool {
	if p.ServiceSpecs[service].Routed() {
		return BehindRouter(p, service)
	}
	return len(p.Project.Services[service].Ports) > 0
}

// Segmented reports whether network segmentation is on for the project.
func Segmented(p *Project) bool { return p.Spec.Network != nil && p.Spec.Network.Active }

// NetworkSpec is the project's rules in the segments package's terms. It works for
// projects without segmentation too: every service is then open on its compose networks.
func NetworkSpec(p *Project) segments.Spec {
	spec := segments.Spec{Project: p.Name}
	for _, name := range p.ServiceNames() {
		svc := p.Project.Services[name]
		s := segments.Service{Name: name}
		if n := p.ServiceSpecs[name].Network; n != nil && Segmented(p) {
			s.Isolated, s.TalksTo = n.Isolated, n.TalksTo
			s.Egress = n.Egress != nil && *n.Egress
			s.Ingress = n.Isolated && BehindRouter(p, name)
		}
		for key := range svc.Networks {
			if s.Isolated && key == "default" {
				continue // an isolated service leaves compose's default network
			}
			s.Networks = append(s.Networks, key)
		}
		sort.Strings(s.Networks)
		spec.Services = append(spec.Services, s)
	}
	return spec
}

// NetworkLayout is the project's segment networks and memberships (empty when
// segmentation is off).
func NetworkLayout(p *Project) (segments.Layout, error) {
	if !Segmented(p) {
		return segments.Layout{Project: p.Name, Services: map[string][]segments.Membership{}}, nil
	}
	return segments.Build(NetworkSpec(p))
}

// layout is NetworkLayout for callers that run after Load validated the rules.
func layout(p *Project) segments.Layout {
	l, _ := NetworkLayout(p)
	return l
}

// ObserveNetworks records the engine's networks and their subnets, so that segment
// subnets skip them and existing segment networks keep theirs. Nothing happens for a
// project without segmentation.
func ObserveNetworks(p *Project, subnets map[string][]netip.Prefix) {
	if Segmented(p) {
		p.Spec.Network.Observed = subnets
	}
}

// SegmentSubnets gives each segment network its subnet: the one it has on the engine,
// else the next free one of the pool.
func SegmentSubnets(p *Project) (map[string]netip.Prefix, error) {
	l := layout(p)
	names := make([]string, 0, len(l.Networks))
	for _, n := range l.Networks {
		names = append(names, n.Name)
	}
	var used []netip.Prefix
	existing := map[string]netip.Prefix{}
	for name, subnets := range p.Spec.Network.Observed {
		used = append(used, subnets...)
		if len(subnets) > 0 {
			existing[name] = subnets[0]
		}
	}
	pool, size := p.Spec.Network.pool()
	return segments.Allocate(names, pool, size, used, existing)
}

// segmentNetworkCreates are the segment networks to create, with compose's labels and
// an explicit subnet each. Subnet allocation can fail only when the pool is exhausted;
// the network is then left to the engine's default pools and the plan warns (see
// `docker lifecycle network plan`).
func segmentNetworkCreates(p *Project) []NetworkCreate {
	if !Segmented(p) {
		return nil
	}
	l := layout(p)
	subnets, _ := SegmentSubnets(p)
	var out []NetworkCreate
	for _, n := range l.Networks {
		nc := NetworkCreate{Name: n.Name, Internal: n.Internal, Labels: map[string]string{
			LabelProject: p.Name, LabelNetwork: n.Key, LabelVersion: ComposeVersionLabelValue,
			LabelManagedBy: ManagedByValue, LabelSegment: string(n.Kind),
		}}
		if n.NoICC {
			nc.Options = map[string]string{"com.docker.network.bridge.enable_icc": "false"}
		}
		if subnet, ok := subnets[n.Name]; ok {
			nc.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}}
		}
		out = append(out, nc)
	}
	return out
}

// skipComposeNetwork leaves out compose's default network when segmentation is on and
// no service stays on it.
func skipComposeNetwork(p *Project, key string) bool {
	if !Segmented(p) || key != "default" {
		return false
	}
	for _, s := range NetworkSpec(p).Services {
		if slices.Contains(s.Networks, key) {
			return false
		}
	}
	return true
}

// segmentNetworks adapts a service for networking(): an isolated service loses
// compose's default network, and every service gets the endpoints of its segment
// networks. primary is "" when segmentation is off or the service has none.
func segmentNetworks(p *Project, svc types.ServiceConfig, containerName string) (types.ServiceConfig, map[string]*network.EndpointSettings, string) {
	if !Segmented(p) {
		return svc, nil, ""
	}
	if n := p.ServiceSpecs[svc.Name].Network; n != nil && n.Isolated && svc.Networks != nil {
		svc.Networks = maps.Clone(svc.Networks)
		delete(svc.Networks, "default")
	}
	members := layout(p).Services[svc.Name]
	if len(members) == 0 {
		return svc, nil, ""
	}
	endpoints := map[string]*network.EndpointSettings{}
	for _, m := range members {
		ep := &network.EndpointSettings{}
		if m.Aliases {
			ep.Aliases = []string{containerName, svc.Name}
		}
		endpoints[m.Network] = ep
	}
	// The primary network is connected at create (older engines take one only); a
	// compose network the service keeps comes first, as before, else a segment.
	primary := members[0].Network
	if len(svc.Networks) > 0 {
		primary = p.Networks[svc.NetworksByPriority()[0]].Name
	}
	return svc, endpoints, primary
}

// segmentHash is what a service's containers join besides compose networks: part of
// its config hash, so a change of rules recreates exactly the services it concerns.
func segmentHash(p *Project, service string) []string {
	if !Segmented(p) {
		return nil
	}
	var out []string
	if n := p.ServiceSpecs[service].Network; n != nil && n.Isolated {
		out = append(out, "isolated")
	}
	for _, m := range layout(p).Services[service] {
		out = append(out, fmt.Sprintf("%s aliases=%t", m.Network, m.Aliases))
	}
	return out
}

// routerSegments are the networks the router joins to reach an isolated service behind
// it: the service's ingress network and the router's own (not internal, so the router
// can publish host ports).
func routerSegments(p *Project, service string) ([]string, bool) {
	if !Segmented(p) {
		return nil, false
	}
	n := p.ServiceSpecs[service].Network
	if n == nil || !n.Isolated {
		return nil, false
	}
	l := layout(p)
	var out []string
	for _, ln := range l.Networks {
		if ln.Kind == segments.KindRouter || (ln.Kind == segments.KindIngress && slices.Contains(ln.Members, service)) {
			out = append(out, ln.Name)
		}
	}
	return out, true
}

// ProbePort is the port `network verify` tries on a service: its first exposed port,
// else its first port target; 0 when it declares none (DNS is checked alone).
func ProbePort(p *Project, service string) int {
	svc := p.Project.Services[service]
	for _, e := range svc.Expose {
		port, proto, _ := strings.Cut(e, "/")
		if proto != "" && proto != "tcp" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err == nil && n > 0 {
			return n
		}
	}
	for _, pc := range svc.Ports {
		if pc.Protocol == "" || pc.Protocol == "tcp" {
			return int(pc.Target)
		}
	}
	return 0
}
