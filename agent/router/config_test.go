package router

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestNormalizeFillsDefaults(t *testing.T) {
	in := Config{Routes: []Route{{Name: "web", Listen: ":8080", HealthPath: "/up",
		Backends: []Backend{{ID: "a", Address: "web-1:80", Weight: 1}}}}}
	out, err := in.Normalize()
	assert.NilError(t, err)
	assert.Equal(t, out.Version, ConfigVersion)
	r := out.Routes[0]
	assert.Equal(t, r.Protocol, HTTP)
	assert.Equal(t, r.DrainTimeout, Duration(DefaultDrainTimeout))
	assert.Equal(t, r.HealthInterval, Duration(DefaultHealthInterval))
	// A deep copy: the caller's slices are not aliased.
	out.Routes[0].Backends[0].Weight = 7
	assert.Equal(t, in.Routes[0].Backends[0].Weight, 1)
}

func TestNormalizeRejects(t *testing.T) {
	ok := Backend{ID: "a", Address: "a:80", Weight: 1}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Version: 2}, "config version 2 is not supported"},
		{Config{Routes: []Route{{Listen: ":80"}}}, "routes[0]: name is required"},
		{Config{Routes: []Route{{Name: "a", Listen: ":80"}, {Name: "a", Listen: ":81"}}}, `route "a": duplicate route name`},
		{Config{Routes: []Route{{Name: "a", Listen: "80"}}}, `route "a": listen "80"`},
		{Config{Routes: []Route{{Name: "a", Listen: ":80"}, {Name: "b", Listen: ":80"}}}, `listen ":80" is already used by route "a"`},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Protocol: "udp"}}}, `protocol "udp" is not one of http, tcp`},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Protocol: TCP, HealthPath: "/"}}}, "health_path needs protocol http"},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", HealthPath: "up"}}}, "must start with /"},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", DrainTimeout: Duration(-time.Second)}}}, "must not be negative"},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Backends: []Backend{{Address: "a:80"}}}}}, "backends[0]: id is required"},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Backends: []Backend{ok, ok}}}}, `backend "a": duplicate id`},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Backends: []Backend{{ID: "x", Address: "nohost"}}}}}, `address "nohost" must be host:port`},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Backends: []Backend{{ID: "x", Address: ":80"}}}}}, `address ":80" must be host:port`},
		{Config{Routes: []Route{{Name: "a", Listen: ":80", Backends: []Backend{{ID: "x", Address: "a:80", Weight: -1}}}}}, "weight -1 is outside 0..10000"},
	} {
		_, err := tc.cfg.Normalize()
		assert.Check(t, is.ErrorContains(err, tc.want))
	}
}

func TestConfigJSON(t *testing.T) {
	data := []byte(`{"version":1,"routes":[{"name":"web","listen":":80","protocol":"http",
		"health_path":"/up","health_interval":"500ms","drain_timeout":"1m30s",
		"backends":[{"id":"web-2","address":"10.0.0.2:80","weight":10,"group":"2"}]}]}`)
	cfg, err := DecodeConfig(data)
	assert.NilError(t, err)
	assert.Equal(t, cfg.Routes[0].HealthInterval, Duration(500*time.Millisecond))
	assert.Equal(t, cfg.Routes[0].DrainTimeout, Duration(90*time.Second))
	out, err := json.Marshal(cfg)
	assert.NilError(t, err)
	assert.Assert(t, is.Contains(string(out), `"drain_timeout":"1m30s"`))
	again, err := DecodeConfig(out)
	assert.NilError(t, err)
	assert.DeepEqual(t, again, cfg)

	for _, bad := range []string{
		`{"routes":[{"name":"web","listen":":80","drain_timeout":30}]}`,
		`{"routes":[{"name":"web","listen":":80","drain_timeout":"soon"}]}`,
		`{"routes":[],"extra":true}`,
		`{"routes":[]} {}`,
	} {
		_, err := DecodeConfig([]byte(bad))
		assert.Check(t, err != nil, bad)
	}
}

func TestConfigFileRoundTripAndAtomicSave(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "router.json")
	_, err := LoadConfigFile(path)
	assert.Check(t, errors.Is(err, fs.ErrNotExist), "%v", err)

	cfg := Config{Routes: []Route{{Name: "web", Listen: ":80",
		Backends: []Backend{{ID: "a", Address: "a:80", Weight: 3, Group: "blue"}}}}}
	assert.NilError(t, SaveConfigFile(path, cfg))
	got, err := LoadConfigFile(path)
	assert.NilError(t, err)
	want, _ := cfg.Normalize()
	assert.DeepEqual(t, got, want)
	info, err := os.Stat(path)
	assert.NilError(t, err)
	assert.Equal(t, info.Mode().Perm(), fs.FileMode(0o600))

	// Overwrite, then a failed save: the file keeps the last good config and no
	// temporary file is left behind.
	cfg.Routes[0].Backends[0].Weight = 5
	assert.NilError(t, SaveConfigFile(path, cfg))
	assert.Check(t, SaveConfigFile(path, Config{Version: 9}) != nil)
	got, err = LoadConfigFile(path)
	assert.NilError(t, err)
	assert.Equal(t, got.Routes[0].Backends[0].Weight, 5)
	assert.NilError(t, os.Chmod(dir, 0o500)) // the temp file cannot be created
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	if os.Geteuid() != 0 { // root ignores directory permissions
		assert.Check(t, SaveConfigFile(path, cfg) != nil)
	}
	assert.NilError(t, os.Chmod(dir, 0o700))
	entries, err := os.ReadDir(dir)
	assert.NilError(t, err)
	assert.Equal(t, len(entries), 1, "%v", entries)

	assert.NilError(t, os.WriteFile(path, []byte(`{"routes":[{"name":""}]}`), 0o600))
	_, err = LoadConfigFile(path)
	assert.ErrorContains(t, err, path+": routes[0]: name is required")
}

// Whatever the bytes, DecodeConfig does not panic, and what it accepts survives a
// JSON round trip unchanged.
func FuzzDecodeConfig(f *testing.F) {
	f.Add([]byte(`{"version":1,"routes":[{"name":"web","listen":":80","drain_timeout":"2s","backends":[{"id":"a","address":"a:80","weight":1}]}]}`))
	f.Add([]byte(`{"routes":[{"name":"db","listen":"127.0.0.1:5432","protocol":"tcp"}]}`))
	f.Add([]byte(`{"routes":[{"name":"x","listen":":1","health_path":"/h","health_interval":"1ms"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := DecodeConfig(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(cfg)
		assert.NilError(t, err)
		again, err := DecodeConfig(out)
		assert.NilError(t, err, "%s", out)
		assert.DeepEqual(t, again, cfg)
	})
}
