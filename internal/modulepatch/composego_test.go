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

// upstream is compose-go v2.16.2's Matches, the meaning the patch must keep.
func upstream(p, pattern string) bool {
	patternParts := strings.Split(pattern, pathSeparator)
	parts := strings.Split(p, pathSeparator)
	if len(patternParts) != len(parts) {
		return false
	}
	for i, part := range parts {
		switch patternParts[i] {
		case PathMatchAll, part:
			continue
		default:
			return false
		}
	}
	return true
}

// strings over the alphabet up to maxLen: every placement of separators, wildcards,
// empty segments and prefixes that share bytes ("a" vs "aa", "*" vs "**").
func allStrings(alphabet []string, maxLen int) []string {
	out := []string{""}
	frontier := []string{""}
	for range maxLen {
		var next []string
		for _, s := range frontier {
			for _, c := range alphabet {
				next = append(next, s+c)
			}
		}
		out = append(out, next...)
		frontier = next
	}
	return out
}

func TestMatchesAgreesWithUpstreamOnEveryShortInput(t *testing.T) {
	inputs := allStrings([]string{"a", "b", "*", "."}, 5)
	for _, p := range inputs {
		for _, q := range inputs {
			if got, want := Path(p).Matches(Path(q)), upstream(p, q); got != want {
				t.Fatalf("Path(%q).Matches(%q) = %v, compose-go says %v", p, q, got, want)
			}
		}
	}
}

func FuzzMatches(f *testing.F) {
	for _, seed := range [][2]string{
		{"services.web.ports", "services.*.ports"},
		{"services.web.ports.[]", "services.*.ports.[]"},
		{"services.web", "services.web.ports"},
		{"a..b", "a.*.b"},
		{"", "*"},
		{"services.webx", "services.web"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, p, q string) {
		if got, want := Path(p).Matches(Path(q)), upstream(p, q); got != want {
			t.Fatalf("Path(%q).Matches(%q) = %v, compose-go says %v", p, q, got, want)
		}
	})
}

func TestMatchesDoesNotAllocate(t *testing.T) {
	p, q := Path("services.web.environment.HOME"), Path("services.*.environment.*")
	allocs := testing.AllocsPerRun(100, func() { _ = p.Matches(q) })
	assert.Equal(t, allocs, 0.0)
}

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

func TestApplyReplacesMatchesOfTheRequiredComposeGo(t *testing.T) {
	p := composeGoMatches
	src := moduleFile(t, p.Module, p.File)
	patched, err := p.Apply(src)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(patched), fastMatches()))
	assert.Check(t, !strings.Contains(string(patched), upstreamMatches))
	// Everything else of the file is kept byte for byte.
	assert.Equal(t, strings.Replace(string(patched), fastMatches(), upstreamMatches, 1), string(src))

	_, err = p.Apply(patched)
	assert.Check(t, errors.Is(err, ErrUpstreamChanged), "a file without the original Matches is refused, got %v", err)
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
