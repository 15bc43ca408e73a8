package compose

import (
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestBackupVerifyLoads(t *testing.T) {
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    consistency: stop
    verify:
      - {service: db, command: ["/bin/check", "--all"]}
      - {service: db, command: "psql -c 'select 1'", timeout: 5s}
services:
  db: {image: postgres}
`}, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.Spec.Backup.Consistency, ConsistencyStop))
	assert.Check(t, is.DeepEqual(p.Spec.Backup.Verify, []VerifyCheck{
		{Service: "db", Command: []string{"/bin/check", "--all"}, Timeout: Duration(DefaultVerifyTimeout)},
		{Service: "db", Command: []string{"psql", "-c", "select 1"}, Timeout: Duration(5 * time.Second)},
	}))
}

// A check of a service outside the active profiles loads (a drill skips it).
func TestBackupVerifyProfiledService(t *testing.T) {
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    verify: [{service: report, command: [check]}]
services:
  db: {image: postgres}
  report: {image: r, profiles: [tools]}
`}, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	assert.Check(t, is.Len(p.Spec.Backup.Verify, 1))
}

// TestBackupVerifyEveryProblem: one load names every problem of every entry, and a
// service's own x-lifecycle problem beside them.
func TestBackupVerifyEveryProblem(t *testing.T) {
	_, _, err := loadFiles(t, map[string]string{"compose.yaml": `
x-lifecycle:
  backup:
    verify:
      - {service: web, command: [check], tiemout: 5s}
      - {service: db}
      - {command: "", timeout: -1s}
      - {service: db, command: [1, ok], timeout: 0s}
      - just-a-string
services:
  db: {image: postgres, x-lifecycle: {strategy: sideways}}
`}, LoadOptions{ProjectName: "shop"})
	assert.Assert(t, err != nil)
	msg := err.Error()
	for _, want := range []string{
		`service "db": invalid x-lifecycle: key "strategy": unknown strategy "sideways"`,
		`unknown key "backup.verify[0].tiemout" (valid keys: service, command, timeout)`,
		`key "backup.verify[0].service": no service "web" in the project (services: db)`,
		`key "backup.verify[1].command": required`,
		`key "backup.verify[2].service": required`,
		`key "backup.verify[2].command": must not be empty`,
		`key "backup.verify[2].timeout": duration "-1s" must not be negative`,
		`key "backup.verify[3].command[0]": want a string, got a number`,
		`key "backup.verify[3].timeout": must be positive, got 0s`,
		`key "backup.verify[4]": want a mapping {service, command, timeout}, got a string`,
	} {
		assert.Check(t, is.Contains(msg, want))
	}
	assert.Check(t, strings.Contains(msg, "compose.yaml: top-level invalid x-lifecycle"), msg)
}

func TestBackupVerifyNotAList(t *testing.T) {
	_, err := DecodeBackupVerify(map[string]any{"service": "db"}, []string{"db"})
	assert.Check(t, is.ErrorContains(err, `key "backup.verify": want a list of {service, command, timeout}, got a mapping`))
	checks, err := DecodeBackupVerify(nil, nil)
	assert.Check(t, err == nil && checks == nil)
}
