package compose

import (
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestBackupHooksLoad(t *testing.T) {
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    consistency: none
    hooks:
      - service: db
        before: pg_dump -U postgres -f /var/lib/postgresql/data/dump.sql app
        after: [rm, -f, /var/lib/postgresql/data/dump.sql]
        timeout: 90s
      - {service: cache, after: "redis-cli bgsave", on-failure: continue}
services:
  db: {image: postgres}
  cache: {image: redis}
`}, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(p.Spec.Backup.Hooks, []BackupHook{
		{Service: "db", Before: []string{"pg_dump", "-U", "postgres", "-f", "/var/lib/postgresql/data/dump.sql", "app"},
			After: []string{"rm", "-f", "/var/lib/postgresql/data/dump.sql"}, Timeout: Duration(90 * time.Second), OnFailure: HookFail},
		{Service: "cache", After: []string{"redis-cli", "bgsave"}, Timeout: Duration(DefaultHookTimeout), OnFailure: HookContinue},
	}))
}

// TestBackupHooksEveryProblem: one load names every problem of every entry.
func TestBackupHooksEveryProblem(t *testing.T) {
	_, _, err := loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    hooks:
      - {service: web, before: [dump], befor: x}
      - {service: db}
      - {before: "", timeout: -1s, on-failure: retry}
      - {service: db, after: [1, ok], timeout: 0s}
      - {service: db, before: [dump]}
      - just-a-string
services:
  db: {image: postgres}
`}, LoadOptions{ProjectName: "shop"})
	assert.Assert(t, err != nil)
	for _, want := range []string{
		`unknown key "backup.hooks[0].befor" (valid keys: service, before, after, timeout, on-failure)`,
		`key "backup.hooks[0].service": no service "web" in the project (services: db)`,
		`key "backup.hooks[1]": set before, after or both`,
		`key "backup.hooks[2].service": required`,
		`key "backup.hooks[2].before": must not be empty`,
		`key "backup.hooks[2].timeout": duration "-1s" must not be negative`,
		`key "backup.hooks[2].on-failure": want fail or continue, got "retry"`,
		`key "backup.hooks[3].after[0]": want a string, got a number`,
		`key "backup.hooks[3].timeout": must be positive`,
		`key "backup.hooks[4].service": service "db" already has hooks in backup.hooks[1]: put its commands in one entry`,
		`key "backup.hooks[5]": want a mapping`,
	} {
		assert.Check(t, is.ErrorContains(err, want))
	}
}
