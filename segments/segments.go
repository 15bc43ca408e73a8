// Package segments turns communication rules (x-lifecycle.network: talks-to, ingress,
// egress) into Docker networks whose reachability is exactly the allow-list, and
// computes the reachability matrix a project's networks give. It is pure: the compose
// package feeds it the rules, the plugin prints and verifies what it returns.
//
// The model: one internal network per allowed pair {A, B} (A talks to B or B talks to
// A), so reachability is never transitive (A and C talking to B share no network); one
// shared egress network, not internal but with inter-container traffic disabled, for
// the services allowed to reach the internet; one internal ingress network per service
// behind the router, joined by that service and the router only; a non-internal router
// network that lets the router publish host ports; and an internal network of its own
// for a service that would otherwise have none.
package segments

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Kind says what a segment network is for.
type Kind string

const (
	KindPair    Kind = "pair"    // two services that may talk to each other
	KindOwn     Kind = "own"     // a service with no peer and no egress
	KindEgress  Kind = "egress"  // internet access, no traffic between its members
	KindIngress Kind = "ingress" // the router and one service behind it
	KindRouter  Kind = "router"  // the router alone, so it can publish host ports
)

// Router is the member name of the project's router in Network.Members.
const Router = "(router)"

// Prefix starts every segment network key, so segments never clash with compose network keys.
const Prefix = "lc-"

// maxNameLen bounds engine network names; longer ones are truncated and hashed.
const maxNameLen = 63

// Service is one service's rules, as the compose package resolved them.
type Service struct {
	Name string
	// Isolated is true when the allow-list applies (project default isolate, or the
	// service has an x-lifecycle.network block). Other services keep compose's networks.
	Isolated bool
	// TalksTo lists the services it may open connections to.
	TalksTo []string
	// Egress gives it internet access (the egress network).
	Egress bool
	// Ingress is true when the router carries its published ports: it gets an ingress network.
	Ingress bool
	// Networks are the compose network keys the service stays on: all of them for an
	// open service, the declared ones except `default` for an isolated one.
	Networks []string
}

// Spec is a project's rules.
type Spec struct {
	Project  string
	Services []Service
}

// Network is one segment network to create.
type Network struct {
	// Key is the compose-style key (label com.docker.compose.network), Name the engine name.
	Key      string `json:"key"`
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	Internal bool   `json:"internal"`
	// NoICC disables traffic between the network's containers (the egress network).
	NoICC   bool     `json:"no_icc,omitempty"`
	Members []string `json:"members"`
}

// Membership is one network a service's containers join.
type Membership struct {
	Network string // engine name
	// Aliases: the service name and the container name are DNS aliases there. The
	// egress network has none, so no service is found through it.
	Aliases bool
}

// Layout is the networks a Spec needs and who joins which.
type Layout struct {
	Project  string
	Networks []Network // sorted by name
	// Services maps each isolated service to its segment networks (sorted by name).
	Services map[string][]Membership
	// Router lists the segment networks the router joins (sorted).
	Router []string
}

// Active reports whether the spec has any isolated service: otherwise there is nothing
// to build and the project keeps compose's behaviour.
func (s Spec) Active() bool {
	for _, svc := range s.Services {
		if svc.Isolated {
			return true
		}
	}
	return false
}

// Build computes the layout. It fails on rules naming unknown services.
func Build(spec Spec) (Layout, error) {
	l := Layout{Project: spec.Project, Services: map[string][]Membership{}}
	byName := map[string]Service{}
	for _, s := range spec.Services {
		byName[s.Name] = s
	}
	for _, s := range spec.Services {
		for _, peer := range s.TalksTo {
			if _, ok := byName[peer]; !ok {
				return l, fmt.Errorf("service %q talks to unknown service %q", s.Name, peer)
			}
		}
	}
	if !spec.Active() {
		return l, nil
	}
	nets := map[string]*Network{}
	add := func(key string, kind Kind, internal bool, members ...string) string {
		name := engineName(spec.Project, key)
		n, ok := nets[name]
		if !ok {
			n = &Network{Key: key, Name: name, Kind: kind, Internal: internal, NoICC: kind == KindEgress}
			nets[name] = n
		}
		for _, m := range members {
			if !slices.Contains(n.Members, m) {
				n.Members = append(n.Members, m)
			}
		}
		return name
	}
	join := func(service, network string, aliases bool) {
		for _, m := range l.Services[service] {
			if m.Network == network {
				return
			}
		}
		l.Services[service] = append(l.Services[service], Membership{Network: network, Aliases: aliases})
	}

	for _, a := range spec.Services {
		for _, b := range spec.Services {
			if a.Name >= b.Name || !(a.Isolated || b.Isolated) {
				continue // open services reach each other through their compose networks
			}
			if !slices.Contains(a.TalksTo, b.Name) && !slices.Contains(b.TalksTo, a.Name) {
				continue
			}
			name := add(pairKey(a.Name, b.Name), KindPair, true, a.Name, b.Name)
			join(a.Name, name, true)
			join(b.Name, name, true)
		}
	}
	routed := false
	for _, s := range spec.Services {
		if !s.Isolated {
			continue
		}
		if s.Egress {
			join(s.Name, add(Prefix+"egress", KindEgress, false, s.Name), false)
		}
		if s.Ingress {
			join(s.Name, add(ingressKey(s.Name), KindIngress, true, s.Name, Router), true)
			routed = true
		}
	}
	for _, s := range spec.Services {
		if s.Isolated && len(l.Services[s.Name]) == 0 && len(s.Networks) == 0 {
			join(s.Name, add(ownKey(s.Name), KindOwn, true, s.Name), true)
		}
	}
	if routed {
		add(Prefix+"router", KindRouter, false, Router)
	}

	for _, n := range nets {
		sort.Strings(n.Members)
		l.Networks = append(l.Networks, *n)
		if slices.Contains(n.Members, Router) {
			l.Router = append(l.Router, n.Name)
		}
	}
	sort.Slice(l.Networks, func(i, j int) bool { return l.Networks[i].Name < l.Networks[j].Name })
	sort.Strings(l.Router)
	for name := range l.Services {
		sort.Slice(l.Services[name], func(i, j int) bool { return l.Services[name][i].Network < l.Services[name][j].Network })
	}
	return l, nil
}

// reserved keys name the shared networks; a service with such a name gets a hashed key.
var reserved = []string{"egress", "router", "ingress"}

// plain reports whether a service name can stand in a key unhashed: with no dash (so a
// pair key splits one way only) and not a reserved word.
func plain(name string) bool {
	return !strings.Contains(name, "-") && !slices.Contains(reserved, name)
}

func pairKey(a, b string) string {
	if a > b {
		a, b = b, a
	}
	key := Prefix + a + "-" + b
	if plain(a) && plain(b) {
		return key
	}
	return key + "-" + shortHash(a+"\x00"+b)
}

func ingressKey(s string) string {
	if plain(s) {
		return Prefix + "ingress-" + s
	}
	return Prefix + "ingress-" + s + "-" + shortHash(s)
}

func ownKey(s string) string {
	if plain(s) {
		return Prefix + s
	}
	return Prefix + s + "-" + shortHash("own\x00"+s)
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// engineName is the engine name of a segment network, as compose names networks
// ("<project>_<key>"), truncated and hashed when too long.
func engineName(project, key string) string {
	name := project + "_" + key
	if len(name) <= maxNameLen {
		return name
	}
	h := shortHash(name)
	return name[:maxNameLen-len(h)-1] + "-" + h
}

// Check reports two segment networks with the same engine name (never expected: keys
// are built so that they cannot clash, but a clash would merge two segments).
func (l Layout) Check() error {
	seen := map[string]bool{}
	for _, n := range l.Networks {
		if seen[n.Name] {
			return fmt.Errorf("segment network name %s is used twice", n.Name)
		}
		seen[n.Name] = true
	}
	return nil
}
