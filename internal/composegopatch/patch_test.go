package composegopatch

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

// moduleFile reads tree/path.go of the compose-go version go.mod requires.
func moduleFile(t *testing.T) []byte {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", Module)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	assert.NilError(t, err)
	var mod struct{ Dir string }
	assert.NilError(t, json.Unmarshal(out, &mod))
	src, err := os.ReadFile(filepath.Join(mod.Dir, PatchedFile))
	assert.NilError(t, err)
	return src
}

func TestApplyReplacesMatchesOfTheRequiredComposeGo(t *testing.T) {
	src := moduleFile(t)
	patched, err := Apply(src)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(patched), fastMatches()))
	assert.Check(t, !strings.Contains(string(patched), upstreamMatches))
	// Everything else of the file is kept byte for byte.
	assert.Equal(t, strings.Replace(string(patched), fastMatches(), upstreamMatches, 1), string(src))

	_, err = Apply(patched)
	assert.Check(t, errors.Is(err, ErrUpstreamChanged), "a file without the original Matches is refused, got %v", err)
}

func TestWorkspaceWritesACopyAndAGoWork(t *testing.T) {
	module := t.TempDir()
	assert.NilError(t, os.MkdirAll(filepath.Join(module, "tree"), 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(module, "go.mod"), []byte("module "+Module+"\n"), 0o444))
	assert.NilError(t, os.WriteFile(filepath.Join(module, PatchedFile), []byte("package tree\n\n"+upstreamMatches), 0o444))
	repo := t.TempDir()
	out := filepath.Join(repo, "build", "compose-go")

	work, err := Workspace(module, "v2.16.2", repo, "1.26.0", out)
	assert.NilError(t, err)
	b, err := os.ReadFile(work)
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(b), "use ../..\n"))
	assert.Check(t, is.Contains(string(b), "replace "+Module+" v2.16.2 => ./compose-go\n"))
	patched, err := os.ReadFile(filepath.Join(out, "compose-go", PatchedFile))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(patched), "Matches walks"))

	// Run again over the first copy (read-only files from the module cache included).
	_, err = Workspace(module, "v2.16.2", repo, "1.26.0", out)
	assert.NilError(t, err)
}
