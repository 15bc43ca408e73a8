package modulepatch

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestApplyMakesTheRequiredJSONSchemaCompileDraftsLazily(t *testing.T) {
	p := jsonschemaLazyDrafts
	src := moduleFile(t, p.Module, p.File)
	patched, err := p.Apply(src)
	assert.NilError(t, err)
	assert.Check(t, !strings.Contains(string(patched), "func init()"), "the drafts are no longer compiled in init")
	assert.Check(t, is.Contains(string(patched), "d.draft.compileMeta()"))
	assert.Check(t, !strings.Contains(string(patched), "d.draft.allVocabs["), "compiled vocabularies are read from metaVocabs")

	_, err = p.Apply(patched)
	assert.Check(t, errors.Is(err, ErrUpstreamChanged), "a file without the original init is refused, got %v", err)
}

// lazyDraftsTest is written into the patched copy and run with the module's own tests:
// schemas of every draft compiled side by side on fresh compilers (each draft's
// meta-schema is then compiled by whichever goroutine comes first), and invalid schemas
// still refused by their meta-schema. Run with -race.
const lazyDraftsTest = `package jsonschema_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestLazyMetaSchemasConcurrently(t *testing.T) {
	drafts := []string{
		"http://json-schema.org/draft-04/schema#",
		"http://json-schema.org/draft-06/schema#",
		"http://json-schema.org/draft-07/schema#",
		"https://json-schema.org/draft/2019-09/schema",
		"https://json-schema.org/draft/2020-12/schema",
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(drafts))
	for round := 0; round < 4; round++ {
		for i, d := range drafts {
			wg.Add(1)
			go func(round, i int, d string) { // the module is go 1.21: no per-iteration loop variables
				defer wg.Done()
				url := fmt.Sprintf("s%d-%d.json", round, i)
				c := jsonschema.NewCompiler()
				good, _ := jsonschema.UnmarshalJSON(strings.NewReader(` + "`" + `{"$schema": "` + "`" + ` + d + ` + "`" + `", "type": "object", "required": ["a"]}` + "`" + `))
				if err := c.AddResource(url, good); err != nil {
					errs <- err
					return
				}
				sch, err := c.Compile(url)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", d, err)
					return
				}
				if err := sch.Validate(map[string]any{"a": 1}); err != nil {
					errs <- fmt.Errorf("%s: valid instance refused: %w", d, err)
				}
				if err := sch.Validate(map[string]any{}); err == nil {
					errs <- fmt.Errorf("%s: instance without a accepted", d)
				}
				bad, _ := jsonschema.UnmarshalJSON(strings.NewReader(` + "`" + `{"$schema": "` + "`" + ` + d + ` + "`" + `", "type": 5}` + "`" + `))
				c = jsonschema.NewCompiler()
				_ = c.AddResource("bad"+url, bad)
				var sve *jsonschema.SchemaValidationError
				if _, err := c.Compile("bad" + url); !errors.As(err, &sve) {
					errs <- fmt.Errorf("%s: a schema its meta-schema refuses compiled (err %v)", d, err)
				}
			}(round, i, d)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
`

// The patched copy passes the module's own tests (examples excluded: one fetches a URL
// from the internet) and lazyDraftsTest, under the race detector.
func TestPatchedJSONSchemaPassesItsOwnTests(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs jsonschema's tests with -race")
	}
	src := moduleFile(t, jsonschemaLazyDrafts.Module, "go.mod")
	assert.Assert(t, len(src) > 0)
	var mod struct{ Dir, Version string }
	mustGoJSON(t, &mod, "mod", "download", "-json", jsonschemaLazyDrafts.Module)
	out := t.TempDir()
	_, err := Workspace([]Located{{Patch: jsonschemaLazyDrafts, ModuleDir: mod.Dir, Version: mod.Version}}, t.TempDir(), "1.26.0", out)
	assert.NilError(t, err)
	copyDir := filepath.Join(out, jsonschemaLazyDrafts.Dir)
	assert.NilError(t, os.WriteFile(filepath.Join(copyDir, "lazydrafts_test.go"), []byte(lazyDraftsTest), 0o644))

	cmd := exec.Command("go", "test", "-count=1", "-race", "-run", "^Test", ".")
	cmd.Dir = copyDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	b, err := cmd.CombinedOutput()
	assert.NilError(t, err, "go test in the patched jsonschema:\n%s", b)
}
