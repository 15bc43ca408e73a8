package rollout

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

const securityProject = `
name: demo
x-lifecycle:
  policy: {deny: [host-dirs]}
services:
  web:
    image: app
    mem_limit: 64m
    restart: unless-stopped
    cap_add: [NET_ADMIN]
  admin:
    image: app
    volumes: ["/etc:/host-etc:ro"]
    x-lifecycle:
      allow: [{rule: host-dirs, reason: reads the host's config}]
`

// replica is a container as a deploy of service creates it from p.
func replica(t *testing.T, p *compose.Project, service, id string) engine.ContainerDetails {
	t.Helper()
	hash, err := compose.ConfigHash(p, service)
	assert.NilError(t, err)
	c, err := compose.Container(p, service, compose.ReplicaLabels{Number: 1, Revision: 1, ConfigHash: hash, ImageID: "sha256:aaa"})
	assert.NilError(t, err)
	return engine.ContainerDetails{ID: id, Name: c.Name, State: "running", ImageID: "sha256:aaa", Labels: c.Config.Labels, Config: c.Config, HostConfig: c.HostConfig,
		Networks: []string{"demo_default"}}
}

func securityGuard(t *testing.T, p *compose.Project) (*guard, *[]GuardAlert) {
	var alerts []GuardAlert
	return &guard{project: encodedTarget(t, p), said: map[string]map[string]string{}, baseline: map[string]DriftSettings{},
		opts: GuardOptions{Alert: func(a GuardAlert) { alerts = append(alerts, a) }}}, &alerts
}

func kinds(alerts []GuardAlert) []string {
	var out []string
	for _, a := range alerts {
		out = append(out, a.Kind)
	}
	return out
}

// TestGuardJudgesReplicas: a deploy's replicas as created are not reported (a warning
// rule the deploy let through, an allowed denied rule); a setting changed by docker
// update is drift against the deployed configuration, said once, and again after it
// was set back and changed anew; an image other than the recorded one is image drift.
func TestGuardJudgesReplicas(t *testing.T) {
	p := loadProject(t, securityProject)
	g, alerts := securityGuard(t, p)
	web, admin := replica(t, p, "web", "w1"), replica(t, p, "admin", "a1")
	g.judge(web)
	g.judge(admin)
	assert.Check(t, is.Len(*alerts, 0), "%v", *alerts)

	updated := web
	hc := *web.HostConfig
	hc.Memory = 96 << 20
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 3}
	updated.HostConfig = &hc
	g.judge(updated)
	g.judge(updated) // a re-synchronisation: not said again
	assert.Assert(t, is.Len(*alerts, 1))
	a := (*alerts)[0]
	assert.Check(t, is.Equal(a.Kind, AlertDrift))
	assert.Check(t, is.Equal(a.Action, ActionReported))
	assert.Check(t, is.Equal(a.Baseline, "deployed"))
	assert.Check(t, is.DeepEqual(a.Changes, []DriftChange{
		{Setting: "memory", Deployed: "67108864", Now: "100663296"},
		{Setting: "restart", Deployed: "unless-stopped", Now: "on-failure:3"},
	}))
	assert.Check(t, is.Contains(a.Reason, "memory 67108864 → 100663296"))

	g.judge(web) // set back
	g.judge(updated)
	assert.Check(t, is.Len(*alerts, 2))

	other := web
	other.ImageID = "sha256:bbb"
	g.judge(other)
	assert.Assert(t, is.Len(*alerts, 3))
	a = (*alerts)[2]
	assert.Check(t, is.Equal(a.Kind, AlertImageDrift))
	assert.Check(t, is.Equal(a.ImageID, "sha256:bbb"))
	assert.Check(t, is.Equal(a.DeployedImageID, "sha256:aaa"))
}

// TestGuardJudgesUnknownConfigByFirstSight: a replica whose config hash is not the
// compose file's (an older revision, a changed file) is compared with what the guard
// first saw of it.
func TestGuardJudgesUnknownConfigByFirstSight(t *testing.T) {
	p := loadProject(t, securityProject)
	g, alerts := securityGuard(t, p)
	web := replica(t, p, "web", "w1")
	web.Labels = map[string]string{}
	for k, v := range replica(t, p, "web", "w1").Labels {
		web.Labels[k] = v
	}
	web.Labels[compose.LabelConfigHash] = "older"
	hc := *web.HostConfig
	hc.Memory = 32 << 20 // not the file's 64m: that revision had its own
	web.HostConfig = &hc
	g.judge(web)
	assert.Check(t, is.Len(*alerts, 0), "%v", *alerts)

	hc2 := hc
	hc2.NanoCPUs = 500_000_000
	updated := web
	updated.HostConfig = &hc2
	g.judge(updated)
	assert.Assert(t, is.Len(*alerts, 1))
	assert.Check(t, is.Equal((*alerts)[0].Baseline, "first-seen"))
	assert.Check(t, is.DeepEqual((*alerts)[0].Changes, []DriftChange{{Setting: "cpus", Deployed: "0", Now: "0.5"}}))

	g.forget("w1") // destroyed: a new container of that ID starts over
	g.judge(updated)
	assert.Check(t, is.Len(*alerts, 1))
}

// TestGuardJudgesStrangers: a container started with the project's label by hand is
// drift (no deploy created it) and, privileged with the socket and a host directory,
// breaks the security rules, each reported; the plugin's own containers are not judged,
// a "guard" that is not the project's guard is.
func TestGuardJudgesStrangers(t *testing.T) {
	p := loadProject(t, securityProject)
	g, alerts := securityGuard(t, p)
	stranger := engine.ContainerDetails{ID: "s1", Name: "intruder", State: "running", ImageID: "sha256:ccc",
		Labels: map[string]string{compose.LabelProject: "demo"},
		Config: &container.Config{Image: "alpine"},
		HostConfig: &container.HostConfig{Privileged: true, CapAdd: []string{"SYS_ADMIN"}, PidMode: "host",
			Binds: []string{"/var/run/docker.sock:/var/run/docker.sock", "/etc:/x"}},
	}
	g.judge(stranger)
	g.judge(stranger)
	assert.Assert(t, is.DeepEqual(kinds(*alerts), []string{AlertPolicy, AlertDrift}))
	var rules []string
	for _, f := range (*alerts)[0].Findings {
		rules = append(rules, f.Rule)
	}
	assert.Check(t, is.DeepEqual(rules, []string{"cap-add", "docker-socket", "host-dirs", "host-pid", "privileged"}))
	assert.Check(t, is.Contains((*alerts)[1].Reason, "no deploy created"))

	*alerts = nil
	own := func(id, name, role string) engine.ContainerDetails {
		d := stranger
		d.ID, d.Name = id, name
		d.Labels = map[string]string{compose.LabelProject: "demo", compose.LabelRole: role, compose.LabelManagedBy: compose.ManagedByValue}
		return d
	}
	g.judge(own("r1", "demo-router", compose.RoleRouter))
	g.judge(own("s2", "demo-web-secrets", compose.RoleSecrets))
	g.judge(own("g1", "demo-guard", compose.RoleGuard))
	assert.Check(t, is.Len(*alerts, 0), "%v", *alerts)
	g.judge(own("g2", "not-the-guard", compose.RoleGuard))
	assert.Check(t, is.DeepEqual(kinds(*alerts), []string{AlertPolicy, AlertDrift}))

	*alerts = nil
	stopped := stranger
	stopped.ID, stopped.State = "s3", "exited"
	g.judge(stopped)
	assert.Check(t, is.Len(*alerts, 0))
}

// TestGuardJudgesDeniedRulesOnReplicas: a replica breaking a rule the project denies
// (x-lifecycle.policy.deny, no allow exception) is reported, with the rule's finding.
func TestGuardJudgesDeniedRulesOnReplicas(t *testing.T) {
	p := loadProject(t, securityProject)
	g, alerts := securityGuard(t, p)
	web := replica(t, p, "web", "w1")
	hc := *web.HostConfig
	hc.Binds = []string{"/etc:/host-etc:ro"} // as admin has, without its exception
	web.HostConfig = &hc
	g.judge(web)
	assert.Assert(t, is.DeepEqual(kinds(*alerts), []string{AlertPolicy}))
	assert.Check(t, is.Equal((*alerts)[0].Findings[0].Rule, "host-dirs"))
	assert.Check(t, is.Equal((*alerts)[0].Findings[0].Service, "web"))
}

// TestGuardReportsUpdateEvents drives the loop: an update event re-reads the container
// and reports the drift; a container started by hand is reported on its start event.
func TestGuardReportsUpdateEvents(t *testing.T) {
	p := loadProject(t, securityProject)
	var mu sync.Mutex
	containers := map[string]engine.ContainerDetails{"w1": replica(t, p, "web", "w1")}
	events := make(chan engine.Event)
	alerts := make(chan GuardAlert, 8)
	f := &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
			mu.Lock()
			defer mu.Unlock()
			var out []engine.Container
			for id, d := range containers {
				out = append(out, engine.Container{ID: id, Name: d.Name, State: d.State, Labels: d.Labels})
			}
			return out, nil
		},
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			mu.Lock()
			defer mu.Unlock()
			d, ok := containers[id]
			if !ok {
				return d, engine.ErrNotFound
			}
			return d, nil
		},
		EventsFn: func(ctx context.Context, labels map[string]string, actions []string) (<-chan engine.Event, <-chan error) {
			assert.Check(t, is.Contains(actions, engine.EventUpdate))
			assert.Check(t, is.Contains(actions, engine.EventConnect))
			return events, make(chan error, 1)
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Guard(ctx, f, encodedTarget(t, p), GuardOptions{Alert: func(a GuardAlert) { alerts <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		assert.Check(t, <-done)
	})
	next := func() GuardAlert {
		t.Helper()
		select {
		case a := <-alerts:
			return a
		case <-time.After(5 * time.Second):
			t.Fatal("no alert within 5s")
		}
		return GuardAlert{}
	}

	mu.Lock()
	d := containers["w1"]
	hc := *d.HostConfig
	hc.Memory = 96 << 20
	d.HostConfig = &hc
	containers["w1"] = d
	mu.Unlock()
	events <- engine.Event{Action: engine.EventUpdate, ContainerID: "w1", Name: d.Name}
	a := next()
	assert.Check(t, is.Equal(a.Kind, AlertDrift))
	assert.Check(t, is.Equal(a.Container, "demo-web-r1-1"))
	assert.Check(t, is.DeepEqual(a.Changes, []DriftChange{{Setting: "memory", Deployed: "67108864", Now: "100663296"}}))

	// A connection to another network: its event names the container; one of a
	// container the guard does not watch (the engine's other containers) is ignored.
	events <- engine.Event{Action: engine.EventConnect, ContainerID: "elsewhere", Detail: "bridge"}
	mu.Lock()
	d = containers["w1"]
	d.Networks = []string{"bridge", "demo_default"}
	containers["w1"] = d
	mu.Unlock()
	events <- engine.Event{Action: engine.EventConnect, ContainerID: "w1", Detail: "bridge"}
	a = next()
	assert.Check(t, is.Equal(a.Kind, AlertDrift))
	assert.Check(t, is.DeepEqual(a.Changes, []DriftChange{
		{Setting: "memory", Deployed: "67108864", Now: "100663296"},
		{Setting: "networks", Deployed: "demo_default", Now: "bridge,demo_default"},
	}))

	mu.Lock()
	containers["s1"] = engine.ContainerDetails{ID: "s1", Name: "intruder", State: "running", Labels: map[string]string{compose.LabelProject: "demo"},
		Config: &container.Config{}, HostConfig: &container.HostConfig{Privileged: true}}
	mu.Unlock()
	events <- engine.Event{Action: engine.EventStart, ContainerID: "s1", Name: "intruder"}
	assert.Check(t, is.Equal(next().Kind, AlertPolicy))
	assert.Check(t, is.Equal(next().Kind, AlertDrift))
}
