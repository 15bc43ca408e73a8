package compose

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The strategy a service gets when it sets none: rolling, unless it cannot run twice or
// another service waits for it to complete; a top-level strategy is the project's default.
func TestLoadDefaultStrategy(t *testing.T) {
	tests := []struct {
		name    string
		compose string
		want    map[string]string
	}{
		{
			name:    "plain service: rolling",
			compose: "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n",
			want:    map[string]string{"web": StrategyRolling},
		},
		{
			name: "volumes: a read-write named volume means recreate",
			compose: `
services:
  rw:
    image: x
    volumes: [data:/data]
  long:
    image: x
    volumes: [{type: volume, source: data, target: /data}]
  ro:
    image: x
    volumes: [data:/data:ro]
  bind:
    image: x
    volumes: [./src:/src]
  anon:
    image: x
    volumes: [/cache]
  tmp:
    image: x
    volumes: [{type: tmpfs, target: /tmp}]
volumes:
  data: {}
`,
			want: map[string]string{
				"rw": StrategyRecreate, "long": StrategyRecreate,
				"ro": StrategyRolling, "bind": StrategyRecreate, "anon": StrategyRecreate, "tmp": StrategyRolling,
			},
		},
		{
			name: "ports the router does not carry: UDP and a host port range",
			compose: `
services:
  dns:
    image: x
    ports: ["53:53/udp"]
  range:
    image: x
    ports: ["8000-8001:80"]
  tcp:
    image: x
    ports: ["53:53/tcp"]
`,
			want: map[string]string{"dns": StrategyRecreate, "range": StrategyRecreate, "tcp": StrategyRolling},
		},
		{
			name: "a one-shot that another service waits to complete: recreate",
			compose: `
services:
  migrate:
    image: x
    restart: "no"
  seed:
    image: x
  web:
    image: x
    depends_on:
      migrate: {condition: service_completed_successfully}
      seed: {condition: service_started}
`,
			want: map[string]string{"migrate": StrategyRecreate, "seed": StrategyRolling, "web": StrategyRolling},
		},
		{
			name: "project default, but not for services that cannot run twice",
			compose: `
x-lifecycle:
  strategy: blue-green
services:
  web:
    image: x
  own:
    image: x
    x-lifecycle: {strategy: canary}
  db:
    image: x
    volumes: [data:/data]
  migrate:
    image: x
  api:
    image: x
    depends_on:
      migrate: {condition: service_completed_successfully}
volumes:
  data: {}
`,
			want: map[string]string{
				"web": StrategyBlueGreen, "own": StrategyCanary, "api": StrategyBlueGreen,
				"db": StrategyRecreate, "migrate": StrategyRecreate,
			},
		},
		{
			name: "project default recreate",
			compose: `
x-lifecycle: {strategy: recreate}
services:
  web:
    image: x
  api:
    image: x
    x-lifecycle: {strategy: rolling}
`,
			want: map[string]string{"web": StrategyRecreate, "api": StrategyRolling},
		},
		{
			name: "an explicit recreate is kept for anything",
			compose: `
services:
  web:
    image: x
    x-lifecycle: {strategy: recreate}
`,
			want: map[string]string{"web": StrategyRecreate},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := loadFiles(t, map[string]string{"compose.yaml": tc.compose}, LoadOptions{ProjectName: "shop"})
			assert.NilError(t, err)
			got := map[string]string{}
			for name, s := range p.ServiceSpecs {
				got[name] = s.Strategy
				assert.Check(t, is.Equal(s.Routed(), s.Strategy != StrategyRecreate), name)
			}
			assert.DeepEqual(t, got, tc.want)
		})
	}
}

// The rollout settings that Load resolves from x-lifecycle and the compose service.
func TestLoadResolvesRollout(t *testing.T) {
	tests := []struct {
		name  string
		extra string // appended to services.web
		check func(t *testing.T, s ServiceSpec)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, s ServiceSpec) {
				want := resolved(StrategyRolling, Duration(DefaultWaitTimeout))
				want.StrategyReason = "the default"
				assert.DeepEqual(t, s, want)
			},
		},
		{
			name:  "drain defaults to stop_grace_period",
			extra: "    stop_grace_period: 45s\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, s.Drain, Duration(45*time.Second)) },
		},
		{
			name:  "an explicit drain wins over stop_grace_period",
			extra: "    stop_grace_period: 45s\n    x-lifecycle: {drain: 3s}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, s.Drain, Duration(3*time.Second)) },
		},
		{
			name:  "history 0 keeps no previous revision",
			extra: "    x-lifecycle: {history: 0}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.DeepEqual(t, s.History, ptr(0)) },
		},
		{
			name:  "protocol tcp",
			extra: "    x-lifecycle: {protocol: tcp}\n",
			check: func(t *testing.T, s ServiceSpec) {
				assert.Equal(t, s.Protocol, "tcp")
				assert.Equal(t, s.SniffWindow, Duration(0))
			},
		},
		{
			name:  "protocol auto by default, with the default sniff window",
			extra: "",
			check: func(t *testing.T, s ServiceSpec) {
				assert.Equal(t, s.Protocol, "auto")
				assert.Equal(t, s.SniffWindow, Duration(200*time.Millisecond))
			},
		},
		{
			name:  "sniff window",
			extra: "    x-lifecycle: {protocol: auto, sniff-window: 50ms}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, s.SniffWindow, Duration(50*time.Millisecond)) },
		},
		{
			name:  "active check with protocol auto",
			extra: "    x-lifecycle: {active-check: {path: /healthz}}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, s.ActiveCheck.Path, "/healthz") },
		},
		{
			name:  "active check",
			extra: "    x-lifecycle: {active-check: {path: /healthz, interval: 500ms}}\n",
			check: func(t *testing.T, s ServiceSpec) {
				assert.DeepEqual(t, s.ActiveCheck, &ActiveCheckSpec{Path: "/healthz", Interval: Duration(500 * time.Millisecond)})
			},
		},
		{
			name:  "blue-green settings",
			extra: "    x-lifecycle:\n      strategy: blue-green\n      blue-green: {promote: manual, scale-down-delay: 2m}\n",
			check: func(t *testing.T, s ServiceSpec) {
				assert.DeepEqual(t, s.BlueGreen, BlueGreenSpec{Promote: PromoteManual, ScaleDownDelay: Duration(2 * time.Minute)})
			},
		},
		{
			name:  "canary steps: pauses default to 30s, 100 is a valid last step",
			extra: "    x-lifecycle:\n      strategy: canary\n      canary:\n        steps: [{weight: 1}, {weight: 25, pause: 2m}, {weight: 100}]\n        analysis: {max-error-rate: 0.5, max-p99: 300ms, min-requests: 50}\n",
			check: func(t *testing.T, s ServiceSpec) {
				assert.DeepEqual(t, s.Canary, CanarySpec{
					Steps: []CanaryStep{
						{Weight: 1, Pause: Duration(30 * time.Second)},
						{Weight: 25, Pause: Duration(2 * time.Minute)},
						{Weight: 100, Pause: Duration(30 * time.Second)},
					},
					Analysis: AnalysisSpec{MaxErrorRate: new(0.5), MaxP99: Duration(300 * time.Millisecond), MinRequests: 50},
				})
			},
		},
		{
			name:  "max-error-rate 1 is the upper bound",
			extra: "    x-lifecycle: {canary: {analysis: {max-error-rate: 1}}}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, *s.Canary.Analysis.MaxErrorRate, 1.0) },
		},
		{
			name:  "max-error-rate 0 means no error at all",
			extra: "    x-lifecycle: {canary: {analysis: {max-error-rate: 0}}}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, *s.Canary.Analysis.MaxErrorRate, 0.0) },
		},
		{
			name:  "update_config and rollback_config",
			extra: "    deploy:\n      update_config: {parallelism: 2, delay: 5s, order: stop-first, monitor: 10s, failure_action: pause, max_failure_ratio: 0}\n      rollback_config: {parallelism: 3, failure_action: rollback}\n",
			check: func(t *testing.T, s ServiceSpec) {
				assert.DeepEqual(t, s.Update, UpdateSpec{
					Parallelism: 2, Delay: Duration(5 * time.Second), Order: OrderStopFirst,
					Monitor: Duration(10 * time.Second), FailureAction: FailurePause,
				})
				assert.DeepEqual(t, s.Rollback, UpdateSpec{Parallelism: 3, Order: OrderStartFirst, FailureAction: FailureRollback})
			},
		},
		{
			name:  "update_config alone leaves rollback_config at its defaults",
			extra: "    deploy:\n      update_config: {order: start-first}\n",
			check: func(t *testing.T, s ServiceSpec) {
				want := UpdateSpec{Parallelism: 1, Order: OrderStartFirst, FailureAction: FailureRollback}
				assert.DeepEqual(t, s.Update, want)
				assert.DeepEqual(t, s.Rollback, want)
			},
		},
		{
			name:  "replicas with a published port are fine behind the router",
			extra: "    ports: [\"8080:80\"]\n    deploy:\n      replicas: 3\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, s.Strategy, StrategyRolling) },
		},
		{
			name:  "replicas without a published port are fine with recreate",
			extra: "    ports: [\"80\"]\n    deploy:\n      replicas: 3\n    x-lifecycle: {strategy: recreate}\n",
			check: func(t *testing.T, s ServiceSpec) { assert.Equal(t, s.Strategy, StrategyRecreate) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := loadFiles(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n" + tc.extra}, LoadOptions{ProjectName: "shop"})
			assert.NilError(t, err)
			tc.check(t, p.ServiceSpecs["web"])
		})
	}
}

func TestLoadRolloutErrors(t *testing.T) {
	tests := []struct {
		name     string
		compose  string // services.web's extra lines, or a whole file when it starts with "x-" or "services:"
		notSpec  bool   // compose-go's own error, not ErrInvalidSpec
		is       error  // also errors.Is this
		contains []string
	}{
		{
			name:     "explicit rolling with a read-write named volume",
			compose:  "    volumes: [data:/data]\n    x-lifecycle: {strategy: rolling}\nvolumes:\n  data: {}\n",
			contains: []string{`key "strategy": "rolling" runs old and new containers side by side, but it mounts volume "data" read-write (two writers could corrupt it); use "recreate"`},
		},
		{
			name:     "explicit blue-green with a UDP port",
			compose:  "    ports: [\"53:53/udp\"]\n    x-lifecycle: {strategy: blue-green}\n",
			contains: []string{`"blue-green" runs old and new containers side by side, but it publishes UDP port 53, which the router does not carry; use "recreate"`},
		},
		{
			name:     "explicit canary with a host port range",
			compose:  "    ports: [\"8000-8001:80\"]\n    x-lifecycle: {strategy: canary}\n",
			contains: []string{`"canary" runs old and new containers side by side, but it publishes the port range 8000-8001`},
		},
		{
			name:     "project default rolling: a read-write volume still means recreate, so replicas with a host port are refused",
			compose:  "x-lifecycle: {strategy: rolling}\nservices:\n  web:\n    image: nginx\n    volumes: [data:/data]\n    ports: [\"8080:80\"]\n    scale: 2\nvolumes:\n  data: {}\n",
			contains: []string{"publishes host port 8080 and has 2 replicas with the recreate strategy"},
		},
		{name: "negative history", compose: "    x-lifecycle: {history: -1}\n", contains: []string{`key "history" must not be negative, got -1`}},
		{name: "protocol udp", compose: "    x-lifecycle: {protocol: udp}\n", contains: []string{`key "protocol": want "auto", "http" or "tcp", got "udp"`}},
		{name: "sniff window with protocol http", compose: "    x-lifecycle: {protocol: http, sniff-window: 1s}\n", contains: []string{`key "sniff-window" needs protocol "auto", not "http"`}},
		{name: "sniff window too long", compose: "    x-lifecycle: {sniff-window: 1m}\n", contains: []string{`key "sniff-window" must be between 0 and 10s, got 1m0s`}},
		{name: "active check with protocol tcp", compose: "    x-lifecycle: {protocol: tcp, active-check: {path: /h}}\n", contains: []string{`remove active-check or use protocol http or auto`}},
		{name: "protocol in capitals", compose: "    x-lifecycle: {protocol: HTTP}\n", contains: []string{`key "protocol": want "auto", "http" or "tcp", got "HTTP"`}},
		{name: "active check path", compose: "    x-lifecycle: {active-check: {path: healthz}}\n", contains: []string{`key "active-check.path" must be an HTTP path starting with /, got "healthz"`}},
		{name: "active check interval", compose: "    x-lifecycle: {active-check: {path: /, interval: -1s}}\n", contains: []string{`'active-check.interval' duration "-1s" must not be negative`}},
		{name: "active check on tcp", compose: "    x-lifecycle: {protocol: tcp, active-check: {path: /}}\n", contains: []string{`key "active-check": the router checks backends over HTTP, but the service's protocol is "tcp"`}},
		{name: "active check unknown key", compose: "    x-lifecycle: {active-check: {path: /, timeout: 1s}}\n", contains: []string{"timeout"}},
		{name: "promote", compose: "    x-lifecycle: {blue-green: {promote: later}}\n", contains: []string{`key "blue-green.promote": want "auto" or "manual", got "later"`}},
		{
			name:     "preview port without a published port",
			compose:  "    x-lifecycle: {strategy: blue-green, blue-green: {preview-port: \"127.0.0.1:8081\"}}\n",
			contains: []string{`key "blue-green.preview-port": the service publishes no port to preview`},
		},
		{
			name:     "preview port of another strategy",
			compose:  "    x-lifecycle: {strategy: rolling, blue-green: {preview-port: \"8081\"}}\n",
			contains: []string{`key "blue-green.preview-port" needs strategy "blue-green", not "rolling"`},
		},
		{
			name:     "preview port not a port",
			compose:  "    x-lifecycle: {strategy: blue-green, blue-green: {preview-port: \"127.0.0.1:http\"}}\n",
			contains: []string{`key "blue-green.preview-port": want [HOST:]PORT, got "127.0.0.1:http"`},
		},
		{name: "unknown blue-green key", compose: "    x-lifecycle: {blue-green: {promotion: manual}}\n", contains: []string{`unknown key "blue-green.promotion" (valid keys: promote, scale-down-delay, preview-port)`}},
		{name: "unknown canary key", compose: "    x-lifecycle: {canary: {step: []}}\n", contains: []string{`unknown key "canary.step" (valid keys: steps, analysis)`}},
		{name: "unknown canary analysis key", compose: "    x-lifecycle: {canary: {analysis: {error-rate: 0.1}}}\n", contains: []string{`unknown key "canary.analysis.error-rate" (valid keys: max-error-rate, max-p99, min-requests)`}},
		{name: "unknown canary step key", compose: "    x-lifecycle: {canary: {steps: [{weight: 10}, {weight: 20, wait: 1m}]}}\n", contains: []string{`unknown key "canary.steps[1].wait"`}},
		{name: "weights must rise", compose: "    x-lifecycle: {canary: {steps: [{weight: 50}, {weight: 10}]}}\n", contains: []string{`key "canary.steps[1].weight": weights must rise from 1 to 100, got 10 after 50`}},
		{name: "weights must not repeat", compose: "    x-lifecycle: {canary: {steps: [{weight: 50}, {weight: 50}]}}\n", contains: []string{`key "canary.steps[1].weight": weights must rise from 1 to 100, got 50 after 50`}},
		{name: "weight 0", compose: "    x-lifecycle: {canary: {steps: [{weight: 0}]}}\n", contains: []string{`key "canary.steps[0].weight": weights must rise from 1 to 100, got 0 after 0`}},
		{name: "weight above 100", compose: "    x-lifecycle: {canary: {steps: [{weight: 10}, {weight: 101}]}}\n", contains: []string{`key "canary.steps[1].weight": weights must rise from 1 to 100, got 101 after 10`}},
		{name: "step without a weight", compose: "    x-lifecycle: {canary: {steps: [{pause: 1m}]}}\n", contains: []string{`key "canary.steps[0].weight"`}},
		{name: "max-error-rate above 1", compose: "    x-lifecycle: {canary: {analysis: {max-error-rate: 1.5}}}\n", contains: []string{`key "canary.analysis.max-error-rate" must be between 0 and 1, got 1.5`}},
		{name: "negative max-error-rate", compose: "    x-lifecycle: {canary: {analysis: {max-error-rate: -0.1}}}\n", contains: []string{`key "canary.analysis.max-error-rate" must be between 0 and 1, got -0.1`}},
		{name: "negative min-requests", compose: "    x-lifecycle: {canary: {analysis: {min-requests: -1}}}\n", contains: []string{`key "canary.analysis.min-requests" must not be negative, got -1`}},
		{name: "negative pause", compose: "    x-lifecycle: {canary: {steps: [{weight: 10, pause: -1s}]}}\n", contains: []string{`'canary.steps[0].pause' duration "-1s" must not be negative`}},
		{
			name:     "update_config parallelism 0",
			compose:  "    deploy:\n      update_config: {parallelism: 0}\n",
			contains: []string{`key "deploy.update_config.parallelism": parallelism 0 (all at once) is what the blue-green strategy does`},
		},
		{
			name:     "update_config failure_action",
			compose:  "    deploy:\n      update_config: {failure_action: explode}\n",
			contains: []string{`key "deploy.update_config.failure_action": want rollback, pause or continue, got "explode"`},
		},
		{
			name:     "rollback_config failure_action",
			compose:  "    deploy:\n      rollback_config: {failure_action: retry}\n",
			contains: []string{`key "deploy.rollback_config.failure_action": want rollback, pause or continue, got "retry"`},
		},
		{
			name:     "rollback_config max_failure_ratio",
			compose:  "    deploy:\n      rollback_config: {max_failure_ratio: 2}\n",
			contains: []string{`key "deploy.rollback_config.max_failure_ratio" must be between 0 and 1, got 2`},
		},
		{
			// compose-go's schema knows the two orders and answers first
			name:     "update_config order",
			compose:  "    deploy:\n      update_config: {order: sideways}\n",
			notSpec:  true,
			contains: []string{"services.web.deploy.update_config.order", "start-first", "stop-first"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.compose
			if !strings.HasPrefix(doc, "x-") && !strings.HasPrefix(doc, "services:") {
				doc = "services:\n  web:\n    image: nginx\n" + doc
			}
			p, dir, err := loadFiles(t, map[string]string{"compose.yaml": doc}, LoadOptions{ProjectName: "shop"})
			assert.Assert(t, err != nil, "loaded %+v", p)
			t.Log(err)
			if !tc.notSpec {
				assert.Check(t, errors.Is(err, ErrInvalidSpec), "want ErrInvalidSpec")
				assert.Check(t, is.Contains(err.Error(), filepath.Join(dir, "compose.yaml")+`: service "web": `))
			}
			if tc.is != nil {
				assert.Check(t, errors.Is(err, tc.is), "want errors.Is(%v)", tc.is)
			}
			for _, s := range tc.contains {
				assert.Check(t, is.Contains(err.Error(), s))
			}
		})
	}
}

// resolveRollout on compose services built by hand: the rules that decide the default.
func TestResolveRolloutDefault(t *testing.T) {
	withNamed := types.ServiceConfig{ContainerSpec: types.ContainerSpec{Volumes: []types.ServiceVolumeConfig{
		{Type: types.VolumeTypeVolume, Source: "data", Target: "/data"},
	}}}
	tests := []struct {
		name           string
		svc            types.ServiceConfig
		explicit       string
		projectDefault string
		oneShot        bool
		want           string
		wantErr        string
	}{
		{name: "nothing", want: StrategyRolling},
		{name: "project default", projectDefault: StrategyCanary, want: StrategyCanary},
		{name: "explicit wins over the project", explicit: StrategyBlueGreen, projectDefault: StrategyCanary, want: StrategyBlueGreen},
		{name: "one-shot", oneShot: true, want: StrategyRecreate},
		{name: "one-shot over the project default", oneShot: true, projectDefault: StrategyRolling, want: StrategyRecreate},
		{name: "explicit strategy for a one-shot is kept", oneShot: true, explicit: StrategyRolling, want: StrategyRolling},
		{name: "rw named volume", svc: withNamed, want: StrategyRecreate},
		{name: "rw named volume, explicit rolling", svc: withNamed, explicit: StrategyRolling, wantErr: `mounts volume "data" read-write`},
		{name: "rw named volume, explicit recreate", svc: withNamed, explicit: StrategyRecreate, want: StrategyRecreate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := ServiceSpec{Strategy: tc.explicit}
			err := resolveRollout(tc.svc, &spec, tc.projectDefault, tc.oneShot)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			assert.NilError(t, err)
			assert.Equal(t, spec.Strategy, tc.want)
		})
	}
}

// update_config and rollback_config say how a deploy runs, not what a container is:
// changing them must not replace the containers.
func TestConfigHashLeavesOutUpdateConfig(t *testing.T) {
	base := "services:\n  web:\n    image: app:1\n"
	p1, _ := loadProject(t, base, nil)
	p2, _ := loadProject(t, base+"    deploy:\n      update_config: {parallelism: 2, order: stop-first}\n      rollback_config: {parallelism: 3}\n", nil)
	h1, err := ConfigHash(p1, "web")
	assert.NilError(t, err)
	h2, err := ConfigHash(p2, "web")
	assert.NilError(t, err)
	assert.Equal(t, h1, h2)
}

// Secret files belong to the reference's uid/gid, else the service's user, else the
// image's user, else root; a user or group name is looked up in the image's accounts,
// and without them it is ErrNamedUser, unless the reference sets both ids.
func TestServiceSecretsOwner(t *testing.T) {
	base := "services:\n  web:\n    image: app:1\n%s    secrets: [%s]\nsecrets:\n  key:\n    environment: KEY\n"
	accounts := ParseAccounts(
		[]byte("root:x:0:0:root:/root:/bin/sh\n# a comment\nbroken line\npostgres:x:70:71::/var/lib/postgresql:/bin/sh\nnobody:x:65534:65534:::\n"),
		[]byte("root:x:0:\npostgres:x:71:\nssl-cert:x:101:postgres\n"))
	for _, tc := range []struct {
		user, ref, imageUser string
		accounts             *Accounts
		uid, gid             int
		err                  string
		named                bool // the error is ErrNamedUser: deploy reads the image's accounts
	}{
		{ref: "key", uid: 0, gid: 0},
		{ref: "key", imageUser: "1000", uid: 1000, gid: 1000},
		{user: "    user: \"2000:3000\"\n", ref: "key", imageUser: "1000", uid: 2000, gid: 3000},
		{ref: "{source: key, uid: \"7\", gid: \"8\"}", imageUser: "1000", uid: 7, gid: 8},
		// The reference's ids win over a user name, which then needs no lookup.
		{user: "    user: postgres\n", ref: "{source: key, uid: \"7\", gid: \"8\"}", uid: 7, gid: 8},
		{user: "    user: postgres\n", ref: "{source: key, uid: \"7\"}", err: `secret "key": the secrets' owner is a user name "postgres"`, named: true},
		{user: "    user: postgres\n", ref: "key", err: `user name "postgres", read from the image's /etc/passwd at deploy time`, named: true},
		{ref: "key", imageUser: "nobody", err: `user name "nobody"`, named: true},
		{user: "    user: \"70:ssl-cert\"\n", ref: "key", err: `/etc/group at deploy time`, named: true},
		// With the image's accounts.
		{user: "    user: postgres\n", ref: "key", accounts: accounts, uid: 70, gid: 71},
		{user: "    user: postgres\n", ref: "{source: key, uid: \"7\"}", accounts: accounts, uid: 7, gid: 71},
		{user: "    user: \"postgres:ssl-cert\"\n", ref: "key", accounts: accounts, uid: 70, gid: 101},
		{user: "    user: \"70:ssl-cert\"\n", ref: "key", accounts: accounts, uid: 70, gid: 101},
		{user: "    user: \"postgres:0\"\n", ref: "key", accounts: accounts, uid: 70, gid: 0},
		{ref: "key", imageUser: "nobody", accounts: accounts, uid: 65534, gid: 65534},
		{user: "    user: mysql\n", ref: "key", accounts: accounts,
			err: `service "web": secret "key": user "mysql" is not in the image's /etc/passwd: set uid and gid on each secret reference (secrets: [{source: NAME, uid: "1000", gid: "1000"}]) or a numeric user (user: "1000:1000")`},
		{user: "    user: \"postgres:wheel\"\n", ref: "key", accounts: accounts, err: `group "wheel" is not in the image's /etc/group: set uid and gid`},
		{user: "    user: postgres\n", ref: "key", accounts: ParseAccounts(nil, nil), err: `user "postgres" is not in the image's /etc/passwd`},
	} {
		p, _ := loadProject(t, fmt.Sprintf(base, tc.user, tc.ref), nil)
		files, err := ServiceSecrets(p, "web", tc.imageUser, tc.accounts)
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err), "%+v", tc)
			assert.Check(t, is.Equal(errors.Is(err, ErrNamedUser), tc.named), "%+v: %v", tc, err)
			continue
		}
		assert.Check(t, err, "%+v", tc)
		assert.Check(t, is.DeepEqual(files, []SecretFileSpec{{Secret: "key", Name: "key", Mode: 0o400, UID: tc.uid, GID: tc.gid}}), "%+v", tc)
	}
}

// TestStrategyReasons: the keys under which two copies of a service would hurt make
// recreate its default, and plan shows why (Plan.Strategies).
func TestStrategyReasons(t *testing.T) {
	compose := `
x-lifecycle: {strategy: blue-green}
services:
  named:
    image: x
    container_name: fixed
  bind:
    image: x
    volumes: ["./world:/world"]
  bindro:
    image: x
    volumes: ["./conf:/conf:ro"]
  host:
    image: x
    network_mode: host
  sidecar:
    image: x
    network_mode: service:bindro
  joined:
    image: x
    network_mode: container:other
  device:
    image: x
    devices: ["/dev/null:/dev/xnull"]
  plain:
    image: x
  sharedbind:
    image: x
    volumes: ["./spool:/spool"]
    x-lifecycle: {strategy: rolling}
  own:
    image: x
    x-lifecycle: {strategy: canary}
`
	p, _, err := loadFiles(t, map[string]string{"compose.yaml": compose}, LoadOptions{ProjectName: "shop"})
	assert.NilError(t, err)
	got := map[string]string{}
	for name, s := range p.ServiceSpecs {
		got[name] = s.Strategy + ": " + s.StrategyReason
	}
	assert.DeepEqual(t, got, map[string]string{
		"named":      `recreate: container_name "fixed" is fixed (the engine gives a name to one container)`,
		"bind":       "recreate: it bind-mounts " + filepath.Join(p.WorkingDir, "world") + " read-write (two writers could corrupt it); set x-lifecycle.strategy if two copies are safe",
		"bindro":     "blue-green: the project's x-lifecycle.strategy",
		"host":       "recreate: network_mode is host (two copies would bind the same host ports)",
		"sidecar":    "recreate: network_mode is service:bindro (two copies would share one network stack and its ports)",
		"joined":     "recreate: network_mode is container:other (two copies would share one network stack and its ports)",
		"device":     "recreate: it uses device /dev/null (two copies would share it); set x-lifecycle.strategy if two copies are safe",
		"sharedbind": "rolling: set in the service's x-lifecycle",
		"plain":      "blue-green: the project's x-lifecycle.strategy",
		"own":        "canary: set in the service's x-lifecycle",
	})
	_, _, err = loadFiles(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: x\n    container_name: fixed\n    x-lifecycle: {strategy: rolling}\n"}, LoadOptions{ProjectName: "shop"})
	assert.ErrorContains(t, err, `"rolling" runs old and new containers side by side, but container_name "fixed" is fixed`)
}

// A named user never stops loading (config, lint, plan): its ids are read at deploy time.
func TestLoadAcceptsNamedSecretUser(t *testing.T) {
	p, _ := loadProject(t, "services:\n  db:\n    image: postgres\n    user: postgres\n    secrets: [pw]\nsecrets:\n  pw:\n    environment: PW\n", nil)
	assert.Check(t, is.Len(p.Project.Services["db"].Secrets, 1))
	_, _, err := loadFiles(t, map[string]string{"compose.yaml": "services:\n  db:\n    image: postgres\n    user: postgres\n    secrets: [{source: pw, target: /etc/pw}]\nsecrets:\n  pw:\n    environment: PW\n"}, LoadOptions{})
	assert.Check(t, is.ErrorContains(err, "target /etc/pw is"), "other secret errors still stop the load")
}
