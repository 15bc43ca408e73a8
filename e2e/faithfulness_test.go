package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// faithfulProject sets the service keys of docs/compose-keys.md that this engine can
// carry out without special hardware (no gpus, no real block devices, no RT kernel).
// Placeholders: ${PFX} (the project's name, so container_name differs per project),
// ${ARCH} (the engine's), ${CFG} (a config from the environment), in the project's .env.
const faithfulProject = `
x-lifecycle: {strategy: recreate} # names <project>-<service>-1 and own host ports, as with compose
services:
  app:
    image: {{image:v1}}
    container_name: ${PFX}-fixed
    platform: linux/${ARCH}
    runtime: runc
    isolation: default
    ipc: shareable
    cgroup: private
    userns_mode: host
    devices: ["/dev/null:/dev/xnull:rwm"]
    device_cgroup_rules: ["c 1:3 mr"]
    cpu_shares: 512
    cpu_period: 100000
    cpu_quota: 50000
    cpuset: "0"
    mem_limit: 64m
    memswap_limit: 128m
    annotations: {com.example.owner: faithfulness}
    links: ["db:database"]
    volumes_from: ["db:ro"]
    configs:
      - app_file
      - {source: app_inline, target: /etc/inline.conf}
      - {source: app_env, target: /etc/env.conf}
    ports: ["127.0.0.1::8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 60}
  db:
    image: {{image:v1}}
    volumes: [/data]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 60}
  sidecar:
    image: {{image:v1}}
    command: ["sleep", "1h"]
    post_start: [{command: ["/testapp", "version"], environment: {HOOK: "1"}}]
    network_mode: service:app
    pid: service:db
configs:
  app_file: {file: ./app.conf}
  app_inline: {content: "inline for ${PFX}"}
  app_env: {environment: CFG}
`

// TestFaithfulToCompose deploys faithfulProject once with Docker Compose v2 and once with
// docker lifecycle (different projects), and compares `docker inspect` of each service's
// container key by key, normalised (names, ids, timestamps, addresses, the tools' own
// labels). Every remaining difference is in knownDifferences, each with its reason
// (docs/compose-keys.md), and the configs' content is checked in both.
func TestFaithfulToCompose(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	dockerCompose(t, s)
	arch := strings.TrimSpace(s.docker(t, "", nil, "version", "--format", "{{.Server.Arch}}").stdout)
	projects := map[string]*project{}
	start := time.Now()
	defer func() { t.Logf("took %s", time.Since(start).Round(time.Millisecond)) }()
	for _, tool := range []string{"compose", "lifecycle"} {
		p := s.newProject(t, faithfulProject)
		assert.NilError(t, os.WriteFile(filepath.Join(p.dir, ".env"), []byte(fmt.Sprintf("PFX=%s\nARCH=%s\nCFG=from the environment\n", p.name, arch)), 0o644))
		assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "app.conf"), []byte("from a file\n"), 0o644))
		projects[tool] = p
	}
	// Both deploy at once (different projects): half the wall time.
	results := map[string]*result{"compose": new(result), "lifecycle": new(result)}
	var wg sync.WaitGroup
	wg.Go(func() { *results["compose"] = projects["compose"].compose("up", "-d", "--wait") })
	wg.Go(func() { *results["lifecycle"] = projects["lifecycle"].lifecycle("deploy") })
	wg.Wait()
	for tool, r := range results {
		assert.Assert(t, r.code == 0, "%s:\n%s", tool, r)
	}
	t.Logf("both deployed after %s", time.Since(start).Round(time.Millisecond))
	for _, svc := range []string{"app", "db", "sidecar"} {
		got := map[string]map[string]string{}
		for tool, p := range projects {
			got[tool] = flatInspect(t, p, svc, projects)
		}
		keys := map[string]bool{}
		for _, m := range got {
			for k := range m {
				keys[k] = true
			}
		}
		var diffs []string
		for _, k := range sortedKeys(keys) {
			c, l := got["compose"][k], got["lifecycle"][k]
			if c == l {
				continue
			}
			if reason := knownDifference(k); reason != "" {
				t.Logf("%s: %s: compose %q, lifecycle %q (known: %s)", svc, k, c, l, reason)
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s: compose %q, lifecycle %q", k, c, l))
		}
		assert.Check(t, is.Len(diffs, 0), "service %s differs from compose:\n%s", svc, strings.Join(diffs, "\n"))
	}
	for tool, p := range projects {
		app := p.name + "-fixed"
		for file, want := range map[string]string{"/app_file": "from a file\n", "/etc/inline.conf": "inline for " + p.name, "/etc/env.conf": "from the environment"} {
			code, body := fetchFile(t, p, app, file)
			assert.Check(t, code == 0 && body == want, "%s: %s in %s: %q (exit %d)", tool, file, app, body, code)
		}
	}
}

// fetchFile reads a file in a running container (the test image has no cat: the test
// app serves files under /file?path=…; docker cp works on any container).
func fetchFile(t *testing.T, p *project, container, path string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	r := p.s.docker(t, dir, nil, "cp", container+":"+path, filepath.Join(dir, "out"))
	if r.code != 0 {
		return r.code, r.String()
	}
	b, err := os.ReadFile(filepath.Join(dir, "out"))
	assert.NilError(t, err)
	return 0, string(b)
}

// flatInspect is `docker inspect` of the service's container as "path = value" pairs,
// with what differs between any two deployments normalised away.
func flatInspect(t *testing.T, p *project, service string, all map[string]*project) map[string]string {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.name, "--filter", "label=com.docker.compose.service="+service)
	ids := lines(r.stdout)
	assert.Assert(t, is.Len(ids, 1), "one %s container: %s", service, r)
	r = p.s.docker(t, p.dir, nil, "inspect", "--type", "container", ids[0])
	assert.Equal(t, r.code, 0, r.String())
	text := r.stdout
	for _, id := range regexp.MustCompile(`[0-9a-f]{64}`).FindAllString(r.stdout, -1) {
		text = strings.ReplaceAll(text, `"`+id[:12]+`"`, `"SHORTID"`) // e.g. the hostname of a joined container
	}
	// Container and volume ids (the default hostname and alias are a short id), then
	// the project's name and directory (which name everything).
	text = regexp.MustCompile(`[0-9a-f]{64}`).ReplaceAllStringFunc(text, func(id string) string {
		if strings.Contains(r.stdout, `"Image": "sha256:`+id) {
			return id // the image is the same for both
		}
		return "ID"
	})
	text = strings.ReplaceAll(text, `"`+ids[0][:12]+`"`, `"SHORTID"`)
	text = strings.ReplaceAll(text, p.dir, "DIR")
	text = strings.ReplaceAll(text, p.name, "PROJECT")
	var out []map[string]any
	assert.NilError(t, json.Unmarshal([]byte(text), &out))
	flat := map[string]string{}
	flatten("", out[0], flat)
	for k := range flat {
		if volatileKey(k) {
			delete(flat, k)
		}
	}
	return flat
}

func flatten(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			out[prefix] = "{}"
		}
		for k, e := range v {
			flatten(prefix+"."+k, e, out)
		}
	case []any:
		if len(v) == 0 {
			out[prefix] = "[]"
		}
		// Order is not meaningful in these lists (mounts, binds, env): sort by value.
		items := make([]string, 0, len(v))
		for _, e := range v {
			b, _ := json.Marshal(e)
			items = append(items, string(b))
		}
		sort.Strings(items)
		for i, e := range items {
			var x any
			_ = json.Unmarshal([]byte(e), &x)
			flatten(fmt.Sprintf("%s[%d]", prefix, i), x, out)
		}
	default:
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
}

// volatileKey: what differs between any two containers, whoever created them.
func volatileKey(k string) bool {
	for _, re := range volatileKeys {
		if re.MatchString(k) {
			return true
		}
	}
	return false
}

var volatileKeys = []*regexp.Regexp{
	regexp.MustCompile(`^\.(Created|State|Path|Args|RestartCount|ResolvConfPath|HostnamePath|HostsPath|LogPath|ProcessLabel|MountLabel|ExecIDs|SizeRw|SizeRootFs)($|\.|\[)`),
	regexp.MustCompile(`^\.GraphDriver\.`),
	regexp.MustCompile(`^\.Config\.Labels\.(com\.docker\.compose|io\.lifecycle)\.`), // the tools' own labels
	regexp.MustCompile(`^\.NetworkSettings\.(SandboxID|SandboxKey|Ports|Networks\..*\.(NetworkID|EndpointID|Gateway|IPAddress|IPPrefixLen|DNSNames|GlobalIPv6Address|GlobalIPv6PrefixLen|IPv6Gateway|MacAddress))`),
	regexp.MustCompile(`^\.HostConfig\.PortBindings\..*HostPort`), // "127.0.0.1::8080": a free port each
}

// knownDifference says why a key may differ from compose's, or "".
func knownDifference(k string) string {
	for _, d := range knownDifferences {
		if d.key.MatchString(k) {
			return d.reason
		}
	}
	return ""
}

var knownDifferences = []struct {
	key    *regexp.Regexp
	reason string
}{
	{regexp.MustCompile(`^\.HostConfig\.VolumesFrom\[0\]$`), "volumes_from [db:ro]: Compose passes the container's id and drops :ro, docker lifecycle passes db's container with :ro"},
	{regexp.MustCompile(`^\.Mounts\[\d\]\.RW$`), "volumes_from [db:ro]: the volume is read-only with docker lifecycle, read-write with Compose, which drops :ro"},
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
