package strategies

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func webCompose(image, strategy, extra string) string {
	return fmt.Sprintf(`
name: shop
services:
  web:
    image: %s
    ports: ["127.0.0.1:8080:8080"]
    healthcheck: {test: ["CMD", "true"]}
    deploy:
      replicas: 3
%s
    x-lifecycle:
      strategy: %s
      history: 2
      canary: {steps: [{weight: 10, pause: 5s}, {weight: 50, pause: 5s}]}
      blue-green: {scale-down-delay: 3s}
`, image, extra, strategy)
}

// running returns the web containers of revision rev, running, healthy and routed.
func webAt(t *testing.T, p *compose.Project, rev int, image, state string) []ObservedContainer {
	t.Helper()
	hash, err := compose.ConfigHash(p, "web")
	assert.NilError(t, err)
	var out []ObservedContainer
	for n := 1; n <= 3; n++ {
		name := compose.RevisionContainerName("shop", "web", rev, n)
		c := ObservedContainer{ID: "id-" + name, Name: name, Service: "web", Number: n, Revision: rev, ConfigHash: hash,
			Image: image, ImageID: images[image], State: state}
		if state == "running" {
			c.Health = "healthy"
		} else {
			c.ExitCode = 143
		}
		out = append(out, c)
	}
	return out
}

func routedObserved(cs []ObservedContainer, routed ...ObservedContainer) Observed {
	obs := Observed{
		Networks: map[string]bool{"shop_default": true}, Volumes: map[string]bool{}, ImageIDs: images,
		Containers: cs, Routes: map[string][]RouteBackend{},
		Router: &ObservedContainer{ID: "router", Name: "shop-lifecycle-router", State: "running"},
	}
	for _, c := range routed {
		obs.Routes["web"] = append(obs.Routes["web"], RouteBackend{Container: c.Name, Revision: c.Revision, Weight: 1})
	}
	return obs
}

func withRouterHash(t *testing.T, p *compose.Project, obs Observed) Observed {
	ports, err := compose.RoutedPorts(p)
	assert.NilError(t, err)
	obs.RouterHash = compose.RouterHash(ports, compose.RouterNetworks(p))
	return obs
}

func TestRoutedPlans(t *testing.T) {
	v1 := load(t, webCompose("app:1", "rolling", ""))
	v2 := load(t, webCompose("app:2", "rolling", ""))
	v1Running := webAt(t, v1, 1, "app:1", "running")

	tests := []struct {
		name     string
		project  *compose.Project
		observed Observed
		opts     Options
	}{
		{name: "routed-fresh", project: v2, observed: Observed{Networks: map[string]bool{}, Volumes: map[string]bool{}, ImageIDs: images}},
		{name: "rolling-v1-to-v2", project: v2, observed: withRouterHash(t, v2, routedObserved(v1Running, v1Running...))},
		{name: "rolling-stop-first-parallel-2", project: load(t, webCompose("app:2", "rolling", "      update_config: {parallelism: 2, order: stop-first, delay: 2s}")),
			observed: withRouterHash(t, v1, routedObserved(v1Running, v1Running...))},
		{name: "blue-green", project: load(t, webCompose("app:2", "blue-green", "")), observed: withRouterHash(t, v1, routedObserved(v1Running, v1Running...))},
		{name: "blue-green-manual", project: load(t, strings.Replace(webCompose("app:2", "blue-green", ""), "blue-green: {scale-down-delay: 3s}", "blue-green: {promote: manual}", 1)), observed: withRouterHash(t, v1, routedObserved(v1Running, v1Running...))},
		{name: "canary", project: load(t, webCompose("app:2", "canary", "")), observed: withRouterHash(t, v1, routedObserved(v1Running, v1Running...))},
		{
			// Killed after the second batch became healthy: r2-1 routed, r2-2 healthy
			// but not routed, r1-1 stopped, r1-2 and r1-3 still routed.
			name: "rolling-resume-after-kill", project: v2,
			observed: func() Observed {
				r2 := webAt(t, v2, 2, "app:2", "running")[:2]
				r1 := webAt(t, v1, 1, "app:1", "running")
				r1[0].State = "exited"
				obs := routedObserved(append(r1, r2...), r2[0], r1[1], r1[2])
				return withRouterHash(t, v2, obs)
			}(),
		},
		{
			name: "rollback-to-1", project: v2, opts: Options{Rollback: map[string]int{"web": 1}},
			observed: func() Observed {
				r2 := webAt(t, v2, 2, "app:2", "running")
				obs := routedObserved(append(webAt(t, v1, 1, "app:1", "exited"), r2...), r2...)
				return withRouterHash(t, v2, obs)
			}(),
		},
		{
			name: "prune-history", project: load(t, webCompose("app:2", "rolling", "")),
			observed: func() Observed {
				var cs []ObservedContainer
				for rev := 1; rev <= 3; rev++ {
					cs = append(cs, webAt(t, v1, rev, "app:1", "exited")[0])
				}
				r4 := webAt(t, v1, 4, "app:1", "running")
				return withRouterHash(t, v2, routedObserved(append(cs, r4...), r4...))
			}(),
		},
		{
			// Deployed by the recreate strategy (or Compose): the containers publish the
			// ports the router needs, so they leave first.
			name: "migrate-from-published-ports", project: v1,
			observed: func() Observed {
				hash, _ := compose.ConfigHash(v1, "web")
				obs := Observed{Networks: map[string]bool{"shop_default": true}, Volumes: map[string]bool{}, ImageIDs: images}
				obs.Containers = append(obs.Containers, ObservedContainer{ID: "c1", Name: "shop-web-1", Service: "web", Number: 1, Revision: 1,
					ConfigHash: hash, Image: "app:1", ImageID: images["app:1"], State: "running", PublishesPorts: true})
				return obs
			}(),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := MakePlan(desire(t, tc.project), tc.observed, tc.opts)
			assert.NilError(t, err)
			golden.Assert(t, planText(t, plan), tc.name+".golden")
		})
	}
}

func TestRoutedConverged(t *testing.T) {
	v1 := load(t, webCompose("app:1", "rolling", ""))
	r1 := webAt(t, v1, 1, "app:1", "running")
	plan, err := MakePlan(desire(t, v1), withRouterHash(t, v1, routedObserved(r1, r1...)), Options{})
	assert.NilError(t, err)
	assert.Check(t, plan.Empty(), planText(t, plan))
}

func TestRollbackUnknownRevision(t *testing.T) {
	v1 := load(t, webCompose("app:1", "rolling", ""))
	r1 := webAt(t, v1, 1, "app:1", "running")
	_, err := MakePlan(desire(t, v1), routedObserved(r1, r1...), Options{Rollback: map[string]int{"web": 7}})
	assert.Check(t, errors.Is(err, ErrUnknownRevision))
	assert.Check(t, is.ErrorContains(err, "revisions with containers: 1"))
}

func TestRollingNeverExceedsReplicasPlusParallelism(t *testing.T) {
	v1 := load(t, webCompose("app:1", "rolling", ""))
	v2 := load(t, webCompose("app:2", "rolling", "      update_config: {parallelism: 2}"))
	r1 := webAt(t, v1, 1, "app:1", "running")
	plan, err := MakePlan(desire(t, v2), withRouterHash(t, v2, routedObserved(r1, r1...)), Options{})
	assert.NilError(t, err)
	// Walk the plan in step order (a valid topological order here) and count the
	// running containers and the routed backends.
	running := 3
	peak := running
	for _, s := range plan.Steps {
		switch s.Action {
		case Start:
			running++
		case Stop:
			running--
		case Route:
			assert.Check(t, len(s.Backends) >= 3, "step %d routes %d backends", s.ID, len(s.Backends))
		}
		peak = max(peak, running)
	}
	assert.Check(t, is.Equal(peak, 5))
	assert.Check(t, is.Equal(running, 3))
}
