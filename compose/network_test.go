package compose

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

// isolatedShop is the e2e project: web → api → db, worker → db; web is published.
const isolatedShop = `
x-lifecycle:
  network: {default: isolate}
services:
  web:
    image: web:1
    ports: ["127.0.0.1:8080:8080"]
    x-lifecycle: {network: {talks-to: [api]}}
  api:
    image: api:1
    expose: ["8080"]
    x-lifecycle: {network: {talks-to: [db]}}
  db:
    image: db:1
    expose: ["8080"]
  worker:
    image: worker:1
    x-lifecycle: {network: {talks-to: [db], egress: true}}
`

// describeNetworking renders what the converter gives a segmented project: networks to
// create (with subnets and labels), each service's endpoints, the router's networks.
func describeNetworking(t *testing.T, p *Project) string {
	t.Helper()
	var b bytes.Buffer
	create, external := Networks(p)
	fmt.Fprintf(&b, "external: %v\n", external)
	for _, n := range create {
		subnet := "engine default"
		if n.IPAM != nil {
			subnet = n.IPAM.Config[0].Subnet.String()
		}
		var labels []string
		for k, v := range n.Labels {
			labels = append(labels, k+"="+v)
		}
		sort.Strings(labels)
		fmt.Fprintf(&b, "network %s internal=%t subnet=%s options=%v\n  labels: %s\n", n.Name, n.Internal, subnet, n.Options, strings.Join(labels, " "))
	}
	for _, name := range p.ServiceNames() {
		c, err := Container(p, name, ReplicaLabels{Number: 1, Revision: 1})
		assert.NilError(t, err)
		fmt.Fprintf(&b, "service %s: mode=%s ports=%v\n", name, c.HostConfig.NetworkMode, c.HostConfig.PortBindings)
		if c.Networking == nil {
			continue
		}
		var nets []string
		for n := range c.Networking.EndpointsConfig {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		for _, n := range nets {
			fmt.Fprintf(&b, "  %s aliases=%v\n", n, c.Networking.EndpointsConfig[n].Aliases)
		}
	}
	fmt.Fprintf(&b, "router: %v\n", RouterNetworks(p))
	return b.String()
}

func TestSegmentedNetworking(t *testing.T) {
	p, _ := loadProject(t, isolatedShop, nil)
	assert.Check(t, Segmented(p))
	golden.Assert(t, describeNetworking(t, p), "network-isolated.golden")
}

func TestSegmentedMixed(t *testing.T) {
	// Only report has rules: the others stay open on compose's networks; report keeps
	// its declared network and joins cache through a pair network; db is recreate with
	// a published port and egress.
	p, _ := loadProject(t, `
services:
  cache: {image: cache:1}
  queue: {image: queue:1}
  report:
    image: report:1
    networks: [reports]
    x-lifecycle: {network: {talks-to: [cache]}}
  db:
    image: db:1
    ports: ["127.0.0.1:5432:5432"]
    x-lifecycle: {strategy: recreate, network: {egress: true}}
networks:
  reports: {}
`, nil)
	golden.Assert(t, describeNetworking(t, p), "network-mixed.golden")
}

func TestSegmentationOffLeavesProjectAlone(t *testing.T) {
	const plain = `
services:
  web: {image: web:1, ports: ["8080:8080"]}
  db: {image: db:1}
`
	p, _ := loadProject(t, plain, nil)
	assert.Check(t, !Segmented(p))
	assert.Check(t, p.Spec.Network == nil)
	for _, name := range p.ServiceNames() {
		assert.Check(t, p.ServiceSpecs[name].Network == nil)
	}
	// A pool alone does not turn segmentation on.
	q, _ := loadProject(t, "x-lifecycle: {network: {pool: 10.99.0.0/16}}\n"+plain, nil)
	assert.Check(t, !Segmented(q))
	for _, name := range p.ServiceNames() {
		h1, err := ConfigHash(p, name)
		assert.NilError(t, err)
		h2, err := ConfigHash(q, name)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(h1, h2))
	}
	assert.Equal(t, describeNetworking(t, p), describeNetworking(t, q))
}

func TestSegmentationChangesConfigHash(t *testing.T) {
	p, _ := loadProject(t, isolatedShop, nil)
	q, _ := loadProject(t, strings.Replace(isolatedShop, "talks-to: [db], egress: true", "talks-to: [db, api]", 1), nil)
	same := func(service string) bool {
		h1, err := ConfigHash(p, service)
		assert.NilError(t, err)
		h2, err := ConfigHash(q, service)
		assert.NilError(t, err)
		return h1 == h2
	}
	// worker now talks to api too (and lost egress): worker and api change, web and db do not.
	assert.Check(t, !same("worker"))
	assert.Check(t, !same("api"))
	assert.Check(t, same("web"))
	assert.Check(t, same("db"))
}

func TestSegmentSubnetsSkipEngineNetworks(t *testing.T) {
	p, _ := loadProject(t, isolatedShop, nil)
	ObserveNetworks(p, map[string][]netip.Prefix{
		"bridge":            {netip.MustParsePrefix("172.17.0.0/16")},
		"other_lc-x":        {netip.MustParsePrefix("10.213.0.0/28")},
		"shop_lc-db-worker": {netip.MustParsePrefix("10.213.4.0/28")}, // exists: keeps its subnet
	})
	subnets, err := SegmentSubnets(p)
	assert.NilError(t, err)
	got := map[string]string{}
	for k, v := range subnets {
		got[k] = v.String()
	}
	assert.DeepEqual(t, got, map[string]string{
		"shop_lc-api-db":      "10.213.0.16/28",
		"shop_lc-api-web":     "10.213.0.32/28",
		"shop_lc-db-worker":   "10.213.4.0/28",
		"shop_lc-egress":      "10.213.0.48/28",
		"shop_lc-ingress-web": "10.213.0.64/28",
		"shop_lc-router":      "10.213.0.80/28",
	})
}

func TestNetworkSpecErrors(t *testing.T) {
	tests := []struct {
		name, compose string
		contains      []string
	}{
		{
			name: "unknown talks-to",
			compose: `
services:
  web: {image: web:1, x-lifecycle: {network: {talks-to: [nope]}}}
  api: {image: api:1}
`,
			contains: []string{"compose.yaml", `service "web"`, "invalid x-lifecycle", `key "network.talks-to": unknown service "nope" (services: api, web)`},
		},
		{
			name:     "talks to itself",
			compose:  "services:\n  web: {image: web:1, x-lifecycle: {network: {talks-to: [web]}}}\n",
			contains: []string{`service "web"`, "cannot talk to itself"},
		},
		{
			name:     "ingress false with ports",
			compose:  "services:\n  web: {image: web:1, ports: [\"8080:80\"], x-lifecycle: {network: {ingress: false}}}\n",
			contains: []string{`service "web"`, "ingress: false but publishes ports"},
		},
		{
			name:     "ingress true without ports",
			compose:  "services:\n  web: {image: web:1, x-lifecycle: {network: {ingress: true}}}\n",
			contains: []string{"ingress: true but publishes no ports"},
		},
		{
			name:     "recreate with ports and no egress",
			compose:  "services:\n  db: {image: db:1, ports: [\"5432:5432\"], x-lifecycle: {strategy: recreate, network: {}}}\n",
			contains: []string{`service "db"`, `key "network.egress"`, "internal networks cannot", "set egress: true"},
		},
		{
			name:     "unknown service key",
			compose:  "services:\n  web: {image: web:1, x-lifecycle: {network: {talk-to: [api]}}}\n",
			contains: []string{`unknown key "network.talk-to" (valid keys: talks-to, ingress, egress)`},
		},
		{
			name:     "talks-to not a list",
			compose:  "services:\n  web: {image: web:1, x-lifecycle: {network: {talks-to: api}}}\n",
			contains: []string{`service "web"`, "talks-to"},
		},
		{
			name:     "bad default",
			compose:  "x-lifecycle: {network: {default: deny}}\nservices:\n  web: {image: web:1}\n",
			contains: []string{"top-level invalid x-lifecycle", `key "network.default": unknown value "deny" (valid: open, isolate)`},
		},
		{
			name:     "bad pool",
			compose:  "x-lifecycle: {network: {pool: 10.0.0.0}}\nservices:\n  web: {image: web:1}\n",
			contains: []string{`key "network.pool"`, `got "10.0.0.0"`},
		},
		{
			name:     "bad size",
			compose:  "x-lifecycle: {network: {pool: 10.9.0.0/24, size: 20}}\nservices:\n  web: {image: web:1}\n",
			contains: []string{`key "network.size": want a prefix length from 24 (the pool's) to 30, got 20`},
		},
		{
			name:     "unknown project key",
			compose:  "x-lifecycle: {network: {isolate: true}}\nservices:\n  web: {image: web:1}\n",
			contains: []string{`unknown key "network.isolate" (valid keys: default, pool, size)`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadFiles(t, map[string]string{"compose.yaml": tt.compose}, LoadOptions{ProjectName: "shop"})
			assert.Assert(t, err != nil)
			assert.Check(t, is.ErrorIs(err, ErrInvalidSpec))
			for _, c := range tt.contains {
				assert.Check(t, is.Contains(err.Error(), c))
			}
		})
	}
}

func TestNetworkSpecResolved(t *testing.T) {
	p, _ := loadProject(t, isolatedShop, nil)
	assert.DeepEqual(t, *p.Spec.Network, ProjectNetworkSpec{Default: "isolate", Pool: "10.213.0.0/16", Size: 28, Active: true})
	assert.DeepEqual(t, *p.ServiceSpecs["web"].Network, ServiceNetworkSpec{TalksTo: []string{"api"}, Ingress: new(true), Egress: new(false), Isolated: true})
	assert.DeepEqual(t, *p.ServiceSpecs["db"].Network, ServiceNetworkSpec{Ingress: new(false), Egress: new(false), Isolated: true})
	assert.Check(t, is.Equal(ProbePort(p, "api"), 8080))
	assert.Check(t, is.Equal(ProbePort(p, "web"), 8080))
	assert.Check(t, is.Equal(ProbePort(p, "worker"), 0))
	// talks-to a service of an inactive profile is dropped, not an error.
	q, _ := loadProject(t, `
services:
  web: {image: web:1, x-lifecycle: {network: {talks-to: [debug]}}}
  debug: {image: debug:1, profiles: [debug]}
`, nil)
	assert.Check(t, is.Len(q.ServiceSpecs["web"].Network.TalksTo, 0))
}
