package strategies

import (
	"testing"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

// TestRecreateKeepsAnonymousVolumes: a service that declares a read-write anonymous
// volume is recreated by default, and its new container's create step says it keeps the
// old container's volume.
func TestRecreateKeepsAnonymousVolumes(t *testing.T) {
	p := load(t, `
name: demo
services:
  cache:
    image: app:1
    volumes: ["/cache", "/spool"]
`)
	obs := Observed{Networks: map[string]bool{"demo_default": true}, ImageIDs: images, Containers: []ObservedContainer{{
		ID: "cache-id", Name: "demo-cache-1", Service: "cache", Number: 1, Revision: 1, ConfigHash: "old",
		Image: "app:1", ImageID: "sha256:app1", State: "running",
	}}}
	plan, err := MakePlan(desire(t, p), obs, Options{})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "recreate-anonymous-volume.golden")
}
