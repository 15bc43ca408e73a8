package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// On Swarm, stats reads the containers of the project's tasks on this node (namespace
// label), grouped by the compose service with the task's slot as the number; a
// blue-green service's revision service (shop_api-r3, labelled by deploy) under the
// compose service and its revision.
func TestStatsSwarm(t *testing.T) {
	t0 := time.Unix(1000, 0)
	task := func(id, service string, slot, state string) engine.Container {
		return engine.Container{ID: id, Name: "shop_" + service + "." + slot + ".x" + id, State: state, Labels: map[string]string{
			compose.LabelStackNamespace: "shop", labelSwarmServiceName: "shop_" + service, labelSwarmTaskName: "shop_" + service + "." + slot + ".x" + id}}
	}
	fake := &engine.Fake{
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			return []engine.Service{{Name: "shop_web"}, {Name: "shop_worker"}, {Name: "shop_api-r3", Labels: map[string]string{compose.LabelSwarmService: "api", compose.LabelSwarmRevision: "3"}}}, nil
		},
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.DeepEqual(t, labels, map[string]string{compose.LabelStackNamespace: "shop"})
			return []engine.Container{task("a", "web", "1", "running"), task("b", "web", "2", "running"), task("c", "worker", "1", "running"), task("d", "web", "3", "exited"), task("e", "api-r3", "1", "running")}, nil
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
				got = append(got, fmt.Sprintf("%s r%d %s %d", s.Service, r.Revision, c.ID, c.Number))
			}
		}
		assert.Assert(t, s.Total.CPUPercent > 0, "%+v", s)
	}
	assert.DeepEqual(t, got, []string{"api r3 e 1", "web r0 a 1", "web r0 b 2", "worker r0 c 1"})

	err := Stats(context.Background(), fake, "shop", StatsOptions{Once: true, Swarm: true, Services: []string{"db"}}, func(StatsReport) error { return nil })
	assert.ErrorContains(t, err, "no Swarm service db in project shop (services: api, web, worker)")
}
