package plugin

import (
	"testing"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"gotest.tools/v3/assert"
)

// The footer of history's table: when the data was last shown restorable, or what to
// run when it never was.
func TestDrillStatusLine(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	drilled := rollout.DrillStatus{
		Target: "/srv/backups", Backups: 3,
		LastGood: &rollout.BackupDrill{Started: now.Add(-26*time.Hour - 30*time.Minute), Passed: true, RTOSeconds: 4.25},
		Backup:   "/srv/backups/shop-20261203T093000Z",
	}
	assert.Equal(t, drillStatusLine(drilled, now),
		"Last good drill: 2026-12-03T09:30:00Z (26h30m0s ago), RTO 4.2s, of backup /srv/backups/shop-20261203T093000Z")
	assert.Equal(t, drillStatusLine(rollout.DrillStatus{Target: "s3://b/p"}, now),
		"Last good drill: none: the project has no backup in s3://b/p yet (docker lifecycle backup)")
	assert.Equal(t, drillStatusLine(rollout.DrillStatus{Target: "/srv/backups", Backups: 2}, now),
		"Last good drill: none of the project's 2 backups in /srv/backups passed a drill: docker lifecycle drill /srv/backups/latest")
}
