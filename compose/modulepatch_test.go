package compose

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/compose-spec/compose-go/v2/tree"
	"gotest.tools/v3/assert"
)

// make builds and tests against the modules internal/modulepatch changes (it exports
// GOWORK=build/modulepatch/go.work). These check that the changes are really in the build
// the tests exercise.
func builtThroughMake(t *testing.T) {
	t.Helper()
	if filepath.Base(filepath.Dir(os.Getenv("GOWORK"))) != "modulepatch" {
		t.Skip("not built through make (GOWORK is not build/modulepatch/go.work): the unpatched modules are in use")
	}
}

// compose-go's original Matches allocates on every call, the patched one never.
func TestMakeBuildsAgainstThePatchedComposeGo(t *testing.T) {
	builtThroughMake(t)
	p, pattern := tree.Path("services.web.environment.HOME"), tree.Path("services.*.environment.*")
	assert.Assert(t, p.Matches(pattern))
	allocs := testing.AllocsPerRun(100, func() { _ = p.Matches(pattern) })
	assert.Equal(t, allocs, 0.0, "compose-go's tree.Path.Matches allocates: the workspace does not carry internal/modulepatch's change")
}

// jsonschema's original init compiles five drafts' meta-schemas (about 21,000
// allocations); the patched one compiles nothing. Read from this test binary's own
// init trace, in a child that runs no test.
func TestMakeBuildsAgainstThePatchedJSONSchema(t *testing.T) {
	builtThroughMake(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	assert.NilError(t, err, "%s", out)
	m := regexp.MustCompile(`init github\.com/santhosh-tekuri/jsonschema/v6 @[^,]*, [^,]*, \d+ bytes, (\d+) allocs`).FindSubmatch(out)
	assert.Assert(t, m != nil, "no init line of jsonschema in the init trace:\n%s", out)
	allocs, _ := strconv.Atoi(string(m[1]))
	assert.Assert(t, allocs < 1000, "jsonschema's init made %d allocations: the workspace does not carry internal/modulepatch's lazy drafts", allocs)
}
