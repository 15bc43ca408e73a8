package plugin

import (
	"bytes"
	"testing"
	"time"

	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// The drill's table: isolation, RTO, volumes, services started with empty volumes,
// one row per check, a failed check's output, the verdict and the cleanup.
func TestDrillTable(t *testing.T) {
	res := rollout.DrillResult{Project: "shop", ScratchProject: "shop-drill-a1b2c3", Backup: "/backups/shop-20261202T113000Z",
		BackupCreated: time.Date(2026, 12, 2, 11, 30, 0, 0, time.UTC), RestoreSeconds: 2.14, HealthySeconds: 6.38, RTOSeconds: 8.52,
		Networks: []rollout.DrillNetwork{{Name: "shop-drill-a1b2c3_back", Internal: true}, {Name: "shop-drill-a1b2c3_front", Internal: true}},
		Volumes:  []rollout.DrillVolume{{Name: "pgdata", Files: 1234, Size: 56789012, MountedBy: []string{"db"}}, {Name: "old", MountedBy: []string{}}},
		Services: []rollout.DrillService{{Name: "db", InBackup: true}, {Name: "web", EmptyVolumes: []string{"cache"}}},
		Checks: []rollout.DrillCheck{
			{Service: "db", Container: "shop-drill-a1b2c3-db-1", Command: []string{"pg_isready"}, Seconds: 0.12, Passed: true},
			{Service: "web", Container: "shop-drill-a1b2c3-web-1", Command: []string{"/app", "selftest"}, ExitCode: 2, Seconds: 1.5,
				Error: "exit code 2", Output: "orders: 0 rows\nexpected > 0"},
		},
		Error: "1 of 2 verify commands failed: web: /app selftest", CleanedUp: true}
	var out bytes.Buffer
	printDrillTable(&out, res)
	golden.Assert(t, out.String(), "drill-table.golden")
}
