package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// convertProject sets many service keys at once; the test checks that each reaches the
// engine (docker inspect) and, where the process can see it, the running app.
// Placeholders: published port, bind source file.
const convertProject = `
x-lifecycle:
  strategy: recreate # the app publishes its own port (PortBindings are checked), names are <service>-1
  policy:
    defaults: {memory: 48M, cpus: 0.25, pids: 64}
services:
  app:
    image: {{image:v1}}
    entrypoint: ["/testapp"]
    environment:
      PORT: "80"
      GREETING: hello world
      EMPTY: ""
      LIFECYCLE_E2E_NEVER_SET_X9:
    env_file: [app.env]
    ports:
      - {target: 80, published: "%d", host_ip: 127.0.0.1}
    volumes:
      - data:/data
      - {type: bind, source: %s, target: /config/app.txt, read_only: true}
      - {type: tmpfs, target: /scratch, tmpfs: {size: 2097152}}
    tmpfs: ["/tmp:size=1m"]
    networks:
      front: {aliases: [api]}
      back: {aliases: [api-internal]}
    healthcheck:
      test: ["CMD", "/testapp", "healthcheck"]
      interval: 500ms
      timeout: 2s
      retries: 30
      start_period: 1s
    restart: on-failure:3
    labels: {com.example.team: e2e, com.example.tier: front}
    user: "65534:65534"
    working_dir: /data
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    security_opt: ["no-new-privileges:true"]
    read_only: true
    privileged: false
    init: true
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    sysctls: {net.ipv4.ip_unprivileged_port_start: "0"}
    shm_size: 16m
    extra_hosts: ["db.example:127.0.0.2"]
    dns: [192.0.2.53]
    hostname: app-host
    logging: {driver: json-file, options: {max-size: 1m, max-file: "2"}}
    stop_signal: SIGINT
    stop_grace_period: 7s
    deploy:
      resources:
        limits: {cpus: "0.3", memory: 64M, pids: 100}
        reservations: {memory: 32M}
  sidecar:
    image: {{image:v1}}
    entrypoint: ["/testapp"]
    command: ["sleep", "1h"]
    networks: [back]
  limited:
    image: {{image:v1}}
    command: ["sleep", "1h"]
    mem_limit: 96m
    cpus: 0.15
networks:
  front:
  back:
volumes:
  data:
`

// containerInspect is the part of `docker inspect` the converter test reads.
type containerInspect struct {
	Config struct {
		Hostname, User, WorkingDir, StopSignal string
		StopTimeout                            *int
		Env, Cmd, Entrypoint                   []string
		Labels                                 map[string]string
		Healthcheck                            *struct {
			Test                           []string
			Interval, Timeout, StartPeriod time.Duration
			Retries                        int
		}
	}
	HostConfig struct {
		Binds  []string
		Mounts []struct {
			Type, Source, Target string
			ReadOnly             bool
			TmpfsOptions         *struct{ SizeBytes int64 }
		}
		PortBindings  map[string][]struct{ HostIp, HostPort string }
		RestartPolicy struct {
			Name              string
			MaximumRetryCount int
		}
		CapAdd, CapDrop, SecurityOpt []string
		ExtraHosts, Dns              []string
		ReadonlyRootfs, Privileged   bool
		Init                         *bool
		Sysctls, Tmpfs               map[string]string
		ShmSize                      int64
		LogConfig                    struct {
			Type   string
			Config map[string]string
		}
		NanoCpus, Memory, MemoryReservation int64
		PidsLimit                           *int64
		Ulimits                             []struct {
			Name       string
			Soft, Hard int64
		}
		NetworkMode string
	}
	NetworkSettings struct {
		Networks map[string]struct{ Aliases []string }
	}
}

func (p *project) inspectContainer(name string) containerInspect {
	p.t.Helper()
	r := p.s.docker(p.t, p.dir, nil, "inspect", "--type", "container", name)
	assert.Equal(p.t, r.code, 0, r.String())
	var out []containerInspect
	assert.NilError(p.t, json.Unmarshal([]byte(r.stdout), &out))
	assert.Assert(p.t, is.Len(out, 1))
	return out[0]
}

// fetch GETs a URL on 127.0.0.1 and returns the status and the raw body.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return resp.StatusCode, string(b)
}

func TestConverterFaithfulOnEngine(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	bindDir := t.TempDir()
	bindFile := filepath.Join(bindDir, "app.txt")
	assert.NilError(t, os.WriteFile(bindFile, []byte("from the host\n"), 0o644))
	p := s.newProject(t, fmt.Sprintf(convertProject, port, bindFile))
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "app.env"), []byte("FROM_ENV_FILE=from file\nGREETING=overridden by environment\n"), 0o644))

	p.mustLifecycle("deploy")
	app := p.name + "-app-1"
	c := p.inspectContainer(app)

	// Config.
	assert.Check(t, is.DeepEqual(c.Config.Entrypoint, []string{"/testapp"}))
	assert.Check(t, is.Len(c.Config.Cmd, 0))
	assert.Check(t, is.Equal(c.Config.User, "65534:65534"))
	assert.Check(t, is.Equal(c.Config.WorkingDir, "/data"))
	assert.Check(t, is.Equal(c.Config.Hostname, "app-host"))
	assert.Check(t, is.Equal(c.Config.StopSignal, "SIGINT"))
	assert.Check(t, c.Config.StopTimeout != nil && *c.Config.StopTimeout == 7, "StopTimeout %v", c.Config.StopTimeout)
	for _, e := range []string{"PORT=80", "GREETING=hello world", "EMPTY=", "FROM_ENV_FILE=from file"} {
		assert.Check(t, is.Contains(c.Config.Env, e))
	}
	for _, e := range c.Config.Env {
		assert.Check(t, !strings.HasPrefix(e, "LIFECYCLE_E2E_NEVER_SET_X9"), "a variable without value is left unset: %s", e)
	}
	assert.Check(t, is.Equal(c.Config.Labels["com.example.team"], "e2e"))
	assert.Check(t, is.Equal(c.Config.Labels["com.example.tier"], "front"))
	assert.Check(t, is.Equal(c.Config.Labels["com.docker.compose.service"], "app"))
	if assert.Check(t, c.Config.Healthcheck != nil) {
		hc := *c.Config.Healthcheck
		assert.Check(t, is.DeepEqual(hc.Test, []string{"CMD", "/testapp", "healthcheck"}))
		assert.Check(t, is.Equal(hc.Interval, 500*time.Millisecond))
		assert.Check(t, is.Equal(hc.Timeout, 2*time.Second))
		assert.Check(t, is.Equal(hc.StartPeriod, time.Second))
		assert.Check(t, is.Equal(hc.Retries, 30))
	}

	// HostConfig.
	h := c.HostConfig
	assert.Check(t, is.DeepEqual(h.PortBindings, map[string][]struct{ HostIp, HostPort string }{
		"80/tcp": {{HostIp: "127.0.0.1", HostPort: strconv.Itoa(port)}},
	}))
	assert.Check(t, is.DeepEqual(h.Binds, []string{bindFile + ":/config/app.txt:ro"}))
	mounts := map[string]string{}
	for _, m := range h.Mounts {
		mounts[m.Target] = m.Type + " " + m.Source
		if m.Type == "tmpfs" {
			assert.Check(t, m.TmpfsOptions != nil && m.TmpfsOptions.SizeBytes == 2097152, "tmpfs size: %+v", m.TmpfsOptions)
		}
	}
	assert.Check(t, is.DeepEqual(mounts, map[string]string{"/data": "volume " + p.name + "_data", "/scratch": "tmpfs "}))
	assert.Check(t, is.DeepEqual(h.Tmpfs, map[string]string{"/tmp": "size=1m"}))
	assert.Check(t, is.DeepEqual(h.RestartPolicy, struct {
		Name              string
		MaximumRetryCount int
	}{"on-failure", 3}))
	assert.Check(t, is.DeepEqual(trimCap(h.CapAdd), []string{"NET_ADMIN"}))
	assert.Check(t, is.DeepEqual(trimCap(h.CapDrop), []string{"MKNOD"}))
	assert.Check(t, is.DeepEqual(h.SecurityOpt, []string{"no-new-privileges:true"}))
	assert.Check(t, h.ReadonlyRootfs)
	assert.Check(t, !h.Privileged)
	assert.Check(t, h.Init != nil && *h.Init, "Init %v", h.Init)
	assert.Check(t, is.DeepEqual(h.Ulimits, []struct {
		Name       string
		Soft, Hard int64
	}{{"nofile", 1024, 2048}}))
	assert.Check(t, is.DeepEqual(h.Sysctls, map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}))
	assert.Check(t, is.Equal(h.ShmSize, int64(16<<20)))
	assert.Check(t, is.DeepEqual(h.ExtraHosts, []string{"db.example:127.0.0.2"}))
	assert.Check(t, is.DeepEqual(h.Dns, []string{"192.0.2.53"}))
	assert.Check(t, is.Equal(h.LogConfig.Type, "json-file"))
	assert.Check(t, is.DeepEqual(h.LogConfig.Config, map[string]string{"max-size": "1m", "max-file": "2"}))
	assert.Check(t, is.Equal(h.NanoCpus, int64(300_000_000)), "exactly 0.3 CPUs, as docker run --cpus 0.3 gives")
	assert.Check(t, is.Equal(h.Memory, int64(64<<20)))
	assert.Check(t, is.Equal(h.MemoryReservation, int64(32<<20)))
	assert.Check(t, h.PidsLimit != nil && *h.PidsLimit == 100, "PidsLimit %v", h.PidsLimit)

	// Networks: both project networks, each with its alias, plus the service name.
	front, back := p.name+"_front", p.name+"_back"
	assert.Check(t, h.NetworkMode == front || h.NetworkMode == back, "NetworkMode %s", h.NetworkMode)
	assert.Check(t, is.Len(c.NetworkSettings.Networks, 2))
	assert.Check(t, is.Contains(c.NetworkSettings.Networks[front].Aliases, "api"))
	assert.Check(t, is.Contains(c.NetworkSettings.Networks[front].Aliases, "app"))
	assert.Check(t, is.Contains(c.NetworkSettings.Networks[back].Aliases, "api-internal"))
	assert.Check(t, is.Contains(c.NetworkSettings.Networks[back].Aliases, "app"))

	// The running app sees what the engine was told.
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	checkGet := func(path string, wantStatus int, want string) {
		t.Helper()
		code, body := fetch(t, base+path)
		assert.Check(t, is.Equal(code, wantStatus), "GET %s: %s", path, body)
		assert.Check(t, is.Contains(body, want), "GET %s", path)
	}
	checkGet("/env?name=GREETING", 200, "hello world")
	checkGet("/env?name=FROM_ENV_FILE", 200, "from file")
	checkGet("/env?name=LIFECYCLE_E2E_NEVER_SET_X9", 404, "")
	code, body := fetch(t, base+"/env?name=EMPTY")
	assert.Check(t, is.Equal(code, 200))
	assert.Check(t, is.Equal(body, ""))
	checkGet("/file?path=/config/app.txt", 200, "from the host\n")
	checkGet("/whoami", 200, "uid=65534 gid=65534\n")
	checkGet("/file?path=/etc/hostname", 200, "app-host")
	checkGet("/file?path=/etc/hosts", 200, "db.example")
	// Port 80 as uid 65534: the sysctl is in effect.
	checkGet("/file?path=/proc/sys/net/ipv4/ip_unprivileged_port_start", 200, "0")
	// pid 1 (docker-init) shows the ulimit as set: the Go runtime of the app raises its own soft limit.
	_, limits := fetch(t, base+"/file?path=/proc/1/limits")
	assert.Check(t, regexpLine(limits, `^Max open files\s+1024\s+2048\s`), limits)
	_, status := fetch(t, base+"/file?path=/proc/self/status")
	assert.Check(t, regexpLine(status, `^NoNewPrivs:\s+1$`), status)
	capBnd := procCaps(t, status, "CapBnd")
	assert.Check(t, capBnd&(1<<12) != 0, "CAP_NET_ADMIN in the bounding set: %x", capBnd)
	assert.Check(t, capBnd&(1<<27) == 0, "CAP_MKNOD not in the bounding set: %x", capBnd)
	_, cmdline := fetch(t, base+"/file?path=/proc/1/cmdline")
	assert.Check(t, is.Contains(cmdline, "docker-init"), "init: pid 1 is docker-init: %q", cmdline)
	_, mountsTxt := fetch(t, base+"/file?path=/proc/self/mounts")
	assert.Check(t, regexpLine(mountsTxt, `^\S+ /tmp tmpfs .*size=1024k`), mountsTxt)
	assert.Check(t, regexpLine(mountsTxt, `^\S+ /scratch tmpfs .*size=2048k`), mountsTxt)
	assert.Check(t, regexpLine(mountsTxt, `^\S+ /config/app.txt \S+ ro[,\s]`), mountsTxt)
	assert.Check(t, regexpLine(mountsTxt, `^\S+ / \S+ ro[,\s]`), "read-only root:\n%s", mountsTxt)

	// The aliases resolve on the shared network: the sidecar (on back only) reaches the
	// app as api-internal.
	r := s.docker(t, p.dir, nil, "exec", p.name+"-sidecar-1", "/testapp", "healthcheck", "http://api-internal:80/healthz")
	assert.Check(t, is.Equal(r.code, 0), r.String())

	// Policy defaults fill in every limit a service does not set itself.
	side := p.inspectContainer(p.name + "-sidecar-1")
	assert.Check(t, is.DeepEqual(side.Config.Cmd, []string{"sleep", "1h"}))
	assert.Check(t, is.DeepEqual(side.Config.Entrypoint, []string{"/testapp"}))
	assert.Check(t, is.Equal(side.HostConfig.Memory, int64(48<<20)))
	assert.Check(t, is.Equal(side.HostConfig.NanoCpus, int64(250_000_000)))
	assert.Check(t, side.HostConfig.PidsLimit != nil && *side.HostConfig.PidsLimit == 64, "PidsLimit %v", side.HostConfig.PidsLimit)
	assert.Check(t, is.DeepEqual(side.HostConfig.RestartPolicy, struct {
		Name              string
		MaximumRetryCount int
	}{"", 0}), "no restart policy: left empty (the engine's \"no\"), as Compose leaves it")
	limited := p.inspectContainer(p.name + "-limited-1")
	assert.Check(t, is.Equal(limited.HostConfig.Memory, int64(96<<20)), "its own (legacy) memory limit wins")
	assert.Check(t, is.Equal(limited.HostConfig.NanoCpus, int64(150_000_000)), "its own (legacy) cpus wins")
	assert.Check(t, limited.HostConfig.PidsLimit != nil && *limited.HostConfig.PidsLimit == 64)

	// The deploy is stable: a second one finds nothing to do.
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stdout, "up to date"))
}

func trimCap(caps []string) []string {
	out := make([]string, len(caps))
	for i, c := range caps {
		out[i] = strings.TrimPrefix(c, "CAP_")
	}
	return out
}

func procCaps(t *testing.T, status, field string) uint64 {
	t.Helper()
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			assert.NilError(t, err)
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
