package rollout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// A rollout's timeline (its progress events and the router's per-second counters) is
// kept with its revision record, so a failed canary can be explained afterwards. It is
// bounded: it travels as a label of the record's volume, which `history`, `monitor`
// and every deploy read with the volume list.
const (
	labelTimeline = "io.lifecycle.timeline"
	// MaxTimelineEvents is how many events a record keeps: the newest (the end of a
	// rollout is what explains its result).
	MaxTimelineEvents = 400
	// MaxTimelineSamples is how many one-second counter samples a record keeps per
	// revision: the newest, ten minutes of a rollout.
	MaxTimelineSamples = 600
	// maxTimelineLabel bounds the stored form (gzip, base64); above it the oldest
	// samples go first.
	maxTimelineLabel = 32 << 10
	timelinePrefix   = "gz1:" // the encoding, so another can follow
	sampleInterval   = time.Second
)

// Kinds of timeline events.
const (
	KindStep      = "step"      // a plan step of a resource began or ended
	KindContainer = "container" // a container of the service: created, started, healthy, unhealthy, stopped…
	KindWeight    = "weight"    // the router's weights of the service changed
	KindAnalysis  = "analysis"  // a canary analysis began, passed or failed
	KindRollback  = "rollback"  // the automatic rollback began or ended
	KindError     = "error"     // a step failed
	KindResult    = "result"    // the record's result, last
)

// Timeline is what a rollout recorded for one service.
type Timeline struct {
	Start  time.Time       `json:"start"`
	End    time.Time       `json:"end"`
	Events []TimelineEvent `json:"events"`
	// Samples are the router's counters of each revision of the service over each
	// interval (one second; the last may be shorter), oldest first.
	Samples []TimelineSample `json:"samples"`
	// Verdicts are a canary's analysis verdicts, one per step judged (or aborted).
	Verdicts []string `json:"verdicts,omitempty"`
	// DroppedEvents and DroppedSamples count what the bounds left out (the oldest).
	DroppedEvents  int `json:"dropped_events,omitempty"`
	DroppedSamples int `json:"dropped_samples,omitempty"`
}

// TimelineEvent is one progress event of the rollout.
type TimelineEvent struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Status   string    `json:"status"`   // the progress status: working, done, warning, error, info
	Resource string    `json:"resource"` // "Container demo-web-r3-1", "Service web", "Router …"
	Text     string    `json:"text"`
	Detail   string    `json:"detail,omitempty"`
}

// TimelineSample is one revision's router counters over one interval ending at Time.
type TimelineSample struct {
	Time       time.Time `json:"time"`
	IntervalMs int64     `json:"interval_ms"`
	Revision   int       `json:"revision"`
	Weight     int       `json:"weight"` // the sum of its active backends' weights at Time
	Requests   uint64    `json:"requests"`
	Errors5xx  uint64    `json:"errors_5xx"`
	// Errors are transport failures (refused or timed-out dials, resets), not 5xx.
	Errors uint64  `json:"errors"`
	P99Ms  float64 `json:"p99_ms"`
}

// ErrNoTimeline means a revision record has no timeline (written before timelines were
// kept, or by a rollout that recorded nothing).
var ErrNoTimeline = errors.New("no timeline recorded")

// Timeline decodes the record's timeline.
func (r Record) Timeline() (Timeline, error) {
	if r.timeline == "" {
		return Timeline{}, fmt.Errorf("service %q revision %d: %w (records written before this version have none)", r.Service, r.Revision, ErrNoTimeline)
	}
	t, err := decodeTimeline(r.timeline)
	if err != nil {
		return Timeline{}, fmt.Errorf("service %q revision %d: read the timeline of %s: %w", r.Service, r.Revision, r.volume, err)
	}
	return t, nil
}

func encodeTimeline(t Timeline) (string, error) {
	for {
		raw, err := json.Marshal(t)
		if err != nil {
			return "", err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(raw)
		if err := zw.Close(); err != nil {
			return "", err
		}
		s := timelinePrefix + base64.StdEncoding.EncodeToString(buf.Bytes())
		if len(s) <= maxTimelineLabel || len(t.Samples)+len(t.Events) == 0 {
			return s, nil
		}
		// Too big: the oldest half of the samples go (then events, when no sample is left).
		if n := len(t.Samples); n > 0 {
			cut := max(n/2, 1)
			t.Samples, t.DroppedSamples = t.Samples[cut:], t.DroppedSamples+cut
		} else {
			cut := max(len(t.Events)/2, 1)
			t.Events, t.DroppedEvents = t.Events[cut:], t.DroppedEvents+cut
		}
	}
}

func decodeTimeline(s string) (Timeline, error) {
	data, ok := strings.CutPrefix(s, timelinePrefix)
	if !ok {
		return Timeline{}, fmt.Errorf("unknown encoding %.8q", s)
	}
	zipped, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return Timeline{}, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		return Timeline{}, err
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 16<<20))
	if err != nil {
		return Timeline{}, err
	}
	var t Timeline
	if err := json.Unmarshal(raw, &t); err != nil {
		return Timeline{}, err
	}
	return t, nil
}

// timelineRecorder collects, for each service of a plan, the events that concern it
// and its router counters. It is a progress.Writer in front of the deploy's own, so
// every event the user sees is recorded, and nothing on the critical path waits for it.
type timelineRecorder struct {
	next  progress.Writer
	start time.Time
	owner map[string]string // event ID → service ("Container x", "Service s")
	// mu guards what follows.
	mu       sync.Mutex
	services map[string]*timelineBuffer
}

type timelineBuffer struct {
	verdicts       []string
	events         []TimelineEvent
	droppedEvents  int
	samples        map[int][]TimelineSample // per revision
	droppedSamples int
}

func newTimelineRecorder(next progress.Writer, plan strategies.Plan, now time.Time) *timelineRecorder {
	r := &timelineRecorder{next: next, start: now, owner: map[string]string{}, services: map[string]*timelineBuffer{}}
	for _, s := range plan.Steps {
		if s.Service == "" {
			continue
		}
		r.services[s.Service] = &timelineBuffer{samples: map[int][]TimelineSample{}}
		r.owner["Service "+s.Service] = s.Service
		if s.Target != "" && s.Action != strategies.EnsureRouter {
			r.owner[containerID(s.Target)] = s.Service
		}
	}
	return r
}

// Event records e for the service it concerns, or for every service when it concerns
// the project (a router, the lock, a network), then passes it on.
func (r *timelineRecorder) Event(e progress.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.next.Event(e)
	te := TimelineEvent{Time: e.Time, Kind: eventKind(e), Status: string(e.Status), Resource: e.ID, Text: e.Text, Detail: e.Detail}
	r.mu.Lock()
	defer r.mu.Unlock()
	if service, ok := r.owner[e.ID]; ok {
		r.services[service].addEvent(te)
		return
	}
	for _, b := range r.services {
		b.addEvent(te)
	}
}

func (r *timelineRecorder) Close() error { return r.next.Close() }

func (b *timelineBuffer) addEvent(e TimelineEvent) {
	if len(b.events) >= MaxTimelineEvents {
		b.events = slices.Delete(b.events, 0, 1)
		b.droppedEvents++
	}
	b.events = append(b.events, e)
}

func (r *timelineRecorder) addVerdict(service, verdict string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.services[service]; b != nil && len(b.verdicts) < maxVerdicts {
		b.verdicts = append(b.verdicts, verdict)
	}
}

func (r *timelineRecorder) addSample(service string, s TimelineSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.services[service]
	if b == nil {
		return
	}
	if len(b.samples[s.Revision]) >= MaxTimelineSamples {
		b.samples[s.Revision] = slices.Delete(b.samples[s.Revision], 0, 1)
		b.droppedSamples++
	}
	b.samples[s.Revision] = append(b.samples[s.Revision], s)
}

// timeline returns the service's timeline, ended by its result.
func (r *timelineRecorder) timeline(service string, result Record) Timeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Timeline{Start: r.start, End: result.Time}
	b := r.services[service]
	if b == nil {
		return t
	}
	t.Events = slices.Clone(b.events)
	t.Verdicts = slices.Clone(b.verdicts)
	detail := fmt.Sprintf("revision %d", result.Revision)
	if result.Reason != "" {
		detail += ": " + result.Reason
	}
	t.Events = append(t.Events, TimelineEvent{Time: result.Time, Kind: KindResult, Status: resultStatus(result.Result),
		Resource: "Service " + service, Text: result.Result, Detail: detail})
	t.DroppedEvents, t.DroppedSamples = b.droppedEvents, b.droppedSamples
	for _, rev := range b.samples {
		t.Samples = append(t.Samples, rev...)
	}
	slices.SortStableFunc(t.Samples, func(a, b TimelineSample) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return a.Revision - b.Revision
	})
	return t
}

func resultStatus(result string) string {
	switch result {
	case ResultDeployed, ResultRollback:
		return string(progress.Done)
	}
	return string(progress.Error)
}

// eventKind sorts a progress event into the timeline's kinds.
func eventKind(e progress.Event) string {
	switch {
	case e.Text == "Routing" || e.Text == "Routed":
		return KindWeight
	case e.Text == "Analyzing" || e.Text == "Analysis passed" || strings.Contains(e.Detail, ErrAnalysisFailed.Error()):
		return KindAnalysis
	case e.Text == "Rolling back" || e.Text == "Rolled back":
		return KindRollback
	case e.Status == progress.Error:
		return KindError
	case strings.HasPrefix(e.ID, "Container "):
		return KindContainer
	}
	return KindStep
}

// rolloutSampler reads the routers' counters once a second while a rollout runs, through an
// exec session of its own (the deploy's session is never held by it), and turns each
// reading into one sample per revision of each routed service.
type rolloutSampler struct {
	x       *executor
	rec     *timelineRecorder
	keys    map[string][]string // router key → the plan's services behind it
	clients map[string]*routerClient
	prev    map[string]router.Snapshot // by router key
	done    chan struct{}
}

// startSampler starts sampling the routers of the plan's routed services, if any; the
// returned function stops it after one last reading, and is safe to call twice.
func (x *executor) startSampler(rec *timelineRecorder, plan strategies.Plan) func() {
	keys := map[string][]string{}
	for _, s := range plan.Steps {
		ds, ok := x.desired.Services[s.Service]
		if !ok || !ds.Behind || slices.Contains(keys[ds.RouterKey], s.Service) {
			continue
		}
		keys[ds.RouterKey] = append(keys[ds.RouterKey], s.Service)
	}
	if len(keys) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	sm := &rolloutSampler{x: x, rec: rec, keys: keys, clients: map[string]*routerClient{}, prev: map[string]router.Snapshot{},
		done: make(chan struct{})}
	go sm.run(ctx)
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			// The last reading is bounded (stopWait); a session that hangs must not
			// hold the deploy's end, whose record then goes without that reading.
			select {
			case <-sm.done:
			case <-time.After(stopWait):
			}
		})
	}
}

// Each reading may take this long: a loaded engine answers slowly, and a reading that
// takes longer only makes the next interval longer (the ticker drops the ticks missed).
const sampleTimeout = 3 * time.Second

// stopWait bounds how long the end of a deploy waits for the sampler's last reading.
const stopWait = 1500 * time.Millisecond

func (sm *rolloutSampler) run(ctx context.Context) {
	defer close(sm.done)
	defer func() {
		// Ending a session waits for its process in the router: not on the deploy's
		// path (a process the plugin's exit cuts short ends at its stdin's EOF).
		for _, c := range sm.clients {
			go c.Close()
		}
	}()
	tick := time.NewTicker(sampleInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// One last reading covers the end of the rollout (a rollback's first
			// seconds), through the sessions already open, in one second at most.
			last, cancel := context.WithTimeout(context.Background(), time.Second)
			sm.read(last, false)
			cancel()
			return
		case <-tick.C:
			sm.read(ctx, true)
		}
	}
}

// read takes one reading of each router; open says whether it may start a session.
func (sm *rolloutSampler) read(ctx context.Context, open bool) {
	for key, services := range sm.keys {
		deploys := sm.x.routerClient(key)
		if deploys == nil {
			continue // not created yet
		}
		c := sm.clients[key]
		if c != nil && c.id != deploys.id { // the deploy replaced the router
			go c.Close()
			c = nil
		}
		if c != nil && !open && !c.hasSession() {
			continue // the last reading opens no session
		}
		if c == nil {
			delete(sm.clients, key)
			delete(sm.prev, key)
			if !open {
				continue
			}
			c = newRouterClient(sm.x.eng, deploys.id)
			if c.warm(ctx); c.noSession {
				// No session (an old agent, a dry run, a router still starting): try
				// again at the next tick.
				continue
			}
			sm.clients[key] = c
		}
		read, cancel := context.WithTimeout(ctx, sampleTimeout)
		snap, ok := c.sessionStats(read)
		cancel()
		if !ok {
			delete(sm.clients, key)
			go c.Close()
			continue
		}
		if prev, ok := sm.prev[key]; ok {
			for _, service := range services {
				for _, s := range samplesOf(service, prev, snap) {
					sm.rec.addSample(service, s)
				}
			}
		}
		sm.prev[key] = snap
	}
}

func (c *routerClient) hasSession() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// sessionStats reads the router's stats through the client's session only: sampling
// must not start one process per reading in the router.
func (c *routerClient) sessionStats(ctx context.Context) (router.Snapshot, bool) {
	c.mu.Lock()
	out, err, ok := c.viaSession(ctx, "stats", nil, 0)
	c.mu.Unlock()
	if !ok || err != nil {
		return router.Snapshot{}, false
	}
	var s router.Snapshot
	if json.Unmarshal(out, &s) != nil {
		return router.Snapshot{}, false
	}
	return s, true
}

// samplesOf turns two readings of a router into one sample per revision of the
// service: the counters' differences (a backend new since prev counts from zero) and
// the weights at the second reading.
func samplesOf(service string, prev, cur router.Snapshot) []TimelineSample {
	type acc struct {
		c      router.Counters
		weight int
		seen   bool
	}
	byRev := map[int]*acc{}
	get := func(group string) *acc {
		rev, err := strconv.Atoi(strings.TrimPrefix(group, "r"))
		if err != nil {
			return nil
		}
		if byRev[rev] == nil {
			byRev[rev] = &acc{}
		}
		return byRev[rev]
	}
	weighted := map[int]bool{} // the service's routes share their backends: weigh one route
	for _, route := range cur.Routes {
		if compose.ServiceOfRoute(route.Name) != service {
			continue
		}
		pr := prev.Route(route.Name)
		routeWeights := map[int]int{}
		for _, b := range route.Backends {
			a := get(b.Group)
			if a == nil {
				continue
			}
			a.seen = true
			c := b.Counters
			if pr != nil {
				if p := matchBackend(pr, b); p != nil {
					c = c.Sub(p.Counters)
				}
			}
			a.c = addCounters(a.c, c)
			if b.State == router.Active {
				rev, _ := strconv.Atoi(strings.TrimPrefix(b.Group, "r"))
				routeWeights[rev] += b.Weight
			}
		}
		for rev, w := range routeWeights {
			if !weighted[rev] {
				byRev[rev].weight, weighted[rev] = w, true
			}
		}
	}
	interval := cur.Time.Sub(prev.Time)
	out := make([]TimelineSample, 0, len(byRev))
	for rev, a := range byRev {
		out = append(out, TimelineSample{
			Time: cur.Time, IntervalMs: interval.Milliseconds(), Revision: rev, Weight: a.weight,
			Requests: a.c.Requests, Errors5xx: a.c.Responses5xx, Errors: a.c.Errors,
			P99Ms: float64(a.c.Latency.Quantile(0.99).Round(time.Millisecond/10)) / float64(time.Millisecond),
		})
	}
	slices.SortFunc(out, func(a, b TimelineSample) int { return a.Revision - b.Revision })
	return out
}

// matchBackend finds b's earlier reading: the same ID and start of counting (a backend
// going from active to draining keeps both).
func matchBackend(prev *router.RouteStats, b router.BackendStats) *router.BackendStats {
	for i := range prev.Backends {
		if p := &prev.Backends[i]; p.ID == b.ID && p.Since.Equal(b.Since) {
			return p
		}
	}
	return nil
}

// ErrNoRecord means a service has no revision record with the revision asked for.
var ErrNoRecord = errors.New("no revision record")

// RevisionTimeline returns the newest record of the service's revision (the newest of
// all when revision is 0) and its timeline. A revision can have several records (its
// deploy, later a rollback to it): the newest is the one asked for most often.
func RevisionTimeline(ctx context.Context, eng engine.Engine, project, service string, revision int) (Record, Timeline, error) {
	records, err := History(ctx, eng, project)
	if err != nil {
		return Record{}, Timeline{}, err
	}
	var revs []string
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if r.Service != service {
			continue
		}
		if revision == 0 || r.Revision == revision {
			t, err := r.Timeline()
			return r, t, err
		}
		if !slices.Contains(revs, strconv.Itoa(r.Revision)) {
			revs = append(revs, strconv.Itoa(r.Revision))
		}
	}
	if len(revs) == 0 {
		return Record{}, Timeline{}, fmt.Errorf("%w of service %q in project %s: `docker lifecycle history` lists the services that have some", ErrNoRecord, service, project)
	}
	return Record{}, Timeline{}, fmt.Errorf("%w of service %q with revision %d: its records are of revisions %s (the %d newest per service are kept)",
		ErrNoRecord, service, revision, strings.Join(revs, ", "), recordsPerService)
}
