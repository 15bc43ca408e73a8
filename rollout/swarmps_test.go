package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func TestSwarmTasks(t *testing.T) {
	at := time.Unix(1000, 0)
	f := &engine.Fake{
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			return []engine.Service{{ID: "s1", Name: "shop_web"}, {ID: "s2", Name: "shop_worker"}}, nil
		},
		ListTasksFn: func(context.Context, map[string]string) ([]engine.Task, error) {
			return []engine.Task{
				{ID: "w2", ServiceID: "s2", Slot: 1, DesiredState: "running", State: "running", Since: at},
				{ID: "old", ServiceID: "s1", Slot: 1, DesiredState: "shutdown", State: "shutdown", Since: at},
				{ID: "new", ServiceID: "s1", Slot: 1, DesiredState: "running", State: "running", Since: at.Add(time.Minute)},
				{ID: "gone", ServiceID: "s9", Slot: 1, DesiredState: "running", State: "running"},
				{ID: "older", ServiceID: "s1", Slot: 1, DesiredState: "shutdown", State: "failed", Since: at.Add(-time.Minute)},
			}, nil
		},
	}
	ids := func(tasks []SwarmTask) (out []string) {
		for _, t := range tasks {
			out = append(out, t.Service+"/"+t.ID)
		}
		return out
	}
	ctx := context.Background()
	tasks, err := SwarmTasks(ctx, f, "shop", nil, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(tasks), []string{"web/new", "worker/w2"})
	tasks, err = SwarmTasks(ctx, f, "shop", []string{"web"}, true)
	assert.NilError(t, err)
	assert.DeepEqual(t, ids(tasks), []string{"web/new", "web/old", "web/older"})
	assert.Equal(t, tasks[0].SwarmService, "shop_web")
	_, err = SwarmTasks(ctx, f, "shop", []string{"db", "web"}, false)
	assert.ErrorContains(t, err, "no Swarm service db in project shop (services: web, worker)")
}

// swarmShopRevisions are a project's Swarm services during a canary of api: revisions 2
// and 3 of api (labelled by deploy), the router, and a rolling service whose compose name
// happens to look like a revision (no labels: it stays api-r9).
func swarmShopRevisions() []engine.Service {
	revision := func(id, rev string) engine.Service {
		return engine.Service{ID: id, Name: "shop_api-r" + rev, Labels: map[string]string{compose.LabelStackNamespace: "shop", compose.LabelSwarmService: "api", compose.LabelSwarmRevision: rev}}
	}
	return []engine.Service{
		revision("s3", "3"),
		{ID: "sr", Name: "shop_lifecycle-router", Labels: map[string]string{compose.LabelStackNamespace: "shop", compose.LabelRole: compose.RoleRouter}},
		revision("s2", "2"),
		{ID: "s9", Name: "shop_api-r9", Labels: map[string]string{compose.LabelStackNamespace: "shop"}},
	}
}

// TestSwarmTasksRevisions: a blue-green or canary service's revision services show as
// the compose service with their revision, read from the labels deploy sets; the router
// as the pseudo-service router; a name is not parsed.
func TestSwarmTasksRevisions(t *testing.T) {
	f := &engine.Fake{
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) { return swarmShopRevisions(), nil },
		ListTasksFn: func(context.Context, map[string]string) ([]engine.Task, error) {
			return []engine.Task{
				{ID: "a3", ServiceID: "s3", Slot: 1, DesiredState: "running"},
				{ID: "r", ServiceID: "sr", Slot: 1, DesiredState: "running"},
				{ID: "a2", ServiceID: "s2", Slot: 1, DesiredState: "running"},
				{ID: "x", ServiceID: "s9", Slot: 1, DesiredState: "running"},
			}, nil
		},
	}
	show := func(tasks []SwarmTask) (out []string) {
		for _, t := range tasks {
			out = append(out, fmt.Sprintf("%s r%d router=%t %s %s", t.Service, t.Revision, t.Router, t.SwarmService, t.ID))
		}
		return out
	}
	ctx := context.Background()
	tasks, err := SwarmTasks(ctx, f, "shop", nil, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, show(tasks), []string{
		"api r2 router=false shop_api-r2 a2",
		"api r3 router=false shop_api-r3 a3",
		"api-r9 r0 router=false shop_api-r9 x",
		"router r0 router=true shop_lifecycle-router r",
	})
	tasks, err = SwarmTasks(ctx, f, "shop", []string{"api"}, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, show(tasks), []string{"api r2 router=false shop_api-r2 a2", "api r3 router=false shop_api-r3 a3"})
	tasks, err = SwarmTasks(ctx, f, "shop", []string{"router"}, false)
	assert.NilError(t, err)
	assert.DeepEqual(t, show(tasks), []string{"router r0 router=true shop_lifecycle-router r"})
	_, err = SwarmTasks(ctx, f, "shop", []string{"api-r2"}, false)
	assert.ErrorContains(t, err, "no Swarm service api-r2 in project shop (services: api, api-r9, router)")
}
