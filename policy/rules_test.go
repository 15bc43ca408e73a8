package policy

import (
	"regexp"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// good returns a service that passes every rule; fixtures break one thing at a time.
func good() types.ServiceConfig {
	svc := types.ServiceConfig{Name: "web"}
	svc.Image = "nginx:1.27"
	svc.User = "1000"
	svc.ReadOnly = true
	svc.SecurityOpt = []string{"no-new-privileges:true"}
	svc.HealthCheck = &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD", "true"}}
	svc.Deploy = &types.DeployConfig{Resources: types.Resources{Limits: &types.Resource{MemoryBytes: 256 << 20, NanoCPUs: 0.5, Pids: 100}}}
	svc.Ports = []types.ServicePortConfig{{HostIP: "127.0.0.1", Target: 80, Published: "8080", Protocol: "tcp"}}
	svc.Environment = types.NewMappingWithEquals([]string{"LOG_LEVEL=info", "DB_PASSWORD_FILE=/run/secrets/db"})
	svc.Labels = types.Labels{"com.example.team": "web"}
	svc.Logging = &types.LoggingConfig{Driver: "local"}
	return svc
}

func project(services ...types.ServiceConfig) *types.Project {
	p := &types.Project{Name: "app", Services: types.Services{}}
	for _, s := range services {
		p.Services[s.Name] = s
	}
	return p
}

func str(s string) *string { return &s }

type fixture struct {
	name   string
	mutate func(*types.ServiceConfig)
	images map[string]ImageFacts
	cfg    Config
	want   string // a substring of the message; "" when the fixture complies
	cis    string // the finding's CIS id, when not the rule's
}

// fixtures holds, for every rule, violating and compliant services.
var fixtures = map[string][]fixture{
	"privileged": {
		{name: "privileged", mutate: func(s *types.ServiceConfig) { s.Privileged = true }, want: "privileged: true gives"},
		{name: "not privileged", mutate: func(s *types.ServiceConfig) {}},
	},
	"cap-add": {
		{name: "caps", mutate: func(s *types.ServiceConfig) { s.CapAdd = []string{"NET_ADMIN", "SYS_TIME"} }, want: "cap_add: [NET_ADMIN, SYS_TIME] adds Linux capabilities"},
		{name: "all", mutate: func(s *types.ServiceConfig) { s.CapAdd = []string{"NET_ADMIN", "all"} }, want: "cap_add: [NET_ADMIN, all] includes ALL"},
		{name: "CAP_ALL", mutate: func(s *types.ServiceConfig) { s.CapAdd = []string{"CAP_ALL"} }, want: "includes ALL"},
		{name: "only drops", mutate: func(s *types.ServiceConfig) { s.CapDrop = []string{"ALL"} }},
	},
	"docker-socket": {
		{name: "var run", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}
		}, want: `volumes: "/var/run/docker.sock:/var/run/docker.sock" mounts the Docker socket`},
		{name: "run", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/run/docker.sock", Target: "/docker.sock", ReadOnly: true}}
		}, want: `volumes: "/run/docker.sock:/docker.sock" mounts the Docker socket`},
		{name: "rootless", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/run/user/1000/docker.sock", Target: "/s"}}
		}, want: "mounts the Docker socket"},
		{name: "host var run", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/var/run/", Target: "/host/run"}}
		}, want: `volumes: "/var/run/:/host/run" mounts the host's /var/run, which holds the Docker socket`},
		{name: "npipe", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "npipe", Source: `\\.\pipe\docker_engine`, Target: `\\.\pipe\docker_engine`}}
		}, want: "mounts the Docker engine pipe"},
		{name: "use_api_socket", mutate: func(s *types.ServiceConfig) { s.UseAPISocket = true }, want: "use_api_socket: true mounts the Docker socket"},
		{name: "other mounts", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{
				{Type: "bind", Source: "/srv/data", Target: "/data"},
				{Type: "volume", Source: "db", Target: "/var/run/docker.sock"},
				{Type: "tmpfs", Target: "/tmp"},
			}
		}},
	},
	"host-network": {
		{name: "network_mode", mutate: func(s *types.ServiceConfig) { s.NetworkMode = "host" }, want: "network_mode: host shares the host's network namespace"},
		{name: "net", mutate: func(s *types.ServiceConfig) { s.Net = "host" }, want: "net: host shares"},
		{name: "bridge", mutate: func(s *types.ServiceConfig) { s.NetworkMode = "bridge" }},
		{name: "service", mutate: func(s *types.ServiceConfig) { s.NetworkMode = "service:host" }},
	},
	"host-pid": {
		{name: "host", mutate: func(s *types.ServiceConfig) { s.Pid = "host" }, want: "pid: host shares the host's process namespace"},
		{name: "service", mutate: func(s *types.ServiceConfig) { s.Pid = "service:db" }},
	},
	"host-ipc": {
		{name: "host", mutate: func(s *types.ServiceConfig) { s.Ipc = "host" }, want: "ipc: host shares the host's IPC namespace"},
		{name: "shareable", mutate: func(s *types.ServiceConfig) { s.Ipc = "shareable" }},
	},
	"host-uts": {
		{name: "host", mutate: func(s *types.ServiceConfig) { s.Uts = "host" }, want: "uts: host shares the host's UTS (hostname) namespace"},
		{name: "unset", mutate: func(s *types.ServiceConfig) { s.Uts = "" }},
	},
	"non-root": {
		{name: "user 0", mutate: func(s *types.ServiceConfig) { s.User = "0" }, want: `user: "0" runs the container as root`},
		{name: "user root:root", mutate: func(s *types.ServiceConfig) { s.User = "root:root" }, want: `user: "root:root" runs`},
		{name: "user 0:1000", mutate: func(s *types.ServiceConfig) { s.User = "0:1000" }, want: `user: "0:1000" runs`},
		{name: "root image", mutate: func(s *types.ServiceConfig) { s.User = "" },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true}}, want: `no user: set and image "nginx:1.27" sets no USER`},
		{name: "image USER root", mutate: func(s *types.ServiceConfig) { s.User = "" },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true, User: "root"}}, want: `image "nginx:1.27" has USER "root"`},
		{name: "image USER 0:0", mutate: func(s *types.ServiceConfig) { s.User = "" },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true, User: "0:0"}}, want: `has USER "0:0"`},
		{name: "unknown image", mutate: func(s *types.ServiceConfig) { s.User = "" }, want: `runs as the default user of image "nginx:1.27", which could not be checked`},
		{name: "image not found", mutate: func(s *types.ServiceConfig) { s.User = "" },
			images: map[string]ImageFacts{"nginx:1.27": {User: "app"}}, want: "could not be checked"},
		{name: "user 1000 with root image", mutate: func(s *types.ServiceConfig) { s.User = "1000" },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true}}},
		{name: "user 1000:0", mutate: func(s *types.ServiceConfig) { s.User = "1000:0" }},
		{name: "user name", mutate: func(s *types.ServiceConfig) { s.User = "app" }},
		{name: "non-root image", mutate: func(s *types.ServiceConfig) { s.User = "" },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true, User: "nginx"}}},
		{name: "non-root image uid", mutate: func(s *types.ServiceConfig) { s.User = "" },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true, User: "101:101"}}},
	},
	"limits": {
		{name: "none", mutate: func(s *types.ServiceConfig) { s.Deploy = nil },
			want: "deploy.resources.limits lacks memory (CIS 5.11), cpus (CIS 5.12), pids (CIS 5.29); x-lifecycle.policy.defaults provides none"},
		{name: "pids missing", mutate: func(s *types.ServiceConfig) { s.Deploy.Resources.Limits.Pids = 0 }, want: "lacks pids (CIS 5.29);", cis: "5.29"},
		{name: "memory missing", mutate: func(s *types.ServiceConfig) { s.Deploy.Resources.Limits.MemoryBytes = 0 }, want: "lacks memory (CIS 5.11);", cis: "5.11"},
		{name: "unlimited legacy pids", mutate: func(s *types.ServiceConfig) { s.Deploy.Resources.Limits.Pids = 0; s.PidsLimit = -1 }, want: "lacks pids (CIS 5.29);", cis: "5.29"},
		{name: "defaults cover some", mutate: func(s *types.ServiceConfig) { s.Deploy = nil },
			cfg: Config{Defaults: Defaults{Memory: true, Pids: true}}, want: "lacks cpus (CIS 5.12);", cis: "5.12"},
		{name: "legacy keys", mutate: func(s *types.ServiceConfig) { s.Deploy = nil; s.MemLimit = 1 << 30; s.CPUS = 1; s.PidsLimit = 50 }},
		{name: "defaults cover all", mutate: func(s *types.ServiceConfig) { s.Deploy = nil },
			cfg: Config{Defaults: Defaults{Memory: true, CPUs: true, Pids: true}}},
		{name: "mixed", mutate: func(s *types.ServiceConfig) { s.Deploy.Resources.Limits.Pids = 0; s.PidsLimit = 10 }},
		// The default fills a limit the service leaves unset, not one it sets to unlimited:
		// the conversion keeps -1 and the engine runs the container without a PIDs limit.
		{name: "unlimited pids with defaults", mutate: func(s *types.ServiceConfig) { s.Deploy = nil; s.PidsLimit = -1 },
			cfg: Config{Defaults: Defaults{Memory: true, CPUs: true, Pids: true}}, want: "lacks pids (CIS 5.29)", cis: "5.29"},
		{name: "deploy pids win over unlimited legacy", mutate: func(s *types.ServiceConfig) { s.PidsLimit = -1 }},
	},
	"healthcheck": {
		{name: "none", mutate: func(s *types.ServiceConfig) { s.HealthCheck = nil }, want: `no healthcheck: set (CIS 5.27) and image "nginx:1.27" defines no HEALTHCHECK (CIS 4.6)`},
		{name: "disabled", mutate: func(s *types.ServiceConfig) { s.HealthCheck = &types.HealthCheckConfig{Disable: true} }, want: "healthcheck: disable: true turns", cis: "5.27"},
		{name: "disabled over the image's", mutate: func(s *types.ServiceConfig) { s.HealthCheck = &types.HealthCheckConfig{Disable: true} },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true, Healthcheck: true}}, want: "healthcheck: disable: true turns", cis: "5.27"},
		{name: "NONE", mutate: func(s *types.ServiceConfig) {
			s.HealthCheck = &types.HealthCheckConfig{Test: types.HealthCheckTest{"NONE"}}
		}, want: `test: ["NONE"]`, cis: "5.27"},
		{name: "no test", mutate: func(s *types.ServiceConfig) { s.HealthCheck = &types.HealthCheckConfig{Retries: new(uint64)} }, want: `healthcheck: sets no test (CIS 5.27) and image "nginx:1.27" defines no HEALTHCHECK (CIS 4.6)`},
		{name: "build-only service", mutate: func(s *types.ServiceConfig) {
			s.HealthCheck, s.Image, s.Build = nil, "", &types.BuildConfig{Context: "."}
		}, want: `no healthcheck: set (CIS 5.27) and the image built for service "web" defines no HEALTHCHECK`},
		{name: "built image's healthcheck", mutate: func(s *types.ServiceConfig) {
			s.HealthCheck, s.Image, s.Build = nil, "", &types.BuildConfig{Context: "."}
		}, images: map[string]ImageFacts{"app-web": {Found: true, Healthcheck: true}}},
		{name: "image healthcheck", mutate: func(s *types.ServiceConfig) { s.HealthCheck = nil },
			images: map[string]ImageFacts{"nginx:1.27": {Found: true, User: "nginx", Healthcheck: true}}},
		{name: "set", mutate: func(s *types.ServiceConfig) {}},
	},
	"read-only": {
		{name: "writable", mutate: func(s *types.ServiceConfig) { s.ReadOnly = false }, want: "read_only is not true"},
		{name: "read only", mutate: func(s *types.ServiceConfig) { s.ReadOnly = true }},
	},
	"no-new-privileges": {
		{name: "missing", mutate: func(s *types.ServiceConfig) { s.SecurityOpt = []string{"seccomp:unconfined"} }, want: "security_opt lacks no-new-privileges:true"},
		{name: "false", mutate: func(s *types.ServiceConfig) { s.SecurityOpt = []string{"no-new-privileges:false"} }, want: `security_opt: "no-new-privileges:false" lets processes gain privileges`},
		{name: "bare", mutate: func(s *types.ServiceConfig) { s.SecurityOpt = []string{"label:disable", "no-new-privileges"} }},
		{name: "equals", mutate: func(s *types.ServiceConfig) { s.SecurityOpt = []string{"no-new-privileges=true"} }},
		// The engine applies the entries in order: the last one decides.
		{name: "true then false", mutate: func(s *types.ServiceConfig) {
			s.SecurityOpt = []string{"no-new-privileges:true", "no-new-privileges:false"}
		}, want: `security_opt: "no-new-privileges:false" lets processes gain privileges`},
		{name: "false then true", mutate: func(s *types.ServiceConfig) {
			s.SecurityOpt = []string{"no-new-privileges=false", "no-new-privileges"}
		}},
	},
	"secrets-in-env": {
		{name: "password", mutate: func(s *types.ServiceConfig) { s.Environment["DB_PASSWORD"] = str("hunter2") }, want: "environment: DB_PASSWORD has a literal value and its name says it is a secret"},
		{name: "api key lower", mutate: func(s *types.ServiceConfig) { s.Environment["stripe-api-key"] = str("x") }, want: "environment: stripe-api-key has a literal"},
		{name: "label token", mutate: func(s *types.ServiceConfig) { s.Labels["com.example.token"] = "abc" }, want: "labels: com.example.token has a literal"},
		{name: "entropy", mutate: func(s *types.ServiceConfig) { s.Environment["STRIPE"] = str("sk9Xq2LmA7vB4nR8tY1wZ3cD") }, want: "environment: STRIPE has a high-entropy value"},
		{name: "from host env", mutate: func(s *types.ServiceConfig) { s.Environment["DB_PASSWORD"] = nil }},
		{name: "empty", mutate: func(s *types.ServiceConfig) { s.Environment["DB_PASSWORD"] = str("") }},
		{name: "file reference", mutate: func(s *types.ServiceConfig) { s.Environment["MYSQL_ROOT_PASSWORD_FILE"] = str("/run/secrets/root") }},
		{name: "switch", mutate: func(s *types.ServiceConfig) { s.Environment["ALLOW_EMPTY_PASSWORD"] = str("yes") }},
		{name: "plain values", mutate: func(s *types.ServiceConfig) {
			s.Environment["JAVA_CLASS"] = str("OrganizationSettingsManagerFactory")
			s.Environment["UUID"] = str("550e8400-e29b-41d4-a716-446655440000")
			s.Environment["GIT_SHA"] = str("4b825dc642cb6eb9a060e54bf8d69288fbee4904")
			s.Environment["PATH"] = str("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")
		}},
	},
	"latest-tag": {
		{name: "no tag", mutate: func(s *types.ServiceConfig) { s.Image = "nginx" }, want: `image: "nginx" has no tag, so it means :latest`},
		{name: "latest", mutate: func(s *types.ServiceConfig) { s.Image = "ghcr.io/acme/web:latest" }, want: `image: "ghcr.io/acme/web:latest" uses the mutable :latest tag`},
		{name: "registry port no tag", mutate: func(s *types.ServiceConfig) { s.Image = "localhost:5000/web" }, want: "has no tag"},
		{name: "built by the project", mutate: func(s *types.ServiceConfig) { s.Image = "acme/web"; s.Build = &types.BuildConfig{Context: "."} }},
		{name: "built by the project, latest", mutate: func(s *types.ServiceConfig) { s.Image = "acme/web:latest"; s.Build = &types.BuildConfig{Context: "."} }},
		{name: "build-only", mutate: func(s *types.ServiceConfig) { s.Image = ""; s.Build = &types.BuildConfig{Context: "."} }},
		{name: "tag", mutate: func(s *types.ServiceConfig) { s.Image = "localhost:5000/web:1.2.3" }},
		{name: "digest", mutate: func(s *types.ServiceConfig) {
			s.Image = "nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000"
		}},
		{name: "latest with digest", mutate: func(s *types.ServiceConfig) {
			s.Image = "nginx:latest@sha256:0000000000000000000000000000000000000000000000000000000000000000"
		}},
	},
	"host-dirs": {
		{name: "etc", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/etc", Target: "/host/etc", ReadOnly: true}}
		}, want: `volumes: "/etc:/host/etc:ro" mounts the host's /etc (read-only)`},
		{name: "root", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/", Target: "/rootfs"}}
		}, want: `volumes: "/:/rootfs" mounts the host's / (read-write)`},
		{name: "proc with a trailing slash", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/proc/", Target: "/host/proc", ReadOnly: true}}
		}, want: `mounts the host's /proc (read-only)`},
		{name: "under usr read-write", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/usr/local/bin", Target: "/tools"}}
		}, want: `volumes: "/usr/local/bin:/tools" mounts /usr/local/bin, under the host's /usr, read-write`},
		{name: "localtime read-only", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{{Type: "bind", Source: "/etc/localtime", Target: "/etc/localtime", ReadOnly: true}}
		}},
		{name: "project dirs and volumes", mutate: func(s *types.ServiceConfig) {
			s.Volumes = []types.ServiceVolumeConfig{
				{Type: "bind", Source: "/srv/app/data", Target: "/data"}, {Type: "bind", Source: "/etcetera", Target: "/x"},
				{Type: "volume", Source: "etc", Target: "/etc/app"}, {Type: "tmpfs", Target: "/dev/shm"},
			}
		}},
	},
	"log-rotation": {
		{name: "no logging", mutate: func(s *types.ServiceConfig) { s.Logging = nil },
			want: "no logging: and no x-lifecycle.logs: the engine's default driver (json-file, unless the daemon is configured otherwise) keeps logs without a size limit"},
		{name: "json-file without max-size", mutate: func(s *types.ServiceConfig) {
			s.Logging = &types.LoggingConfig{Driver: "json-file", Options: map[string]string{"max-file": "3"}}
		}, want: "logging: json-file without options.max-size keeps logs without a size limit"},
		{name: "options without driver or max-size", mutate: func(s *types.ServiceConfig) {
			s.Logging = &types.LoggingConfig{Options: map[string]string{"compress": "true"}}
		}, want: "logging: the engine's default driver without options.max-size"},
		{name: "no logging, x-lifecycle.logs", mutate: func(s *types.ServiceConfig) { s.Logging = nil },
			cfg: Config{Defaults: Defaults{LogRotation: true}}},
		{name: "json-file with max-size", mutate: func(s *types.ServiceConfig) {
			s.Logging = &types.LoggingConfig{Driver: "json-file", Options: map[string]string{"max-size": "10m"}}
		}},
		{name: "syslog ships logs off the engine", mutate: func(s *types.ServiceConfig) { s.Logging = &types.LoggingConfig{Driver: "syslog"} }},
	},
	"public-ports": {
		{name: "no host_ip", mutate: func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8080", Protocol: "tcp"}}
		},
			want: `ports: "8080:80" binds 0.0.0.0 (every host interface)`},
		{name: "random host port udp", mutate: func(s *types.ServiceConfig) { s.Ports = []types.ServicePortConfig{{Target: 53, Protocol: "udp"}} },
			want: `ports: "53/udp" binds 0.0.0.0`},
		{name: "explicit any", mutate: func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{HostIP: "0.0.0.0", Target: 443, Published: "443"}}
		}, want: `ports: "0.0.0.0:443:443" binds every host interface`},
		{name: "loopback", mutate: func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{HostIP: "127.0.0.1", Target: 80, Published: "80"}, {HostIP: "::1", Target: 80, Published: "80"}}
		}},
		{name: "expose only", mutate: func(s *types.ServiceConfig) { s.Ports = nil; s.Expose = types.StringOrNumberList{"80"} }},
	},
}

func TestGoodServicePassesEveryRule(t *testing.T) {
	findings, err := Evaluate(project(good()), map[string]ImageFacts{"nginx:1.27": {Found: true}}, Config{})
	assert.NilError(t, err)
	assert.Check(t, is.Len(findings, 0), "%v", findings)
}

func TestRules(t *testing.T) {
	kebab := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	seen := map[string]bool{}
	for _, r := range Rules() {
		assert.Check(t, kebab.MatchString(r.ID), r.ID)
		assert.Check(t, !seen[r.ID], "duplicate rule %s", r.ID)
		seen[r.ID] = true
		assert.Check(t, r.Title != "" && r.Remediation != "", r.ID)
	}
	for _, id := range DefaultDeny() {
		assert.Check(t, seen[id], "default-deny rule %s does not exist", id)
	}
	assert.DeepEqual(t, Rules(), Rules())
	rs := Rules()
	rs[0].ID = "changed"
	assert.Check(t, Rules()[0].ID != "changed", "Rules must return a copy")
}

// TestRuleFixtures runs, for every rule, its violating and compliant fixtures.
func TestRuleFixtures(t *testing.T) {
	for _, r := range Rules() {
		cases := fixtures[r.ID]
		var violating, compliant int
		for _, c := range cases {
			if c.want != "" {
				violating++
			} else {
				compliant++
			}
		}
		assert.Check(t, violating > 0 && compliant > 0, "rule %s needs violating and compliant fixtures", r.ID)
		for _, c := range cases {
			t.Run(r.ID+"/"+c.name, func(t *testing.T) {
				svc := good()
				c.mutate(&svc)
				findings, err := Evaluate(project(svc), c.images, c.cfg)
				assert.NilError(t, err)
				var got []Finding
				for _, f := range findings {
					if f.Rule == r.ID {
						got = append(got, f)
					}
				}
				if c.want == "" {
					assert.Check(t, is.Len(got, 0), "%v", got)
					return
				}
				assert.Assert(t, is.Len(got, 1), "%v", got)
				assert.Check(t, is.Contains(got[0].Message, c.want))
				wantCIS := r.CIS
				if c.cis != "" {
					wantCIS = c.cis
				}
				assert.Check(t, is.Equal(got[0].CIS, wantCIS))
				assert.Check(t, is.Equal(got[0].Service, "web"))
			})
		}
	}
	for id := range fixtures {
		_, ok := ruleIndex[id]
		assert.Check(t, ok, "fixtures for unknown rule %s", id)
	}
}
