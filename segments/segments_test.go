package segments

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

// describe renders a layout and its matrices as text for golden files.
func describe(t *testing.T, spec Spec) string {
	t.Helper()
	l, err := Build(spec)
	assert.NilError(t, err)
	assert.NilError(t, l.Check())
	var b bytes.Buffer
	fmt.Fprintln(&b, "networks:")
	for _, n := range l.Networks {
		flags := []string{string(n.Kind)}
		if n.Internal {
			flags = append(flags, "internal")
		}
		if n.NoICC {
			flags = append(flags, "no-icc")
		}
		fmt.Fprintf(&b, "  %s (%s): %s\n", n.Name, strings.Join(flags, ", "), strings.Join(n.Members, " "))
	}
	fmt.Fprintln(&b, "memberships:")
	for _, s := range spec.Services {
		var ms []string
		for _, m := range l.Services[s.Name] {
			alias := ""
			if !m.Aliases {
				alias = " (no alias)"
			}
			ms = append(ms, m.Network+alias)
		}
		for _, k := range s.Networks {
			ms = append(ms, "compose:"+k)
		}
		fmt.Fprintf(&b, "  %s: %s\n", s.Name, strings.Join(ms, ", "))
	}
	fmt.Fprintf(&b, "router: %s\n", strings.Join(l.Router, ", "))
	fmt.Fprintln(&b, "policy:")
	policy := Policy(spec)
	assert.NilError(t, policy.WriteTable(&b, nil))
	topo := Topology(spec, l)
	fmt.Fprintln(&b, "differences between policy and topology:")
	for _, d := range Diff(policy, topo, nil) {
		fmt.Fprintf(&b, "  %s\n", d)
	}
	return b.String()
}

// The e2e project: web → api → db, worker → db; web is published through the router.
func fourServices() Spec {
	return Spec{Project: "shop", Services: []Service{
		{Name: "api", Isolated: true, TalksTo: []string{"db"}},
		{Name: "db", Isolated: true},
		{Name: "web", Isolated: true, TalksTo: []string{"api"}, Ingress: true},
		{Name: "worker", Isolated: true, TalksTo: []string{"db"}, Egress: true},
	}}
}

func TestBuildIsolated(t *testing.T) {
	spec := fourServices()
	golden.Assert(t, describe(t, spec), "isolated.golden")

	l, err := Build(spec)
	assert.NilError(t, err)
	topo := Topology(spec, l)
	// No transitive reachability: web and db both talk to api's side of the graph
	// (web → api → db) but share no network.
	assert.Check(t, !topo.Allowed("web", "db"))
	assert.Check(t, !topo.Allowed("api", "worker"), "api and worker both talk to db")
	assert.Check(t, topo.Allowed("db", "api"), "a pair network serves both directions")
	assert.Check(t, is.Len(Diff(Policy(spec), topo, nil), 0))
}

func TestBuildMixed(t *testing.T) {
	// Open services keep compose's networks; an isolated one joins them only through
	// its allow-list; a kept user network that bridges isolated services shows up as
	// a difference between policy and topology.
	spec := Spec{Project: "shop", Services: []Service{
		{Name: "cache", Networks: []string{"default"}},
		{Name: "db", Isolated: true, Networks: []string{"backend"}},
		{Name: "lonely", Isolated: true},
		{Name: "queue", Networks: []string{"default"}},
		{Name: "report", Isolated: true, TalksTo: []string{"cache"}, Networks: []string{"backend"}},
		{Name: "web", Networks: []string{"default"}, Ingress: true},
	}}
	golden.Assert(t, describe(t, spec), "mixed.golden")
}

func TestBuildOff(t *testing.T) {
	spec := Spec{Project: "shop", Services: []Service{
		{Name: "api", Networks: []string{"default"}},
		{Name: "web", Networks: []string{"default", "front"}},
		{Name: "admin", Networks: []string{"front"}},
	}}
	assert.Check(t, !spec.Active())
	l, err := Build(spec)
	assert.NilError(t, err)
	assert.Check(t, is.Len(l.Networks, 0))
	p := Policy(spec)
	assert.Check(t, p.Allowed("api", "web") && p.Allowed("web", "admin"))
	assert.Check(t, !p.Allowed("api", "admin"))
}

func TestBuildUnknownService(t *testing.T) {
	_, err := Build(Spec{Project: "p", Services: []Service{{Name: "web", Isolated: true, TalksTo: []string{"nope"}}}})
	assert.Error(t, err, `service "web" talks to unknown service "nope"`)
}

func TestNamesNeverClash(t *testing.T) {
	// Dashes and reserved words would make plain keys ambiguous: they are hashed.
	spec := Spec{Project: "p", Services: []Service{
		{Name: "a", Isolated: true, TalksTo: []string{"b-c"}},
		{Name: "a-b", Isolated: true, TalksTo: []string{"c"}},
		{Name: "b-c", Isolated: true},
		{Name: "c", Isolated: true},
		{Name: "egress", Isolated: true, Egress: true},
		{Name: "ingress", Isolated: true, TalksTo: []string{"web"}},
		{Name: "router", Isolated: true},
		{Name: "web", Isolated: true, Ingress: true},
	}}
	l, err := Build(spec)
	assert.NilError(t, err)
	assert.NilError(t, l.Check())
	golden.Assert(t, describe(t, spec), "names.golden")
}

func TestLongNamesAreHashed(t *testing.T) {
	long := strings.Repeat("x", 40)
	l, err := Build(Spec{Project: "a-rather-long-project-name", Services: []Service{
		{Name: long, Isolated: true, TalksTo: []string{long + "y"}},
		{Name: long + "y", Isolated: true},
	}})
	assert.NilError(t, err)
	assert.Equal(t, len(l.Networks), 1)
	name := l.Networks[0].Name
	assert.Check(t, len(name) <= maxNameLen, name)
	assert.Check(t, strings.HasPrefix(name, "a-rather-long-project-name_lc-xxx"), name)
}

func TestAllocate(t *testing.T) {
	pool := netip.MustParsePrefix("10.213.0.0/16")
	used := []netip.Prefix{
		netip.MustParsePrefix("10.213.0.16/28"), // another project's network
		netip.MustParsePrefix("10.213.0.64/26"), // a wider network overlapping several /28s
		netip.MustParsePrefix("172.17.0.0/16"),
	}
	existing := map[string]netip.Prefix{"p_lc-c": netip.MustParsePrefix("10.213.9.0/28")}
	got, err := Allocate([]string{"p_lc-d", "p_lc-a", "p_lc-c", "p_lc-b", "p_lc-e", "p_lc-f"}, pool, 28, append(used, existing["p_lc-c"]), existing)
	assert.NilError(t, err)
	want := map[string]string{
		"p_lc-a": "10.213.0.0/28", "p_lc-b": "10.213.0.32/28", "p_lc-c": "10.213.9.0/28",
		"p_lc-d": "10.213.0.48/28", "p_lc-e": "10.213.0.128/28", "p_lc-f": "10.213.0.144/28",
	}
	for k, v := range want {
		assert.Check(t, is.Equal(got[k].String(), v), k)
	}
	// Deterministic: the same input gives the same subnets.
	again, err := Allocate([]string{"p_lc-f", "p_lc-e", "p_lc-d", "p_lc-c", "p_lc-b", "p_lc-a"}, pool, 28, append(used, existing["p_lc-c"]), existing)
	assert.NilError(t, err)
	assert.DeepEqual(t, fmt.Sprint(again), fmt.Sprint(got))
}

func TestAllocateErrors(t *testing.T) {
	pool := netip.MustParsePrefix("10.1.0.0/29")
	_, err := Allocate([]string{"a", "b", "c"}, pool, 30, nil, nil)
	assert.ErrorContains(t, err, "subnet pool 10.1.0.0/29 is exhausted")
	_, err = Allocate([]string{"a"}, pool, 31, nil, nil)
	assert.ErrorContains(t, err, "does not fit")
	_, err = Allocate([]string{"a"}, netip.MustParsePrefix("fd00::/64"), 28, nil, nil)
	assert.ErrorContains(t, err, "only IPv4")
}

func TestMatrixTable(t *testing.T) {
	m := NewMatrix([]string{"b", "a"})
	m.Set("a", "b", true)
	var buf bytes.Buffer
	assert.NilError(t, m.WriteTable(&buf, nil))
	assert.Equal(t, buf.String(), "FROM \\ TO  a  b\na          ·  yes\nb          -  ·\n", "%q", buf.String())
}
