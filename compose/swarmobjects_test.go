package compose

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
	"gotest.tools/v3/assert"
)

func TestSwarmObjectName(t *testing.T) {
	// sha256("s3cret") = 1ec1c26b…: the first 8 hex digits name the version.
	assert.Equal(t, SwarmObjectName("shop", "db_password", []byte("s3cret")), "shop_db_password_1ec1c26b")
	assert.Equal(t, SwarmObjectName("shop", "db_password", []byte("s3cret")), SwarmObjectName("shop", "db_password", []byte("s3cret")))
	assert.Assert(t, SwarmObjectName("shop", "db_password", []byte("s3cret")) != SwarmObjectName("shop", "db_password", []byte("s3cret2")))
	assert.Assert(t, SwarmObjectName("shop", "a", nil) != SwarmObjectName("shop", "b", nil))
}

const swarmObjectsCompose = `
services:
  web:
    image: shop/web:2
    secrets:
      - db_password
      - {source: api_key, target: /run/secrets/key, uid: "1000", gid: "1001", mode: 0400}
    configs:
      - nginx
      - {source: motd, target: etc/motd, mode: 0440}
  worker:
    image: shop/worker:1
    secrets: [{source: api_key, target: worker_key}]
secrets:
  db_password: {file: ./db.txt, labels: {team: data}}
  api_key: {environment: API_KEY}
configs:
  nginx: {file: ./nginx.conf}
  motd: {content: "hello $${USER}"}
`

func TestSwarmObjectsAndRefs(t *testing.T) {
	t.Setenv("API_KEY", "k-1")
	p, _ := loadProject(t, swarmObjectsCompose, map[string]string{"db.txt": "pw-1", "nginx.conf": "server {}\n"})
	keys, users := SwarmObjectRefs(p, []string{"web", "worker"})
	assert.DeepEqual(t, keys, []SwarmObjectKey{{SwarmSecret, "db_password"}, {SwarmSecret, "api_key"}, {SwarmConfig, "nginx"}, {SwarmConfig, "motd"}})
	assert.DeepEqual(t, users[SwarmObjectKey{SwarmSecret, "api_key"}], []string{"web", "worker"})

	v, err := ConfigValue(p, "nginx")
	assert.NilError(t, err)
	assert.Equal(t, string(v), "server {}\n")
	v, err = ConfigValue(p, "motd")
	assert.NilError(t, err)
	assert.Equal(t, string(v), "hello ${USER}")

	obj, err := NewSwarmObject(p, SwarmObjectKey{SwarmSecret, "db_password"}, []byte("pw-1"), []string{"web"})
	assert.NilError(t, err)
	assert.Equal(t, obj.SwarmName, SwarmObjectName("shop", "db_password", []byte("pw-1")))
	assert.DeepEqual(t, obj.Labels, map[string]string{"team": "data", LabelStackNamespace: "shop", LabelSwarmObject: "db_password"})
	_, err = NewSwarmObject(p, SwarmObjectKey{SwarmSecret, strings.Repeat("x", 60)}, nil, nil)
	assert.ErrorContains(t, err, "is not valid (at most 64")

	versions := SwarmVersions{
		{SwarmSecret, "db_password"}: "shop_db_password_11111111", {SwarmSecret, "api_key"}: "shop_api_key_22222222",
		{SwarmConfig, "nginx"}: "shop_nginx_33333333", {SwarmConfig, "motd"}: "shop_motd_44444444",
	}
	web, err := SwarmService(p, "web", versions)
	assert.NilError(t, err)
	cs := web.TaskTemplate.ContainerSpec
	// As docker stack deploy: uid/gid 0 and mode 0444 unless set; a secret's target is a
	// file name under /run/secrets, a config's an absolute path.
	assert.DeepEqual(t, cs.Secrets, []*swarm.SecretReference{
		{SecretName: "shop_db_password_11111111", File: &swarm.SecretReferenceFileTarget{Name: "db_password", UID: "0", GID: "0", Mode: 0o444}},
		{SecretName: "shop_api_key_22222222", File: &swarm.SecretReferenceFileTarget{Name: "key", UID: "1000", GID: "1001", Mode: 0o400}},
	})
	assert.DeepEqual(t, cs.Configs, []*swarm.ConfigReference{
		{ConfigName: "shop_nginx_33333333", File: &swarm.ConfigReferenceFileTarget{Name: "/nginx", UID: "0", GID: "0", Mode: 0o444}},
		{ConfigName: "shop_motd_44444444", File: &swarm.ConfigReferenceFileTarget{Name: "/etc/motd", UID: "0", GID: "0", Mode: 0o440}},
	})
	worker, err := SwarmService(p, "worker", versions)
	assert.NilError(t, err)
	assert.Equal(t, worker.TaskTemplate.ContainerSpec.Secrets[0].File.Name, "worker_key")

	// A new version of a secret is a new name: the spec hash changes, so the service rolls.
	versions[SwarmObjectKey{SwarmSecret, "api_key"}] = "shop_api_key_55555555"
	worker2, err := SwarmService(p, "worker", versions)
	assert.NilError(t, err)
	assert.Assert(t, worker2.Labels[LabelSwarmSpec] != worker.Labels[LabelSwarmSpec])
	// No ID in the spec: the deploy fills them in once the objects exist.
	b, err := json.Marshal(web)
	assert.NilError(t, err)
	assert.Assert(t, strings.Contains(string(b), `"SecretID":""`), string(b))

	delete(versions, SwarmObjectKey{SwarmConfig, "motd"})
	_, err = SwarmService(p, "web", versions)
	assert.ErrorContains(t, err, `service web: config "motd" has no Swarm version`)
}

func TestConfigValueErrors(t *testing.T) {
	p, _ := loadProject(t, `
services:
  web: {image: a, configs: [c]}
configs: {c: {file: ./missing.conf}}
`, nil)
	_, err := ConfigValue(p, "c")
	assert.Assert(t, os.IsNotExist(err) || strings.Contains(err.Error(), "no such file"), "%v", err)
	_, err = ConfigValue(p, "nope")
	assert.ErrorContains(t, err, `config "nope" is not defined`)
}
