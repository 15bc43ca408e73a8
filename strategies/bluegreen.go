package strategies

import (
	"fmt"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func (pl *planner) planBlueGreen(ch *routedChange, pending []replica, gates []int) []int {
	waits := pl.bringUp(ch, pending, gates, gates)
	after := append(waits, gates...)
	if ch.behind && ch.spec.BlueGreen.PreviewPort != "" && !ch.rollback {
		backends := ch.backends(nil, 1)
		after = []int{pl.add(Step{Action: Route, Service: ch.name, Target: ch.router,
			Backends: backends, Preview: true, After: after,
			Cause: fmt.Sprintf("preview %s on %s: %s", ch.name, ch.spec.BlueGreen.PreviewPort, describeBackends(backends))})}
	}
	if len(ch.old) > 0 && ch.spec.BlueGreen.Promote == compose.PromoteManual && !pl.opts.Promote && !ch.rollback {
		pl.plan.Warnings = append(pl.plan.Warnings, fmt.Sprintf(
			"service %q: the new colour (revision %d) waits for promotion: run `docker lifecycle promote %s`", ch.name, ch.revision, ch.name))
		return after
	}
	last := pl.route(ch, ch.backends(nil, 1), "switch "+ch.name, after)
	if len(ch.old) > 0 && ch.spec.BlueGreen.ScaleDownDelay > 0 && !ch.rollback {
		last = []int{pl.add(Step{Action: Delay, Service: ch.name, Target: ch.name, Duration: ch.spec.BlueGreen.ScaleDownDelay, Cause: "blue-green.scale-down-delay", After: last})}
	}
	if len(ch.old) > 0 {
		last = pl.stopOld(ch, ch.old, "old colour (kept for rollback)", last)
	}
	return last
}
