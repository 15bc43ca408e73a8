package strategies

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func swarmSpec(name, image, hash string, replicas uint64) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: map[string]string{compose.LabelSwarmSpec: hash}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig: &swarm.UpdateConfig{Parallelism: 1, Order: "start-first", FailureAction: "rollback", Monitor: 15 * time.Second},
	}
}

func TestPlanSwarm(t *testing.T) {
	networks := []compose.NetworkCreate{{Name: "shop_default", Driver: "overlay"}, {Name: "shop_back", Driver: "overlay"}}
	services := map[string]swarm.ServiceSpec{
		"web":    swarmSpec("shop_web", "shop/web:2", "h2", 3),
		"api":    swarmSpec("shop_api", "shop/api:1", "h-api-new", 2),
		"worker": swarmSpec("shop_worker", "shop/worker:1", "hw", 1),
		"cache":  swarmSpec("shop_cache", "cache:7", "hc", 1),
	}
	observed := SwarmObserved{
		Networks: map[string]bool{"shop_default": true},
		Services: map[string]ObservedSwarmService{
			"shop_web":    {ID: "w1", Version: 12, SpecHash: "h1", Image: "shop/web:1"},
			"shop_api":    {ID: "a1", Version: 4, SpecHash: "h-api-old", Image: "shop/api:1"},
			"shop_worker": {ID: "k1", Version: 3, SpecHash: "hw", Image: "shop/worker:1"},
		},
	}
	plan := PlanSwarm("shop", networks, nil, services, observed)
	golden.Assert(t, plan.Text(), "swarm.golden")
	b, err := json.MarshalIndent(plan, "", "  ")
	assert.NilError(t, err)
	golden.Assert(t, string(b)+"\n", "swarm-json.golden")
	assert.DeepEqual(t, plan.Services(), []string{"api", "cache", "web"})
	for _, s := range plan.Steps {
		if s.Action == SwarmUpdateService && s.Service == "web" {
			assert.Equal(t, s.ID, "w1")
			assert.Equal(t, s.Version, uint64(12)) // the version the update must name
		}
	}

	observed.Networks["shop_back"] = true
	observed.Services["shop_web"] = ObservedSwarmService{ID: "w1", SpecHash: "h2", Image: "shop/web:2"}
	observed.Services["shop_api"] = ObservedSwarmService{ID: "a1", SpecHash: "h-api-new", Image: "shop/api:1"}
	observed.Services["shop_cache"] = ObservedSwarmService{ID: "c1", SpecHash: "hc", Image: "cache:7"}
	again := PlanSwarm("shop", networks, nil, services, observed)
	assert.Assert(t, again.Empty())
	assert.DeepEqual(t, again.UpToDate, []string{"shop_api", "shop_cache", "shop_web", "shop_worker"})
}

// TestPlanSwarmSecrets: a changed secret value is a new version to create and an update
// of the services that use it, with the cause named; the old version is removed last.
func TestPlanSwarmSecrets(t *testing.T) {
	withRefs := func(spec swarm.ServiceSpec, secrets, configs []string) swarm.ServiceSpec {
		for _, n := range secrets {
			spec.TaskTemplate.ContainerSpec.Secrets = append(spec.TaskTemplate.ContainerSpec.Secrets, &swarm.SecretReference{SecretName: n})
		}
		for _, n := range configs {
			spec.TaskTemplate.ContainerSpec.Configs = append(spec.TaskTemplate.ContainerSpec.Configs, &swarm.ConfigReference{ConfigName: n})
		}
		return spec
	}
	object := func(kind, name, swarmName string, users ...string) compose.SwarmObject {
		return compose.SwarmObject{SwarmObjectKey: compose.SwarmObjectKey{Kind: kind, Name: name}, SwarmName: swarmName, Services: users}
	}
	objects := []compose.SwarmObject{
		object("secret", "db_password", "shop_db_password_bbbbbbbb", "web", "worker"),
		object("secret", "api_key", "shop_api_key_11111111", "web"),
		object("config", "nginx", "shop_nginx_22222222", "web"),
		object("config", "motd", "shop_motd_33333333", "web"),
	}
	services := map[string]swarm.ServiceSpec{
		"web":    withRefs(swarmSpec("shop_web", "shop/web:1", "h-web-2", 3), []string{"shop_db_password_bbbbbbbb", "shop_api_key_11111111"}, []string{"shop_nginx_22222222", "shop_motd_33333333"}),
		"worker": withRefs(swarmSpec("shop_worker", "shop/worker:2", "h-worker-2", 1), []string{"shop_db_password_bbbbbbbb"}, nil),
	}
	observed := SwarmObserved{
		Networks: map[string]bool{},
		Services: map[string]ObservedSwarmService{
			"shop_web": {ID: "w1", Version: 7, SpecHash: "h-web-1", Image: "shop/web:1",
				Secrets: []string{"shop_db_password_aaaaaaaa", "shop_api_key_11111111"}, Configs: []string{"shop_nginx_22222222", "shop_old_44444444", "shop_gone_66666666"}},
			"shop_worker": {ID: "k1", Version: 3, SpecHash: "h-worker-1", Image: "shop/worker:1", Secrets: []string{"shop_db_password_aaaaaaaa"}},
			// not deployed this time (deploy web worker): its version stays
			"shop_cron": {ID: "c1", SpecHash: "hc", Image: "cron:1", Configs: []string{"shop_cron_55555555"}},
		},
		Objects: []ObservedSwarmObject{
			{Kind: "secret", Name: "shop_db_password_aaaaaaaa", ID: "s-a", Logical: "db_password"},
			{Kind: "secret", Name: "shop_api_key_11111111", ID: "s-k", Logical: "api_key"},
			{Kind: "config", Name: "shop_nginx_22222222", ID: "c-n", Logical: "nginx"},
			{Kind: "config", Name: "shop_old_44444444", ID: "c-o", Logical: "old"},
			{Kind: "config", Name: "shop_cron_55555555", ID: "c-c", Logical: "cron"},
			{Kind: "secret", Name: "shop_legacy", ID: "s-l"}, // not docker lifecycle's: never removed
		},
	}
	plan := PlanSwarm("shop", nil, objects, services, observed)
	golden.Assert(t, plan.Text(), "swarm-secrets.golden")
	b, err := json.MarshalIndent(plan, "", "  ")
	assert.NilError(t, err)
	golden.Assert(t, string(b)+"\n", "swarm-secrets-json.golden")
	var removed []string
	for _, s := range plan.Steps {
		if s.Removal() {
			removed = append(removed, s.Kind()+" "+s.ObjectID)
		}
	}
	assert.DeepEqual(t, removed, []string{"config c-o", "secret s-a"})
	assert.DeepEqual(t, plan.Services(), []string{"web", "worker"})
	assert.Equal(t, plan.Steps[len(plan.Steps)-1].Action, SwarmRemoveSecret) // removals last

	// Deployed: the old versions are gone, nothing to do.
	observed.Objects = append(observed.Objects[1:3], observed.Objects[4:]...)
	observed.Objects = append(observed.Objects,
		ObservedSwarmObject{Kind: "secret", Name: "shop_db_password_bbbbbbbb", ID: "s-b", Logical: "db_password"},
		ObservedSwarmObject{Kind: "config", Name: "shop_motd_33333333", ID: "c-m", Logical: "motd"})
	observed.Services["shop_web"] = ObservedSwarmService{SpecHash: "h-web-2", Image: "shop/web:1"}
	observed.Services["shop_worker"] = ObservedSwarmService{SpecHash: "h-worker-2", Image: "shop/worker:2"}
	assert.Assert(t, PlanSwarm("shop", nil, objects, services, observed).Empty())
}

func TestObjectLogical(t *testing.T) {
	assert.Equal(t, objectLogical("shop", "shop_db_password_0a1b2c3d"), "db_password")
	assert.Equal(t, objectLogical("shop", "shop_db_password"), "db_password") // docker stack deploy's
	assert.Equal(t, objectLogical("shop", "shop_x_notahash"), "x_notahash")
}
