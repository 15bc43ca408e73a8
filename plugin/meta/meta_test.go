package meta

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/docker/cli/cli-plugins/metadata"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The docker CLI rejects a plugin whose metadata lacks SchemaVersion 0.1.0 or a vendor.
// e2e/startup_test.go checks the probe end to end, through the real docker CLI.
func TestWriteMetadata(t *testing.T) {
	var b bytes.Buffer
	assert.NilError(t, WriteMetadata(&b))
	var got metadata.Metadata
	assert.NilError(t, json.Unmarshal(b.Bytes(), &got))
	assert.Check(t, is.DeepEqual(got, Metadata()))
	assert.Check(t, is.Equal(got.SchemaVersion, "0.1.0"))
	assert.Check(t, is.Equal(got.Version, Version))
	assert.Check(t, got.Vendor != "" && got.ShortDescription != "")
}
