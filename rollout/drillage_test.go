package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// The drill status counts the project's backups only (by manifest), and takes the newest
// drill that passed, not the newest drill (shop-3's last drill failed after one passed).
func TestReadDrillStatus(t *testing.T) {
	target, base := fakeBackups(t)
	ctx := context.Background()
	st, err := ReadDrillStatus(ctx, target, target.Dir, "shop")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(st.Backups, 3))
	assert.Check(t, st.Oldest.Equal(base))
	assert.Assert(t, st.LastGood != nil)
	assert.Check(t, st.LastGood.Started.Equal(base.Add(49*time.Hour)))
	assert.Check(t, is.Equal(st.LastGood.RTOSeconds, 8.5))
	assert.Check(t, is.Equal(st.Backup, target.Location("shop-3")))
	hours, ok := st.AgeHours(base.Add(59 * time.Hour))
	assert.Check(t, ok)
	assert.Check(t, is.Equal(hours, 10.0))

	// Never drilled: as old as its oldest backup.
	st, err = ReadDrillStatus(ctx, target, target.Dir, "shop-old")
	assert.NilError(t, err)
	assert.Check(t, st.LastGood == nil)
	hours, ok = st.AgeHours(base.Add(5 * time.Hour))
	assert.Check(t, ok)
	assert.Check(t, is.Equal(hours, 5.0))

	// No backup: nothing to age.
	st, err = ReadDrillStatus(ctx, target, target.Dir, "nobody")
	assert.NilError(t, err)
	_, ok = st.AgeHours(base)
	assert.Check(t, !ok)
}

// A drill-age rule judges the project once, however many services it was resolved
// into: it fires when the last good drill is older than its threshold, and resolves
// once a new drill passed (read again after drillRefresh).
func TestDrillAgeRule(t *testing.T) {
	target, base := fakeBackups(t)
	ctx := context.Background()
	fake := &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) { return nil, nil },
		ListVolumesFn:    func(ctx context.Context, l map[string]string) ([]engine.Volume, error) { return nil, nil },
	}
	week := compose.Threshold(168)
	rule := compose.AlertRule{Name: "drill-age", Metric: compose.AlertDrillAge, Above: &week, ResolveBelow: &week, Severity: "warning"}
	var got []alerting.Alert
	w := newAlertWatcher(fake, "shop", AlertOptions{Interval: time.Second, Rules: map[string][]compose.AlertRule{"web": {rule}, "db": {rule}},
		Notify: func(a alerting.Alert) { got = append(got, a) }}, newOOMKills(fake, "shop", nil), &drillWatch{to: target.Dir, target: target, project: "shop"})
	m := &metricsCollector{ctx: ctx, c: newStatsCollector(fake, "shop", StatsOptions{})}
	lastGood := base.Add(49 * time.Hour)

	w.evaluate(ctx, m, lastGood.Add(100*time.Hour))
	assert.Check(t, is.Len(got, 0), "%+v", got)
	now := lastGood.Add(200 * time.Hour)
	w.evaluate(ctx, m, now)
	assert.Assert(t, is.Len(got, 1), "%+v", got)
	a := got[0]
	assert.Check(t, is.Equal(a.Status, alerting.StatusFiring))
	assert.Check(t, is.Equal(a.Value, 200.0))
	assert.Check(t, is.Equal(a.Unit, "h"))
	assert.Check(t, is.Contains(a.Summary, "firing drill-age: project shop: drill-age 200h > 168h"))

	assert.NilError(t, writeDrillRecord(ctx, target, "shop-2", DrillResult{Project: "shop", ScratchProject: "shop-drill-c", Started: now, Passed: true, RTOSeconds: 3}))
	w.evaluate(ctx, m, now.Add(time.Second)) // the target is read at most every drillRefresh
	assert.Check(t, is.Len(got, 1))
	w.evaluate(ctx, m, now.Add(drillRefresh))
	assert.Assert(t, is.Len(got, 2), "%+v", got)
	assert.Check(t, is.Equal(got[1].Status, alerting.StatusResolved))
	assert.Check(t, is.Equal(got[1].Value, 0.02))
}

// BenchmarkReadDrillStatus is the monitor's read of a target (at most once a minute):
// 100 backups of the project, each with a manifest and both drill records, plus 20
// backups of another project (read and skipped by manifest).
func BenchmarkReadDrillStatus(b *testing.B) {
	ctx := context.Background()
	target := LocalTarget{Dir: b.TempDir()}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for i := range 120 {
		project, name := "shop", fmt.Sprintf("shop-%03d", i)
		if i >= 100 {
			project, name = "bakery", fmt.Sprintf("bakery-%03d", i)
		}
		created := base.Add(time.Duration(i) * time.Hour)
		assert.NilError(b, target.Begin(ctx, name))
		assert.NilError(b, writeManifest(ctx, target, name, Manifest{Format: ManifestFormat, Project: project, Created: created,
			Volumes: []ManifestVolume{{Name: "data", Archive: "data.tar.zst", Size: 1000, ArchiveBytes: 300}}}))
		assert.NilError(b, writeDrillRecord(ctx, target, name, DrillResult{Project: project, Started: created.Add(time.Minute), Passed: true, RTOSeconds: 4}))
	}
	b.ResetTimer()
	for b.Loop() {
		st, err := ReadDrillStatus(ctx, target, target.Dir, "shop")
		if err != nil || st.Backups != 100 || st.LastGood == nil {
			b.Fatalf("%+v %v", st, err)
		}
	}
}
