package e2e

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
)

// TestAgentImageIsBuiltOnTheEngine creates the agent image from the embedded binary (no
// registry), checks it is reused, and runs the agent's probe from inside a network.
func TestAgentImageIsBuiltOnTheEngine(t *testing.T) {
	s := setup(t)
	tag := s.agentImage(t)
	again, err := agentimage.Ensure(context.Background(), s.engine, runtime.GOARCH)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(again, tag), "the image is reused, not built again")
	size := s.docker(t, "", nil, "image", "inspect", "--format", "{{.Size}}", tag)
	assert.Check(t, is.Equal(size.code, 0), size.String())
	t.Logf("agent image %s: %s bytes", tag, strings.TrimSpace(size.stdout))

	r := s.docker(t, "", nil, "run", "--rm", tag, "version")
	assert.Check(t, is.Equal(r.code, 0), r.String())

	// The probe answers from inside a network the test creates, to a test app on it.
	p := s.newProject(t, "services: {}")
	net := p.name + "_probe"
	label := "com.docker.compose.project=" + p.name
	assert.Equal(t, s.docker(t, "", nil, "network", "create", "--label", label, net).code, 0)
	assert.Equal(t, s.docker(t, "", nil, "run", "-d", "--name", p.name+"-app", "--label", label, "--network", net, imageRef("v1")).code, 0)
	ok := s.docker(t, "", nil, "run", "--rm", "--network", net, tag, "probe", "-timeout", "10s", "http", fmt.Sprintf("http://%s-app:8080/", p.name))
	assert.Check(t, is.Equal(ok.code, 0), ok.String())
	refused := s.docker(t, "", nil, "run", "--rm", "--network", net, tag, "probe", "-timeout", "1s", "tcp", p.name+"-app:9")
	assert.Check(t, is.Equal(refused.code, 1), refused.String())
	assert.Check(t, is.Contains(refused.stderr, "unreachable"))
}
