package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// segmentedProject: web → api → db, worker → db; web is published on 127.0.0.1 through
// the router; the project isolates every service.
const segmentedProject = `
x-lifecycle:
  network: {default: isolate}
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%d:8080"]
    x-lifecycle: {network: {talks-to: [api]}}
  api:
    image: {{image:v1}}
    expose: ["8080"]
    x-lifecycle: {network: {talks-to: [db], egress: true}}
  db:
    image: {{image:v1}}
    expose: ["8080"]
  worker:
    image: {{image:v1}}
    x-lifecycle: {network: {talks-to: [db], egress: true}}
`

type verifyJSON struct {
	Policy   map[string]map[string]bool `json:"policy"`
	Observed map[string]map[string]struct {
		Reachable bool   `json:"reachable"`
		Resolved  bool   `json:"resolved"`
		Connect   string `json:"connect"`
	} `json:"observed"`
	Differences []struct{ From, To string } `json:"differences"`
	Probed      int                         `json:"probed"`
	Seconds     float64                     `json:"seconds"`
}

// TestNetworkSegmentation deploys the isolated project, proves the matrix with `network
// verify` (also from `deploy --verify-network`), checks independently that web cannot
// reach db, that a network added by hand is caught, and that `down` removes every
// segment network.
func TestNetworkSegmentation(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	agent := s.agentImage(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(segmentedProject, port))

	r := p.mustLifecycle("network", "plan")
	for _, want := range []string{"network segmentation on (default isolate", p.name + "_lc-api-db", p.name + "_lc-api-web", p.name + "_lc-db-worker", p.name + "_lc-ingress-web", p.name + "_lc-router", "10.213."} {
		assert.Check(t, is.Contains(r.stdout, want))
	}
	assert.Check(t, !strings.Contains(r.stdout, p.name+"_default"), r.stdout)

	r = p.mustLifecycle("deploy", "--verify-network")
	assert.Check(t, is.Contains(r.stdout, "Deployed project "+p.name))
	assert.Check(t, is.Contains(r.stdout, "Network matches the policy: 12 pairs probed from 4 services"), r.stdout)
	t.Logf("deploy --verify-network:\n%s", r.stdout)

	// The router reaches web through web's ingress network.
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))

	// Segment networks: internal pair networks with an explicit subnet from the pool,
	// labelled like compose's; no default network.
	pair := p.name + "_lc-api-db"
	assert.Check(t, is.Equal(p.inspect(`{{.Internal}} {{index .Labels "com.docker.compose.project"}} {{index .Labels "com.docker.compose.network"}} {{index .Labels "io.lifecycle.segment"}}`, pair), "true "+p.name+" lc-api-db pair"))
	assert.Check(t, is.Contains(p.inspect(`{{range .IPAM.Config}}{{.Subnet}}{{end}}`, pair), "10.213."))
	assert.Check(t, is.Equal(p.inspect(`{{.Internal}}`, p.name+"_lc-router"), "false"))
	assert.Check(t, s.docker(t, "", nil, "network", "inspect", p.name+"_default").code != 0, "no default network")

	r = p.mustLifecycle("network", "verify", "--format", "json")
	var v verifyJSON
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	assert.Check(t, is.Len(v.Differences, 0))
	assert.Check(t, is.Equal(v.Probed, 12))
	assert.Check(t, v.Observed["web"]["api"].Reachable && v.Observed["web"]["api"].Connect == "ok")
	assert.Check(t, v.Observed["db"]["api"].Reachable, "a pair network serves both directions")
	assert.Check(t, !v.Observed["web"]["db"].Reachable && !v.Observed["web"]["db"].Resolved, "web must not reach db")
	assert.Check(t, !v.Observed["api"]["worker"].Reachable, "api and worker both talk to db, not to each other")
	assert.Check(t, !v.Policy["web"]["db"])
	t.Logf("network verify took %.1fs", v.Seconds)

	// Independently of verify: from web's network namespace, db is neither resolvable
	// nor reachable, api is.
	web := p.name + "-web-r1-1"
	probe := func(target string) result {
		return s.docker(t, "", nil, "run", "--rm", "--label", "com.docker.compose.project="+p.name,
			"--network", "container:"+web, agent, "probe", "-timeout", "2s", "tcp", target)
	}
	assert.Check(t, is.Equal(probe("api:8080").code, 0))
	denied := probe("db:8080")
	assert.Check(t, is.Equal(denied.code, 1), denied.String())

	// api and worker share the egress network, where containers cannot talk to each
	// other: even by address, api does not reach worker.
	egress := p.name + "_lc-egress"
	assert.Check(t, is.Equal(p.inspect(`{{.Internal}} {{index .Options "com.docker.network.bridge.enable_icc"}}`, egress), "false false"))
	workerIP := p.inspect(fmt.Sprintf(`{{(index .NetworkSettings.Networks %q).IPAddress}}`, egress), p.name+"-worker-r1-1")
	fromAPI := s.docker(t, "", nil, "run", "--rm", "--label", "com.docker.compose.project="+p.name,
		"--network", "container:"+p.name+"-api-r1-1", agent, "probe", "-timeout", "2s", "tcp", workerIP+":8080")
	assert.Check(t, is.Equal(fromAPI.code, 1), fromAPI.String())
	assert.Check(t, is.Contains(fromAPI.stderr, "timeout"), fromAPI.String())

	// A second deploy changes nothing.
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stdout, "up to date: nothing to do"))

	// A network connected by hand breaks the policy: verify says where and exits 1.
	assert.Equal(t, s.docker(t, "", nil, "network", "connect", pair, web).code, 0)
	r = p.lifecycle("network", "verify")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stdout, "web → db: policy denies, observed reachable"), r.stdout)
	assert.Check(t, is.Contains(r.stderr, "differs from its policy"))

	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.objects(), 0), "down removes the segment networks: %v", p.objects())
}

// TestNetworkUnknownTalksTo: a bad allow-list is a clear error before any engine write.
func TestNetworkUnknownTalksTo(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
services:
  web:
    image: {{image:v1}}
    x-lifecycle: {network: {talks-to: [nope]}}
  api:
    image: {{image:v1}}
`)
	for _, args := range [][]string{{"deploy"}, {"network", "plan"}, {"network", "verify"}, {"deploy", "--verify-network"}} {
		r := p.lifecycle(args...)
		assert.Check(t, r.code != 0, r.String())
		assert.Check(t, is.Contains(r.stderr, `service "web"`), args)
		assert.Check(t, is.Contains(r.stderr, `key "network.talks-to": unknown service "nope" (services: api, web)`), r.stderr)
	}
	assert.Check(t, is.Len(p.objects(), 0))
	assert.Check(t, s.docker(t, "", nil, "volume", "inspect", "lifecycle-lock-"+p.name).code != 0, "no lock was taken")
}

// TestNetworkOffUnchanged: without x-lifecycle.network the project keeps compose's
// default network, and verify finds every service reaching every other.
func TestNetworkOffUnchanged(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, `
services:
  web:
    image: {{image:v1}}
    expose: ["8080"]
  api:
    image: {{image:v1}}
    expose: ["8080"]
`)
	r := p.mustLifecycle("network", "plan")
	assert.Check(t, is.Contains(r.stdout, "no x-lifecycle.network rules"))
	assert.Check(t, !strings.Contains(r.stdout, "_lc-"), r.stdout)
	p.mustLifecycle("deploy")
	nets := p.s.docker(t, "", nil, "network", "ls", "--format", "{{.Name}}", "--filter", "label=com.docker.compose.project="+p.name)
	assert.Check(t, is.DeepEqual(lines(nets.stdout), []string{p.name + "_default"}))
	assert.Check(t, is.Equal(p.inspect(`{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}`, p.name+"-web-r1-1"), p.name+"_default"))
	r = p.mustLifecycle("network", "verify")
	assert.Check(t, is.Contains(r.stdout, "Network matches the policy: 2 pairs probed from 2 services"), r.stdout)
}

// TestNetworkVerifyTiming measures `network verify` on isolated projects of 2 to 15
// services (a chain: svc i talks to svc i+1, every one exposing 8080), for
// docs/benchmarks.md. It runs only with LIFECYCLE_BENCH_NETWORK=1.
func TestNetworkVerifyTiming(t *testing.T) {
	if os.Getenv("LIFECYCLE_BENCH_NETWORK") == "" {
		t.Skip("benchmark: set LIFECYCLE_BENCH_NETWORK=1")
	}
	s := setup(t)
	s.agentImage(t)
	for _, n := range []int{2, 5, 10, 15} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var b strings.Builder
			b.WriteString("x-lifecycle:\n  network: {default: isolate}\nservices:\n")
			for i := 1; i <= n; i++ {
				fmt.Fprintf(&b, "  svc%02d:\n    image: {{image:v1}}\n    expose: [\"8080\"]\n", i)
				if i < n {
					fmt.Fprintf(&b, "    x-lifecycle: {network: {talks-to: [svc%02d]}}\n", i+1)
				}
			}
			p := s.newProject(t, b.String())
			start := time.Now()
			p.mustLifecycle("deploy")
			deploy := time.Since(start)
			var walls []string
			for range 3 {
				start := time.Now()
				r := p.mustLifecycle("network", "verify", "--format", "json")
				wall := time.Since(start)
				var v verifyJSON
				assert.NilError(t, json.Unmarshal([]byte(r.stdout), &v))
				assert.Check(t, is.Len(v.Differences, 0))
				assert.Check(t, is.Equal(v.Probed, n*(n-1)))
				walls = append(walls, fmt.Sprintf("%.2fs (probe %.2fs)", wall.Seconds(), v.Seconds))
			}
			nets := p.s.docker(t, "", nil, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+p.name)
			t.Logf("BENCH services=%d pairs=%d networks=%d deploy=%.1fs verify=%s", n, n*(n-1), len(lines(nets.stdout)), deploy.Seconds(), strings.Join(walls, ", "))
			p.mustLifecycle("down")
		})
	}
}
