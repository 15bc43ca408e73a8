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
	var revs []int
	for _, c := range leaving {
		if c.Revision != ch.revision {
			revs = append(revs, c.Revision)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(revs)))
	revs = slices.Compact(revs)
	if len(revs) <= keep {
		return
	}
	drop := map[int]bool{}
	for _, r := range revs[keep:] {
		drop[r] = true
	}
	sort.Slice(leaving, func(i, j int) bool { return leaving[i].Name < leaving[j].Name })
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
