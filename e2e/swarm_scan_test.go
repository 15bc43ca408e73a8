package e2e

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestSwarmScanGate runs the image scan gate before a Swarm deploy writes anything: a
// CRITICAL finding in one service's image stops the deploy with no Swarm service,
// network or secret created; the fixed image passes and the project is deployed.
// trivy reads the images from the manager's engine (the context's socket).
func TestSwarmScanGate(t *testing.T) {
	t.Parallel() // as TestSwarmBlueGreen: every packet stays in this test's namespace
	f := scanSetup(t)
	s := setup(t)
	imgs := f.images(t)
	d := startSwarm(t, s)
	d.copyImage(imgs.vuln)
	d.copyImage(imgs.fixed)
	compose := func(apiImage string) string {
		return imgs.compose(`
x-lifecycle:
  scan: {fail-on: CRITICAL}
services:
  api:
    image: ` + apiImage + `
  web:
    image: {{fixed}}
`)
	}
	p := swarmProjectOn(t, s, d, compose("{{vuln}}"))
	env := p.env
	nothingCreated := func() {
		t.Helper()
		assert.Check(t, is.Equal(strings.TrimSpace(d.mustDocker("service", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), ""), "no service created")
		assert.Check(t, is.Equal(strings.TrimSpace(d.mustDocker("network", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), ""), "no network created")
	}

	// fail closed: no scanner, no deploy
	p.env = append(append([]string{}, env...), "LIFECYCLE_TRIVY=/nonexistent/trivy")
	r := p.lifecycle("deploy")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stderr, "LIFECYCLE_TRIVY=/nonexistent/trivy is not an executable file"), r.String())
	nothingCreated()

	p.env = append(append([]string{}, env...), f.env...)
	r = p.lifecycle("deploy")
	assert.Check(t, is.Equal(r.code, 1), r.String())
	assert.Check(t, is.Contains(r.stderr, "the image scan gate stops the deploy"), r.String())
	assert.Check(t, is.Contains(r.stderr, vulnID), r.String())
	nothingCreated()

	// --skip-scan is refused nowhere: it deploys without the gate (here, the vulnerable image).
	r = p.lifecycle("deploy", "--dry-run", "--skip-scan")
	assert.Check(t, is.Equal(r.code, 0), r.String())

	p.write(compose("{{fixed}}"))
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "nothing at or above CRITICAL"), r.String())
	assert.Check(t, is.Contains(r.stdout, "to Swarm"), r.String())
	services := d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Check(t, is.Equal(strings.TrimSpace(services), p.name+"_api 1/1\n"+p.name+"_web 1/1"))
}
