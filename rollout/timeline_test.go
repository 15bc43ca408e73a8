package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

var tl0 = time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)

func twoServicePlan() strategies.Plan {
	return strategies.Plan{Steps: []strategies.Step{
		{ID: 1, Action: strategies.Create, Service: "web", Target: "demo-web-r2-1", Revision: 2},
		{ID: 2, Action: strategies.Create, Service: "api", Target: "demo-api-1", Revision: 1},
		{ID: 3, Action: strategies.EnsureRouter, Target: "demo-lifecycle-router"},
	}}
}

func TestTimelineRecorderAttributesAndOrdersEvents(t *testing.T) {
	var seen []progress.Event
	next := &eventLog{add: func(e progress.Event) { seen = append(seen, e) }}
	r := newTimelineRecorder(next, twoServicePlan(), tl0)
	at := func(s int) time.Time { return tl0.Add(time.Duration(s) * time.Second) }
	r.Event(progress.Event{Time: at(1), ID: "Container demo-lifecycle-router", Status: progress.Done, Text: "Started"})
	r.Event(progress.Event{Time: at(2), ID: "Container demo-web-r2-1", Status: progress.Done, Text: "Created", Detail: "revision 2"})
	r.Event(progress.Event{Time: at(3), ID: "Container demo-api-1", Status: progress.Done, Text: "Healthy"})
	r.Event(progress.Event{Time: at(4), ID: "Service web", Status: progress.Done, Text: "Routed", Detail: "canary 50%"})
	r.Event(progress.Event{Time: at(5), ID: "Container web", Status: progress.Error, Text: "Error", Detail: "deploy failed: canary analysis failed: error rate 20%"})
	r.Event(progress.Event{Time: at(6), ID: "Service web", Status: progress.Working, Text: "Rolling back"})
	assert.Check(t, is.Len(seen, 6), "every event is passed on")

	web := r.timeline("web", Record{Service: "web", Revision: 2, Result: ResultRolledBack, Reason: "canary analysis failed", Time: at(7)})
	var got []string
	for _, e := range web.Events {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Time.Sub(tl0), e.Kind, e.Resource, e.Text))
	}
	assert.Check(t, is.DeepEqual(got, []string{
		"1s container Container demo-lifecycle-router Started", // the project's: every service has it
		"2s container Container demo-web-r2-1 Created",
		"4s weight Service web Routed",
		"5s analysis Container web Error", // an event of no known resource is shared
		"6s rollback Service web Rolling back",
		"7s result Service web rolled-back",
	}))
	assert.Check(t, is.Equal(web.Events[len(web.Events)-1].Detail, "revision 2: canary analysis failed"))
	api := r.timeline("api", Record{Service: "api", Revision: 1, Result: ResultDeployed, Time: at(7)})
	assert.Check(t, is.Len(api.Events, 4), "%+v", api.Events) // router, its own, the shared error, result
	assert.Check(t, is.Equal(api.Events[1].Kind, KindContainer))
	assert.Check(t, is.Equal(api.Events[3].Status, "done"))
}

type eventLog struct{ add func(progress.Event) }

func (l *eventLog) Event(e progress.Event) { l.add(e) }
func (l *eventLog) Close() error           { return nil }

func TestTimelineRecorderIsBounded(t *testing.T) {
	r := newTimelineRecorder(progress.Nop, twoServicePlan(), tl0)
	for i := range MaxTimelineEvents + 10 {
		r.Event(progress.Event{Time: tl0.Add(time.Duration(i) * time.Millisecond), ID: "Service web", Text: fmt.Sprint(i)})
	}
	for i := range MaxTimelineSamples + 5 {
		for _, rev := range []int{1, 2} {
			r.addSample("web", TimelineSample{Time: tl0.Add(time.Duration(i) * time.Second), Revision: rev, Requests: uint64(i)})
		}
	}
	tl := r.timeline("web", Record{Service: "web", Revision: 2, Result: ResultDeployed, Time: tl0.Add(time.Hour)})
	assert.Check(t, is.Len(tl.Events, MaxTimelineEvents+1)) // the newest, and the result
	assert.Check(t, is.Equal(tl.DroppedEvents, 10))
	assert.Check(t, is.Equal(tl.Events[0].Text, "10"), "the oldest go first")
	assert.Check(t, is.Len(tl.Samples, 2*MaxTimelineSamples))
	assert.Check(t, is.Equal(tl.DroppedSamples, 10))
	assert.Check(t, is.Equal(tl.Samples[0].Requests, uint64(5)))
	for i := 1; i < len(tl.Samples); i++ {
		a, b := tl.Samples[i-1], tl.Samples[i]
		assert.Assert(t, a.Time.Before(b.Time) || a.Time.Equal(b.Time) && a.Revision < b.Revision, "samples in time, then revision order at %d", i)
	}

	// The stored form fits its label, keeps the newest samples, and says what it left out.
	enc, err := encodeTimeline(tl)
	assert.NilError(t, err)
	assert.Check(t, len(enc) <= maxTimelineLabel, "%d bytes", len(enc))
	back, err := decodeTimeline(enc)
	assert.NilError(t, err)
	assert.Check(t, is.Len(back.Events, len(tl.Events)))
	assert.Check(t, is.Equal(back.DroppedSamples+len(back.Samples), tl.DroppedSamples+len(tl.Samples)))
	assert.Check(t, back.Samples[len(back.Samples)-1].Time.Equal(tl.Samples[len(tl.Samples)-1].Time))
}

func TestTimelineLabelShrinksToItsBound(t *testing.T) {
	tl := Timeline{Start: tl0}
	// Counters that do not compress away: 600 s of 4 revisions with varying numbers.
	for i := range 600 {
		for rev := 1; rev <= 4; rev++ {
			tl.Samples = append(tl.Samples, TimelineSample{Time: tl0.Add(time.Duration(i)*time.Second + time.Duration(rev*7919*i)%time.Second),
				Revision: rev, Weight: (i * rev) % 101, Requests: uint64(i*i*rev) % 100003, Errors5xx: uint64(i*31+rev) % 977, P99Ms: float64(i*rev%9973) / 10})
		}
	}
	enc, err := encodeTimeline(tl)
	assert.NilError(t, err)
	assert.Check(t, len(enc) <= maxTimelineLabel, "%d bytes", len(enc))
	back, err := decodeTimeline(enc)
	assert.NilError(t, err)
	assert.Check(t, back.DroppedSamples > 0 && back.DroppedSamples+len(back.Samples) == len(tl.Samples), "%d kept, %d dropped", len(back.Samples), back.DroppedSamples)
	_, err = decodeTimeline("zz9:abc")
	assert.Check(t, is.ErrorContains(err, "unknown encoding"))
}

func TestSamplesOfTwoReadings(t *testing.T) {
	lat := func(ms ...int) router.Latency {
		var l router.Latency
		l.Buckets = make([]uint64, len(router.LatencyBounds)+1)
		for _, m := range ms {
			for i, b := range router.LatencyBounds {
				if time.Duration(m)*time.Millisecond <= b {
					l.Buckets[i]++
					break
				}
			}
			l.Count++
		}
		return l
	}
	since := tl0.Add(-time.Hour)
	prev := router.Snapshot{Time: tl0, Routes: []router.RouteStats{{Name: "web:80", Backends: []router.BackendStats{
		{ID: "w-r1-1", Group: "r1", Weight: 1, State: router.Active, Since: since, Counters: router.Counters{Requests: 100, Responses5xx: 1, Latency: lat(1, 1)}},
		{ID: "w-r1-2", Group: "r1", Weight: 1, State: router.Active, Since: since, Counters: router.Counters{Requests: 100}},
	}}, {Name: "api:80", Backends: []router.BackendStats{
		{ID: "a-1", Group: "r1", Weight: 1, State: router.Active, Since: since, Counters: router.Counters{Requests: 7}},
	}}}}
	cur := router.Snapshot{Time: tl0.Add(1100 * time.Millisecond), Routes: []router.RouteStats{{Name: "web:80", Backends: []router.BackendStats{
		{ID: "w-r1-1", Group: "r1", Weight: 50, State: router.Active, Since: since, Counters: router.Counters{Requests: 110, Responses5xx: 1, Latency: lat(1, 1, 2, 3)}},
		// r1-2 left the config: draining, its counters go on from the same start.
		{ID: "w-r1-2", Group: "r1", Weight: 0, State: router.Draining, Since: since, Counters: router.Counters{Requests: 102}},
		// New since the last reading: it counts from zero.
		{ID: "w-r2-1", Group: "r2", Weight: 50, State: router.Active, Since: tl0.Add(500 * time.Millisecond), Counters: router.Counters{Requests: 8, Responses5xx: 2, Errors: 1, Latency: lat(40, 40, 40, 40, 40, 40, 40, 900)}},
	}}, {Name: "web:443", Backends: []router.BackendStats{ // the same backends, another port
		{ID: "w-r2-1", Group: "r2", Weight: 50, State: router.Active, Since: tl0.Add(500 * time.Millisecond), Counters: router.Counters{Requests: 2}},
	}}, {Name: "api:80", Backends: []router.BackendStats{
		{ID: "a-1", Group: "r1", Weight: 1, State: router.Active, Since: since, Counters: router.Counters{Requests: 70}},
	}}}}
	got := samplesOf("web", prev, cur)
	assert.Assert(t, is.Len(got, 2))
	r1, r2 := got[0], got[1]
	assert.Check(t, is.DeepEqual([]any{r1.Revision, r1.Weight, r1.Requests, r1.Errors5xx, r1.IntervalMs}, []any{1, 50, uint64(12), uint64(0), int64(1100)}))
	assert.Check(t, is.DeepEqual([]any{r2.Revision, r2.Weight, r2.Requests, r2.Errors5xx, r2.Errors}, []any{2, 50, uint64(10), uint64(2), uint64(1)}))
	assert.Check(t, r2.P99Ms > 100, "p99 of the window: %v", r2.P99Ms)
	assert.Check(t, r1.P99Ms > 0 && r1.P99Ms < 10, "p99 of the window: %v", r1.P99Ms)
	assert.Check(t, r1.Time.Equal(cur.Time))
}

// sessionWorld answers the router's control session (`agent ctl session`) with the
// world's exec, so deploys in the world use a session as they do on an engine.
func sessionWorld(w *world, f *engine.Fake) {
	f.ExecSessionFn = func(ctx context.Context, id string, cmd []string) (*engine.Session, error) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		go func() {
			defer outW.Close()
			lines := bufio.NewScanner(inR)
			for lines.Scan() {
				var req sessionRequest
				if err := json.Unmarshal(lines.Bytes(), &req); err != nil {
					return
				}
				body, err := w.exec(ctx, id, []string{"/agent", "ctl", req.Op}, []byte(req.Body))
				resp := sessionResponse{OK: err == nil, Body: string(body)}
				if err != nil {
					resp.Error = err.Error()
				}
				line, _ := json.Marshal(resp)
				if _, err := outW.Write(append(line, '\n')); err != nil {
					return
				}
			}
		}()
		return engine.NewSession(inW, outR, func() error { inW.Close(); return inR.Close() }), nil
	}
}

// A canary whose new revision answers 5xx fails its analysis; its rolled-back record
// keeps the timeline that explains it: the verdict, the rollback and the counters.
func TestFailedCanaryKeepsItsTimeline(t *testing.T) {
	w := newWorld()
	f := w.fake()
	sessionWorld(w, f)
	canary := func(image string) string {
		return routedCompose(image, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 50, pause: 2500ms}]
        analysis: {max-error-rate: 0.05}
`)
	}
	opts := DeployOptions{WaitTimeout: 2 * time.Second}
	_, err := Deploy(context.Background(), f, loadProject(t, canary("app:1")), progress.Nop, opts)
	assert.NilError(t, err)

	start := time.Now()
	var mu sync.Mutex
	w.stats = func() router.Snapshot {
		mu.Lock()
		defer mu.Unlock()
		n := uint64(time.Since(start) / (10 * time.Millisecond)) // 100 requests a second per revision
		return router.Snapshot{Time: time.Now(), Routes: []router.RouteStats{{Name: "web:8080", Backends: []router.BackendStats{
			{ID: "demo-web-r1-1", Group: "r1", Weight: 50, State: router.Active, Since: start, Counters: router.Counters{Requests: n}},
			{ID: "demo-web-r2-1", Group: "r2", Weight: 50, State: router.Active, Since: start, Counters: router.Counters{Requests: n, Responses5xx: n / 5}},
		}}}}
	}
	_, err = Deploy(context.Background(), f, loadProject(t, canary("app:2")), progress.Nop, opts)
	var rb *RolledBackError
	assert.Assert(t, errors.As(err, &rb), "%v", err)

	rec, tl, err := RevisionTimeline(context.Background(), f, "demo", "web", 2)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(rec.Result, ResultRolledBack))
	kinds := map[string][]string{}
	for _, e := range tl.Events {
		kinds[e.Kind] = append(kinds[e.Kind], e.Text+": "+e.Detail)
	}
	assert.Check(t, is.Contains(strings.Join(kinds[KindAnalysis], "\n"), "canary analysis failed"), "%v", kinds)
	assert.Check(t, is.Contains(strings.Join(kinds[KindRollback], "\n"), "Rolled back"), "%v", kinds)
	assert.Check(t, len(kinds[KindWeight]) > 0, "%v", kinds)
	assert.Check(t, is.Equal(tl.Events[len(tl.Events)-1].Kind, KindResult))
	var errs5xx uint64
	for _, s := range tl.Samples {
		if s.Revision == 2 {
			errs5xx += s.Errors5xx
		}
	}
	assert.Check(t, len(tl.Samples) >= 2, "%+v", tl.Samples)
	assert.Check(t, errs5xx > 0, "%+v", tl.Samples)

	// The first deploy's record has its timeline too; an unknown revision says which exist.
	_, first, err := RevisionTimeline(context.Background(), f, "demo", "web", 1)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(first.Events[len(first.Events)-1].Text, ResultDeployed))
	_, _, err = RevisionTimeline(context.Background(), f, "demo", "web", 7)
	assert.Check(t, errors.Is(err, ErrNoRecord))
	assert.Check(t, is.ErrorContains(err, "revisions 2, 1"))
}
