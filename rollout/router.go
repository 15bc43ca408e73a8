package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// ErrRouter marks a failure to create, reach or configure the project's router.
var ErrRouter = errors.New("traffic router")

// The router is driven with `docker exec ROUTER /agent ctl …`: the control plane is a
// unix socket on the router's state volume and never a published port.
var (
	ctlGetConfig = []string{"/agent", "ctl", "get-config"}
	ctlStats     = []string{"/agent", "ctl", "stats"}
	ctlHealthz   = []string{"/agent", "ctl", "healthz"}
)

// readOnlyExec tells the dry-run engine which router calls only read.
func readOnlyExec(cmd []string) bool {
	return slices.Equal(cmd, ctlGetConfig) || slices.Equal(cmd, ctlStats) || slices.Equal(cmd, ctlHealthz)
}

// routerPorts are the routes of the router with the given key: for the project's
// router, one per published port of a service behind it; for a service's own router,
// one per port of the service.
func routerPorts(p *compose.Project, key string) ([]compose.RoutedPort, error) {
	if key == "" {
		return compose.RoutedPorts(p)
	}
	var out []compose.RoutedPort
	for _, port := range compose.InternalPorts(p, key) {
		out = append(out, compose.RoutedPort{Route: compose.InternalRouteName(key, port), Service: key, Published: port, Target: port})
	}
	return out, nil
}

// routerConfig builds a router's whole config from each service's backends.
func routerConfig(p *compose.Project, key string, backends map[string][]strategies.RouteBackend) (router.Config, error) {
	ports, err := routerPorts(p, key)
	if err != nil {
		return router.Config{}, err
	}
	cfg := router.Config{Version: router.ConfigVersion}
	for _, rp := range ports {
		key := rp.Service
		if rp.Preview {
			key = compose.PreviewKey(rp.Service)
		}
		cfg.Routes = append(cfg.Routes, routeOf(p, rp, backends[key]))
	}
	return cfg, nil
}

// routeOf is the route of one routed port, from its service's x-lifecycle settings,
// with backends: on one engine (routerConfig) and on Swarm (swarmRouterConfig).
func routeOf(p *compose.Project, rp compose.RoutedPort, backends []strategies.RouteBackend) router.Route {
	spec := p.ServiceSpecs[rp.Service]
	route := router.Route{
		Name: rp.Route, Listen: ":" + strconv.Itoa(rp.Published), Protocol: router.Protocol(spec.Protocol),
		SniffWindow: router.Duration(spec.SniffWindow), DrainTimeout: router.Duration(spec.Drain), Backends: []router.Backend{},
	}
	if c := spec.ActiveCheck; c != nil {
		route.HealthPath, route.HealthInterval = c.Path, router.Duration(c.Interval)
	}
	route.Backends = append(route.Backends, routeBackends(rp.Target, backends)...)
	return route
}

// routeBackends are a route's backends for containers listening on port target: the
// deploy's routes and the guard's reconciliation of a restarted router
// (guardrouter.go) both write them so.
func routeBackends(target int, bs []strategies.RouteBackend) []router.Backend {
	out := make([]router.Backend, 0, len(bs))
	for _, b := range bs {
		out = append(out, router.Backend{
			ID: b.Container, Address: net.JoinHostPort(b.Container, strconv.Itoa(target)),
			Weight: b.Weight, Group: revisionGroup(b.Revision),
		})
	}
	return out
}

func revisionGroup(rev int) string { return "r" + strconv.Itoa(rev) }

// routesFromConfig reads each service's backends back from a router's config (routes
// are named "<service>:<port>"; a service's routes share their backends).
func routesFromConfig(cfg router.Config, into map[string][]strategies.RouteBackend) {
	seen := map[string]bool{}
	for _, r := range cfg.Routes {
		service := compose.ServiceOfRoute(r.Name)
		if seen[service] {
			continue
		}
		seen[service] = true
		into[service] = []strategies.RouteBackend{}
		for _, b := range r.Backends {
			rev, _ := strconv.Atoi(b.Group[min(1, len(b.Group)):])
			into[service] = append(into[service], strategies.RouteBackend{Container: b.ID, Revision: rev, Weight: b.Weight})
		}
	}
}

// readRoutes asks a running router for its config and adds its services' backends.
func readRoutes(ctx context.Context, eng engine.Engine, r strategies.ObservedContainer, into map[string][]strategies.RouteBackend) error {
	out, err := eng.Exec(ctx, r.ID, ctlGetConfig, nil)
	if err != nil {
		return fmt.Errorf("%w: read config of %s: %w", ErrRouter, r.Name, err)
	}
	cfg, err := router.DecodeConfig(out)
	if err != nil {
		return fmt.Errorf("%w: config of %s: %w", ErrRouter, r.Name, err)
	}
	routesFromConfig(cfg, into)
	return nil
}

// routerStats reads the router's counters.
func routerStats(ctx context.Context, c *routerClient) (router.Snapshot, error) {
	out, err := c.do(ctx, "stats", nil, 0)
	if err != nil {
		return router.Snapshot{}, fmt.Errorf("%w: read stats: %w", ErrRouter, err)
	}
	var s router.Snapshot
	if err := json.Unmarshal(out, &s); err != nil {
		return router.Snapshot{}, fmt.Errorf("%w: stats: %w", ErrRouter, err)
	}
	return s, nil
}

// pushRoutes sends a router its whole config and returns once every backend it
// removed has drained (or the longest drain bound passed).
func (x *executor) pushRoutes(ctx context.Context, key string) error {
	x.routeMu.Lock()
	defer x.routeMu.Unlock()
	client := x.routers[key]
	if client == nil {
		return fmt.Errorf("%w: %s does not exist", ErrRouter, compose.RouterNameOf(x.project.Name, key))
	}
	cfg, err := routerConfig(x.project, key, x.routes)
	if err != nil {
		return err
	}
	body, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	drain := time.Duration(0)
	for _, r := range cfg.Routes {
		drain = max(drain, time.Duration(r.DrainTimeout))
	}
	if client.noAuto && withoutAuto(&cfg) {
		// A router created by an older plugin keeps its agent until its ports or
		// networks change (docs/rollouts.md): it carries these ports as it did before.
		if !client.warnedAuto {
			client.warnedAuto = true
			progress.Emit(x.events, "Router "+compose.RouterNameOf(x.project.Name, key), progress.Warning, "Protocol auto not supported",
				"this router's agent predates it: its ports stay http until the router is recreated (`docker lifecycle down` and deploy, or a change of published ports)")
		}
		if body, err = json.Marshal(cfg); err != nil {
			return err
		}
	}
	if _, err = client.do(ctx, "put-config", body, drain+time.Second); err != nil {
		return fmt.Errorf("%w: apply config: %w", ErrRouter, err)
	}
	return nil
}

// withoutAuto turns cfg's auto routes into http routes (what every route was before
// auto existed) and reports whether it changed any.
func withoutAuto(cfg *router.Config) bool {
	changed := false
	for i := range cfg.Routes {
		if cfg.Routes[i].Protocol == router.Auto {
			cfg.Routes[i].Protocol, cfg.Routes[i].SniffWindow = router.HTTP, 0
			changed = true
		}
	}
	return changed
}

func (x *executor) route(ctx context.Context, s strategies.Step) error {
	id := "Service " + s.Service
	progress.Emit(x.events, id, progress.Working, "Routing", s.Cause)
	x.routeMu.Lock()
	backends := x.substitute(s.Backends)
	if s.Preview {
		x.routes[compose.PreviewKey(s.Service)] = backends
	} else {
		x.routes[s.Service] = backends
	}
	x.routeMu.Unlock()
	if err := x.pushRoutes(ctx, x.desired.Services[s.Service].RouterKey); err != nil {
		return x.stepError(s, err)
	}
	progress.Emit(x.events, id, progress.Done, "Routed", s.Cause)
	return nil
}

// ensureRouter creates the router (replacing one with other ports or networks), waits
// for its control socket and gives it the routes the project serves now.
func (x *executor) ensureRouter(ctx context.Context, s strategies.Step) error {
	id := "Container " + s.Target
	progress.Emit(x.events, id, progress.Working, "Creating", s.Cause)
	fail := func(err error) error {
		progress.Emit(x.events, id, progress.Error, "Error", err.Error())
		return fmt.Errorf("%w: %w: %s: %w", ErrDeployFailed, ErrRouter, s.Target, err)
	}
	arch, err := x.eng.Arch(ctx)
	if err != nil {
		return fail(err)
	}
	image, err := agentimage.Ensure(ctx, x.eng, arch)
	if err != nil {
		return fail(err)
	}
	key := s.Service // "" for the project's router
	old := x.observed.Router
	if key != "" {
		old = x.observed.ServiceRouters[key]
	}
	if old != nil {
		if err := x.eng.RemoveContainer(ctx, old.ID, false); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return fail(err)
		}
	}
	var spec compose.ContainerCreate
	if key == "" {
		spec, err = compose.RouterContainer(x.project, image, x.desired.RoutedPorts, x.desired.RouterNetworks)
		if err != nil {
			return fail(err)
		}
	} else if spec, err = compose.InternalRouterContainer(x.project, key, image); err != nil {
		return fail(err)
	}
	cid, err := x.eng.CreateContainer(ctx, engineSpec(spec))
	if err != nil {
		return fail(err)
	}
	if err := x.eng.StartContainer(ctx, cid); err != nil {
		return fail(startHint(err))
	}
	x.routeMu.Lock()
	if c := x.routers[key]; c != nil {
		c.Close() // the old router's session
	}
	x.routers[key] = newRouterClient(x.eng, cid)
	x.routeMu.Unlock()
	if err := waitControlSocket(ctx, x.eng, cid); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(err)
	}
	if err := x.pushRoutes(ctx, key); err != nil {
		return fail(err)
	}
	progress.Emit(x.events, id, progress.Done, "Started", "traffic router "+image)
	return nil
}

// waitControlSocket waits until a started router answers on its control socket, which
// appears within milliseconds of the start (15 s at most).
func waitControlSocket(ctx context.Context, eng engine.Engine, id string) error {
	deadline := time.Now().Add(15 * time.Second)
	for pause := 10 * time.Millisecond; ; pause = min(pause*2, 200*time.Millisecond) {
		_, err := eng.Exec(ctx, id, ctlHealthz, nil)
		if err == nil {
			return nil
		}
		if errors.Is(err, engine.ErrNotFound) && !isRunning(ctx, eng, id) {
			return fmt.Errorf("control socket: %w", err) // the container is gone or stopped
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("control socket not ready: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

// isRunning reports whether the container exists and runs (or is being restarted).
func isRunning(ctx context.Context, eng engine.Engine, id string) bool {
	d, err := eng.InspectContainer(ctx, id)
	return err == nil && (d.State == "running" || d.State == "restarting")
}

func (x *executor) routerClient(key string) *routerClient {
	x.routeMu.Lock()
	defer x.routeMu.Unlock()
	return x.routers[key]
}
