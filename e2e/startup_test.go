package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The docker CLI runs `docker-lifecycle docker-cli-plugin-metadata` before every plugin
// command. Package plugin/meta answers it from its init, before the heavy dependencies
// are initialised (docs/benchmarks.md, section 1). This checks that the real docker CLI
// accepts that answer, that it is what docker/cli's own subcommand prints, and that the
// heavy packages are indeed not initialised for it.
func TestMetadataProbeSkipsHeavyInit(t *testing.T) {
	s := setup(t)
	pluginPath := filepath.Join(s.configDir, "cli-plugins", "docker-lifecycle")

	r := s.docker(t, "", nil, "info", "--format", "{{json .ClientInfo.Plugins}}")
	assert.Equal(t, r.code, 0, r)
	var plugins []struct{ Name, Version, Vendor, ShortDescription, Err string }
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &plugins), r)
	found := false
	for _, p := range plugins {
		if p.Name == "lifecycle" {
			found = true
			assert.Check(t, is.Equal(p.Err, ""))
			assert.Check(t, is.Equal(p.Version, "v0.0.0-e2e"))
			assert.Check(t, is.Equal(p.Vendor, "docker lifecycle"))
			assert.Check(t, p.ShortDescription != "")
		}
	}
	assert.Check(t, found, "docker info lists no lifecycle plugin: %s", r.stdout)

	// Only the exact probe takes the early exit; with an extra argument the same
	// subcommand runs through docker/cli's plugin.Run, which must print the same bytes.
	fast := s.run(t, pluginPath, "", nil, "docker-cli-plugin-metadata")
	assert.Equal(t, fast.code, 0, fast)
	viaCobra := s.run(t, pluginPath, "", nil, "docker-cli-plugin-metadata", "extra")
	assert.Equal(t, viaCobra.code, 0, viaCobra)
	assert.Check(t, is.Equal(fast.stdout, viaCobra.stdout))

	heavy := []string{
		"init github.com/santhosh-tekuri/jsonschema/v6 ",
		"init github.com/distribution/reference ",
		"init github.com/docker/cli/cli/command ",
	}
	probe := s.run(t, pluginPath, "", []string{"GODEBUG=inittrace=1"}, "docker-cli-plugin-metadata")
	assert.Equal(t, probe.code, 0, probe)
	command := s.run(t, pluginPath, "", []string{"GODEBUG=inittrace=1"}, "lifecycle", "version")
	assert.Equal(t, command.code, 0, command)
	for _, h := range heavy {
		// The control: a real command initialises them, so the trace format still matches.
		assert.Check(t, strings.Contains(command.stderr, h), "no %q in the trace of `lifecycle version`", h)
		assert.Check(t, !strings.Contains(probe.stderr, h), "the metadata probe initialised %q", h)
	}
}
