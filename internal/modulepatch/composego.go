package modulepatch

import (
	_ "embed"
	"strings"
)

// composeGoMatches replaces compose-go's tree.Path.Matches by matches.go's.
var composeGoMatches = Patch{
	Module: "github.com/compose-spec/compose-go/v2",
	Dir:    "compose-go",
	File:   "tree/path.go",
	Apply: func(src []byte) ([]byte, error) {
		s, err := replaceOnce(string(src), upstreamMatches, fastMatches())
		return []byte(s), err
	},
}

// upstreamMatches is compose-go's Matches exactly as v2.16.2 ships it.
const upstreamMatches = `func (p Path) Matches(pattern Path) bool {
	patternParts := pattern.Parts()
	parts := p.Parts()

	if len(patternParts) != len(parts) {
		return false
	}
	for index, part := range parts {
		switch patternParts[index] {
		case PathMatchAll, part:
			continue
		default:
			return false
		}
	}
	return true
}
`

//go:embed matches.go
var matchesSource string

// fastMatches is the source text of matches.go's Matches, comment included.
func fastMatches() string {
	start := strings.Index(matchesSource, "// Matches walks")
	end := strings.LastIndex(matchesSource, "\n}\n")
	if start < 0 || end < start {
		panic("modulepatch: matches.go lost its Matches function")
	}
	return matchesSource[start : end+3]
}
