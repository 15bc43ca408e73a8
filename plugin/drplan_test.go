package plugin

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const drShopYAML = `
x-lifecycle:
  backup:
    verify:
      - {service: db, command: "pg_isready -U shop"}
      - {service: web, command: ["/app", "selftest", "--orders"], timeout: 10s}
services:
  db:
    image: postgres:17
    volumes: [pgdata:/var/lib/postgresql/data]
  web:
    image: web:1
    ports: ["8080:8080"]
    volumes: [uploads:/uploads]
    depends_on: [db]
  worker:
    image: web:1
    volumes: [uploads:/uploads]
    depends_on: [db]
  cache:
    image: redis:8
volumes:
  pgdata:
  uploads:
`

func drManifest() rollout.Manifest {
	return rollout.Manifest{Format: 1, Project: "shop", ComposeFiles: []string{"/srv/shop/compose.yaml"}, Encryption: rollout.EncryptionAge,
		Created:  time.Date(2026, 12, 2, 11, 30, 0, 0, time.UTC),
		Services: []rollout.ManifestService{{Name: "db"}, {Name: "web"}, {Name: "worker"}},
		Volumes: []rollout.ManifestVolume{
			{Name: "pgdata", EngineName: "shop_pgdata", Files: 1234, Size: 56789012},
			{Name: "uploads", EngineName: "shop_uploads", Files: 17, Size: 4096},
		}}
}

func drDrills() []rollout.DrillResult {
	return []rollout.DrillResult{
		{Project: "shop", Backup: "/backups/shop-20261202T113000Z", Started: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC),
			RestoreSeconds: 2.1, HealthySeconds: 6.4, RTOSeconds: 8.5, Error: "1 of 2 verify commands failed: web: /app selftest --orders",
			Checks: []rollout.DrillCheck{{Service: "db", Passed: true}, {Service: "web"}}},
		{Project: "shop", Backup: "/backups/shop-20261201T113000Z", Started: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
			RestoreSeconds: 1.9, HealthySeconds: 5.2, RTOSeconds: 7.1, Passed: true,
			Checks: []rollout.DrillCheck{{Service: "db", Passed: true}, {Service: "web", Passed: true}}},
	}
}

func TestDRPlanRunbook(t *testing.T) {
	p := loadShop(t, drShopYAML)
	p.ComposeFiles = []string{"/srv/shop/compose.yaml"} // the golden file does not hold the test's temporary directory
	plan := rollout.PlanRecovery(p, "/backups", "/backups/shop-20261202T113000Z", drManifest(), drDrills())
	var out bytes.Buffer
	printRunbook(&out, plan)
	golden.Assert(t, out.String(), "dr-plan.golden")

	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ")
	assert.NilError(t, enc.Encode(plan))
	golden.Assert(t, js.String(), "dr-plan.json.golden")
}

// Without the compose file (-p NAME alone) every backed-up service is stopped and
// deployed, and no drill recorded says so.
func TestDRPlanRunbookWithoutComposeFile(t *testing.T) {
	m := drManifest()
	m.Encryption = "none"
	m.ComposeFiles = nil
	plan := rollout.PlanRecovery(nil, "s3://backups/shop", "s3://backups/shop/shop-20261202T113000Z", m, nil)
	var out bytes.Buffer
	printRunbook(&out, plan)
	golden.Assert(t, out.String(), "dr-plan-no-compose.golden")
}
