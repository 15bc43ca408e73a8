package rollout

import (
	"container/heap"
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// logBatch is how many lines of one container travel together from its reader to the
// merge, and logBatchesAhead how many batches a reader may be ahead of it: what `logs`
// holds in memory is at most about containers × (logBatchesAhead+2) × logBatch lines,
// whatever the length of the history read.
const (
	logBatch        = 256
	logBatchesAhead = 4
)

// readAll streams every container's logs, merged by timestamp. The engine sends each
// container's lines in timestamp order, so merging the containers' next lines (a k-way
// merge) emits in order as the lines arrive: the first line is printed at once and a
// history of any size is read in bounded memory (before, every line was read, then
// sorted, then printed: 1 GB of logs took gigabytes and printed nothing until the end).
// Lines at the same instant come in the sources' order (by container name).
func readAll(ctx context.Context, eng engine.Engine, sources []logSource, opts LogsOptions, emit func(LogEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	readers := make([]chan []LogEntry, len(sources))
	errs := make([]error, len(sources))
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, run first): every reader has returned
	defer cancel()
	for i, src := range sources {
		out := make(chan []LogEntry, logBatchesAhead)
		readers[i] = out
		wg.Go(func() {
			defer close(out)
			var batch []LogEntry
			send := func() error {
				select {
				case out <- batch:
					batch = make([]LogEntry, 0, logBatch)
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			q := engine.LogOptions{Since: opts.Since, Until: opts.Until, Tail: opts.Tail}
			err := eng.ContainerLogs(ctx, src.c.ID, q, func(l engine.LogLine) error {
				if e := src.entry(l, opts); opts.keep(e) {
					batch = append(batch, e)
					if len(batch) == logBatch {
						return send()
					}
				}
				return nil
			})
			if err == nil && len(batch) > 0 {
				err = send()
			}
			if errors.Is(err, engine.ErrNotFound) {
				err = nil // removed meanwhile
			}
			errs[i] = err
		})
	}

	var h logHeads
	next := func(source int) {
		if batch, ok := <-readers[source]; ok {
			heap.Push(&h, logHead{source: source, lines: batch})
		}
	}
	for i := range readers {
		next(i)
	}
	for h.Len() > 0 {
		top := &h[0]
		if err := emit(top.lines[0]); err != nil {
			return err
		}
		if top.lines = top.lines[1:]; len(top.lines) > 0 {
			heap.Fix(&h, 0)
			continue
		}
		source := heap.Pop(&h).(logHead).source
		next(source)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	wg.Wait()
	return errors.Join(errs...)
}

// logHead is the lines of one container not yet emitted, of its current batch.
type logHead struct {
	source int
	lines  []LogEntry
}

// logHeads is a min-heap of the containers' next lines: by timestamp, then source.
type logHeads []logHead

func (h logHeads) Len() int { return len(h) }
func (h logHeads) Less(i, j int) bool {
	a, b := h[i].lines[0].Time, h[j].lines[0].Time
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].source < h[j].source
}
func (h logHeads) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *logHeads) Push(x any)   { *h = append(*h, x.(logHead)) }
func (h *logHeads) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeByTime merges per-container line lists by timestamp; lines of one container
// keep their order, and lines at the same instant keep the containers' order.
func mergeByTime(lists [][]LogEntry) []LogEntry {
	var out []LogEntry
	for _, l := range lists {
		out = append(out, l...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
