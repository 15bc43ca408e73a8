package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// TestLogRotationDefaults: with x-lifecycle.logs, a service without logging: runs with
// the local driver rotated at max-size × max-file, so a chatty container keeps only
// its newest lines, which `docker lifecycle logs` still reads; lint warns about the
// same service without x-lifecycle.logs, not with it.
func TestLogRotationDefaults(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	const services = `
services:
  chatty:
    image: %s
    environment: {QUIET: "1", LOG_SEQ_EVERY: "1ms"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
`
	p := s.newProject(t, fmt.Sprintf(services, imageRef("v1")))
	r := p.lifecycle("lint", "--format", "json")
	assert.Check(t, is.Contains(r.stdout, `"rule": "log-rotation"`), r.String())

	p.write("x-lifecycle:\n  logs: {max-size: 64k, max-file: 2}\n" + fmt.Sprintf(services, imageRef("v1")))
	r = p.lifecycle("lint", "--format", "json")
	assert.Check(t, !strings.Contains(r.stdout, `"rule": "log-rotation"`), r.String())
	p.mustLifecycle("deploy")
	name := p.name + "-chatty-r1-1"
	assert.Check(t, is.Equal(p.inspect("{{json .HostConfig.LogConfig}}", name), `{"Type":"local","Config":{"max-file":"2","max-size":"65536"}}`))

	// About 30 kB/s of lines: after a few seconds the first lines are rotated away.
	seqOf := func(line string) int {
		var e struct{ Seq int }
		_ = json.Unmarshal([]byte(line), &e)
		return e.Seq
	}
	var first, last, count int
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		out := p.mustLifecycle("logs", "--format", "json", "chatty").stdout
		first, last, count = 0, 0, 0
		for _, l := range lines(out) {
			if n := seqOf(l); n > 0 {
				if first == 0 {
					first = n
				}
				last, count = n, count+1
			}
		}
		if first > 1 {
			return poll.Success()
		}
		return poll.Continue("lines %d..%d: none rotated away yet", first, last)
	}, poll.WithTimeout(30*time.Second), poll.WithDelay(time.Second))
	t.Logf("logs kept lines %d..%d (%d lines) of %d written", first, last, count, last)
	assert.Check(t, is.Equal(count, last-first+1), "the kept lines are the newest, without a gap")
}
