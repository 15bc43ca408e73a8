package rollout

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// fakeBackups writes, through the target API, three backups of shop (the newest
// encrypted and drilled: its last drill failed after one that passed), one of
// shop-old and one of bakery named like shop's, a backup without a manifest and one
// with a garbled manifest.
func fakeBackups(t *testing.T) (LocalTarget, time.Time) {
	t.Helper()
	ctx := context.Background()
	target := LocalTarget{Dir: t.TempDir()}
	base := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	put := func(name, project string, created time.Time, enc string) {
		assert.NilError(t, target.Begin(ctx, name))
		m := Manifest{Format: ManifestFormat, Project: project, Created: created, Encryption: enc, Volumes: []ManifestVolume{
			{Name: "data", Archive: "data.tar.zst", Size: 1000, ArchiveBytes: 300},
			{Name: "uploads", Archive: "uploads.tar.zst", Size: 24, ArchiveBytes: 20},
		}}
		assert.NilError(t, writeManifest(ctx, target, name, m))
	}
	put("shop-1", "shop", base, "none")
	put("shop-2", "shop", base.Add(24*time.Hour), "")
	put("shop-3", "shop", base.Add(48*time.Hour), EncryptionAge)
	put("shop-old-1", "shop-old", base, "none")
	put("shop-9", "bakery", base.Add(72*time.Hour), "none")
	assert.NilError(t, target.Begin(ctx, "shop-0"))
	assert.NilError(t, target.Begin(ctx, "shop-garbled"))
	assert.NilError(t, target.Put(ctx, "shop-garbled", ManifestFile, []byte("{not json")))
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-3", DrillResult{Project: "shop", ScratchProject: "shop-drill-a", Started: base.Add(49 * time.Hour), Passed: true, RTOSeconds: 8.5}))
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-3", DrillResult{Project: "shop", ScratchProject: "shop-drill-b", Started: base.Add(50 * time.Hour), Error: "1 of 1 verify commands failed"}))
	return target, base
}

// ListBackups shows the project's backups by manifest, newest first, with their drill
// records, and the unreadable ones last; other projects are counted, not shown.
func TestListBackups(t *testing.T) {
	target, base := fakeBackups(t)
	entries, others, err := ListBackups(context.Background(), target, "shop")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(others, 2))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	assert.Check(t, is.DeepEqual(names, []string{"shop-3", "shop-2", "shop-1", "shop-0", "shop-garbled"}))
	assert.Assert(t, is.Len(entries, 5))
	newest := entries[0]
	assert.Check(t, is.DeepEqual(newest, BackupEntry{Name: "shop-3", Location: target.Location("shop-3"), Project: "shop",
		Created: base.Add(48 * time.Hour), Volumes: []string{"data", "uploads"}, Size: 1024, StoredBytes: 320, Encrypted: true,
		Drill:           &BackupDrill{Started: base.Add(50 * time.Hour), Error: "1 of 1 verify commands failed"},
		LastPassedDrill: &BackupDrill{Started: base.Add(49 * time.Hour), Passed: true, RTOSeconds: 8.5}}))
	assert.Check(t, !entries[1].Encrypted && entries[1].Drill == nil && entries[1].LastPassedDrill == nil)
	assert.Check(t, is.Contains(entries[3].Error, "backup not found"))
	assert.Check(t, is.Contains(entries[4].Error, "manifest"))
	assert.Check(t, is.Equal(entries[4].Location, target.Location("shop-garbled")))

	all, others, err := ListBackups(context.Background(), target, "")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(others, 0))
	assert.Check(t, is.Len(all, 7))
	assert.Check(t, is.Equal(all[0].Project, "bakery"), "newest first across projects")
}

// PruneBackups: a dry run removes nothing and names what would go; the real run
// removes exactly that, leaving other projects and unreadable backups alone.
func TestPruneBackups(t *testing.T) {
	ctx := context.Background()
	target, _ := fakeBackups(t)
	before, err := target.List(ctx)
	assert.NilError(t, err)

	_, err = PruneBackups(ctx, target, "shop", Retention{}, false, progress.Nop)
	assert.Check(t, is.ErrorContains(err, "no retention rule"))

	dry, err := PruneBackups(ctx, target, "shop", Retention{Last: 1}, true, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, dry.DryRun)
	locations := func(es []PrunedEntry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.Location)
		}
		return out
	}
	assert.Check(t, is.DeepEqual(locations(dry.Pruned), []string{target.Location("shop-2"), target.Location("shop-1")}))
	assert.Check(t, is.DeepEqual(locations(dry.Kept), []string{target.Location("shop-3")}))
	assert.Check(t, is.DeepEqual(dry.Unreadable, []string{target.Location("shop-0"), target.Location("shop-garbled")}))
	after, err := target.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(after, before), "a dry run removes nothing")

	res, err := PruneBackups(ctx, target, "shop", Retention{Last: 1}, false, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, !res.DryRun)
	assert.Check(t, is.DeepEqual(locations(res.Pruned), locations(dry.Pruned)))
	after, err = target.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(after, []string{"shop-0", "shop-3", "shop-9", "shop-garbled", "shop-old-1"}))

	// daily: the newest of each of the 2 last days with a backup (one left of shop)
	res, err = PruneBackups(ctx, target, "shop", Retention{Daily: 2}, false, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.Len(res.Pruned, 0))
	assert.Check(t, is.DeepEqual(locations(res.Kept), []string{target.Location("shop-3")}))
}
