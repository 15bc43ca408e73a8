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
		`unknown key "backup.hooks[0].befor" (valid keys: service, before, after, user, timeout, on-failure)`,
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

// TestBackupHooksUser: user takes docker exec's forms (a bare number is a UID), and a
// malformed one is named with the form wanted.
func TestBackupHooksUser(t *testing.T) {
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    hooks:
      - {service: db, before: dump, user: postgres}
      - {service: cache, before: dump, user: 999}
      - {service: web, before: dump, user: "1000:1000"}
services:
  db: {image: postgres}
  cache: {image: redis}
  web: {image: nginx}
`}, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	var users []string
	for _, h := range p.Spec.Backup.Hooks {
		users = append(users, h.User)
	}
	assert.Check(t, is.DeepEqual(users, []string{"postgres", "999", "1000:1000"}))

	_, _, err = loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    hooks:
      - {service: a, before: dump, user: ""}
      - {service: b, before: dump, user: "1000:"}
      - {service: c, before: dump, user: "a:b:c"}
      - {service: d, before: dump, user: "pg admin"}
      - {service: e, before: dump, user: [root]}
      - {service: f, before: dump, user: -1}
services:
  a: {image: x}
  b: {image: x}
  c: {image: x}
  d: {image: x}
  e: {image: x}
  f: {image: x}
`}, LoadOptions{ProjectName: "shop"})
	assert.Assert(t, err != nil)
	for _, want := range []string{
		`key "backup.hooks[0].user": want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999, got ""`,
		`key "backup.hooks[1].user": want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999, got "1000:"`,
		`key "backup.hooks[2].user": want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999, got "a:b:c"`,
		`key "backup.hooks[3].user": want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999, got "pg admin"`,
		`key "backup.hooks[4].user": want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999, got a list`,
		`key "backup.hooks[5].user": want USER, UID, USER:GROUP or UID:GID (as docker exec --user), e.g. postgres or 999:999, got -1`,
	} {
		assert.Check(t, is.ErrorContains(err, want))
	}
}
