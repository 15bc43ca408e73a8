package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

func sample() Alert {
	a := Alert{Status: StatusFiring, Source: SourceMonitor, Project: "p", Service: "web", Rule: "error-rate",
		Metric: "error-rate", Severity: "critical", Value: 50, Threshold: 5, ResolveBelow: 5, Unit: "%", For: "0s",
		Window: "1m0s", Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a.summarize()
	return a
}

func TestWebhookRetriesWithBackoff(t *testing.T) {
	var calls atomic.Int32
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		got, _ = io.ReadAll(r.Body)
		assert.Check(t, is.Equal(r.Header.Get("Content-Type"), "application/json"))
		assert.Check(t, is.Equal(r.Header.Get("X-Token"), "s3cret"))
	}))
	defer srv.Close()
	retries := 3
	w, err := NewWebhook(compose.WebhookTarget{URL: srv.URL + "/hook", Retries: &retries, Backoff: compose.Duration(time.Second), Headers: map[string]string{"X-Token": "s3cret"}})
	assert.NilError(t, err)
	var waits []time.Duration
	w.Sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	assert.NilError(t, w.Send(context.Background(), sample()))
	assert.Check(t, is.Equal(calls.Load(), int32(3)))
	assert.Check(t, is.DeepEqual(waits, []time.Duration{time.Second, 2 * time.Second}))
	var a Alert
	assert.NilError(t, json.Unmarshal(got, &a))
	assert.Check(t, is.DeepEqual(a, sample()))
}

func TestWebhookGivesUp(t *testing.T) {
	var calls atomic.Int32
	status := http.StatusInternalServerError
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	retries := 2
	w, err := NewWebhook(compose.WebhookTarget{URL: srv.URL, Retries: &retries})
	assert.NilError(t, err)
	w.Sleep = func(context.Context, time.Duration) error { return nil }
	err = w.Send(context.Background(), sample())
	assert.ErrorContains(t, err, "500 Internal Server Error (3 attempts)")
	assert.Check(t, is.Equal(calls.Load(), int32(3)))

	// A 4xx other than 429 is the receiver's refusal: not retried.
	calls.Store(0)
	status = http.StatusBadRequest
	err = w.Send(context.Background(), sample())
	assert.ErrorContains(t, err, "400 Bad Request (not retried")
	assert.Check(t, is.Equal(calls.Load(), int32(1)))
}

func TestWebhookTemplate(t *testing.T) {
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	defer srv.Close()
	w, err := NewWebhook(compose.WebhookTarget{URL: srv.URL, Body: `{"text": {{json .Summary}}, "sev": "{{.Severity}}"}`})
	assert.NilError(t, err)
	assert.NilError(t, w.Send(context.Background(), sample()))
	var slack map[string]string
	assert.NilError(t, json.Unmarshal([]byte(<-bodies), &slack))
	assert.Check(t, is.Equal(slack["text"], "2026-01-01T00:00:00Z firing error-rate: web: error-rate 50% > 5% over 1m0s"))
	assert.Check(t, is.Equal(slack["sev"], "critical"))
}

func TestExecTarget(t *testing.T) {
	out := filepath.Join(t.TempDir(), "alert.json")
	e := &Exec{Spec: compose.ExecTarget{Command: []string{"sh", "-c", "cat > " + out}, Timeout: compose.Duration(5 * time.Second)}}
	assert.NilError(t, e.Send(context.Background(), sample()))
	b, err := os.ReadFile(out)
	assert.NilError(t, err)
	var a Alert
	assert.NilError(t, json.Unmarshal(b, &a))
	assert.Check(t, is.Equal(a.Rule, "error-rate"))

	e = &Exec{Spec: compose.ExecTarget{Command: []string{"sh", "-c", "echo no pager >&2; exit 4"}}}
	assert.ErrorContains(t, e.Send(context.Background(), sample()), "exit status 4: no pager")

	start := time.Now()
	e = &Exec{Spec: compose.ExecTarget{Command: []string{"sleep", "30"}, Timeout: compose.Duration(200 * time.Millisecond)}}
	assert.ErrorContains(t, e.Send(context.Background(), sample()), "killed after its timeout of 200ms")
	assert.Check(t, time.Since(start) < 5*time.Second)
}

func TestNotifierFansOutInOrder(t *testing.T) {
	var mu sync.Mutex
	var lines strings.Builder
	targets, err := NewTargets(nil, writerFunc(func(p []byte) { mu.Lock(); lines.Write(p); mu.Unlock() }))
	assert.NilError(t, err)
	var logs []string
	n := NewNotifier(targets, func(s string) { logs = append(logs, s) })
	a := sample()
	n.Notify(a)
	a.Status = StatusResolved
	a.summarize()
	n.Notify(a)
	n.Close(5 * time.Second)
	assert.Check(t, is.Equal(lines.String(), "ALERT 2026-01-01T00:00:00Z firing error-rate: web: error-rate 50% > 5% over 1m0s\n"+
		"ALERT 2026-01-01T00:00:00Z resolved error-rate: web: error-rate 50% <= 5% over 1m0s\n"))
	assert.Check(t, is.Len(logs, 0))
	assert.Check(t, is.Equal(redact("https://user:pw@hooks.slack.com/services/T0/B0/xyz?a=1"), "https://hooks.slack.com/…"))
}

type writerFunc func([]byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }
