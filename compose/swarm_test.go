package compose

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"
)

const swarmCompose = `
services:
  web:
    image: shop/web:2
    command: ["serve", "--port", "8080"]
    environment: {B: "2", A: "1"}
    labels: {tier: front}
    healthcheck:
      test: ["CMD", "/web", "healthcheck"]
      interval: 4s
      retries: 5
    stop_grace_period: 20s
    networks: [front, back]
    ports: ["8080:8080"]
    deploy:
      replicas: 3
      update_config: {parallelism: 2, delay: 1s}
      resources: {limits: {cpus: "0.5", memory: 64M}}
  worker:
    image: shop/worker:1
    networks:
      back: {aliases: [jobs]}
    deploy:
      update_config: {order: stop-first, failure_action: pause, monitor: 1m}
      rollback_config: {parallelism: 3}
networks:
  front: {}
  back: {internal: true, attachable: true}
`

// TestSwarmServiceGolden pins the whole spec: names and labels as docker stack deploy
// gives them, entrypoint/command as Command/Args, the native update and rollback configs.
func TestSwarmServiceGolden(t *testing.T) {
	p, _ := loadProject(t, swarmCompose, nil)
	for _, service := range []string{"web", "worker"} {
		t.Run(service, func(t *testing.T) {
			spec, err := SwarmService(p, service, nil)
			assert.NilError(t, err)
			b, err := json.MarshalIndent(spec, "", "  ")
			assert.NilError(t, err)
			golden.Assert(t, string(b)+"\n", "swarm-"+service+".golden")
		})
	}
}

func TestSwarmServiceUpdateDefaults(t *testing.T) {
	p, _ := loadProject(t, swarmCompose, nil)
	web, err := SwarmService(p, "web", nil)
	assert.NilError(t, err)
	u := web.UpdateConfig
	assert.Equal(t, u.Order, swarm.UpdateOrder("start-first"))                      // Swarm's own default is stop-first
	assert.Equal(t, u.FailureAction, swarm.FailureAction("rollback"))               // Swarm's own default is pause
	assert.Equal(t, u.Monitor, 20*time.Second)                                      // interval 4s × retries 5
	assert.Equal(t, u.Parallelism, uint64(2))                                       // from update_config
	assert.Equal(t, web.RollbackConfig.FailureAction, swarm.FailureAction("pause")) // a rollback cannot roll back
	worker, err := SwarmService(p, "worker", nil)
	assert.NilError(t, err)
	assert.Equal(t, worker.UpdateConfig.Monitor, time.Minute) // longer than the minimum: kept
	assert.Equal(t, worker.UpdateConfig.Order, swarm.UpdateOrder("stop-first"))
	assert.Equal(t, worker.UpdateConfig.FailureAction, swarm.FailureAction("pause"))
	assert.Equal(t, worker.UpdateConfig.Monitor, time.Minute)
	assert.Equal(t, worker.RollbackConfig.Parallelism, uint64(3))
}

func TestSwarmServiceSpecHash(t *testing.T) {
	p, _ := loadProject(t, swarmCompose, nil)
	a, err := SwarmService(p, "web", nil)
	assert.NilError(t, err)
	b, err := SwarmService(p, "web", nil)
	assert.NilError(t, err)
	assert.Equal(t, a.Labels[LabelSwarmSpec], b.Labels[LabelSwarmSpec])
	assert.Equal(t, len(a.Labels[LabelSwarmSpec]), 64)
	p2, _ := loadProject(t, strings.Replace(swarmCompose, "shop/web:2", "shop/web:3", 1), nil)
	c, err := SwarmService(p2, "web", nil)
	assert.NilError(t, err)
	assert.Assert(t, a.Labels[LabelSwarmSpec] != c.Labels[LabelSwarmSpec])
}

func TestSwarmServiceRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ compose, want string }{
		"volumes": {`
services:
  web: {image: a, volumes: ["data:/data"], x-lifecycle: {strategy: recreate}}
volumes: {data: {}}
`, "keys not yet supported on Swarm: volumes"},
	} {
		t.Run(name, func(t *testing.T) {
			p, _ := loadProject(t, tc.compose, nil)
			_, err := SwarmService(p, "web", nil)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSwarmRevisionServiceRefuses(t *testing.T) {
	for name, tc := range map[string]struct{ compose, want string }{
		"no published port": {`
services:
  web: {image: a, x-lifecycle: {strategy: blue-green}}
`, "service web: blue-green on Swarm switches the router's published ports, and the service publishes none"},
		"canary without a published port": {`
services:
  web: {image: a, x-lifecycle: {strategy: canary}}
`, "service web: canary on Swarm switches the router's published ports, and the service publishes none"},
		"preview and manual": {`
services:
  web: {image: a, ports: ["8080:8080"], x-lifecycle: {strategy: blue-green, blue-green: {promote: manual, preview-port: "9090"}}}
`, "service web: blue-green.preview-port, blue-green.promote: manual not yet available for blue-green on Swarm"},
	} {
		t.Run(name, func(t *testing.T) {
			p, _ := loadProject(t, tc.compose, nil)
			_, err := SwarmRevisionService(p, "web", nil, 1)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSwarmRevisionService(t *testing.T) {
	p, _ := loadProject(t, `
name: shop
services:
  web:
    image: shop/web:1
    ports: ["8080:80"]
    deploy: {replicas: 2, endpoint_mode: dnsrr}
    x-lifecycle: {strategy: blue-green}
  db: {image: db:1}
`, nil)
	other, err := SwarmRevisionService(p, "web", nil, 1)
	assert.NilError(t, err)
	rev, err := SwarmRevisionService(p, "web", nil, 3)
	assert.NilError(t, err)
	assert.Equal(t, rev.Name, "shop_web-r3")
	assert.Equal(t, rev.Labels[LabelSwarmRevision], "3")
	assert.Equal(t, rev.Labels[LabelSwarmService], "web")
	assert.Equal(t, rev.Labels[LabelSwarmSpec], other.Labels[LabelSwarmSpec]) // what runs, not which revision
	assert.DeepEqual(t, rev.EndpointSpec, &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR})
	assert.Equal(t, len(rev.TaskTemplate.Networks), 1)
	assert.Equal(t, len(rev.TaskTemplate.Networks[0].Aliases), 0)

	ports, err := SwarmRoutedPorts(p)
	assert.NilError(t, err)
	assert.Equal(t, len(ports), 1)
	assert.Equal(t, ports[0].Route, "web:8080")
	assert.DeepEqual(t, SwarmRouterNetworks(p), []string{"shop_default"})
	r := SwarmRouterService(p, "agent:x", "node1", ports, SwarmRouterNetworks(p))
	assert.Equal(t, r.Name, "shop_lifecycle-router")
	assert.DeepEqual(t, r.TaskTemplate.Placement.Constraints, []string{"node.id==node1"})
	assert.Equal(t, r.EndpointSpec.Ports[0].PublishMode, swarm.PortConfigPublishModeHost)
	assert.Equal(t, r.EndpointSpec.Ports[0].PublishedPort, uint32(8080))
	assert.Equal(t, r.Labels[LabelStackNamespace], "shop")
	again := SwarmRouterService(p, "agent:x", "node2", ports, SwarmRouterNetworks(p))
	assert.Assert(t, again.Labels[LabelSwarmSpec] != r.Labels[LabelSwarmSpec])
}

func TestSwarmNetworks(t *testing.T) {
	p, _ := loadProject(t, swarmCompose, nil)
	create, external := SwarmNetworks(p)
	assert.Equal(t, len(external), 0)
	assert.Equal(t, len(create), 2)
	assert.Equal(t, create[0].Name, "shop_back")
	assert.Equal(t, create[0].Driver, "overlay")
	assert.Equal(t, create[0].Internal, true)
	assert.Equal(t, create[0].Attachable, true)
	assert.Equal(t, create[0].Labels[LabelStackNamespace], "shop")
	assert.Equal(t, create[1].Name, "shop_front")
}

func TestSwarmEndpointMode(t *testing.T) {
	p, _ := loadProject(t, `
services:
  api: {image: a, deploy: {endpoint_mode: dnsrr}}
  web: {image: a, ports: ["80:80"]}
  bad: {image: a, ports: ["81:80"], deploy: {endpoint_mode: dnsrr}}
`, nil)
	api, err := SwarmService(p, "api", nil)
	assert.NilError(t, err)
	assert.Equal(t, api.EndpointSpec.Mode, swarm.ResolutionModeDNSRR)
	web, err := SwarmService(p, "web", nil)
	assert.NilError(t, err)
	assert.Equal(t, web.EndpointSpec.Mode, swarm.ResolutionModeVIP)
	_, err = SwarmService(p, "bad", nil)
	assert.ErrorContains(t, err, "deploy.endpoint_mode dnsrr and a port published through Swarm's ingress exclude each other")
}

func TestSwarmMonitorDefaults(t *testing.T) {
	p, _ := loadProject(t, `
services:
  plain: {image: a}
  quick:
    image: a
    healthcheck: {test: ["CMD", "true"], interval: 1s, retries: 2}
    deploy: {update_config: {monitor: 2s}}
  slow:
    image: a
    healthcheck: {test: ["CMD", "true"], interval: 10s}
`, nil)
	for service, want := range map[string]time.Duration{"plain": 5 * time.Second, "quick": 2 * time.Second, "slow": 30 * time.Second} {
		spec, err := SwarmService(p, service, nil)
		assert.NilError(t, err)
		assert.Equal(t, spec.UpdateConfig.Monitor, want, service)
	}
}

// The network allow-lists are refused on Swarm rather than dropped: a project-level
// isolate and a service's network block alike.
func TestSwarmProjectRefusesAllowLists(t *testing.T) {
	p, _ := loadProject(t, swarmCompose, nil)
	assert.NilError(t, SwarmProjectRefused(p))
	for _, doc := range []string{
		"x-lifecycle: {network: {default: isolate}}\nservices:\n  web: {image: shop/web:2}\n",
		"services:\n  web: {image: shop/web:2, x-lifecycle: {network: {talks-to: [db]}}}\n  db: {image: shop/db:1}\n",
	} {
		p, _ := loadProject(t, doc, nil)
		err := SwarmProjectRefused(p)
		assert.Check(t, errors.Is(err, ErrUnsupported), doc)
		assert.Check(t, is.ErrorContains(err, "x-lifecycle.network (talks-to allow-lists) is not supported by docker lifecycle yet on Swarm"), doc)
	}
}
