package compose

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/compose-spec/compose-go/v2/tree"
	"gotest.tools/v3/assert"
)

// make builds and tests against compose-go with internal/composegopatch's Matches (it
// exports GOWORK=build/compose-go/go.work). This checks that the patch is really in the
// build the tests exercise: the original allocates on every call, the patch never.
func TestMakeBuildsAgainstThePatchedComposeGo(t *testing.T) {
	if filepath.Base(filepath.Dir(os.Getenv("GOWORK"))) != "compose-go" {
		t.Skip("not built through make (GOWORK is not build/compose-go/go.work): the unpatched compose-go is in use")
	}
	p, pattern := tree.Path("services.web.environment.HOME"), tree.Path("services.*.environment.*")
	assert.Assert(t, p.Matches(pattern))
	allocs := testing.AllocsPerRun(100, func() { _ = p.Matches(pattern) })
	assert.Equal(t, allocs, 0.0, "compose-go's tree.Path.Matches allocates: the workspace does not carry internal/composegopatch's change")
}
