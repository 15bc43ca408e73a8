package modulepatch

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// mustGoJSON runs the go command outside any workspace and decodes its JSON output.
func mustGoJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	assert.NilError(t, err, "go %s", strings.Join(args, " "))
	assert.NilError(t, json.Unmarshal(out, v))
}

// moduleFile reads a file of the module version go.mod requires.
func moduleFile(t *testing.T, module, file string) []byte {
	t.Helper()
	var mod struct{ Dir string }
	mustGoJSON(t, &mod, "mod", "download", "-json", module)
	src, err := os.ReadFile(filepath.Join(mod.Dir, file))
	assert.NilError(t, err)
	return src
}

func TestWorkspaceWritesCopiesAndAGoWork(t *testing.T) {
	// A fake module per patch, holding the text its patch replaces.
	fake := func(p Patch, content string) Located {
		dir := t.TempDir()
		assert.NilError(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(p.File)), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module "+p.Module+"\n"), 0o444))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, p.File), []byte(content), 0o444))
		return Located{Patch: p, ModuleDir: dir, Version: "v1.2.3"}
	}
	draft := "package jsonschema\n\n" + upstreamDraftImports + "\n\ntype Draft struct {\n" + upstreamDraftFieldsEnd + "\n\n" +
		upstreamDraftInit + "\n\n" + upstreamGetSchemaStart + "\n\tsch := d.draft.allVocabs[vocab]\n\tsch := d.draft.allVocabs[\"core\"]\n"
	located := []Located{
		fake(composeGoMatches, "package tree\n\n"+upstreamMatches),
		fake(jsonschemaLazyDrafts, draft),
	}
	repo := t.TempDir()
	out := filepath.Join(repo, "build", "modulepatch")

	work, err := Workspace(located, repo, "1.26.0", out)
	assert.NilError(t, err)
	b, err := os.ReadFile(work)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(b), "use ../..\n"))
	assert.Check(t, is.Contains(string(b), "replace "+composeGoMatches.Module+" v1.2.3 => ./compose-go\n"))
	assert.Check(t, is.Contains(string(b), "replace "+jsonschemaLazyDrafts.Module+" v1.2.3 => ./jsonschema\n"))
	patched, err := os.ReadFile(filepath.Join(out, "compose-go", composeGoMatches.File))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(patched), "Matches walks"))
	patched, err = os.ReadFile(filepath.Join(out, "jsonschema", jsonschemaLazyDrafts.File))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(patched), "func (d *Draft) compileMeta()"))

	// Run again over the first copies (read-only files from the module cache included).
	_, err = Workspace(located, repo, "1.26.0", out)
	assert.NilError(t, err)

	// A module whose file changed stops the workspace, naming module, version and file.
	located[1] = fake(jsonschemaLazyDrafts, "package jsonschema\n")
	_, err = Workspace(located, repo, "1.26.0", out)
	assert.Check(t, errors.Is(err, ErrUpstreamChanged))
	assert.Check(t, is.ErrorContains(err, jsonschemaLazyDrafts.Module+"@v1.2.3 draft.go"))
}
