package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// TestSwarmSecretVersions: a changed secret value creates a new version (its data the
// value, its name the hash), the service update references it by ID, the old version
// is removed after the wait, one still in use is kept; the value shows nowhere.
func TestSwarmSecretVersions(t *testing.T) {
	const value = "pw-Very-Secret-2"
	t.Setenv("DB_PW", value)
	p := loadProject(t, `name: shop
services:
  web:
    image: app:1
    secrets: [{source: db, target: db_pw, mode: 0400}]
    configs: [{source: motd, target: /etc/motd}]
secrets: {db: {environment: DB_PW}}
configs: {motd: {content: hello}}
`)
	objects, versions, values, err := swarmObjects(context.Background(), p, []string{"web"})
	assert.NilError(t, err)
	secretName := compose.SwarmObjectName("shop", "db", []byte(value))
	configName := compose.SwarmObjectName("shop", "motd", []byte("hello"))
	assert.Equal(t, versions[compose.SwarmObjectKey{Kind: compose.SwarmSecret, Name: "db"}], secretName)
	assert.Equal(t, len(objects), 2)
	spec, err := compose.SwarmService(p, "web", versions)
	assert.NilError(t, err)

	oldSpec := spec
	oldSpec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: "app:1", Secrets: []*swarm.SecretReference{{SecretName: "shop_db_00000000", SecretID: "s-old"}},
		Configs: []*swarm.ConfigReference{{ConfigName: configName, ConfigID: "c-1"}}}
	var created, removed []string
	var updated swarm.ServiceSpec
	eng := &engine.Fake{
		ListNetworksFn: func(context.Context, map[string]string) ([]engine.Network, error) {
			return []engine.Network{{Name: "shop_default"}}, nil
		},
		ListSwarmObjectsFn: func(_ context.Context, kind string, labels map[string]string) ([]engine.SwarmObject, error) {
			assert.Equal(t, labels[compose.LabelStackNamespace], "shop")
			if kind == engine.SwarmConfig {
				return []engine.SwarmObject{{ID: "c-1", Name: configName, Labels: map[string]string{compose.LabelSwarmObject: "motd"}}}, nil
			}
			return []engine.SwarmObject{
				{ID: "s-old", Name: "shop_db_00000000", Labels: map[string]string{compose.LabelSwarmObject: "db"}},
				{ID: "s-older", Name: "shop_db_11111111", Labels: map[string]string{compose.LabelSwarmObject: "db"}},
			}, nil
		},
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			return []engine.Service{{ID: "w1", Name: "shop_web", Version: 5, Labels: map[string]string{compose.LabelSwarmSpec: "old"}, Spec: oldSpec}}, nil
		},
		CreateSwarmObjFn: func(_ context.Context, kind, name string, labels map[string]string, data []byte) (string, error) {
			assert.Equal(t, string(data), value)
			assert.Equal(t, labels[compose.LabelSwarmObject], "db")
			created = append(created, kind+" "+name)
			return "s-new", nil
		},
		UpdateServiceFn: func(_ context.Context, id string, version uint64, spec swarm.ServiceSpec) error {
			updated = spec
			return nil
		},
		RemoveSwarmObjFn: func(_ context.Context, kind, id string) error {
			removed = append(removed, kind+" "+id)
			if id == "s-older" {
				return fmt.Errorf("remove: %w", errors.Join(engine.ErrInUse, errors.New("secret is in use by the following service: x")))
			}
			return nil
		},
	}
	plan, _, ids, _, err := planSwarm(context.Background(), eng, p, engine.SwarmInfo{}, objects, map[string]swarm.ServiceSpec{"web": spec}, nil)
	assert.NilError(t, err)
	text := plan.Text()
	assert.Assert(t, strings.Contains(text, "create-secret   "+secretName+": secret db changed, used by web"), text)
	assert.Assert(t, strings.Contains(text, "update-service  shop_web: secret db changed"), text)
	assert.Assert(t, strings.Contains(text, "remove-secret   shop_db_00000000"), text)
	assert.Assert(t, !strings.Contains(text, value), text)

	assert.NilError(t, executeSwarm(context.Background(), eng, plan, values, ids, progress.Nop))
	assert.DeepEqual(t, created, []string{"secret " + secretName})
	cs := updated.TaskTemplate.ContainerSpec
	assert.DeepEqual(t, cs.Secrets, []*swarm.SecretReference{{SecretName: secretName, SecretID: "s-new", File: &swarm.SecretReferenceFileTarget{Name: "db_pw", UID: "0", GID: "0", Mode: 0o400}}})
	assert.Equal(t, cs.Configs[0].ConfigID, "c-1")
	assert.Equal(t, spec.TaskTemplate.ContainerSpec.Secrets[0].SecretID, "") // the plan's spec is not changed
	assert.Equal(t, len(removed), 0)                                         // not before the wait
	var events strings.Builder
	w, err := progress.New(progress.ModePlain, &events, false)
	assert.NilError(t, err)
	removeUnusedObjects(context.Background(), eng, plan, w)
	_ = w.Close()
	assert.DeepEqual(t, removed, []string{"secret s-old", "secret s-older"})
	assert.Assert(t, strings.Contains(events.String(), "still used by a service"), events.String())
	assert.Assert(t, !strings.Contains(events.String(), value))
}

func TestSwarmObjectsSourceErrors(t *testing.T) {
	p := loadProject(t, `name: shop
services:
  web: {image: app:1, secrets: [a, b]}
secrets: {a: {environment: LIFECYCLE_TEST_UNSET_A}, b: {file: ./missing}}
`)
	_, _, _, err := swarmObjects(context.Background(), p, []string{"web"})
	assert.ErrorContains(t, err, "environment variable LIFECYCLE_TEST_UNSET_A is not set")
	assert.ErrorContains(t, err, `secret "b": read file`)
}
