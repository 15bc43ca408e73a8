package plugin

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// failedCanary is the timeline of a canary that failed its analysis and rolled back.
func failedCanary() (rollout.Record, rollout.Timeline) {
	start := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	reason := "deploy failed: service \"web\": analyze web: canary analysis failed: error rate 19.80% above max-error-rate 5.00%"
	rec := rollout.Record{Service: "web", Revision: 2, Result: rollout.ResultRolledBack, Strategy: "canary", Image: "app:v2", Time: at(6300), Reason: reason}
	tl := rollout.Timeline{Start: start, End: at(6300), Events: []rollout.TimelineEvent{
		{Time: at(12), Kind: rollout.KindContainer, Status: "working", Resource: "Container demo-web-r2-1", Text: "Creating", Detail: "image changed"},
		{Time: at(95), Kind: rollout.KindContainer, Status: "done", Resource: "Container demo-web-r2-1", Text: "Created", Detail: "revision 2"},
		{Time: at(640), Kind: rollout.KindContainer, Status: "done", Resource: "Container demo-web-r2-1", Text: "Healthy"},
		{Time: at(702), Kind: rollout.KindWeight, Status: "done", Resource: "Service web", Text: "Routed", Detail: "canary 50%: demo-web-r1-1 (50), demo-web-r2-1 (50)"},
		{Time: at(705), Kind: rollout.KindAnalysis, Status: "working", Resource: "Service web", Text: "Analyzing", Detail: "canary step 1 for 4s"},
		{Time: at(4710), Kind: rollout.KindAnalysis, Status: "error", Resource: "Container web", Text: "Error", Detail: reason},
		{Time: at(4712), Kind: rollout.KindRollback, Status: "working", Resource: "Service web", Text: "Rolling back", Detail: "the deploy failed: restoring the previous revision"},
		{Time: at(4790), Kind: rollout.KindRollback, Status: "done", Resource: "Service web", Text: "Rolled back"},
		{Time: at(6300), Kind: rollout.KindResult, Status: "error", Resource: "Service web", Text: "rolled-back", Detail: "revision 2: " + reason},
	}, Samples: []rollout.TimelineSample{
		{Time: at(1701), IntervalMs: 1000, Revision: 1, Weight: 50, Requests: 25, P99Ms: 1.2},
		{Time: at(1701), IntervalMs: 1000, Revision: 2, Weight: 50, Requests: 25, Errors5xx: 5, P99Ms: 3.4},
		{Time: at(5702), IntervalMs: 1000, Revision: 1, Weight: 100, Requests: 50, P99Ms: 1.1},
		{Time: at(5702), IntervalMs: 1000, Revision: 2, Weight: 0},
	}, DroppedSamples: 3}
	return rec, tl
}

func TestTimelineTable(t *testing.T) {
	rec, tl := failedCanary()
	var out bytes.Buffer
	assert.NilError(t, writeTimelineTable(&out, rec, tl))
	golden.Assert(t, out.String(), "timeline-table.golden")

	out.Reset()
	tl.Samples = nil
	assert.NilError(t, writeTimelineTable(&out, rec, tl))
	assert.Check(t, is.Contains(out.String(), "No router counters"))
}

func TestTimelineJSON(t *testing.T) {
	rec, tl := failedCanary()
	var out bytes.Buffer
	assert.NilError(t, writeTimelineJSON(&out, rec, tl))
	golden.Assert(t, out.String(), "timeline.json.golden")

	// The documented schema, as a program reads it.
	var doc struct {
		Result string `json:"result"`
		Events []struct {
			OffsetMs int64  `json:"offset_ms"`
			Kind     string `json:"kind"`
			Detail   string `json:"detail"`
		} `json:"events"`
		Samples []struct {
			OffsetMs  int64   `json:"offset_ms"`
			Revision  int     `json:"revision"`
			Errors5xx uint64  `json:"errors_5xx"`
			P99Ms     float64 `json:"p99_ms"`
		} `json:"samples"`
		Bounds struct {
			MaxSamplesPerRevision int `json:"max_samples_per_revision"`
		} `json:"bounds"`
		DroppedSamples int `json:"dropped_samples"`
	}
	assert.NilError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.Check(t, is.Equal(doc.Result, "rolled-back"))
	assert.Check(t, is.Equal(doc.Events[5].Kind, "analysis"))
	assert.Check(t, is.Equal(doc.Events[5].OffsetMs, int64(4710)))
	assert.Check(t, is.Equal(doc.Samples[1].Errors5xx, uint64(5)))
	assert.Check(t, is.Equal(doc.Bounds.MaxSamplesPerRevision, rollout.MaxTimelineSamples))
	assert.Check(t, is.Equal(doc.DroppedSamples, 3))
}
