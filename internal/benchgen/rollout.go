package benchgen

import (
	"fmt"
	"strings"
	"time"
)

// RolloutBatch is one batch of a rolling deploy, measured from its progress events.
type RolloutBatch struct {
	// BringUp is from the new container's "Starting" to its "Healthy": the time the
	// container itself needs (engine start, then the health check). Later batches'
	// containers are created while earlier batches run, so creation is not in it.
	BringUp time.Duration
	// Route is the router update, including the drain of the leaving container.
	Route time.Duration
	// Stop is the old container's stop.
	Stop time.Duration
	// Overhead is the batch's wall time minus BringUp.
	Overhead time.Duration
}

// RolloutBatches splits a one-at-a-time rolling deploy of one service into batches:
// each begins at a container's "Starting" event and ends where the next begins (the
// last ends at the deploy's final event; the time before the first is overhead too).
func RolloutBatches(events []Event) ([]RolloutBatch, error) {
	type mark struct{ creating, healthy, routing, routed, stopping, stopped time.Time }
	var batches []*mark
	var cur *mark
	for _, e := range events {
		switch {
		case strings.HasPrefix(e.ID, "Container ") && e.Text == "Starting":
			cur = &mark{creating: e.Time}
			batches = append(batches, cur)
		case cur == nil:
		case strings.HasPrefix(e.ID, "Container ") && e.Text == "Healthy":
			cur.healthy = e.Time
		case strings.HasPrefix(e.ID, "Service ") && e.Text == "Routing":
			cur.routing = e.Time
		case strings.HasPrefix(e.ID, "Service ") && e.Text == "Routed":
			cur.routed = e.Time
		case strings.HasPrefix(e.ID, "Container ") && e.Text == "Stopping":
			cur.stopping = e.Time
		case strings.HasPrefix(e.ID, "Container ") && e.Text == "Stopped":
			cur.stopped = e.Time
		}
	}
	if len(batches) == 0 {
		return nil, fmt.Errorf("no container was started: not a rollout")
	}
	end := events[len(events)-1].Time
	lead := batches[0].creating.Sub(events[0].Time) // observe, plan, first create
	out := make([]RolloutBatch, 0, len(batches))
	_ = lead
	for i, b := range batches {
		if b.healthy.IsZero() {
			return nil, fmt.Errorf("batch %d: no Healthy event", i+1)
		}
		next := end
		if i+1 < len(batches) {
			next = batches[i+1].creating
		}
		out = append(out, RolloutBatch{
			BringUp:  b.healthy.Sub(b.creating),
			Route:    b.routed.Sub(b.routing),
			Stop:     b.stopped.Sub(b.stopping),
			Overhead: next.Sub(b.creating) - b.healthy.Sub(b.creating),
		})
	}
	return out, nil
}
