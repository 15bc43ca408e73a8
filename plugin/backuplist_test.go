package plugin

import (
	"bytes"
	"testing"
	"time"

	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// The table of `backup list`: one row a backup, the last drill's result (a failed one
// with the last that passed), and the unreadable backups below, with the reason; with
// --all-projects a PROJECT column.
func TestBackupListTable(t *testing.T) {
	at := func(day, hour int) time.Time { return time.Date(2026, 12, day, hour, 30, 0, 0, time.UTC) }
	entries := []rollout.BackupEntry{
		{Name: "shop-20261203T023000Z", Location: "/backups/shop-20261203T023000Z", Project: "shop", Created: at(3, 2),
			Volumes: []string{"pgdata", "uploads"}, Size: 56789012, StoredBytes: 12345678, Encrypted: true,
			Drill:           &rollout.BackupDrill{Started: at(3, 4), Error: "1 of 2 verify commands failed"},
			LastPassedDrill: &rollout.BackupDrill{Started: at(3, 3), Passed: true, RTOSeconds: 8.52}},
		{Name: "shop-20261202T023000Z", Location: "/backups/shop-20261202T023000Z", Project: "shop", Created: at(2, 2),
			Volumes: []string{"pgdata", "uploads"}, Size: 56000000, StoredBytes: 12000000,
			Drill:           &rollout.BackupDrill{Started: at(2, 3), Passed: true, RTOSeconds: 7.04},
			LastPassedDrill: &rollout.BackupDrill{Started: at(2, 3), Passed: true, RTOSeconds: 7.04}},
		{Name: "shop-20261201T023000Z", Location: "/backups/shop-20261201T023000Z", Project: "shop", Created: at(1, 2),
			Volumes: []string{"pgdata"}, Size: 512, StoredBytes: 300},
		{Name: "shop-half", Location: "/backups/shop-half", Volumes: []string{},
			Error: "read the backup's manifest: backup not found: open /backups/shop-half/manifest.json: no such file or directory"},
	}
	var out bytes.Buffer
	printBackupList(&out, entries, false)
	golden.Assert(t, out.String(), "backup-list-table.golden")
	out.Reset()
	printBackupList(&out, entries[1:3], true)
	golden.Assert(t, out.String(), "backup-list-all-projects.golden")
}
