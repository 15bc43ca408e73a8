package strategies

import (
	"fmt"
	"slices"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func (pl *planner) planRolling(ch *routedChange, pending []replica, serving []RouteBackend, gates []int, verb string) []int {
	p := max(ch.update.Parallelism, 1)
	if len(ch.old) == 0 {
		p = max(len(pending), 1) // nothing serves yet: no reason to go one by one
	}
	batches := max((len(pending)+p-1)/p, (len(ch.old)+p-1)/p)
	prev := gates
	remove := func(bs []RouteBackend, cs []ObservedContainer) []RouteBackend {
		return slices.DeleteFunc(slices.Clone(bs), func(b RouteBackend) bool {
			return slices.ContainsFunc(cs, func(c ObservedContainer) bool { return c.Name == b.Container })
		})
	}
	if batches == 0 && ch.behind && !sameBackends(serving, ch.routed) {
		return pl.route(ch, serving, "route "+ch.name, prev)
	}
	for b := range batches {
		news := pending[min(b*p, len(pending)):min((b+1)*p, len(pending))]
		olds := ch.old[min(b*p, len(ch.old)):min((b+1)*p, len(ch.old))]
		batch := fmt.Sprintf("%s %s batch %d/%d", verb, ch.name, b+1, batches)
		if b > 0 && ch.update.Delay > 0 {
			prev = []int{pl.add(Step{Action: Delay, Service: ch.name, Target: ch.name, Duration: ch.update.Delay, Cause: "update_config.delay", After: prev})}
		}
		if ch.update.Order == compose.OrderStopFirst {
			after := prev
			if len(olds) > 0 {
				serving = remove(serving, olds)
				r := pl.route(ch, serving, batch+": drain old", prev)
				after = pl.stopOld(ch, olds, batch+": replaced (kept for rollback)", r)
			}
			waits := pl.bringUp(ch, news, gates, after)
			pl.pair(waits, olds)
			serving = append(serving, ch.backends(news, 1)...)
			prev = pl.route(ch, serving, batch, append(waits, after...))
			continue
		}
		waits := pl.bringUp(ch, news, gates, prev)
		pl.pair(waits, olds)
		serving = append(remove(serving, olds), ch.backends(news, 1)...)
		r := pl.route(ch, serving, batch, append(waits, prev...))
		prev = r
		if len(olds) > 0 {
			prev = pl.stopOld(ch, olds, batch+": replaced (kept for rollback)", r)
		}
	}
	return prev
}

// pair marks each new container's wait step with the old container it replaces.
func (pl *planner) pair(waits []int, olds []ObservedContainer) {
	for i, id := range waits {
		if i < len(olds) {
			pl.plan.Steps[id-1].Replaces = olds[i].Name
		}
	}
}
