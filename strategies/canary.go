package strategies

import "fmt"

func (pl *planner) planCanary(ch *routedChange, pending []replica, gates []int) []int {
	waits := pl.bringUp(ch, pending, gates, gates)
	prev := append(waits, gates...)
	if len(ch.old) > 0 && !ch.rollback && ch.behind {
		for _, st := range ch.spec.Canary.Steps {
			if st.Weight >= 100 {
				break
			}
			// Per-container weights that give the new revision st.Weight percent in all.
			newW, oldW := st.Weight*len(ch.old), (100-st.Weight)*len(ch.target)
			bs := append(oldBackends(ch.old, oldW), ch.backends(nil, newW)...)
			r := pl.route(ch, bs, fmt.Sprintf("canary %s %d%%", ch.name, st.Weight), prev)
			a := pl.add(Step{Action: Analyze, Service: ch.name, Target: ch.name, Revision: ch.revision, Duration: st.Pause,
				Cause: fmt.Sprintf("canary %d%%: judge revision %d on the router's counters", st.Weight, ch.revision), After: r})
			prev = []int{a}
		}
	}
	last := pl.route(ch, ch.backends(nil, 1), "promote "+ch.name, prev)
	if len(ch.old) > 0 {
		last = pl.stopOld(ch, ch.old, "replaced by the canary (kept for rollback)", last)
	}
	return last
}
