package segments

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// Matrix says, for each ordered pair of services, whether the first may open a
// connection to the second. Networks are not directional: a pair network lets both
// sides connect, so the policy matrix is symmetric.
type Matrix struct {
	Services []string
	allowed  map[[2]string]bool
}

// NewMatrix returns a matrix over services with every pair denied.
func NewMatrix(services []string) Matrix {
	s := slices.Clone(services)
	sort.Strings(s)
	return Matrix{Services: s, allowed: map[[2]string]bool{}}
}

// Set records whether from reaches to.
func (m Matrix) Set(from, to string, ok bool) { m.allowed[[2]string{from, to}] = ok }

// Allowed reports whether from reaches (or may reach) to.
func (m Matrix) Allowed(from, to string) bool { return m.allowed[[2]string{from, to}] }

// Policy is what the rules allow: a talks to b or b talks to a (one shared network
// serves both directions), or both are open services sharing a compose network.
func Policy(spec Spec) Matrix {
	names := make([]string, 0, len(spec.Services))
	for _, s := range spec.Services {
		names = append(names, s.Name)
	}
	m := NewMatrix(names)
	for _, a := range spec.Services {
		for _, b := range spec.Services {
			if a.Name == b.Name {
				continue
			}
			ok := slices.Contains(a.TalksTo, b.Name) || slices.Contains(b.TalksTo, a.Name)
			if !a.Isolated && !b.Isolated && shareAny(a.Networks, b.Networks) {
				ok = true
			}
			m.Set(a.Name, b.Name, ok)
		}
	}
	return m
}

// Topology is what the networks of a layout give: two services reach each other when
// they share a network on which containers may talk (segment or compose network).
func Topology(spec Spec, l Layout) Matrix {
	names := make([]string, 0, len(spec.Services))
	nets := map[string][]string{}
	noICC := map[string]bool{}
	for _, n := range l.Networks {
		noICC[n.Name] = n.NoICC
	}
	for _, s := range spec.Services {
		names = append(names, s.Name)
		for _, k := range s.Networks {
			nets[s.Name] = append(nets[s.Name], "compose:"+k)
		}
		for _, mb := range l.Services[s.Name] {
			if !noICC[mb.Network] {
				nets[s.Name] = append(nets[s.Name], mb.Network)
			}
		}
	}
	m := NewMatrix(names)
	for _, a := range names {
		for _, b := range names {
			if a != b {
				m.Set(a, b, shareAny(nets[a], nets[b]))
			}
		}
	}
	return m
}

func shareAny(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// Difference is one pair where two matrices disagree.
type Difference struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Want is what the policy allows, Got what was found.
	Want bool `json:"policy"`
	Got  bool `json:"observed"`
}

func (d Difference) String() string {
	word := map[bool]string{true: "reachable", false: "unreachable"}
	return fmt.Sprintf("%s → %s: policy %s, observed %s", d.From, d.To,
		map[bool]string{true: "allows", false: "denies"}[d.Want], word[d.Got])
}

// Diff lists the pairs (over want's services) where got differs from want; skip
// leaves pairs out (e.g. a source that could not be probed).
func Diff(want, got Matrix, skip func(from, to string) bool) []Difference {
	var out []Difference
	for _, a := range want.Services {
		for _, b := range want.Services {
			if a == b || (skip != nil && skip(a, b)) {
				continue
			}
			if w, g := want.Allowed(a, b), got.Allowed(a, b); w != g {
				out = append(out, Difference{From: a, To: b, Want: w, Got: g})
			}
		}
	}
	return out
}

// Map is the matrix as nested maps, for JSON output.
func (m Matrix) Map() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, a := range m.Services {
		out[a] = map[string]bool{}
		for _, b := range m.Services {
			if a != b {
				out[a][b] = m.Allowed(a, b)
			}
		}
	}
	return out
}

// WriteTable prints the matrix with rows as sources and columns as destinations; cell
// gives each cell's text (nil: "yes"/"-").
func (m Matrix) WriteTable(w io.Writer, cell func(from, to string) string) error {
	if cell == nil {
		cell = func(from, to string) string {
			if m.Allowed(from, to) {
				return "yes"
			}
			return "-"
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "FROM \\ TO\t%s\n", strings.Join(m.Services, "\t"))
	for _, a := range m.Services {
		cells := make([]string, 0, len(m.Services))
		for _, b := range m.Services {
			if a == b {
				cells = append(cells, "·")
				continue
			}
			cells = append(cells, cell(a, b))
		}
		fmt.Fprintf(tw, "%s\t%s\n", a, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}
