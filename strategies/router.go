package strategies

import (
	"fmt"
	"maps"
	"slices"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// planRouter creates the router when a routed service needs it and it is missing or
// was created for other ports or networks.
func (pl *planner) planRouter(changes map[string]*routedChange) error {
	for _, name := range slices.Sorted(maps.Keys(changes)) {
		if ch := changes[name]; ch.behind && ch.routerKey != "" {
			pl.planServiceRouter(name)
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(changes)), func(ch *routedChange) bool { return ch.behind && ch.routerKey == "" }) {
		return nil
	}
	ports, hash := pl.desired.RoutedPorts, pl.desired.RouterHash
	r := pl.observed.Router
	cause := ""
	switch {
	case r == nil:
		cause = "router missing"
	case pl.observed.RouterHash != hash:
		cause = "router ports or networks changed (recreate: open connections are cut)"
	case !r.Running():
		cause = "router not running"
	default:
		return nil
	}
	if err := pl.checkRouterPorts(ports, changes); err != nil {
		return err
	}
	pl.routerSteps[""] = pl.add(Step{Action: EnsureRouter, Target: compose.RouterName(pl.project.Name), Cause: cause,
		After: append(slices.Clone(pl.setup), pl.migrationSteps...)})
	return nil
}

// planServiceRouter creates an internal service's own router when it is missing or
// was created for other ports or networks.
func (pl *planner) planServiceRouter(service string) {
	r := pl.observed.ServiceRouters[service]
	cause := ""
	switch {
	case r == nil:
		cause = "router of the service's name missing"
	case r.ConfigHash != pl.desired.Services[service].InternalRouterHash:
		cause = "router ports or networks changed (recreate: open connections are cut)"
	case !r.Running():
		cause = "router not running"
	default:
		return
	}
	pl.routerSteps[service] = pl.add(Step{Action: EnsureRouter, Service: service, Target: pl.desired.Services[service].RouterName,
		Cause: cause, After: slices.Clone(pl.setup)})
}

// checkRouterPorts refuses a router whose host ports another container holds, before
// anything changes; the project's own router and the containers moving behind it
// (which leave first) do not count.
func (pl *planner) checkRouterPorts(ports []compose.RoutedPort, changes map[string]*routedChange) error {
	leaving := map[string]bool{compose.RouterName(pl.project.Name): true}
	for _, ch := range changes {
		for _, c := range ch.migrate {
			leaving[c.Name] = true
		}
	}
	for _, rp := range ports {
		for _, owner := range pl.observed.PortOwners {
			if leaving[owner.Container] || int(owner.HostPort) != rp.Published || owner.Protocol != "tcp" || !ipsOverlap(rp.HostIP, owner.HostIP) {
				continue
			}
			return fmt.Errorf("service %q publishes %s:%d/tcp (through the router): %w by container %s; stop it or change the published port",
				rp.Service, hostIPOrAll(rp.HostIP), rp.Published, ErrPortTaken, owner.Container)
		}
	}
	return nil
}
