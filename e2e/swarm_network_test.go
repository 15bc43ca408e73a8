package e2e

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestSwarmRefusesAllowLists: a project with x-lifecycle.network allow-lists is refused
// on Swarm, with nothing created, rather than deployed without its isolation.
func TestSwarmRefusesAllowLists(t *testing.T) {
	t.Parallel() // as TestSwarmBlueGreen: every packet stays in this test's namespace
	s := setup(t)
	d := startSwarm(t, s)
	p := swarmProjectOn(t, s, d, `
services:
  web:
    image: {{image:v1}}
    x-lifecycle: {network: {talks-to: [db]}}
  db:
    image: {{image:v1}}
`)
	for _, args := range [][]string{{"deploy"}, {"deploy", "--dry-run"}} {
		r := p.lifecycle(args...)
		assert.Check(t, is.Equal(r.code, 1), r.String())
		assert.Check(t, is.Contains(r.stderr, "x-lifecycle.network (talks-to allow-lists) is not supported by docker lifecycle yet on Swarm"), r.String())
	}
	assert.Check(t, is.Equal(strings.TrimSpace(d.mustDocker("service", "ls", "-q")), ""), "no service created")
	assert.Check(t, is.Equal(strings.TrimSpace(d.mustDocker("network", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), ""), "no network created")
}
