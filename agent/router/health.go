package router

import (
	"context"
	"sync"
	"time"
)

// healthChecker actively checks the backends of one route. It reads the route's
// current table every round, so interval, path and backends follow Apply.
type healthChecker struct {
	cancel context.CancelFunc
}

// syncHealth starts or stops the active check to match rc. Called with rt.mu held,
// before the new table is built (turning checks off puts backends back in rotation)
// and again after it was stored (a new checker's first round needs a table).
func (rt *route) syncHealth(rc Route, tableStored bool) {
	want := rc.HealthPath != ""
	switch {
	case want && rt.health == nil && tableStored:
		r := rt.router
		ctx, cancel := context.WithCancel(r.ctx)
		rt.health = &healthChecker{cancel: cancel}
		r.wg.Go(func() { rt.runHealth(ctx) })
	case !want && rt.health != nil:
		rt.health.cancel()
		rt.health = nil
		if old := rt.table.Load(); old != nil {
			for _, b := range old.backends {
				b.activeDown.Store(false)
				b.healthFails.Store(0)
			}
		}
	}
}

func (rt *route) stopHealth() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.health != nil {
		rt.health.cancel()
		rt.health = nil
	}
}

func (rt *route) runHealth(ctx context.Context) {
	timer := time.NewTimer(0) // first round at once
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		tbl := rt.table.Load()
		interval := time.Duration(tbl.cfg.HealthInterval)
		if tbl.cfg.HealthPath != "" {
			roundCtx, cancel := context.WithTimeout(ctx, interval)
			ok := make([]bool, len(tbl.backends))
			var wg sync.WaitGroup
			for i, b := range tbl.backends {
				wg.Go(func() { ok[i] = b.probe(roundCtx, tbl.cfg.HealthPath) })
			}
			wg.Wait()
			cancel()
			rt.applyHealth(ctx, tbl, ok)
		}
		timer.Reset(interval)
	}
}

// applyHealth records one round's results and rebuilds the table if a backend went
// in or out of rotation. Under rt.mu, and only while the checker is still wanted, so
// a round finishing after Apply turned checks off cannot take a backend out again.
func (rt *route) applyHealth(ctx context.Context, tbl *routeTable, ok []bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	changed := false
	for i, b := range tbl.backends {
		if b.recordHealth(ok[i], tbl.cfg.HealthPath) {
			changed = true
		}
	}
	if changed {
		cur := rt.table.Load()
		rt.table.Store(newRouteTable(rt, cur.cfg, cur.backends))
	}
}
