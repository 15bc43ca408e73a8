package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// On Swarm, stats reads the containers of the project's tasks on this node (namespace
// label), grouped by the compose service with the task's slot as the number.
func TestStatsSwarm(t *testing.T) {
	t0 := time.Unix(1000, 0)
	task := func(id, service string, slot, state string) engine.Container {
		return engine.Container{ID: id, Name: "shop_" + service + "." + slot + ".x" + id, State: state, Labels: map[string]string{
			compose.LabelStackNamespace: "shop", labelSwarmServiceName: "shop_" + service, labelSwarmTaskName: "shop_" + service + "." + slot + ".x" + id}}
	}
	fake := &engine.Fake{
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			return []engine.Service{{Name: "shop_web"}, {Name: "shop_worker"}}, nil
		},
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.DeepEqual(t, labels, map[string]string{compose.LabelStackNamespace: "shop"})
			return []engine.Container{task("a", "web", "1", "running"), task("b", "web", "2", "running"), task("c", "worker", "1", "running"), task("d", "web", "3", "exited")}, nil
		},
		InspectContainerFn: func(_ context.Context, id string) (engine.ContainerDetails, error) {
			return engine.ContainerDetails{ID: id}, nil
		},
		StreamStatsFn: func(ctx context.Context, id string) (<-chan container.StatsResponse, error) {
			ch := make(chan container.StatsResponse, 2)
			ch <- sample(t0, 1e9, 100e9, 0, 0, 0, 0)
			ch <- sample(t0.Add(time.Second), 2e9, 104e9, 1e9, 100e9, 1000, 0)
			go func() { <-ctx.Done(); close(ch) }()
			return ch, nil
		},
	}
	var rep StatsReport
	assert.NilError(t, Stats(context.Background(), fake, "shop", StatsOptions{Once: true, Swarm: true}, func(r StatsReport) error { rep = r; return nil }))
	var got []string
	for _, s := range rep.Services {
		for _, r := range s.Revisions {
			for _, c := range r.Containers {
				got = append(got, s.Service+" "+c.ID+" "+string(rune('0'+c.Number)))
			}
		}
		assert.Assert(t, s.Total.CPUPercent > 0, "%+v", s)
	}
	assert.DeepEqual(t, got, []string{"web a 1", "web b 2", "worker c 1"})

	err := Stats(context.Background(), fake, "shop", StatsOptions{Once: true, Swarm: true, Services: []string{"db"}}, func(StatsReport) error { return nil })
	assert.ErrorContains(t, err, "no Swarm service db in project shop (services: web, worker)")
}
