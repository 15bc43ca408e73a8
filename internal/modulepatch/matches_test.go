package modulepatch

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
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
