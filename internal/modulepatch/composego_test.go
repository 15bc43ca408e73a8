package modulepatch

import (
	"errors"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

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
