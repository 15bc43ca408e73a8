package compose

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// roundTripProjects vary what `config` must write back faithfully: dollars, every
// x-lifecycle block, defaults that depend on compose keys, update configs, segmentation,
// secrets, profiles, builds.
var roundTripProjects = map[string]string{
	"dollars and defaults": `
name: shop
services:
  web:
    image: nginx:1.25
    command: ["sh", "-c", "echo $$HOME $${PATH} $$$$"]
    environment: {A: "x$$y", B: "${UNSET_IN_TEST:-fallback}"}
    labels: {price: "$$5"}
    ports: ["127.0.0.1:8080:80"]
  db:
    image: postgres:16
    volumes: [data:/var/lib/postgresql/data]
    stop_grace_period: 25s
volumes:
  data:
`,
	"every x-lifecycle block": `
name: shop
x-lifecycle:
  strategy: blue-green
  wait-timeout: 45s
  policy:
    require: [limits]
    deny: [privileged]
    defaults: {memory: 1000000000, cpus: 0.25, pids: 200}
  scan: {fail-on: high, ignore-unfixed: true}
  alerts:
    interval: 2s
    targets:
      - webhook: {url: "https://hooks.example.com/x", body: '{"text": {{json .Summary}}}', headers: {X-Token: t}, retries: 2}
      - exec: {command: [/bin/cat], timeout: 3s}
      - stderr: true
    rules:
      - {metric: cpu, above: 80, resolve-below: 60, for: 1m}
      - {metric: oom}
services:
  web:
    image: nginx:1.25
    ports: ["127.0.0.1:8080:80"]
    x-lifecycle:
      alerts: {rules: [{metric: cpu, above: 95}, {name: slow, metric: p99, above: 250ms, window: 1m}]}
      strategy: canary
      canary:
        steps: [{weight: 5, pause: 1m}, {weight: 40}]
        analysis: {max-error-rate: 0.002, max-p99: 250ms, min-requests: 30}
      active-check: {path: /healthz, interval: 3s}
      allow: [{rule: limits, reason: "sized by the host"}]
      history: 2
      drain: 7s
  api:
    image: nginx:1.25
    ports: ["127.0.0.1:8081:80"]
    x-lifecycle:
      blue-green: {promote: manual, scale-down-delay: 30s, preview-port: "127.0.0.1:9081"}
    deploy:
      replicas: 2
      update_config: {parallelism: 2, delay: 3s, order: stop-first, monitor: 10s, failure_action: pause, max_failure_ratio: 0.2}
      rollback_config: {parallelism: 3, failure_action: continue}
  job:
    image: busybox
    command: ["true"]
  worker:
    image: busybox
    depends_on: {job: {condition: service_completed_successfully}}
    x-lifecycle: {protocol: tcp, wait-timeout: 10s}
`,
	"empty scan block": `
name: shop
x-lifecycle: {scan: {}}
services:
  web: {image: nginx}
`,
	"segmentation, open by default": `
name: shop
x-lifecycle: {network: {pool: 10.99.0.0/16, size: 27}}
services:
  web:
    image: nginx
    ports: ["127.0.0.1:8080:80"]
    x-lifecycle: {network: {talks-to: [api]}}
  api:
    image: nginx
    x-lifecycle: {network: {talks-to: [], egress: true}}
  cache:
    image: redis
`,
	"segmentation, isolated by default": `
name: shop
x-lifecycle: {network: {default: isolate}}
services:
  web:
    image: nginx
    ports: ["127.0.0.1:8080:80"]
    x-lifecycle: {network: {talks-to: [api, later]}}
  api:
    image: nginx
  later:
    image: nginx
    profiles: [later]
`,
	"secrets, builds, env files": `
name: shop
services:
  app:
    build: {context: ., args: {V: "1"}}
    env_file: [app.env]
    secrets: [token, {source: key, target: api-key, uid: "1000", gid: "1000", mode: 0440}]
    healthcheck: {test: ["CMD", "/app", "health"], interval: 2s}
secrets:
  token: {file: ./token.txt}
  key:
    environment: KEY_IN_TEST
    x-lifecycle: {exec: "printf %s $$KEY_IN_TEST"}
`,
}

// config's output loads again and means the same project: load → config → load gives
// the same resolved settings, config hashes, containers, networks and volumes, and the
// same config output (YAML and JSON).
func TestResolvedRoundTrip(t *testing.T) {
	for name, src := range roundTripProjects {
		t.Run(name, func(t *testing.T) {
			p, dir, err := loadFiles(t, map[string]string{"compose.yaml": src, "app.env": "E=1\n", "token.txt": "t"}, LoadOptions{})
			assert.NilError(t, err)
			for _, format := range []string{"yaml", "json"} {
				out, err := Resolved(p, format)
				assert.NilError(t, err)
				file := filepath.Join(dir, "resolved."+format)
				assert.NilError(t, os.WriteFile(file, out, 0o644))
				again, err := Load(context.Background(), LoadOptions{ConfigFiles: []string{file}, WorkingDir: dir})
				assert.NilError(t, err, "%s output does not load again:\n%s", format, out)
				assertSameProject(t, p, again)
				out2, err := Resolved(again, format)
				assert.NilError(t, err)
				assert.Check(t, is.Equal(string(out2), string(out)), "%s output changes on a second round", format)
			}
		})
	}
}

// comparable compares the netip values of engine options by value.
var comparable = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func assertSameProject(t *testing.T, want, got *Project) {
	t.Helper()
	got.ComposeFiles = want.ComposeFiles // a container's label names the files it came from
	assert.Check(t, is.Equal(got.Name, want.Name))
	assert.Check(t, is.DeepEqual(got.Spec, want.Spec))
	assert.Check(t, is.DeepEqual(got.ServiceNames(), want.ServiceNames()))
	for _, name := range want.ServiceNames() {
		ws, gs := want.ServiceSpecs[name], got.ServiceSpecs[name]
		if ws.Network != nil && !ws.Network.Isolated {
			ws.Network = nil // an open service: Load may give it an empty block, or none
		}
		if gs.Network != nil && !gs.Network.Isolated {
			gs.Network = nil
		}
		// config writes each service's resolved strategy into its own x-lifecycle, so the
		// reason says where it came from ("the default" becomes "set in the service's
		// x-lifecycle"): the same strategy, from another place.
		gs.StrategyReason = ws.StrategyReason
		assert.Check(t, is.DeepEqual(gs, ws), "service %s", name)
		wh, err := ConfigHash(want, name)
		assert.NilError(t, err)
		gh, err := ConfigHash(got, name)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(gh, wh), "service %s: config hash", name)
		labels := ReplicaLabels{Number: 1, Revision: 1, ConfigHash: wh, ImageID: "sha256:abc"}
		wc, err := Container(want, name, labels)
		assert.NilError(t, err)
		gc, err := Container(got, name, labels)
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(gc, wc, comparable), "service %s: container", name)
		wsec, err := ServiceSecrets(want, name, "", nil)
		assert.NilError(t, err)
		gsec, err := ServiceSecrets(got, name, "", nil)
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(gsec, wsec), "service %s: secrets", name)
	}
	for name, s := range want.Secrets {
		ws, err := SecretSourceOf(name, types.FileObjectConfig(s))
		assert.NilError(t, err)
		gs, err := SecretSourceOf(name, types.FileObjectConfig(got.Secrets[name]))
		assert.NilError(t, err)
		assert.Check(t, is.DeepEqual(gs, ws), "secret %s", name)
	}
	wd, err := Desire(want)
	assert.NilError(t, err)
	gd, err := Desire(got)
	assert.NilError(t, err)
	wd.Project, gd.Project = nil, nil
	assert.Check(t, is.DeepEqual(gd, wd, comparable))
}

// What the loader refuses or misreads is never written: no derived keys, no scan block
// unless the project has one, the update configs under deploy, dollars escaped.
func TestResolvedWritesOnlyWhatLoads(t *testing.T) {
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": roundTripProjects["dollars and defaults"]}, LoadOptions{})
	assert.NilError(t, err)
	out, err := Resolved(p, "yaml")
	assert.NilError(t, err)
	for _, absent := range []string{"scan:", "enabled:", "active:", "isolated:", "\n      update:", "\n      rollback:"} {
		assert.Check(t, !strings.Contains(string(out), absent), "%q in:\n%s", absent, out)
	}
	for _, present := range []string{"echo $$HOME $${PATH} $$$$", "A: x$$y", "B: fallback", "update_config:", "order: start-first", "rollback_config:"} {
		assert.Check(t, strings.Contains(string(out), present), "%q not in:\n%s", present, out)
	}
	_, err = Resolved(p, "toml")
	assert.Check(t, is.ErrorContains(err, `unknown format "toml"`))
}
