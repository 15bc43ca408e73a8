package strategies

import (
	"fmt"
	"slices"
	"sort"
)

// planPrune removes stopped revisions beyond x-lifecycle.history once the rollout is done.
func (pl *planner) planPrune(ch *routedChange, after []int) {
	keep := *ch.spec.History
	leaving := append(slices.Clone(ch.retained), ch.old...)
	drop := revisionsBeyondHistory(leaving, ch.revision, keep)
	for _, c := range leaving {
		if !drop[c.Revision] {
			continue
		}
		removeAfter := after
		for _, s := range pl.plan.Steps {
			if s.Action == Stop && s.ContainerID == c.ID {
				removeAfter = []int{s.ID}
			}
		}
		pl.add(Step{Action: Remove, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision,
			Cause: fmt.Sprintf("history: keep %d previous revisions", keep), After: removeAfter})
	}
}

// revisionsBeyondHistory returns the revisions of the leaving containers (other than
// current) beyond the newest keep, and sorts leaving by name so that their removals are
// planned in a stable order. The routed strategies and recreate share it.
func revisionsBeyondHistory(leaving []ObservedContainer, current, keep int) map[int]bool {
	var revs []int
	for _, c := range leaving {
		if c.Revision != current {
			revs = append(revs, c.Revision)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	revs = slices.Compact(revs)
	drop := map[int]bool{}
	if len(revs) > keep {
		for _, r := range revs[keep:] {
			drop[r] = true
		}
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i].Name < leaving[j].Name })
	return drop
}
