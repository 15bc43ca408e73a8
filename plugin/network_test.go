package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const shopYAML = `
x-lifecycle:
  network: {default: isolate}
services:
  web:
    image: web:1
    ports: ["127.0.0.1:8080:8080"]
    x-lifecycle: {network: {talks-to: [api]}}
  api:
    image: api:1
    expose: ["8080"]
    x-lifecycle: {network: {talks-to: [db]}}
  db:
    image: db:1
    expose: ["5432"]
  worker:
    image: worker:1
    x-lifecycle: {network: {talks-to: [db], egress: true}}
`

func loadShop(t *testing.T, yaml string) *compose.Project {
	t.Helper()
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yaml), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{WorkingDir: dir, ProjectName: "shop", ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	return p
}

func TestNetworkPlanOutput(t *testing.T) {
	p := loadShop(t, shopYAML)
	// shop_lc-api-db exists already with its subnet; another network holds the pool's first /28.
	compose.ObserveNetworks(p, map[string][]netip.Prefix{
		"shop_lc-api-db": {netip.MustParsePrefix("10.213.0.32/28")},
		"other_net":      {netip.MustParsePrefix("10.213.0.0/28")},
	})
	plan, policy, err := rollout.BuildNetworkPlan(p)
	assert.NilError(t, err)
	var table, js bytes.Buffer
	assert.NilError(t, writeNetworkPlan(&table, plan, policy, "table"))
	golden.Assert(t, table.String(), "network-plan.golden")
	assert.NilError(t, writeNetworkPlan(&js, plan, policy, "json"))
	var decoded rollout.NetworkPlan
	assert.NilError(t, json.Unmarshal(js.Bytes(), &decoded))
	assert.Check(t, decoded.Segmentation)
	assert.Check(t, !decoded.Policy["web"]["db"])
	assert.Check(t, decoded.Policy["db"]["api"])
}

func TestNetworkPlanWithoutRules(t *testing.T) {
	p := loadShop(t, "services:\n  web: {image: web:1}\n  api: {image: api:1}\n")
	plan, policy, err := rollout.BuildNetworkPlan(p)
	assert.NilError(t, err)
	var out bytes.Buffer
	assert.NilError(t, writeNetworkPlan(&out, plan, policy, "table"))
	assert.Check(t, is.Contains(out.String(), "no x-lifecycle.network rules"))
	assert.Check(t, is.Contains(out.String(), "shop_default  compose"))
	assert.Check(t, policy.Allowed("web", "api"))
}

// fakeNetworkEngine runs verify's agent containers against a table of what each
// service reaches; leaks lists pairs that are reachable although the policy denies them.
func fakeNetworkEngine(t *testing.T, leaks map[string]bool) (*engine.Fake, *[]engine.ContainerSpec) {
	reach := map[string]bool{"web>api": true, "api>web": true, "api>db": true, "db>api": true, "worker>db": true, "db>worker": true}
	var mu sync.Mutex
	var specs []engine.ContainerSpec
	agents := map[string]engine.ContainerSpec{}
	running := func(svc, id string) engine.Container {
		return engine.Container{ID: id, Name: "shop-" + svc + "-r1-1", State: "running", Labels: map[string]string{
			compose.LabelProject: "shop", compose.LabelService: svc, compose.LabelRevision: "1", compose.LabelRole: compose.RoleApp}}
	}
	f := &engine.Fake{
		ListContainersFn: func(ctx context.Context, labels map[string]string) ([]engine.Container, error) {
			stopped := running("worker", "id-worker-old")
			stopped.State = "exited"
			return []engine.Container{running("web", "id-web"), running("api", "id-api"), running("db", "id-db"), running("worker", "id-worker"), stopped,
				{ID: "router", State: "running", Labels: map[string]string{compose.LabelProject: "shop", compose.LabelRole: compose.RoleRouter}}}, nil
		},
		InspectImageFn: func(ctx context.Context, ref string) (engine.Image, error) {
			return engine.Image{ID: "sha256:agent"}, nil
		},
		CreateContainerFn: func(ctx context.Context, spec engine.ContainerSpec) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			specs = append(specs, spec)
			id := fmt.Sprintf("agent-%d", len(specs))
			agents[id] = spec
			return id, nil
		},
		StartContainerFn: func(ctx context.Context, id string) error { return nil },
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			return engine.ContainerDetails{ID: id, State: "exited"}, nil
		},
		ContainerLogTailFn: func(ctx context.Context, id string, lines int) (string, error) {
			mu.Lock()
			spec := agents[id]
			mu.Unlock()
			src := spec.Config.Labels[compose.LabelService]
			var out strings.Builder
			for _, target := range spec.Config.Cmd[3:] {
				host, port, _ := strings.Cut(target, ":")
				ok := reach[src+">"+host] || leaks[src+">"+host]
				line := map[string]any{"target": target, "host": host, "resolved": ok}
				if port != "" {
					line["port"], line["connect"] = 8080, map[bool]string{true: "ok", false: ""}[ok]
				}
				b, _ := json.Marshal(line)
				out.Write(append(b, '\n'))
			}
			return out.String(), nil
		},
		RemoveContainerFn: func(ctx context.Context, id string, v bool) error { return nil },
	}
	return f, &specs
}

func TestVerifyMatchesPolicy(t *testing.T) {
	if _, err := agentimage.Binary("amd64"); err != nil {
		t.Skip(err)
	}
	p := loadShop(t, shopYAML)
	f, specs := fakeNetworkEngine(t, nil)
	var out bytes.Buffer
	assert.NilError(t, verifyNetwork(context.Background(), &out, f, p, "table"))
	assert.Check(t, is.Contains(out.String(), "Network matches the policy: 12 pairs probed from 4 services"), out.String())
	assert.Check(t, is.Len(*specs, 4))
	for _, s := range *specs {
		svc := s.Config.Labels[compose.LabelService]
		assert.Check(t, is.Equal(string(s.HostConfig.NetworkMode), "container:id-"+svc))
		assert.Check(t, is.Equal(s.Config.Labels[compose.LabelOneoff], "True"), "deploys ignore verify's agents")
		assert.Check(t, is.Equal(s.Config.Cmd[0], "probe-many"))
		assert.Check(t, s.HostConfig.ReadonlyRootfs && s.Config.User == "65534")
		if svc == "web" {
			assert.Check(t, is.DeepEqual(s.Config.Cmd[3:], []string{"api:8080", "db:5432", "worker"}))
		}
	}
}

func TestVerifyReportsDifferences(t *testing.T) {
	if _, err := agentimage.Binary("amd64"); err != nil {
		t.Skip(err)
	}
	p := loadShop(t, shopYAML)
	f, _ := fakeNetworkEngine(t, map[string]bool{"web>db": true})
	var out bytes.Buffer
	err := verifyNetwork(context.Background(), &out, f, p, "table")
	assert.Check(t, is.ErrorContains(err, "differs from its policy in 1 pairs"))
	assert.Check(t, is.Contains(out.String(), "web → db: policy denies, observed reachable (db:5432 resolves, connect ok)"), out.String())

	out.Reset()
	err = verifyNetwork(context.Background(), &out, f, p, "json")
	assert.Check(t, err != nil)
	var res rollout.VerifyResult
	assert.NilError(t, json.Unmarshal(out.Bytes(), &res))
	assert.Check(t, is.Len(res.Differences, 1))
	assert.Check(t, res.Observed["web"]["db"].Reachable)
}
