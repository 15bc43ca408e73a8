package plugin

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// swarmShop is a project on Swarm: web's 2 replicas publish 8080 through the ingress,
// its slot 2 replaced a task that failed; worker publishes 9090 in host mode; api is
// blue-green, its revision 3 (shop_api-r3) behind the router (shop_lifecycle-router),
// which publishes 8081 in host mode.
func swarmShop() []rollout.SwarmTask {
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	ingress := []swarm.PortConfig{{Protocol: "tcp", TargetPort: 8080, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeIngress}}
	task := func(id, svc string, slot int, desired, state, image, errMsg string, ports []swarm.PortConfig, since time.Time) rollout.SwarmTask {
		return rollout.SwarmTask{Task: engine.Task{ID: id, ServiceID: "s-" + svc, Slot: slot, Node: "mgr", DesiredState: desired, State: state, Since: since, Err: errMsg, Image: image, Ports: ports},
			Project: "shop", Service: svc, SwarmService: "shop_" + svc}
	}
	web1 := task("t1", "web", 1, "running", "running", "shop/web:2", "", nil, at)
	web1.ServicePorts = ingress
	web2 := task("t2", "web", 2, "running", "running", "shop/web:2", "", nil, at.Add(20*time.Second))
	web2.ServicePorts = ingress
	failed := task("t3", "web", 2, "shutdown", "failed", "shop/web:2", "task: non-zero exit (1)", nil, at.Add(5*time.Second))
	failed.ServicePorts = ingress
	worker := task("t4", "worker", 1, "running", "running", "shop/worker:1", "", []swarm.PortConfig{{Protocol: "tcp", TargetPort: 9000, PublishedPort: 9090, PublishMode: swarm.PortConfigPublishModeHost}}, at)
	api := task("t5", "api", 1, "running", "running", "shop/api:3", "", nil, at)
	api.SwarmService, api.Revision = "shop_api-r3", 3
	router := task("t6", "router", 1, "running", "running", "docker-lifecycle/agent:1", "", []swarm.PortConfig{{Protocol: "tcp", TargetPort: 8081, PublishedPort: 8081, PublishMode: swarm.PortConfigPublishModeHost}}, at)
	router.SwarmService, router.Router = "shop_lifecycle-router", true
	return []rollout.SwarmTask{api, router, web1, web2, failed, worker}
}

func TestSwarmPsTable(t *testing.T) {
	var out bytes.Buffer
	assert.NilError(t, writeSwarmPs(&out, "table", swarmShop()))
	golden.Assert(t, out.String(), "ps-swarm-table.golden")
}

func TestSwarmPsJSON(t *testing.T) {
	var out bytes.Buffer
	assert.NilError(t, writeSwarmPs(&out, "json", swarmShop()))
	golden.Assert(t, out.String(), "ps-swarm.json.golden")

	// The documented schema (docs/swarm.md), as a program reads it.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Equal(t, len(lines), 6)
	type swarmPsJSON struct {
		ID, Name, Project, Service, SwarmService, Revision, Role, Node, DesiredState, State, Image, Error, Ports, Since string
		Number                                                                                                          int
	}
	var row swarmPsJSON
	assert.NilError(t, json.Unmarshal([]byte(lines[0]), &row))
	assert.DeepEqual(t, []string{row.Service, row.Revision, row.Role, row.SwarmService, row.Name}, []string{"api", "3", "app", "shop_api-r3", "shop_api-r3.1"})
	row = swarmPsJSON{}
	assert.NilError(t, json.Unmarshal([]byte(lines[1]), &row))
	assert.DeepEqual(t, []string{row.Service, row.Revision, row.Role, row.SwarmService}, []string{"router", "", "router", "shop_lifecycle-router"})
	row = swarmPsJSON{}
	assert.NilError(t, json.Unmarshal([]byte(lines[4]), &row))
	assert.Equal(t, row.Revision, "")
	assert.Equal(t, row.Role, "app")
	assert.Equal(t, row.Name, "shop_web.2")
	assert.Equal(t, row.Number, 2)
	assert.Equal(t, row.DesiredState, "shutdown")
	assert.Equal(t, row.State, "failed")
	assert.Equal(t, row.Error, "task: non-zero exit (1)")
	assert.Equal(t, row.Ports, "*:8080->8080/tcp")
	assert.Equal(t, row.Since, "2026-12-03T08:00:05Z")
}
