package compose

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

// loadProject loads compose (plus extra files) as project "shop" from a new directory.
func loadProject(t *testing.T, compose string, extra map[string]string) (*Project, string) {
	t.Helper()
	files := map[string]string{"compose.yaml": compose}
	for k, v := range extra {
		files[k] = v
	}
	p, dir, err := loadFiles(t, files, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	return p, dir
}

func webContainer(t *testing.T, compose string, extra map[string]string) (ContainerCreate, string) {
	t.Helper()
	p, dir := loadProject(t, compose, extra)
	c, err := Container(p, "web", ReplicaLabels{Number: 1, Revision: 3, ConfigHash: "cafe", ImageID: "sha256:abc"})
	assert.NilError(t, err)
	return c, dir
}

func port(s string) network.Port { return network.MustParsePort(s) }

// equalJSON compares values through their JSON form: netip.Addr and network.Port hold
// unexported fields that go-cmp cannot compare.
func equalJSON(t *testing.T, got, want any) {
	t.Helper()
	decode := func(v any) any {
		b, err := json.Marshal(v)
		assert.NilError(t, err)
		var out any
		assert.NilError(t, json.Unmarshal(b, &out))
		return out
	}
	assert.DeepEqual(t, decode(got), decode(want))
}

func ptr[T any](v T) *T { return &v }

func TestContainer(t *testing.T) {
	tests := []struct {
		name    string
		compose string // services.web is converted
		extra   map[string]string
		check   func(t *testing.T, c ContainerCreate, dir string)
	}{
		{
			name: "image, command and entrypoint as lists",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: nginx:1.27
    command: ["nginx", "-g", "daemon off;"]
    entrypoint: ["/docker-entrypoint.sh"]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.Name, "shop-web-1")
				assert.Equal(t, c.Config.Image, "nginx:1.27")
				assert.DeepEqual(t, c.Config.Cmd, []string{"nginx", "-g", "daemon off;"})
				assert.DeepEqual(t, c.Config.Entrypoint, []string{"/docker-entrypoint.sh"})
			},
		},
		{
			name: "command and entrypoint as strings are split like a shell",
			compose: `
services:
  web:
    image: nginx
    command: echo "hello world"
    entrypoint: /bin/sh -c
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Cmd, []string{"echo", "hello world"})
				assert.DeepEqual(t, c.Config.Entrypoint, []string{"/bin/sh", "-c"})
			},
		},
		{
			name: "no command: the image's",
			compose: `
services:
  web:
    image: nginx
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Check(t, c.Config.Cmd == nil)
				assert.Check(t, c.Config.Entrypoint == nil)
			},
		},
		{
			name: "built image is named project-service",
			compose: `
services:
  web:
    build: .
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.Config.Image, "shop-web")
				assert.Equal(t, c.Config.Labels[LabelImageRef], "shop-web")
			},
		},
		{
			name: "environment: sorted, empty kept, unset omitted",
			compose: `
services:
  web:
    image: nginx
    environment:
      Z: "26"
      A: "1"
      EMPTY: ""
      LCTEST_UNSET:
      LCTEST_FROM_SHELL:
      NUM: 3
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Env, []string{"A=1", "EMPTY=", "LCTEST_FROM_SHELL=shell", "NUM=3", "Z=26"})
			},
		},
		{
			name: "environment as a list",
			compose: `
services:
  web:
    image: nginx
    environment:
      - B=two=2
      - A=1
      - LCTEST_UNSET
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Env, []string{"A=1", "B=two=2"})
			},
		},
		{
			name: "env_file merged, environment wins",
			compose: `
services:
  web:
    image: nginx
    env_file: [app.env, {path: optional.env, required: false}]
    environment:
      A: from-compose
`,
			extra: map[string]string{"app.env": "A=from-file\nFROMFILE=yes\n# comment\nQUOTED=\"a b\"\n"},
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Env, []string{"A=from-compose", "FROMFILE=yes", "QUOTED=a b"})
			},
		},
		{
			name: "ports",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: nginx
    ports:
      - "127.0.0.1:8080:80"
      - "5353:53/udp"
      - "9000"
      - target: 443
        published: "8443"
        host_ip: "::1"
        protocol: tcp
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				equalJSON(t, c.Config.ExposedPorts, network.PortSet{
					port("80/tcp"): {}, port("53/udp"): {}, port("9000/tcp"): {}, port("443/tcp"): {},
				})
				equalJSON(t, c.HostConfig.PortBindings, network.PortMap{
					port("80/tcp"):   {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}},
					port("53/udp"):   {{HostPort: "5353"}},
					port("9000/tcp"): {{HostPort: ""}},
					port("443/tcp"):  {{HostIP: netip.MustParseAddr("::1"), HostPort: "8443"}},
				})
			},
		},
		{
			name: "one target published twice",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: nginx
    ports: ["127.0.0.1:8080:80", "127.0.0.2:8080:80"]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				equalJSON(t, c.HostConfig.PortBindings, network.PortMap{port("80/tcp"): {
					{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"},
					{HostIP: netip.MustParseAddr("127.0.0.2"), HostPort: "8080"},
				}})
			},
		},
		{
			name: "routed strategy: revision in the name, the router owns the published ports",
			compose: `
services:
  web:
    image: nginx
    ports: ["127.0.0.1:8080:80", "9000"]
    expose: ["3000"]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.Name, "shop-web-r3-1")
				assert.Equal(t, c.Config.Labels[LabelStrategy], StrategyRolling)
				assert.Equal(t, c.Config.Labels[LabelRevision], "3")
				assert.Equal(t, c.Config.Labels[LabelContainerNumber], "1")
				// the ports stay exposed, so the router reaches them by container name
				equalJSON(t, c.Config.ExposedPorts, network.PortSet{port("80/tcp"): {}, port("9000/tcp"): {}, port("3000/tcp"): {}})
				assert.Check(t, len(c.HostConfig.PortBindings) == 0, "an empty map, as Compose passes")
				equalJSON(t, c.Networking.EndpointsConfig, map[string]*network.EndpointSettings{
					"shop_default": {Aliases: []string{"shop-web-r3-1", "web"}},
				})
			},
		},
		{
			name: "blue-green and canary are routed too",
			compose: `
services:
  web:
    image: nginx
    ports: ["8080:80"]
    x-lifecycle: {strategy: canary}
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.Name, "shop-web-r3-1")
				assert.Equal(t, c.Config.Labels[LabelStrategy], StrategyCanary)
				assert.Check(t, len(c.HostConfig.PortBindings) == 0, "an empty map, as Compose passes")
			},
		},
		{
			name: "recreate by default for a read-write named volume: its own name and ports",
			compose: `
services:
  web:
    image: nginx
    ports: ["8080:80"]
    volumes: [data:/data]
volumes:
  data: {}
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.Name, "shop-web-1")
				assert.Equal(t, c.Config.Labels[LabelStrategy], StrategyRecreate)
				equalJSON(t, c.HostConfig.PortBindings, network.PortMap{port("80/tcp"): {{HostPort: "8080"}}})
			},
		},
		{
			name: "expose",
			compose: `
services:
  web:
    image: nginx
    expose: ["3000", "4000/udp", 5000]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				equalJSON(t, c.Config.ExposedPorts, network.PortSet{port("3000/tcp"): {}, port("4000/udp"): {}, port("5000/tcp"): {}})
				assert.Check(t, len(c.HostConfig.PortBindings) == 0, "an empty map, as Compose passes")
			},
		},
		{
			name: "no ports: nil maps",
			compose: `
services:
  web:
    image: nginx
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Check(t, c.Config.ExposedPorts == nil)
				assert.Check(t, len(c.HostConfig.PortBindings) == 0, "an empty map, as Compose passes")
				assert.Check(t, c.HostConfig.Binds == nil)
				assert.Check(t, c.HostConfig.Mounts == nil)
			},
		},
		{
			name: "volumes: named, bind, anonymous, tmpfs",
			compose: `
services:
  web:
    image: nginx
    volumes:
      - data:/data
      - cache:/cache:ro
      - ./src:/src:ro
      - ./logs:/logs
      - ./z:/z:z
      - /anon
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 64m
          mode: 0o1777
      - type: volume
        source: data
        target: /nocopy
        volume:
          nocopy: true
          subpath: sub
volumes:
  data: {}
  cache:
    name: shared-cache
`,
			check: func(t *testing.T, c ContainerCreate, dir string) {
				assert.DeepEqual(t, c.HostConfig.Binds, []string{
					filepath.Join(dir, "src") + ":/src:ro",
					filepath.Join(dir, "logs") + ":/logs",
					filepath.Join(dir, "z") + ":/z:z",
				})
				assert.DeepEqual(t, c.HostConfig.Mounts, []mount.Mount{
					{Type: mount.TypeVolume, Source: "shop_data", Target: "/data", VolumeOptions: &mount.VolumeOptions{}},
					{Type: mount.TypeVolume, Source: "shared-cache", Target: "/cache", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{}},
					{Type: mount.TypeVolume, Target: "/anon", VolumeOptions: &mount.VolumeOptions{}},
					{Type: mount.TypeTmpfs, Target: "/scratch", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 01777}},
					{Type: mount.TypeVolume, Source: "shop_data", Target: "/nocopy", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Subpath: "sub"}},
				})
			},
		},
		{
			name: "service tmpfs",
			compose: `
services:
  web:
    image: nginx
    tmpfs: ["/run:size=64m,mode=755", /tmp]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.Tmpfs, map[string]string{"/run": "size=64m,mode=755", "/tmp": ""})
			},
		},
		{
			name: "networks with aliases, priority and static address",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: nginx
    networks:
      front:
        aliases: [www, site]
      back:
        priority: 100
        ipv4_address: 172.28.0.10
      shared: {}
networks:
  front: {}
  back:
    ipam:
      config: [{subnet: 172.28.0.0/16}]
  shared:
    name: company-shared
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("shop_back"), "highest priority first")
				assert.Assert(t, c.Networking != nil)
				equalJSON(t, c.Networking.EndpointsConfig, map[string]*network.EndpointSettings{
					"shop_front": {Aliases: []string{"shop-web-1", "web", "www", "site"}},
					"shop_back": {
						Aliases:    []string{"shop-web-1", "web"},
						IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("172.28.0.10")},
					},
					"company-shared": {Aliases: []string{"shop-web-1", "web"}},
				})
			},
		},
		{
			name: "default network",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: nginx
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("shop_default"))
				equalJSON(t, c.Networking.EndpointsConfig, map[string]*network.EndpointSettings{
					"shop_default": {Aliases: []string{"shop-web-1", "web"}},
				})
			},
		},
		{
			name: "external network",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: nginx
    networks: [proxy]
networks:
  proxy:
    external: true
    name: traefik_proxy
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("traefik_proxy"))
				equalJSON(t, c.Networking.EndpointsConfig, map[string]*network.EndpointSettings{
					"traefik_proxy": {Aliases: []string{"shop-web-1", "web"}},
				})
			},
		},
		{
			name: "healthcheck",
			compose: `
services:
  web:
    image: nginx
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost"]
      interval: 10s
      timeout: 3s
      retries: 5
      start_period: 30s
      start_interval: 1s
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Healthcheck, &container.HealthConfig{
					Test:          []string{"CMD", "curl", "-f", "http://localhost"},
					Interval:      10e9,
					Timeout:       3e9,
					Retries:       5,
					StartPeriod:   30e9,
					StartInterval: 1e9,
				})
			},
		},
		{
			name: "healthcheck test as a string",
			compose: `
services:
  web:
    image: nginx
    healthcheck:
      test: curl -f http://localhost || exit 1
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Healthcheck, &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost || exit 1"}})
			},
		},
		{
			name: "healthcheck disable",
			compose: `
services:
  web:
    image: nginx
    healthcheck:
      disable: true
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Healthcheck, &container.HealthConfig{Test: []string{"NONE"}})
			},
		},
		{
			name: "healthcheck test NONE",
			compose: `
services:
  web:
    image: nginx
    healthcheck:
      test: ["NONE"]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.Healthcheck, &container.HealthConfig{Test: []string{"NONE"}})
			},
		},
		{
			name: "no healthcheck: the image's",
			compose: `
services:
  web:
    image: nginx
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Check(t, c.Config.Healthcheck == nil)
			},
		},
		{
			name: "labels: user labels and label_file kept, compose labels win",
			compose: `
services:
  web:
    image: nginx
    labels:
      traefik.enable: "true"
      com.docker.compose.project: hijack
    label_file: ./web.labels
    depends_on:
      db:
        condition: service_healthy
      cache:
        condition: service_started
        restart: true
  db:
    image: postgres
  cache:
    image: redis
`,
			extra: map[string]string{"web.labels": "team=payments\n"},
			check: func(t *testing.T, c ContainerCreate, dir string) {
				assert.DeepEqual(t, c.Config.Labels, map[string]string{
					"traefik.enable":     "true",
					"team":               "payments",
					LabelProject:         "shop",
					LabelService:         "web",
					LabelContainerNumber: "1",
					LabelOneoff:          "False",
					LabelConfigHash:      "cafe",
					LabelVersion:         ComposeVersionLabelValue,
					LabelWorkingDir:      dir,
					LabelConfigFiles:     filepath.Join(dir, "compose.yaml"),
					LabelImageDigest:     "sha256:abc",
					LabelDependsOn:       "cache:service_started:true,db:service_healthy:false",
					LabelRevision:        "3",
					LabelImageRef:        "nginx",
					LabelRole:            RoleApp,
					LabelStrategy:        StrategyRolling,
					LabelManagedBy:       ManagedByValue,
				})
			},
		},
		{
			name: "process and security settings",
			compose: `
services:
  web:
    image: nginx
    user: "1000:1000"
    working_dir: /app
    hostname: web01
    domainname: example.com
    cap_add: [NET_ADMIN, SYS_TIME]
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true", "seccomp=unconfined", "label=disable"]
    read_only: true
    privileged: true
    init: true
    tty: true
    stdin_open: true
    group_add: [audio, "1001"]
    oom_score_adj: -500
    stop_signal: SIGQUIT
    stop_grace_period: 1m30s
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Equal(t, c.Config.User, "1000:1000")
				assert.Equal(t, c.Config.WorkingDir, "/app")
				assert.Equal(t, c.Config.Hostname, "web01")
				assert.Equal(t, c.Config.Domainname, "example.com")
				assert.DeepEqual(t, c.HostConfig.CapAdd, []string{"NET_ADMIN", "SYS_TIME"})
				assert.DeepEqual(t, c.HostConfig.CapDrop, []string{"ALL"})
				assert.DeepEqual(t, c.HostConfig.SecurityOpt, []string{"no-new-privileges:true", "seccomp=unconfined", "label=disable"})
				assert.Check(t, c.HostConfig.ReadonlyRootfs)
				assert.Check(t, c.HostConfig.Privileged)
				assert.DeepEqual(t, c.HostConfig.Init, ptr(true))
				assert.Check(t, c.Config.Tty)
				assert.Check(t, c.Config.OpenStdin)
				assert.DeepEqual(t, c.HostConfig.GroupAdd, []string{"audio", "1001"})
				assert.Equal(t, c.HostConfig.OomScoreAdj, -500)
				assert.Equal(t, c.Config.StopSignal, "SIGQUIT")
				assert.DeepEqual(t, c.Config.StopTimeout, ptr(90))
			},
		},
		{
			name: "defaults: no init, no stop timeout",
			compose: `
services:
  web:
    image: nginx
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.Check(t, c.HostConfig.Init == nil)
				assert.Check(t, c.Config.StopTimeout == nil)
				assert.Equal(t, c.Config.StopSignal, "")
				assert.DeepEqual(t, c.HostConfig.LogConfig, container.LogConfig{})
				assert.DeepEqual(t, c.HostConfig.RestartPolicy, container.RestartPolicy{}) // the engine's default "no", left empty as Compose does
				assert.Check(t, c.Config.AttachStdout && c.Config.AttachStderr)
			},
		},
		{
			name: "stop_grace_period rounds to whole seconds",
			compose: `
services:
  web:
    image: nginx
    stop_grace_period: 1500ms
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.Config.StopTimeout, ptr(2))
			},
		},
		{
			name: "seccomp profile file is inlined",
			compose: `
services:
  web:
    image: nginx
    security_opt: ["seccomp=./seccomp.json"]
`,
			extra: map[string]string{"seccomp.json": "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n"},
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.SecurityOpt, []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}`})
			},
		},
		{
			name: "ulimits, sysctls, shm_size",
			compose: `
services:
  web:
    image: nginx
    ulimits:
      nproc: 65535
      nofile:
        soft: 1024
        hard: 2048
    sysctls:
      net.core.somaxconn: 1024
      net.ipv4.tcp_syncookies: 0
    shm_size: 64m
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.Ulimits, []*container.Ulimit{
					{Name: "nofile", Soft: 1024, Hard: 2048},
					{Name: "nproc", Soft: 65535, Hard: 65535},
				})
				assert.DeepEqual(t, c.HostConfig.Sysctls, map[string]string{"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "0"})
				assert.Equal(t, c.HostConfig.ShmSize, int64(64<<20))
			},
		},
		{
			name: "sysctls as a list",
			compose: `
services:
  web:
    image: nginx
    sysctls: ["net.core.somaxconn=1024"]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.Sysctls, map[string]string{"net.core.somaxconn": "1024"})
			},
		},
		{
			name: "extra_hosts, dns",
			compose: `
services:
  web:
    image: nginx
    extra_hosts:
      - "somehost:162.242.195.82"
      - "v6host=::1"
      - "gw=host-gateway"
      - "multi=10.0.0.2"
      - "multi=10.0.0.1"
    dns: [8.8.8.8, "2001:4860:4860::8888"]
    dns_search: [example.com]
    dns_opt: [ndots:2]
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.ExtraHosts,
					// sorted by host name, a host's addresses in file order
					[]string{"gw:host-gateway", "multi:10.0.0.2", "multi:10.0.0.1", "somehost:162.242.195.82", "v6host:::1"})
				equalJSON(t, c.HostConfig.DNS, []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2001:4860:4860::8888")})
				assert.DeepEqual(t, c.HostConfig.DNSSearch, []string{"example.com"})
				assert.DeepEqual(t, c.HostConfig.DNSOptions, []string{"ndots:2"})
			},
		},
		{
			name: "extra_hosts as a mapping, dns as a string",
			compose: `
services:
  web:
    image: nginx
    extra_hosts:
      db: 10.0.0.5
    dns: 1.1.1.1
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.ExtraHosts, []string{"db:10.0.0.5"})
				equalJSON(t, c.HostConfig.DNS, []netip.Addr{netip.MustParseAddr("1.1.1.1")})
			},
		},
		{
			name: "logging",
			compose: `
services:
  web:
    image: nginx
    logging:
      driver: json-file
      options:
        max-size: 10m
        max-file: "3"
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}})
			},
		},
		{
			name: "deploy resources",
			compose: `
services:
  web:
    image: nginx
    deploy:
      resources:
        limits:
          cpus: "0.5"
          memory: 256M
          pids: 100
        reservations:
          memory: 64M
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				r := c.HostConfig.Resources
				assert.Equal(t, r.NanoCPUs, int64(5e8))
				assert.Equal(t, r.Memory, int64(256<<20))
				assert.DeepEqual(t, r.PidsLimit, ptr(int64(100)))
				assert.Equal(t, r.MemoryReservation, int64(64<<20))
			},
		},
		{
			name: "legacy resource keys",
			compose: `
services:
  web:
    image: nginx
    mem_limit: 1g
    mem_reservation: 128m
    cpus: 1.5
    pids_limit: 64
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				r := c.HostConfig.Resources
				assert.Equal(t, r.NanoCPUs, int64(15e8))
				assert.Equal(t, r.Memory, int64(1<<30))
				assert.Equal(t, r.MemoryReservation, int64(128<<20))
				assert.DeepEqual(t, r.PidsLimit, ptr(int64(64)))
			},
		},
		{
			name: "no limits, no policy: unlimited",
			compose: `
services:
  web:
    image: nginx
`,
			check: func(t *testing.T, c ContainerCreate, _ string) {
				assert.DeepEqual(t, c.HostConfig.Resources, container.Resources{})
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			unsetEnv(t, "LCTEST_UNSET")
			t.Setenv("LCTEST_FROM_SHELL", "shell")
			c, dir := webContainer(t, tc.compose, tc.extra)
			tc.check(t, c, dir)
		})
	}
}

func TestContainerRestartPolicy(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want container.RestartPolicy
	}{
		{name: "none set", want: container.RestartPolicy{}},
		{name: "restart no", yaml: "    restart: \"no\"\n", want: container.RestartPolicy{Name: container.RestartPolicyDisabled}},
		{name: "restart always", yaml: "    restart: always\n", want: container.RestartPolicy{Name: container.RestartPolicyAlways}},
		{name: "restart unless-stopped", yaml: "    restart: unless-stopped\n", want: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}},
		{name: "restart on-failure", yaml: "    restart: on-failure\n", want: container.RestartPolicy{Name: container.RestartPolicyOnFailure}},
		{name: "restart on-failure:3", yaml: "    restart: on-failure:3\n", want: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}},
		{name: "deploy condition none", yaml: "    deploy:\n      restart_policy:\n        condition: none\n", want: container.RestartPolicy{Name: container.RestartPolicyDisabled}},
		{name: "deploy condition any", yaml: "    deploy:\n      restart_policy:\n        condition: any\n", want: container.RestartPolicy{Name: container.RestartPolicyAlways}},
		{name: "deploy condition omitted", yaml: "    deploy:\n      restart_policy:\n        max_attempts: 2\n", want: container.RestartPolicy{Name: container.RestartPolicyAlways, MaximumRetryCount: 2}},
		{name: "deploy on-failure with attempts", yaml: "    deploy:\n      restart_policy:\n        condition: on-failure\n        max_attempts: 5\n", want: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 5}},
		{name: "restart wins over deploy", yaml: "    restart: always\n    deploy:\n      restart_policy:\n        condition: none\n", want: container.RestartPolicy{Name: container.RestartPolicyAlways}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := webContainer(t, "services:\n  web:\n    image: nginx\n"+tc.yaml, nil)
			assert.DeepEqual(t, c.HostConfig.RestartPolicy, tc.want)
		})
	}
}

func TestContainerPolicyDefaults(t *testing.T) {
	const policy = `
x-lifecycle:
  policy:
    defaults:
      memory: 512M
      cpus: "0.5"
      pids: 200
`
	tests := []struct {
		name string
		yaml string
		want container.Resources
	}{
		{
			name: "service without limits gets every default",
			want: container.Resources{Memory: 512 << 20, NanoCPUs: 5e8, PidsLimit: ptr(int64(200))},
		},
		{
			name: "a service's own limits win, each separately",
			yaml: "    deploy:\n      resources:\n        limits:\n          memory: 1G\n",
			want: container.Resources{Memory: 1 << 30, NanoCPUs: 5e8, PidsLimit: ptr(int64(200))},
		},
		{
			name: "all limits set: no default",
			yaml: "    deploy:\n      resources:\n        limits:\n          memory: 1G\n          cpus: \"2\"\n          pids: 50\n",
			want: container.Resources{Memory: 1 << 30, NanoCPUs: 2e9, PidsLimit: ptr(int64(50))},
		},
		{
			name: "legacy keys are limits too",
			yaml: "    mem_limit: 128m\n    cpus: 0.25\n    pids_limit: 10\n",
			want: container.Resources{Memory: 128 << 20, NanoCPUs: 25e7, PidsLimit: ptr(int64(10))},
		},
		{
			name: "a reservation is not a limit",
			yaml: "    deploy:\n      resources:\n        reservations:\n          memory: 64M\n",
			want: container.Resources{Memory: 512 << 20, MemoryReservation: 64 << 20, NanoCPUs: 5e8, PidsLimit: ptr(int64(200))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := webContainer(t, policy+"services:\n  web:\n    image: nginx\n"+tc.yaml, nil)
			assert.DeepEqual(t, c.HostConfig.Resources, tc.want)
		})
	}
}

func TestContainerReplicaNumber(t *testing.T) {
	p, _ := loadProject(t, "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: 3\n    x-lifecycle: {strategy: recreate}\n", nil)
	for _, n := range []int{1, 2, 3} {
		c, err := Container(p, "web", ReplicaLabels{Number: n})
		assert.NilError(t, err)
		name := ContainerName("shop", "web", n)
		assert.Equal(t, c.Name, name)
		assert.Equal(t, c.Config.Labels[LabelContainerNumber], strings.TrimPrefix(name, "shop-web-"))
		assert.DeepEqual(t, c.Networking.EndpointsConfig["shop_default"].Aliases, []string{name, "web"})
	}
}

// A routed service's replicas carry their revision in the name: two revisions run side
// by side during a rollout, and previous ones are kept stopped for rollback.
func TestContainerReplicaNumberRouted(t *testing.T) {
	p, _ := loadProject(t, "services:\n  web:\n    image: nginx\n    deploy:\n      replicas: 3\n", nil)
	for _, rev := range []int{1, 7} {
		for _, n := range []int{1, 2, 3} {
			c, err := Container(p, "web", ReplicaLabels{Number: n, Revision: rev})
			assert.NilError(t, err)
			name := RevisionContainerName("shop", "web", rev, n)
			assert.Equal(t, c.Name, name)
			assert.Equal(t, name, ReplicaName(p, "web", rev, n))
			assert.Equal(t, c.Config.Labels[LabelContainerNumber], strconv.Itoa(n))
			assert.Equal(t, c.Config.Labels[LabelRevision], strconv.Itoa(rev))
			assert.DeepEqual(t, c.Networking.EndpointsConfig["shop_default"].Aliases, []string{name, "web"})
		}
	}
}

func TestReplicaName(t *testing.T) {
	p, _ := loadProject(t, `
services:
  web:
    image: nginx
  db:
    image: postgres
    volumes: [pgdata:/var/lib/postgresql/data]
  api:
    image: api
    x-lifecycle: {strategy: blue-green}
volumes:
  pgdata: {}
`, nil)
	assert.Equal(t, ReplicaName(p, "web", 4, 2), "shop-web-r4-2")
	assert.Equal(t, ReplicaName(p, "api", 1, 1), "shop-api-r1-1")
	assert.Equal(t, ReplicaName(p, "db", 4, 2), "shop-db-2", "recreate keeps the compose name")
	assert.Equal(t, RevisionContainerName("my_app", "api-v2", 12, 3), "my_app-api-v2-r12-3")
}

func TestContainerErrors(t *testing.T) {
	tests := []struct {
		name    string
		compose string
		extra   map[string]string
		service string
		want    string
	}{
		{
			name:    "unknown service",
			compose: "services:\n  web:\n    image: nginx\n",
			service: "api",
			want:    `service "api" is not in project shop`,
		},
		{
			name:    "missing seccomp profile",
			compose: "services:\n  web:\n    image: nginx\n    security_opt: [seccomp=./missing.json]\n",
			service: "web",
			want:    "service web: security_opt seccomp profile ./missing.json: open ",
		},
		{
			name:    "seccomp profile not JSON",
			compose: "services:\n  web:\n    image: nginx\n    security_opt: [seccomp=./seccomp.json]\n",
			extra:   map[string]string{"seccomp.json": "not json"},
			service: "web",
			want:    "service web: security_opt seccomp profile ./seccomp.json is not valid JSON",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := loadProject(t, tc.compose, tc.extra)
			_, err := Container(p, tc.service, ReplicaLabels{Number: 1})
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// The whole create options of a few services, as JSON; `go test ./compose/ -update`
// rewrites the golden files.
func TestContainerGolden(t *testing.T) {
	const compose = `
x-lifecycle:
  wait-timeout: 1m
  policy:
    defaults:
      memory: 512M
      cpus: "1"
      pids: 256
services:
  web:
    image: ghcr.io/acme/shop:1.4.2
    command: ["./server", "--port", "8080"]
    environment:
      DATABASE_URL: postgres://db/shop
      LOG_LEVEL: info
    ports: ["8080"]
    volumes:
      - uploads:/srv/uploads
      - ./config:/etc/shop:ro
    networks:
      front:
        aliases: [shop]
      back: {}
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://localhost:8080/healthz"]
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 10s
    depends_on:
      db:
        condition: service_healthy
    restart: unless-stopped
    labels:
      traefik.enable: "true"
    user: "10001"
    read_only: true
    cap_drop: [ALL]
    security_opt: ["no-new-privileges:true"]
    tmpfs: [/tmp]
    ulimits:
      nofile: {soft: 4096, hard: 8192}
    logging:
      driver: json-file
      options: {max-size: 10m}
    stop_grace_period: 20s
    deploy:
      replicas: 2
      resources:
        limits: {memory: 256M}
    x-lifecycle:
      wait-timeout: 45s
  db:
    image: postgres:17
    environment:
      POSTGRES_PASSWORD: example
    volumes: [pgdata:/var/lib/postgresql/data]
    networks: [back]
    healthcheck:
      test: pg_isready -U postgres
      interval: 2s
    shm_size: 128m
  worker:
    build: ./worker
    command: ./worker
    networks: [back]
    depends_on: [db]
networks:
  front: {}
  back:
    internal: true
volumes:
  uploads: {}
  pgdata:
    name: shop-pgdata
`
	p, dir := loadProject(t, compose, nil)
	for _, service := range []string{"web", "db", "worker"} {
		t.Run(service, func(t *testing.T) {
			hash, err := ConfigHash(p, service)
			assert.NilError(t, err)
			c, err := Container(p, service, ReplicaLabels{Number: 1, Revision: 2, ConfigHash: "HASH", ImageID: "sha256:0123"})
			assert.NilError(t, err)
			assert.Equal(t, len(hash), 64)
			b, err := json.MarshalIndent(c, "", "  ")
			assert.NilError(t, err)
			out := strings.ReplaceAll(string(b), dir, "/PROJECT") + "\n"
			golden.Assert(t, out, "container-"+service+".golden")
		})
	}
}

func TestConfigHash(t *testing.T) {
	const base = `
services:
  web:
    image: nginx:1.27
    environment:
      A: "1"
    depends_on: [db]
    deploy:
      replicas: 1
  db:
    image: postgres
  fixed:
    image: busybox
    deploy:
      resources:
        limits: {memory: 64M, cpus: "0.1", pids: 10}
`
	hashOf := func(t *testing.T, compose, service string) string {
		t.Helper()
		p, _ := loadProject(t, compose, nil)
		h, err := ConfigHash(p, service)
		assert.NilError(t, err)
		assert.Check(t, is.Regexp("^[0-9a-f]{64}$", h))
		return h
	}
	baseWeb := hashOf(t, base, "web")

	t.Run("stable across loads and directories", func(t *testing.T) {
		assert.Equal(t, hashOf(t, base, "web"), baseWeb)
		p, _ := loadProject(t, base, nil)
		h1, err := ConfigHash(p, "web")
		assert.NilError(t, err)
		h2, err := ConfigHash(p, "web")
		assert.NilError(t, err)
		assert.Equal(t, h1, h2)
	})
	t.Run("services differ", func(t *testing.T) {
		assert.Check(t, hashOf(t, base, "db") != baseWeb)
	})

	same := []struct{ name, from, to string }{
		{"replicas", "replicas: 1", "replicas: 5"},
		{"scale instead of replicas", "    deploy:\n      replicas: 1\n", "    scale: 4\n"},
		{"depends_on", "    depends_on: [db]\n", ""},
		{"pull_policy", "    depends_on: [db]\n", "    depends_on: [db]\n    pull_policy: never\n"},
		{"build", "    depends_on: [db]\n", "    depends_on: [db]\n    build: .\n"},
		{"profiles", "    depends_on: [db]\n", "    depends_on: [db]\n    profiles: [\"\"]\n"},
		{"deploy removed", "    deploy:\n      replicas: 1\n", ""},
		{"x-lifecycle", "    depends_on: [db]\n", "    depends_on: [db]\n    x-lifecycle: {wait-timeout: 5m}\n"},
		{"x-lifecycle strategy", "    depends_on: [db]\n", "    depends_on: [db]\n    x-lifecycle: {strategy: canary, canary: {steps: [{weight: 50}]}}\n"},
		{"key order", "    environment:\n      A: \"1\"\n    depends_on: [db]\n", "    depends_on: [db]\n    environment:\n      A: \"1\"\n"},
	}
	for _, tc := range same {
		t.Run("unchanged by "+tc.name, func(t *testing.T) {
			changed := strings.Replace(base, tc.from, tc.to, 1)
			assert.Assert(t, changed != base)
			assert.Equal(t, hashOf(t, changed, "web"), baseWeb)
		})
	}

	differ := []struct{ name, from, to string }{
		{"image", "nginx:1.27", "nginx:1.28"},
		{"environment value", `A: "1"`, `A: "2"`},
		{"environment added", `A: "1"`, "A: \"1\"\n      B: \"2\""},
		{"command", "    depends_on: [db]\n", "    depends_on: [db]\n    command: [sleep, infinity]\n"},
		{"resources", "replicas: 1", "replicas: 1\n      resources:\n        limits: {memory: 64M}"},
		{"policy defaults for a service without limits", "services:", "x-lifecycle:\n  policy:\n    defaults: {memory: 512M}\nservices:"},
	}
	for _, tc := range differ {
		t.Run("changed by "+tc.name, func(t *testing.T) {
			changed := strings.Replace(base, tc.from, tc.to, 1)
			assert.Assert(t, changed != base)
			assert.Check(t, hashOf(t, changed, "web") != baseWeb)
		})
	}

	t.Run("policy defaults do not touch a service with all its limits", func(t *testing.T) {
		withPolicy := "x-lifecycle:\n  policy:\n    defaults: {memory: 512M, cpus: 2, pids: 99}\n" + base
		assert.Equal(t, hashOf(t, withPolicy, "fixed"), hashOf(t, base, "fixed"))
	})
}

func TestImageRef(t *testing.T) {
	p, _ := loadProject(t, "services:\n  web:\n    image: nginx\n  api:\n    build: .\n  both:\n    image: acme/both:1\n    build: .\n", nil)
	assert.Equal(t, ImageRef(p, "web"), "nginx")
	assert.Equal(t, ImageRef(p, "api"), "shop-api")
	assert.Equal(t, ImageRef(p, "both"), "acme/both:1")
}

func TestContainerName(t *testing.T) {
	assert.Equal(t, ContainerName("shop", "web", 1), "shop-web-1")
	assert.Equal(t, ContainerName("my_app", "api-v2", 12), "my_app-api-v2-12")
}

func TestNetworks(t *testing.T) {
	p, _ := loadProject(t, `
services:
  web:
    image: nginx
    networks: [front, back, proxy, legacy]
  worker:
    image: worker
networks:
  front:
    labels:
      team: web
  back:
    driver: bridge
    internal: true
    attachable: true
    enable_ipv6: true
    driver_opts:
      com.docker.network.bridge.name: br-shop
    ipam:
      driver: default
      config:
        - subnet: 172.28.0.0/16
          gateway: 172.28.0.1
          ip_range: 172.28.5.0/24
  proxy:
    external: true
    name: traefik_proxy
  legacy:
    external: true
  unused: {}
`, nil)
	create, external := Networks(p)
	assert.DeepEqual(t, external, []string{"legacy", "traefik_proxy"})
	labels := func(key string, extra map[string]string) map[string]string {
		l := map[string]string{LabelProject: "shop", LabelNetwork: key, LabelVersion: ComposeVersionLabelValue, LabelManagedBy: ManagedByValue}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	want := []NetworkCreate{
		{
			Name: "shop_back", Driver: "bridge", Internal: true, Attachable: true, EnableIPv6: true,
			Options: map[string]string{"com.docker.network.bridge.name": "br-shop"},
			Labels:  labels("back", nil),
			IPAM: &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{
				Subnet:  netip.MustParsePrefix("172.28.0.0/16"),
				Gateway: netip.MustParseAddr("172.28.0.1"),
				IPRange: netip.MustParsePrefix("172.28.5.0/24"),
			}}},
		},
		{Name: "shop_default", Labels: labels("default", nil)},
		{Name: "shop_front", Labels: labels("front", map[string]string{"team": "web"})},
	}
	// compose-go keeps networks no service uses, so they are created too.
	want = append(want, NetworkCreate{Name: "shop_unused", Labels: labels("unused", nil)})
	equalJSON(t, create, want)
}

func TestVolumes(t *testing.T) {
	p, _ := loadProject(t, `
services:
  web:
    image: nginx
    volumes: [data:/data, shared:/shared, ext:/ext, named-ext:/named]
volumes:
  data:
    labels: {backup: daily}
  shared:
    name: company-shared
    driver: local
    driver_opts: {type: none, o: bind, device: /srv/shared}
  ext:
    external: true
  named-ext:
    external: true
    name: real-volume
  unused: {}
`, nil)
	create, external := Volumes(p)
	assert.DeepEqual(t, external, []string{"ext", "real-volume"})
	labels := func(key string, extra map[string]string) map[string]string {
		l := map[string]string{LabelProject: "shop", LabelVolume: key, LabelVersion: ComposeVersionLabelValue, LabelManagedBy: ManagedByValue}
		for k, v := range extra {
			l[k] = v
		}
		return l
	}
	assert.DeepEqual(t, create, []VolumeCreate{
		{Name: "shop_data", Labels: labels("data", map[string]string{"backup": "daily"})},
		{Name: "company-shared", Driver: "local", DriverOpts: map[string]string{"type": "none", "o": "bind", "device": "/srv/shared"}, Labels: labels("shared", nil)},
		{Name: "shop_unused", Labels: labels("unused", nil)},
	})
}

// The golden files must not depend on the machine: no temp paths, no user names.
func TestGoldenFilesArePortable(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	assert.NilError(t, err)
	tmp := regexp.MustCompile(regexp.QuoteMeta(os.TempDir()) + `/Test`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		assert.NilError(t, err)
		assert.Check(t, !tmp.Match(b), "%s has a temporary path", f)
	}
}
