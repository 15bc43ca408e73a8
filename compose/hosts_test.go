package compose

import (
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestLoadHosts(t *testing.T) {
	compose := `
x-lifecycle:
  hosts:
    contexts: [web-1, web-2, web-3]
    batch: "50%"
    concurrency: 1
    wait: 10s
services:
  web:
    image: nginx
`
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
	assert.NilError(t, err)
	h := p.Spec.Hosts
	assert.Check(t, h.Enabled())
	assert.Check(t, is.DeepEqual(h.Contexts, []string{"web-1", "web-2", "web-3"}))
	assert.Check(t, is.Equal(h.Batch, "50%"))
	assert.Check(t, is.Equal(h.Concurrency, 1))
	assert.Check(t, is.Equal(h.Wait.String(), "10s"))
	assert.Check(t, is.Equal(h.BatchSize(3), 2), "50%% of 3 rounds up")
}

func TestHostsBatchSize(t *testing.T) {
	for _, c := range []struct {
		batch string
		n     int
		want  int
	}{
		{"", 3, 3}, {"1", 3, 1}, {"5", 3, 3}, {"34%", 3, 2}, {"33%", 3, 1}, {"100%", 4, 4}, {"1%", 10, 1},
	} {
		assert.Check(t, is.Equal(HostsSpec{Batch: c.batch}.BatchSize(c.n), c.want), "batch %q of %d hosts", c.batch, c.n)
	}
}

func TestLoadHostsErrors(t *testing.T) {
	compose := `
x-lifecycle:
  hosts:
    contexts: [a, a, "", 3]
    batch: "150%"
    concurrency: 0
    wait: soon
    limit: 2
services:
  web:
    image: nginx
`
	_, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{})
	assert.Assert(t, err != nil)
	msg := err.Error()
	for _, want := range []string{
		`hosts: unknown key "limit" (valid keys: contexts, batch, concurrency, wait)`,
		`hosts.contexts[1]: context "a" is listed twice`,
		`hosts.contexts[2]: empty context name`,
		`hosts.contexts[3]: must be a context name, got a number`,
		`hosts.batch: percentage "150%" must be a whole number from 1% to 100%`,
		`hosts.concurrency: must be a whole number of hosts, 1 or more, got 0`,
		`hosts.wait: must be a duration such as 30s, got soon`,
	} {
		assert.Check(t, is.Contains(msg, want))
	}
	assert.Check(t, strings.Contains(msg, "7 problems"), msg)

	_, _, err = loadFiles(t, map[string]string{"compose.yaml": "x-lifecycle:\n  hosts: {batch: 2}\nservices:\n  web:\n    image: nginx\n"}, LoadOptions{})
	assert.Check(t, is.ErrorContains(err, "hosts.contexts: required"))
}
