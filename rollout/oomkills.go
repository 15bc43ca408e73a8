package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// oomKills counts the project's OOM kills for `monitor`: the engine's oom events seen
// since the monitor started (one event stream, which the oom alert rule reads too), and,
// for lifecycle_container_oom_kills_total only, 1 more for a container whose inspect
// said State.OOMKilled when the monitor first saw it and no event had been counted for
// it yet (a kill before the monitor started). It is not the kernel's lifetime count.
type oomKills struct {
	eng     engine.Engine
	project string
	// log receives a broken event stream's error, once per distinct message.
	log func(string)

	mu     sync.Mutex
	events map[string]uint64 // oom events seen, by container ID
	before map[string]uint64 // 1 when State.OOMKilled at first sight (and no event yet), by container ID
	seen   map[string]bool   // inspected at first sight
	logged map[string]bool
}

func newOOMKills(eng engine.Engine, project string, log func(string)) *oomKills {
	if log == nil {
		log = func(string) {}
	}
	return &oomKills{eng: eng, project: project, log: log,
		events: map[string]uint64{}, before: map[string]uint64{}, seen: map[string]bool{}, logged: map[string]bool{}}
}

// follow counts the oom events until ctx ends, subscribing again after a break.
func (k *oomKills) follow(ctx context.Context) {
	for ctx.Err() == nil {
		evs, errs := k.eng.Events(ctx, map[string]string{compose.LabelProject: k.project}, []string{engine.EventOOM})
		for e := range evs {
			k.mu.Lock()
			k.events[e.ContainerID]++
			k.mu.Unlock()
		}
		if err := <-errs; err != nil && ctx.Err() == nil {
			msg := fmt.Sprintf("the engine's event stream broke (%v): oom kills meanwhile are missed; subscribing again", err)
			k.mu.Lock()
			first := !k.logged[msg]
			k.logged[msg] = true
			k.mu.Unlock()
			if first {
				k.log(msg)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// eventCounts returns the oom events seen, by container ID (what the oom alert rule
// counts: kills since the monitor started).
func (k *oomKills) eventCounts() map[string]uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]uint64, len(k.events))
	for id, n := range k.events {
		out[id] = n
	}
	return out
}

// totals inspects the listed containers the monitor sees for the first time (their
// State.OOMKilled) and returns each listed container's count: its events, plus 1 when
// it was OOMKilled at first sight before any event. A container whose inspect fails is
// inspected again at the next call.
func (k *oomKills) totals(ctx context.Context, listed []engine.Container) map[string]uint64 {
	k.mu.Lock()
	var unseen []string
	for _, ct := range listed {
		if !k.seen[ct.ID] {
			unseen = append(unseen, ct.ID)
		}
	}
	k.mu.Unlock()
	killed := make([]bool, len(unseen))
	ok := make([]bool, len(unseen))
	var wg sync.WaitGroup
	for i, id := range unseen {
		wg.Go(func() {
			d, err := k.eng.InspectContainer(ctx, id)
			killed[i], ok[i] = err == nil && d.OOMKilled, err == nil
		})
	}
	wg.Wait()

	k.mu.Lock()
	defer k.mu.Unlock()
	for i, id := range unseen {
		if !ok[i] {
			continue
		}
		k.seen[id] = true
		if killed[i] && k.events[id] == 0 {
			k.before[id] = 1
		}
	}
	exists := make(map[string]bool, len(listed))
	out := make(map[string]uint64, len(listed))
	for _, ct := range listed {
		exists[ct.ID] = true
		out[ct.ID] = k.events[ct.ID] + k.before[ct.ID]
	}
	// Removed containers are forgotten (their IDs never come back).
	for id := range k.seen {
		if !exists[id] {
			delete(k.seen, id)
			delete(k.before, id)
			delete(k.events, id)
		}
	}
	return out
}
