package plugin

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// Commands that work with -p NAME alone (backup, backup list/prune, dr plan) get the
// project when its file loads, the name either way, and an error only without both.
func TestLoadOptional(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yaml")
	ctx := context.Background()

	p, name, err := (&projectOptions{projectName: "shop", configFiles: []string{missing}}).loadOptional(ctx)
	assert.NilError(t, err)
	assert.Check(t, p == nil)
	assert.Check(t, is.Equal(name, "shop"))

	_, _, err = (&projectOptions{configFiles: []string{missing}}).loadOptional(ctx)
	assert.Check(t, err != nil, "no file and no name")

	file := filepath.Join(dir, "compose.yaml")
	assert.NilError(t, os.WriteFile(file, []byte("name: store\nservices:\n  web:\n    image: web:1\n"), 0o644))
	p, name, err = (&projectOptions{configFiles: []string{file}}).loadOptional(ctx)
	assert.NilError(t, err)
	assert.Assert(t, p != nil)
	assert.Check(t, is.Equal(name, "store"))
}
