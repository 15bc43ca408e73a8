package compose

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// x-lifecycle.logs gives services without logging: a rotated driver, changes their
// config hash (so a deploy recreates them), and leaves services with logging: alone.
func TestLogsDefaults(t *testing.T) {
	const services = `services:
  web:
    image: nginx
  own:
    image: nginx
    logging: {driver: syslog}
`
	load := func(t *testing.T, doc string) *Project {
		t.Helper()
		p, _, err := loadFiles(t, map[string]string{"compose.yaml": doc}, LoadOptions{ProjectName: "shop"})
		assert.NilError(t, err)
		return p
	}
	logConfigOf := func(t *testing.T, p *Project, service string) container.LogConfig {
		t.Helper()
		c, err := Container(p, service, ReplicaLabels{Number: 1, Revision: 1})
		assert.NilError(t, err)
		return c.HostConfig.LogConfig
	}
	hash := func(t *testing.T, p *Project, service string) string {
		t.Helper()
		h, err := ConfigHash(p, service)
		assert.NilError(t, err)
		return h
	}

	plain := load(t, services)
	assert.Check(t, is.DeepEqual(logConfigOf(t, plain, "web"), container.LogConfig{}), "the engine's default")

	defaults := load(t, "x-lifecycle:\n  logs: {}\n"+services)
	assert.Check(t, is.DeepEqual(logConfigOf(t, defaults, "web"), container.LogConfig{Type: "local", Config: map[string]string{"max-size": "10485760", "max-file": "3"}}))
	assert.Check(t, is.DeepEqual(logConfigOf(t, defaults, "own"), container.LogConfig{Type: "syslog"}))
	assert.Check(t, hash(t, plain, "web") != hash(t, defaults, "web"), "a deploy recreates the containers")
	assert.Check(t, is.Equal(hash(t, plain, "own"), hash(t, defaults, "own")))

	set := load(t, "x-lifecycle:\n  logs: {driver: json-file, max-size: 5M, max-file: 2}\n"+services)
	assert.Check(t, is.DeepEqual(logConfigOf(t, set, "web"), container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "5242880", "max-file": "2"}}))

	for doc, want := range map[string]string{
		"x-lifecycle:\n  logs: {driver: syslog}\n": `key "logs.driver": "syslog" is not a driver that rotates logs on the engine (valid: local, json-file); for another driver, set logging: on the services`,
		"x-lifecycle:\n  logs: {max-file: -1}\n":   `key "logs.max-file" must be at least 1, got -1`,
		"x-lifecycle:\n  logs: {max-size: lots}\n": `want a size such as "512M"`,
		"x-lifecycle:\n  logs: {rotate: daily}\n":  `unknown key "logs.rotate"`,
	} {
		_, _, err := loadFiles(t, map[string]string{"compose.yaml": doc + services}, LoadOptions{ProjectName: "shop"})
		assert.Check(t, is.ErrorContains(err, want), doc)
	}
}

// x-lifecycle.logs.archive: days or a duration, a 14-day default, and every problem of
// the block reported at once.
func TestLogArchiveSpec(t *testing.T) {
	const services = "services:\n  web:\n    image: nginx\n"
	load := func(doc string) (*Project, error) {
		p, _, err := loadFiles(t, map[string]string{"compose.yaml": doc + services}, LoadOptions{ProjectName: "shop"})
		return p, err
	}
	p, err := load("x-lifecycle:\n  logs:\n    archive: {dir: ./logs}\n")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(p.Spec.Logs.Archive.Dir, "./logs"))
	assert.Check(t, is.Equal(p.Spec.Logs.Archive.Retention.String(), "14d"))
	p, err = load("x-lifecycle:\n  logs:\n    archive: {dir: /var/log/shop, retention: 3d}\n")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(time.Duration(p.Spec.Logs.Archive.Retention), 72*time.Hour))
	p, err = load("x-lifecycle:\n  logs:\n    archive: {dir: a, retention: 36h}\n")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(time.Duration(p.Spec.Logs.Archive.Retention), 36*time.Hour))

	_, err = load("x-lifecycle:\n  logs:\n    max-file: -1\n    archive: {retention: -2d}\n")
	assert.Check(t, is.ErrorContains(err, `key "logs.max-file" must be at least 1, got -1`))
	assert.Check(t, is.ErrorContains(err, `key "logs.archive.dir": required`))
	assert.Check(t, is.ErrorContains(err, `key "logs.archive.retention" must be positive`))
	_, err = load("x-lifecycle:\n  logs:\n    archive: {dir: a, retention: fortnight}\n")
	assert.Check(t, is.ErrorContains(err, `"fortnight" is not a number of days (14d) or a duration (36h)`))
	_, err = load("x-lifecycle:\n  logs:\n    archive: {dir: a, keep: 3}\n")
	assert.Check(t, is.ErrorContains(err, `unknown key "logs.archive.keep"`))
}
