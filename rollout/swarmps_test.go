package rollout

import (
	"context"
	"testing"
	"time"

	"gotest.tools/v3/assert"

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
