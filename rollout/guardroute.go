package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// The guard takes a routed container out of its routers before it restarts it, so no
// request is sent to it while it is down, and puts it back once it is healthy again.
// The caller holds the project lock: a deploy, which rewrites the routers' whole
// config, cannot run in between.

// routeHold is a container taken out of the project's routers; restore puts it back,
// release leaves it out.
type routeHold struct {
	routers []heldRouter
	// lastBackend: routes that kept the container because it was their only backend
	// (unroute with keepLast).
	lastBackend []string
}

type heldRouter struct {
	client   *routerClient
	original router.Config
}

// unroute removes container from every route of the project's routers that has it,
// each router waiting for its requests in flight to drain; with keepLast, a route whose
// only backend it is keeps it (a quarantined container still answers some requests,
// no backend would answer none). A container no router has gives no hold.
func unroute(ctx context.Context, eng engine.Engine, project, container string, keepLast bool) (*routeHold, error) {
	h := &routeHold{}
	routers, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project, compose.LabelRole: compose.RoleRouter})
	if err == nil {
		for _, r := range routers {
			if r.State != "running" {
				continue
			}
			if err = h.unrouteFrom(ctx, eng, r, container, keepLast); err != nil {
				break
			}
		}
	}
	if err != nil {
		h.restore(ctx)
		return nil, err
	}
	if len(h.routers) == 0 && len(h.lastBackend) == 0 {
		h.restore(ctx)
		return nil, nil
	}
	return h, nil
}

func (h *routeHold) unrouteFrom(ctx context.Context, eng engine.Engine, r engine.Container, container string, keepLast bool) error {
	c := newRouterClient(eng, r.ID)
	out, err := c.do(ctx, "get-config", nil, 0)
	if err != nil {
		c.Close()
		return fmt.Errorf("%w: read config of %s: %w", ErrRouter, r.Name, err)
	}
	cfg, err := router.DecodeConfig(out)
	if err != nil {
		c.Close()
		return fmt.Errorf("%w: config of %s: %w", ErrRouter, r.Name, err)
	}
	without := cfg
	without.Routes = slices.Clone(cfg.Routes)
	removed, drain := false, time.Duration(0)
	for i, route := range without.Routes {
		kept := slices.DeleteFunc(slices.Clone(route.Backends), func(b router.Backend) bool { return b.ID == container })
		if len(kept) == 0 && keepLast {
			h.lastBackend = append(h.lastBackend, route.Name)
			continue
		}
		if len(kept) != len(route.Backends) {
			removed = true
			drain = max(drain, time.Duration(route.DrainTimeout))
			without.Routes[i].Backends = kept
		}
	}
	if !removed {
		c.Close()
		return nil
	}
	body, err := json.Marshal(without)
	if err == nil {
		_, err = c.do(ctx, "put-config", body, drain+time.Second)
	}
	if err != nil {
		c.Close()
		return fmt.Errorf("%w: take %s out of %s: %w", ErrRouter, container, r.Name, err)
	}
	h.routers = append(h.routers, heldRouter{client: c, original: cfg})
	return nil
}

// release leaves the container out of the routers (until the next deploy writes their
// configs) and closes the sessions.
func (h *routeHold) release() {
	for _, r := range h.routers {
		r.client.Close()
	}
	h.routers = nil
}

// restore gives each router its config back.
func (h *routeHold) restore(ctx context.Context) error {
	var errs []error
	for _, r := range h.routers {
		body, err := json.Marshal(r.original)
		if err == nil {
			_, err = r.client.do(ctx, "put-config", body, 0)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: put the container back: %w", ErrRouter, err))
		}
		r.client.Close()
	}
	h.routers = nil
	return errors.Join(errs...)
}

// waitHealthy waits, up to bound, until the container is healthy (or running, without
// a healthcheck); it reports whether it got there.
func waitHealthy(ctx context.Context, eng engine.Engine, id string, bound time.Duration) bool {
	deadline := time.Now().Add(bound)
	for {
		d, err := eng.InspectContainer(ctx, id)
		switch {
		case err != nil:
			return false
		case d.State == "running" && (d.Health == "healthy" || d.Health == ""):
			return true
		case d.State != "running" && d.State != "restarting":
			return false
		case time.Now().After(deadline):
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}
