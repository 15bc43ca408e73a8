package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
)

// ErrNoRollout means no rollout of the project is running (its lock is free).
var ErrNoRollout = errors.New("no rollout running")

// WatchOptions are `watch`'s choices.
type WatchOptions struct {
	Services []string
	// Interval between two views (the router's counters are rates over it).
	Interval time.Duration
	// Wait for a rollout to start when none runs, instead of ErrNoRollout.
	Wait bool
}

// DefaultWatchInterval is how often a rollout view is refreshed.
const DefaultWatchInterval = time.Second

// Watch follows the project's running rollout, reporting its view every interval until
// the rollout ends (its lock is released), then reports and returns the last view, with
// each service's result from the records the rollout wrote. Without a running rollout it
// returns ErrNoRollout, or with opts.Wait waits for one. It ends early, with ctx's error,
// when ctx ends.
func Watch(ctx context.Context, eng engine.Engine, project string, opts WatchOptions, report func(RolloutView)) (RolloutView, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultWatchInterval
	}
	holder, err := awaitRollout(ctx, eng, project, opts)
	if err != nil {
		return RolloutView{}, err
	}
	o := newViewObserver(eng, project, holder, opts.Services)
	defer o.close()
	tick := time.NewTicker(opts.Interval)
	defer tick.Stop()
	for {
		now, held, err := lock.Inspect(ctx, eng, project)
		if err != nil {
			if ctx.Err() != nil {
				return RolloutView{}, ctx.Err()
			}
			return RolloutView{}, fmt.Errorf("watch the rollout of project %s: %w", project, err)
		}
		ended := !held || !now.Same(holder)
		v := o.observe(ctx, ended)
		report(v)
		if ended {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-tick.C:
		}
	}
}

// awaitRollout returns the holder of the project's lock: the rollout to watch.
func awaitRollout(ctx context.Context, eng engine.Engine, project string, opts WatchOptions) (lock.Holder, error) {
	for {
		holder, held, err := lock.Inspect(ctx, eng, project)
		if err != nil {
			return lock.Holder{}, fmt.Errorf("find the rollout of project %s: %w", project, err)
		}
		if held {
			return holder, nil
		}
		if !opts.Wait {
			return lock.Holder{}, fmt.Errorf("project %s: %w (its deploy lock is free)", project, ErrNoRollout)
		}
		select {
		case <-ctx.Done():
			return lock.Holder{}, ctx.Err()
		case <-time.After(opts.Interval):
		}
	}
}

// viewObserver reads what a view is built from: the published state, the containers and
// the routers' counters (through one exec session per router, kept between readings).
type viewObserver struct {
	eng      engine.Engine
	project  string
	holder   lock.Holder
	services []string
	state    RolloutState // the last one read: the state is removed before the lock is released
	clients  map[string]*routerClient
	prev     map[string]router.Snapshot
}

func newViewObserver(eng engine.Engine, project string, holder lock.Holder, services []string) *viewObserver {
	return &viewObserver{eng: eng, project: project, holder: holder, services: services,
		clients: map[string]*routerClient{}, prev: map[string]router.Snapshot{}}
}

// observe reads the engine and builds the view; a failed read becomes a warning of the
// view, and the view goes on with what it has.
func (o *viewObserver) observe(ctx context.Context, ended bool) RolloutView {
	in := viewInputs{Project: o.project, Holder: o.holder, Ended: ended, Now: time.Now(), Services: o.services}
	var warnings []string
	if state, ok, err := readRolloutState(ctx, o.eng, o.project); err != nil {
		warnings = append(warnings, err.Error())
	} else if ok && state.Started.After(o.holder.Since.Add(-time.Second)) {
		o.state = state // an older state is a crashed rollout's leftover
	}
	in.State = o.state
	containers, err := o.eng.ListContainers(ctx, map[string]string{compose.LabelProject: o.project})
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("list the containers of project %s: %v", o.project, err))
	}
	in.Containers = containers
	if ended {
		records, err := History(ctx, o.eng, o.project)
		if err != nil {
			warnings = append(warnings, err.Error())
		}
		for _, r := range records {
			if !r.Time.Before(o.holder.Since) {
				in.Records = append(in.Records, r)
			}
		}
	}
	// At the end too: the last view shows where the traffic went.
	in.Routers = o.readRouters(ctx, containers)
	v := buildRolloutView(in)
	v.Warnings = warnings
	return v
}

// readRouters reads the counters of the project's running routers.
func (o *viewObserver) readRouters(ctx context.Context, containers []engine.Container) []routerReading {
	var out []routerReading
	seen := map[string]bool{}
	for _, c := range containers {
		if c.Labels[compose.LabelRole] != compose.RoleRouter || c.State != "running" {
			continue
		}
		seen[c.ID] = true
		client := o.clients[c.ID]
		if client == nil {
			client = newRouterClient(o.eng, c.ID)
			o.clients[c.ID] = client
		}
		rctx, cancel := context.WithTimeout(ctx, routerReadTimeout)
		snap, err := routerStats(rctx, client)
		cancel()
		if err != nil {
			continue // a router starting or replaced: the next reading
		}
		out = append(out, routerReading{Prev: o.prev[c.ID], Cur: snap})
		o.prev[c.ID] = snap
	}
	for id, client := range o.clients {
		if !seen[id] {
			go client.Close()
			delete(o.clients, id)
			delete(o.prev, id)
		}
	}
	return out
}

func (o *viewObserver) close() {
	for _, c := range o.clients {
		go c.Close()
	}
}

// startRolloutView reports the view of this process's own rollout every interval while
// it runs (deploy, rollback and promote on a terminal), from the same engine-side state
// `watch` reads; the returned function stops it after one last view with the results.
func startRolloutView(ctx context.Context, eng engine.Engine, project string, holder lock.Holder, services []string, report func(RolloutView)) func() {
	if report == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	o := newViewObserver(eng, project, holder, services)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(DefaultWatchInterval)
		defer tick.Stop()
		for {
			report(o.observe(ctx, false))
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			last, cancelLast := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancelLast()
			report(o.observe(last, true))
			o.close()
		})
	}
}

// RolloutOutcome sums up an ended view: the services rolled back and those that failed.
func RolloutOutcome(v RolloutView) (rolledBack, failed []string) {
	for _, s := range v.Services {
		switch s.Result {
		case ResultRolledBack:
			rolledBack = append(rolledBack, s.Service)
		case ResultFailed:
			failed = append(failed, s.Service)
		}
	}
	return slices.Clip(rolledBack), slices.Clip(failed)
}
