package rollout

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestS3Target runs the target's operations against gofakes3 (in-process, loopback).
func TestS3Target(t *testing.T) {
	mem := s3mem.New()
	assert.NilError(t, mem.CreateBucket("bkt"))
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	defer srv.Close()
	env := map[string]string{"AWS_ENDPOINT_URL": srv.URL, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
	target, err := newS3Target("s3://bkt/nightly/", func(k string) string { return env[k] })
	assert.NilError(t, err)
	ctx := context.Background()

	assert.NilError(t, target.Begin(ctx, "shop-1"))
	w, err := target.Create(ctx, "shop-1", "data.tar.zst")
	assert.NilError(t, err)
	big := make([]byte, s3PartSize+12345) // more than one part
	for i := range big {
		big[i] = byte(i % 251)
	}
	_, err = w.Write(big)
	assert.NilError(t, err)
	assert.NilError(t, w.Commit())
	assert.NilError(t, writeManifest(ctx, target, "shop-1", Manifest{Format: ManifestFormat, Project: "shop"}))
	assert.ErrorContains(t, target.Begin(ctx, "shop-1"), "already exists")

	names, err := target.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(names, []string{"shop-1"}))
	m, err := ReadManifest(ctx, target, "shop-1")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(m.Project, "shop"))
	rc, err := target.Open(ctx, "shop-1", "data.tar.zst")
	assert.NilError(t, err)
	got, err := io.ReadAll(rc)
	rc.Close()
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, big), "the object reads back as written")
	_, err = target.Open(ctx, "shop-1", "nope")
	assert.Check(t, errors.Is(err, ErrBackupNotFound), "%v", err)

	// an aborted upload leaves no object
	w, err = target.Create(ctx, "shop-1", "cache.tar.zst")
	assert.NilError(t, err)
	_, _ = w.Write([]byte("partial"))
	w.Abort()
	_, err = target.Open(ctx, "shop-1", "cache.tar.zst")
	assert.Check(t, errors.Is(err, ErrBackupNotFound), "%v", err)

	// the drill record: written, replaced, read back by DrillRecords
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-1", DrillResult{Project: "shop", ScratchProject: "a", Passed: true}))
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-1", DrillResult{Project: "shop", ScratchProject: "b"}))
	drills, err := DrillRecords(ctx, target, "shop")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(drills, 2))
	assert.Check(t, is.Equal(drills[0].ScratchProject+drills[1].ScratchProject, "ba"))

	assert.NilError(t, target.Remove(ctx, "shop-1"))
	names, err = target.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.Len(names, 0))
}
