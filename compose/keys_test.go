package compose

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestServiceKeys is the test of each row of docs/compose-keys.md: a supported key
// becomes the create options `docker compose up` gives the engine (mirroring docker/compose's
// pkg/compose/create.go), a refused key fails the load with its reason.
func TestServiceKeys(t *testing.T) {
	type row struct {
		key     string
		yaml    string // lines under services.web (indented by 4), more services/top-level after
		files   map[string]string
		env     map[string]string
		check   func(t *testing.T, c ContainerCreate)
		refused string // a part of the error
	}
	i64 := func(v int64) *int64 { return &v }
	rows := []row{
		{key: "container_name", yaml: "    container_name: fixed\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Name, "fixed") }},
		{key: "network_mode host", yaml: "    network_mode: host\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("host"))
			assert.Check(t, c.Networking == nil)
		}},
		{key: "network_mode none", yaml: "    network_mode: none\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("none"))
		}},
		{key: "network_mode bridge", yaml: "    network_mode: bridge\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("bridge"))
		}},
		{key: "network_mode container:", yaml: "    network_mode: container:other\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.NetworkMode, container.NetworkMode("container:other"))
		}},
		{key: "network_mode service:", yaml: "    network_mode: service:db\n  db:\n    image: x\n", check: func(t *testing.T, c ContainerCreate) {
			service, _, ok := ServiceRef(string(c.HostConfig.NetworkMode))
			assert.Check(t, ok)
			assert.Equal(t, service, "db")
			assert.Check(t, c.Networking == nil)
		}},
		{key: "pid", yaml: "    pid: host\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.PidMode, container.PidMode("host"))
		}},
		{key: "pid service:", yaml: "    pid: service:db\n  db:\n    image: x\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.PidMode, container.PidMode("service:db"))
		}},
		{key: "ipc", yaml: "    ipc: shareable\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.IpcMode, container.IpcMode("shareable"))
		}},
		{key: "uts", yaml: "    uts: host\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.UTSMode, container.UTSMode("host"))
		}},
		{key: "userns_mode", yaml: "    userns_mode: host\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.UsernsMode, container.UsernsMode("host"))
		}},
		{key: "cgroup", yaml: "    cgroup: private\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.CgroupnsMode, container.CgroupnsMode("private"))
		}},
		{key: "cgroup_parent", yaml: "    cgroup_parent: custom.slice\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.CgroupParent, "custom.slice")
		}},
		{key: "devices", yaml: "    devices: [\"/dev/fuse:/dev/fuse:rwm\", \"vendor.com/gpu=all\"]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Devices, []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}})
			assert.DeepEqual(t, c.HostConfig.DeviceRequests, []container.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"vendor.com/gpu=all"}}})
		}},
		{key: "device_cgroup_rules", yaml: "    device_cgroup_rules: [\"c 1:3 mr\"]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.DeviceCgroupRules, []string{"c 1:3 mr"})
		}},
		{key: "gpus", yaml: "    gpus: all\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.DeviceRequests, []container.DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}})
		}},
		{key: "deploy.resources.reservations.devices", yaml: "    deploy:\n      resources:\n        reservations:\n          devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.DeviceRequests, []container.DeviceRequest{{Driver: "nvidia", Count: 1, Capabilities: [][]string{{"gpu"}}}})
		}},
		{key: "platform", yaml: "    platform: linux/arm64\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Platform, "linux/arm64") }},
		{key: "runtime", yaml: "    runtime: runc\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.Runtime, "runc") }},
		{key: "isolation", yaml: "    isolation: default\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.Isolation, container.Isolation("default"))
		}},
		{key: "mac_address", yaml: "    mac_address: 02:42:ac:11:00:99\n", check: func(t *testing.T, c ContainerCreate) {
			mac, _ := net.ParseMAC("02:42:ac:11:00:99")
			assert.DeepEqual(t, c.Networking.EndpointsConfig["shop_default"].MacAddress, network.HardwareAddr(mac))
		}},
		{key: "links", yaml: "    links: [\"db:database\", cache]\n  db:\n    image: x\n  cache:\n    image: x\n", check: func(t *testing.T, c ContainerCreate) {
			want := []string{"service:db:database", "service:cache:cache"}
			assert.DeepEqual(t, c.HostConfig.Links, want)
			assert.DeepEqual(t, c.Networking.EndpointsConfig["shop_default"].Links, want)
		}},
		{key: "external_links", yaml: "    external_links: [\"legacy-db:db\"]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Links, []string{"legacy-db:db"})
		}},
		{key: "volumes_from", yaml: "    volumes_from: [\"db:ro\", \"container:other\"]\n  db:\n    image: x\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.VolumesFrom, []string{"service:db:ro", "other"})
		}},
		{key: "cpu_count", yaml: "    cpu_count: 2\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.CPUCount, int64(2)) }},
		{key: "cpu_percent", yaml: "    cpu_percent: 50\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.CPUPercent, int64(5000)) }},
		{key: "cpu_period", yaml: "    cpu_period: 100000\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.CPUPeriod, int64(100000)) }},
		{key: "cpu_quota", yaml: "    cpu_quota: 50000\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.CPUQuota, int64(50000)) }},
		{key: "cpu_rt_period", yaml: "    cpu_rt_period: 1000000\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.CPURealtimePeriod, int64(1000000))
		}},
		{key: "cpu_rt_runtime", yaml: "    cpu_rt_runtime: 950000\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.CPURealtimeRuntime, int64(950000))
		}},
		{key: "cpu_shares", yaml: "    cpu_shares: 512\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.CPUShares, int64(512)) }},
		{key: "cpuset", yaml: "    cpuset: \"0\"\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.CpusetCpus, "0") }},
		{key: "mem_swappiness", yaml: "    mem_swappiness: 10\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.MemorySwappiness, i64(10))
		}},
		{key: "memswap_limit", yaml: "    mem_limit: 64m\n    memswap_limit: 128m\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.MemorySwap, int64(128<<20))
		}},
		{key: "oom_kill_disable", yaml: "    oom_kill_disable: true\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Check(t, c.HostConfig.OomKillDisable != nil && *c.HostConfig.OomKillDisable)
		}},
		{key: "blkio_config", yaml: "    blkio_config:\n      weight: 300\n      weight_device: [{path: /dev/sda, weight: 400}]\n      device_read_bps: [{path: /dev/sda, rate: 1mb}]\n      device_write_iops: [{path: /dev/sda, rate: 30}]\n", check: func(t *testing.T, c ContainerCreate) {
			h := c.HostConfig
			assert.Equal(t, h.BlkioWeight, uint16(300))
			assert.DeepEqual(t, h.BlkioWeightDevice, []*blkiodev.WeightDevice{{Path: "/dev/sda", Weight: 400}})
			assert.DeepEqual(t, h.BlkioDeviceReadBps, []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 1 << 20}})
			assert.DeepEqual(t, h.BlkioDeviceWriteIOps, []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 30}})
		}},
		{key: "storage_opt", yaml: "    storage_opt: {size: 1G}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.StorageOpt, map[string]string{"size": "1G"})
		}},
		{key: "annotations", yaml: "    annotations: {com.example.team: web}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Annotations, map[string]string{"com.example.team": "web"})
		}},
		{key: "volumes type image", yaml: "    volumes: [{type: image, source: \"alpine:3\", target: /img, image: {subpath: etc}}]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Mounts, []mount.Mount{{Type: mount.TypeImage, Source: "alpine:3", Target: "/img", ReadOnly: true, ImageOptions: &mount.ImageOptions{Subpath: "etc"}}})
		}},
		{key: "configs file", yaml: "    configs: [app, {source: app, target: etc/app.conf}]\nconfigs:\n  app:\n    file: ./app.conf\n", files: map[string]string{"app.conf": "x=1"}, check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, len(c.HostConfig.Mounts), 2)
			for i, target := range []string{"/app", "/etc/app.conf"} {
				m := c.HostConfig.Mounts[i]
				assert.Check(t, m.Type == mount.TypeBind && strings.HasSuffix(m.Source, "/app.conf") && m.Target == target && m.ReadOnly, "%+v", m)
			}
		}},
		{key: "configs content and environment", yaml: "    configs: [{source: inline, target: /etc/inline, mode: 0400, uid: \"10\", gid: \"20\"}, envcfg]\nconfigs:\n  inline:\n    content: \"hello ${WHO}\"\n  envcfg:\n    environment: CFG\n", env: map[string]string{"WHO": "world", "CFG": "from env"}, check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.Files, []ContainerFile{
				{Path: "/etc/inline", Mode: 0o400, UID: 10, GID: 20, Content: []byte("hello world")},
				{Path: "/envcfg", Mode: 0o444, Content: []byte("from env")},
			})
		}},
		{key: "attach", yaml: "    attach: false\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }},
		{key: "develop", yaml: "    develop:\n      watch: [{path: ., action: rebuild}]\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }},

		// the keys supported before this table (their details: TestContainer, TestContainerGolden)
		{key: "image", yaml: "", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }},
		{key: "command", yaml: "    command: [run, --fast]\n", check: func(t *testing.T, c ContainerCreate) { assert.DeepEqual(t, c.Config.Cmd, []string{"run", "--fast"}) }},
		{key: "entrypoint", yaml: "    entrypoint: /bin/app\n", check: func(t *testing.T, c ContainerCreate) { assert.DeepEqual(t, c.Config.Entrypoint, []string{"/bin/app"}) }},
		{key: "environment", yaml: "    environment: {A: \"1\"}\n", check: func(t *testing.T, c ContainerCreate) { assert.Check(t, is.Contains(c.Config.Env, "A=1")) }},
		{key: "env_file", yaml: "    env_file: [app.env]\n", files: map[string]string{"app.env": "B=2\n"}, check: func(t *testing.T, c ContainerCreate) { assert.Check(t, is.Contains(c.Config.Env, "B=2")) }},
		{key: "labels", yaml: "    labels: {team: web}\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Labels["team"], "web") }},
		{key: "label_file", yaml: "    label_file: [app.labels]\n", files: map[string]string{"app.labels": "tier=front\n"}, check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Labels["tier"], "front") }},
		{key: "ports", yaml: "    ports: [\"127.0.0.1:8080:80\"]\n    x-lifecycle: {strategy: recreate}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, len(c.HostConfig.PortBindings), 1)
		}},
		{key: "expose", yaml: "    expose: [\"9000\"]\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, len(c.Config.ExposedPorts), 1) }},
		{key: "volumes", yaml: "    volumes: [data:/data, /anon, {type: tmpfs, target: /t}]\nvolumes:\n  data: {}\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, len(c.HostConfig.Mounts), 3) }},
		{key: "tmpfs", yaml: "    tmpfs: [\"/run:size=1m\"]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Tmpfs, map[string]string{"/run": "size=1m"})
		}},
		{key: "networks", yaml: "    networks: {front: {aliases: [www]}}\nnetworks:\n  front: {}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Check(t, is.Contains(c.Networking.EndpointsConfig["shop_front"].Aliases, "www"))
		}},
		{key: "healthcheck", yaml: "    healthcheck: {test: [CMD, \"true\"]}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.Config.Healthcheck.Test, []string{"CMD", "true"})
		}},
		{key: "user", yaml: "    user: \"1000:1000\"\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.User, "1000:1000") }},
		{key: "working_dir", yaml: "    working_dir: /srv\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.WorkingDir, "/srv") }},
		{key: "hostname", yaml: "    hostname: h\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Hostname, "h") }},
		{key: "domainname", yaml: "    domainname: example.org\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Domainname, "example.org") }},
		{key: "cap_add", yaml: "    cap_add: [NET_ADMIN]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, []string(c.HostConfig.CapAdd), []string{"NET_ADMIN"})
		}},
		{key: "cap_drop", yaml: "    cap_drop: [ALL]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, []string(c.HostConfig.CapDrop), []string{"ALL"})
		}},
		{key: "security_opt", yaml: "    security_opt: [\"no-new-privileges:true\"]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.SecurityOpt, []string{"no-new-privileges:true"})
		}},
		{key: "read_only", yaml: "    read_only: true\n", check: func(t *testing.T, c ContainerCreate) { assert.Check(t, c.HostConfig.ReadonlyRootfs) }},
		{key: "privileged", yaml: "    privileged: true\n", check: func(t *testing.T, c ContainerCreate) { assert.Check(t, c.HostConfig.Privileged) }},
		{key: "init", yaml: "    init: true\n", check: func(t *testing.T, c ContainerCreate) { assert.Check(t, *c.HostConfig.Init) }},
		{key: "ulimits", yaml: "    ulimits: {nofile: {soft: 1024, hard: 2048}}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Ulimits, []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}})
		}},
		{key: "sysctls", yaml: "    sysctls: {net.core.somaxconn: \"1024\"}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.Sysctls, map[string]string{"net.core.somaxconn": "1024"})
		}},
		{key: "shm_size", yaml: "    shm_size: 64m\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.ShmSize, int64(64<<20)) }},
		{key: "extra_hosts", yaml: "    extra_hosts: [\"db:10.0.0.2\"]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.ExtraHosts, []string{"db:10.0.0.2"})
		}},
		{key: "dns", yaml: "    dns: [192.0.2.53]\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.DNS[0].String(), "192.0.2.53") }},
		{key: "dns_search", yaml: "    dns_search: [example.org]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.DNSSearch, []string{"example.org"})
		}},
		{key: "dns_opt", yaml: "    dns_opt: [ndots:1]\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.DNSOptions, []string{"ndots:1"})
		}},
		{key: "logging", yaml: "    logging: {driver: json-file, options: {max-size: 1m}}\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.LogConfig.Type, "json-file") }},
		{key: "stop_signal", yaml: "    stop_signal: SIGINT\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.StopSignal, "SIGINT") }},
		{key: "stop_grace_period", yaml: "    stop_grace_period: 7s\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, *c.Config.StopTimeout, 7) }},
		{key: "mem_limit", yaml: "    mem_limit: 64m\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.Memory, int64(64<<20)) }},
		{key: "mem_reservation", yaml: "    mem_reservation: 32m\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.MemoryReservation, int64(32<<20)) }},
		{key: "cpus", yaml: "    cpus: 0.3\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.NanoCPUs, int64(300_000_000)) }},
		{key: "pids_limit", yaml: "    pids_limit: 100\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, *c.HostConfig.PidsLimit, int64(100)) }},
		{key: "tty", yaml: "    tty: true\n", check: func(t *testing.T, c ContainerCreate) { assert.Check(t, c.Config.Tty) }},
		{key: "stdin_open", yaml: "    stdin_open: true\n", check: func(t *testing.T, c ContainerCreate) { assert.Check(t, c.Config.OpenStdin) }},
		{key: "group_add", yaml: "    group_add: [\"44\"]\n", check: func(t *testing.T, c ContainerCreate) { assert.DeepEqual(t, c.HostConfig.GroupAdd, []string{"44"}) }},
		{key: "oom_score_adj", yaml: "    oom_score_adj: 100\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.HostConfig.OomScoreAdj, 100) }},
		{key: "restart", yaml: "    restart: unless-stopped\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.RestartPolicy.Name, container.RestartPolicyUnlessStopped)
		}},
		{key: "deploy.restart_policy", yaml: "    deploy: {restart_policy: {condition: on-failure, max_attempts: 3}}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.DeepEqual(t, c.HostConfig.RestartPolicy, container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3})
		}},
		{key: "deploy.resources.limits", yaml: "    deploy: {resources: {limits: {cpus: \"0.5\", memory: 64m, pids: 50}}}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.NanoCPUs, int64(500_000_000))
			assert.Equal(t, c.HostConfig.Memory, int64(64<<20))
			assert.Equal(t, *c.HostConfig.PidsLimit, int64(50))
		}},
		{key: "deploy.resources.reservations.memory", yaml: "    deploy: {resources: {reservations: {memory: 32m}}}\n", check: func(t *testing.T, c ContainerCreate) {
			assert.Equal(t, c.HostConfig.MemoryReservation, int64(32<<20))
		}},
		{key: "deploy.resources.reservations.cpus", yaml: "    deploy: {resources: {reservations: {cpus: \"0.5\"}}}\n", refused: `the engine has no CPU reservation for containers`},
		{key: "pull_policy", yaml: "    pull_policy: weekly\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }}, // applied by the runtime: TestPullNeeded (rollout), TestDeployPulls (e2e)
		{key: "pull_policy refresh", yaml: "    pull_policy: refresh\n    pull_refresh_after: 2d\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }},
		{key: "pull_policy refresh without pull_refresh_after", yaml: "    pull_policy: refresh\n", refused: `pull_policy refresh needs pull_refresh_after`},

		{key: "provider", yaml: "    provider: {type: model}\n", refused: `key "provider" is not supported by docker lifecycle: a provider service is run by a compose plugin`},
		{key: "use_api_socket", yaml: "    use_api_socket: true\n", refused: `key "use_api_socket" is not supported by docker lifecycle: it hands the Docker socket`},
		{key: "credential_spec", yaml: "    credential_spec: {file: spec.json}\n", refused: `key "credential_spec" is not supported by docker lifecycle: gMSA`},
		{key: "pre_start", yaml: "    pre_start: [{command: [\"true\"]}]\n", refused: `key "pre_start" is not supported by docker lifecycle`},
		{key: "post_start", yaml: "    post_start: [{command: [\"true\"], user: root}]\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }}, // run by the runtime: TestHooks (rollout)
		{key: "pre_stop", yaml: "    pre_stop: [{command: [\"true\"]}]\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }},                 // run by the runtime: TestHooks (rollout)
		{key: "models", yaml: "    models: [llm]\nmodels:\n  llm:\n    model: ai/smollm2\n", refused: `key "models" is not supported by docker lifecycle: models are served by Docker Model Runner`},
		{key: "deploy.placement", yaml: "    deploy:\n      placement:\n        constraints: [node.role==manager]\n", refused: `key "deploy.placement" is not supported by docker lifecycle: Swarm places tasks on nodes`},
		{key: "deploy.endpoint_mode", yaml: "    deploy:\n      endpoint_mode: dnsrr\n", check: func(t *testing.T, c ContainerCreate) { assert.Equal(t, c.Config.Image, "nginx") }}, // one engine: a no-op; Swarm: TestSwarmEndpointMode
		{key: "deploy.endpoint_mode bad", yaml: "    deploy:\n      endpoint_mode: rr\n", refused: `deploy.endpoint_mode "rr": want vip or dnsrr`},
		{key: "deploy.labels", yaml: "    deploy:\n      labels: {a: b}\n", refused: `key "deploy.labels" is not supported by docker lifecycle: Swarm service labels`},
		{key: "deploy.mode global", yaml: "    deploy:\n      mode: global\n", refused: `deploy.mode "global" is not supported`},
		{key: "deploy.resources generic_resources", yaml: "    deploy:\n      resources:\n        reservations:\n          generic_resources: [{discrete_resource_spec: {kind: gpu, value: 1}}]\n", refused: `generic_resources is not supported`},
		{key: "configs external", yaml: "    configs: [c]\nconfigs:\n  c:\n    external: true\n", refused: `config "c": external configs are not supported`},
		{key: "volumes type npipe", yaml: "    volumes: [{type: npipe, source: a, target: /b}]\n", refused: `volume type "npipe" (target /b) is not supported`},
		{key: "uts other than host", yaml: "    uts: private\n", refused: `uts "private": the engine knows only "host"`},
		{key: "network_mode service: with ports", yaml: "    network_mode: service:db\n    ports: [\"80\"]\n  db:\n    image: x\n", refused: `network_mode "service:db" with ports`},
	}
	for _, r := range rows {
		t.Run(r.key, func(t *testing.T) {
			for k, v := range r.env {
				t.Setenv(k, v)
			}
			files := map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n" + r.yaml}
			for k, v := range r.files {
				files[k] = v
			}
			p, _, err := loadFiles(t, files, LoadOptions{ProjectName: "shop"})
			if r.refused != "" {
				assert.ErrorContains(t, err, r.refused)
				assert.Check(t, is.Contains(err.Error(), `service "web"`))
				return
			}
			assert.NilError(t, err)
			c, err := Container(p, "web", ReplicaLabels{Number: 1, Revision: 1})
			assert.NilError(t, err)
			r.check(t, c)
		})
	}
}

// TestKeepRefused: lint loads a file that deploy refuses, with every refusal kept.
func TestKeepRefused(t *testing.T) {
	files := map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    use_api_socket: true\n    credential_spec: {file: a.json}\n  db:\n    image: x\n    deploy: {placement: {constraints: [a==b]}}\n"}
	_, _, err := loadFiles(t, files, LoadOptions{ProjectName: "shop"})
	assert.Check(t, errors.Is(err, ErrUnsupported))
	p, _, err := loadFiles(t, files, LoadOptions{ProjectName: "shop", KeepRefused: true})
	assert.NilError(t, err)
	var msgs []string
	for _, e := range p.Refused {
		assert.Check(t, errors.Is(e, ErrUnsupported))
		msgs = append(msgs, e.Error())
	}
	assert.Equal(t, len(msgs), 3, strings.Join(msgs, "\n"))
	assert.Check(t, is.Contains(msgs[0], `service "db": key "deploy.placement"`))
	assert.Check(t, is.Contains(msgs[1], `service "web": key "credential_spec"`))
	assert.Check(t, is.Contains(msgs[2], `service "web": key "use_api_socket"`))
	assert.Equal(t, len(p.ServiceSpecs), 2)
}
