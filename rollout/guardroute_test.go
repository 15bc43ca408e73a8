package rollout

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// TestUnrouteAndRestore: the container leaves every route that has it (the router
// waits for its drain bound), other backends and routes untouched; restore puts the
// router's config back as it was.
func TestUnrouteAndRestore(t *testing.T) {
	cfg := router.Config{Version: router.ConfigVersion, Routes: []router.Route{
		{Name: "web:8080", Listen: ":8080", Protocol: router.HTTP, DrainTimeout: router.Duration(3e9), Backends: []router.Backend{
			{ID: "demo-web-r1-1", Address: "demo-web-r1-1:8080", Weight: 1, Group: "r1"},
			{ID: "demo-web-r1-2", Address: "demo-web-r1-2:8080", Weight: 1, Group: "r1"},
		}},
		{Name: "api:9090", Listen: ":9090", Protocol: router.HTTP, Backends: []router.Backend{
			{ID: "demo-api-r1-1", Address: "demo-api-r1-1:9090", Weight: 1, Group: "r1"},
		}},
	}}
	current, err := json.Marshal(cfg)
	assert.NilError(t, err)
	cfg, err = router.DecodeConfig(current) // with the router's defaults, as restore writes it back
	assert.NilError(t, err)
	var mu sync.Mutex
	var puts []string
	f := &engine.Fake{
		ListContainersFn: func(ctx context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.Check(t, is.DeepEqual(labels, map[string]string{compose.LabelProject: "demo", compose.LabelRole: compose.RoleRouter}))
			return []engine.Container{{ID: "r", Name: "demo-lifecycle-router", State: "running"}}, nil
		},
		ExecSessionFn: func(ctx context.Context, id string, cmd []string) (*engine.Session, error) {
			return nil, engine.ErrNotFound // plain execs
		},
		ExecFn: func(ctx context.Context, id string, cmd []string, stdin []byte) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			switch op := strings.Join(cmd, " "); op {
			case "/agent ctl get-config":
				return current, nil
			default:
				puts = append(puts, op)
				current = stdin
				return nil, nil
			}
		},
	}
	h, err := unroute(context.Background(), f, "demo", "demo-web-r1-2", false)
	assert.NilError(t, err)
	assert.Assert(t, h != nil)
	got, err := router.DecodeConfig(current)
	assert.NilError(t, err)
	assert.Check(t, is.Len(got.Routes[0].Backends, 1))
	assert.Check(t, is.Equal(got.Routes[0].Backends[0].ID, "demo-web-r1-1"))
	assert.Check(t, is.DeepEqual(got.Routes[1], cfg.Routes[1]))
	assert.Check(t, is.DeepEqual(puts, []string{"/agent ctl -wait-drained 4s put-config"}))

	assert.NilError(t, h.restore(context.Background()))
	got, err = router.DecodeConfig(current)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got, cfg))

	// A container no router has: nothing changed.
	puts = nil
	h, err = unroute(context.Background(), f, "demo", "demo-worker-r1-1", false)
	assert.NilError(t, err)
	assert.Check(t, h == nil)
	assert.Check(t, is.Len(puts, 0))

	// A quarantine (keepLast) takes a replica out but leaves a route's only backend,
	// and release keeps the new config.
	puts = nil
	h, err = unroute(context.Background(), f, "demo", "demo-web-r1-2", true)
	assert.NilError(t, err)
	assert.Assert(t, h != nil)
	h.release()
	got, err = router.DecodeConfig(current)
	assert.NilError(t, err)
	assert.Check(t, is.Len(got.Routes[0].Backends, 1), "out of web:8080")
	assert.Check(t, is.Len(puts, 1))
	puts = nil
	h, err = unroute(context.Background(), f, "demo", "demo-api-r1-1", true)
	assert.NilError(t, err)
	assert.Assert(t, h != nil)
	assert.Check(t, is.DeepEqual(h.lastBackend, []string{"api:9090"}))
	assert.Check(t, is.Len(h.routers, 0))
	h.release()
	assert.Check(t, is.Len(puts, 0), "the only backend stays")
}
