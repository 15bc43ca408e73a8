package rollout

import (
	"context"
	"errors"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func TestSwarmHistory(t *testing.T) {
	spec := func(image string) swarm.ServiceSpec {
		return swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}}}
	}
	prev := spec("app:1")
	f := &engine.Fake{ListServicesFn: func(_ context.Context, labels map[string]string) ([]engine.Service, error) {
		if labels[compose.LabelStackNamespace] != "shop" {
			return nil, errors.New("listed without the namespace label")
		}
		return []engine.Service{
			{Name: "shop_worker", Spec: spec("app:2"), PreviousSpec: &prev, UpdateState: "completed"},
			{Name: "shop_web", Spec: spec("app:1"), UpdateState: "rollback_completed", UpdateMessage: "rollback completed"},
		}, nil
	}}
	revs, err := SwarmHistory(context.Background(), f, "shop", nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, revs, []SwarmRevision{
		{Project: "shop", Service: "web", SwarmService: "shop_web", Image: "app:1", UpdateState: "rollback_completed", UpdateMessage: "rollback completed"},
		{Project: "shop", Service: "worker", SwarmService: "shop_worker", Image: "app:2", PreviousImage: "app:1", UpdateState: "completed"},
	})
	revs, err = SwarmHistory(context.Background(), f, "shop", []string{"worker"})
	assert.NilError(t, err)
	assert.Equal(t, len(revs), 1)
	_, err = SwarmHistory(context.Background(), f, "shop", []string{"api"})
	assert.ErrorContains(t, err, "no Swarm service api in project shop (services: web, worker)")
}

// TestSwarmHistoryRevisions: revision services under their compose service, by
// revision; the router as the pseudo-service router.
func TestSwarmHistoryRevisions(t *testing.T) {
	f := &engine.Fake{ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) { return swarmShopRevisions(), nil }}
	revs, err := SwarmHistory(context.Background(), f, "shop", nil)
	assert.NilError(t, err)
	assert.DeepEqual(t, revs, []SwarmRevision{
		{Project: "shop", Service: "api", SwarmService: "shop_api-r2", Revision: 2},
		{Project: "shop", Service: "api", SwarmService: "shop_api-r3", Revision: 3},
		{Project: "shop", Service: "api-r9", SwarmService: "shop_api-r9"},
		{Project: "shop", Service: "router", SwarmService: "shop_lifecycle-router", Router: true},
	})
	revs, err = SwarmHistory(context.Background(), f, "shop", []string{"api"})
	assert.NilError(t, err)
	assert.Equal(t, len(revs), 2)
}
