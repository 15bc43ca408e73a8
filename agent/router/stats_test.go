package router

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestStatsCountsClassesAndLatency(t *testing.T) {
	srv := newBackendServer(t, "s", func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.HasPrefix(req.URL.Path, "/status/"):
			code, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/status/"))
			w.WriteHeader(code)
		case strings.HasPrefix(req.URL.Path, "/sleep/"):
			ms, _ := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/sleep/"))
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "s", Address: hostPort(srv), Weight: 1, Group: "rev-1"}))
	url := routeURL(t, r, "web")
	c := newClient(t)
	send := func(path string, n int) {
		for range n {
			get(t, c, url+path)
		}
	}
	send("/status/200", 5)
	send("/status/302", 1)
	send("/status/404", 3)
	send("/status/500", 2)
	send("/status/503", 1)

	s1 := r.Stats()
	b := s1.Route("web").Backend("s")
	assert.Equal(t, b.Group, "rev-1")
	assert.Equal(t, b.Requests, uint64(12))
	assert.Equal(t, b.Responses2xx, uint64(5))
	assert.Equal(t, b.Responses3xx, uint64(1))
	assert.Equal(t, b.Responses4xx, uint64(3))
	assert.Equal(t, b.Responses5xx, uint64(3))
	assert.Equal(t, b.Errors, uint64(0))
	assert.Equal(t, b.InFlight, int64(0))
	assert.Equal(t, b.Latency.Count, uint64(12))
	assert.Equal(t, s1.Route("web").Responses5xx, uint64(3))
	assert.Equal(t, len(s1.LatencyBoundsMs), len(LatencyBounds))

	// The router sees each request's backend time; the client sees more (its own side
	// of the proxy), so the client's slowest request bounds what the router may report.
	// A loaded machine oversleeps: the bounds come from what was measured, not from 30ms.
	var slowest time.Duration
	for range 10 {
		began := time.Now()
		get(t, c, url+"/sleep/30")
		slowest = max(slowest, time.Since(began))
	}
	upper := LatencyBounds[len(LatencyBounds)-1]
	for _, b := range LatencyBounds {
		if b >= slowest {
			upper = b
			break
		}
	}
	upperMs := float64(upper) / float64(time.Millisecond)
	s2 := r.Stats()
	assertMonotonic(t, s1.Route("web").Counters, s2.Route("web").Counters)
	assertMonotonic(t, s1.Route("web").Backend("s").Counters, s2.Route("web").Backend("s").Counters)
	w := s2.Route("web").Backend("s").Counters.Sub(b.Counters)
	assert.Equal(t, w.Requests, uint64(10))
	assert.Equal(t, w.Responses2xx, uint64(10))
	assert.Equal(t, w.Latency.Count, uint64(10))
	// Every observation is in (25ms, upper]: the backend sleeps at least 30ms, and no
	// request took longer than the client saw. Interpolation keeps the estimates there
	// (on a quiet machine upper is 50ms, the bucket of every observation).
	assert.Assert(t, w.Latency.P50Ms > 25 && w.Latency.P50Ms <= upperMs, "p50 %v, slowest request %v", w.Latency.P50Ms, slowest)
	assert.Assert(t, w.Latency.P99Ms >= w.Latency.P90Ms && w.Latency.P90Ms >= w.Latency.P50Ms)
	assert.Assert(t, w.Latency.P99Ms <= upperMs, "p99 %v, slowest request %v", w.Latency.P99Ms, slowest)
	mean := w.Latency.Mean()
	assert.Assert(t, mean >= 30*time.Millisecond && mean <= slowest, "mean %v, slowest request %v", mean, slowest)
}

func assertMonotonic(t *testing.T, before, after Counters) {
	t.Helper()
	pairs := [][2]uint64{
		{before.Requests, after.Requests}, {before.Responses1xx, after.Responses1xx},
		{before.Responses2xx, after.Responses2xx}, {before.Responses3xx, after.Responses3xx},
		{before.Responses4xx, after.Responses4xx}, {before.Responses5xx, after.Responses5xx},
		{before.Errors, after.Errors}, {before.Retries, after.Retries}, {before.NoBackend, after.NoBackend},
		{before.Canceled, after.Canceled}, {before.BytesIn, after.BytesIn}, {before.BytesOut, after.BytesOut},
		{before.Latency.Count, after.Latency.Count}, {before.Latency.SumNs, after.Latency.SumNs},
	}
	for i, p := range pairs {
		assert.Assert(t, p[1] >= p[0], "counter %d went backwards: %d → %d", i, p[0], p[1])
	}
	for i := range before.Latency.Buckets {
		assert.Assert(t, after.Latency.Buckets[i] >= before.Latency.Buckets[i], "bucket %d went backwards", i)
	}
}

func TestLatencyQuantile(t *testing.T) {
	var h histogram
	assert.Equal(t, h.snapshot().Quantile(0.5), time.Duration(0))
	for range 90 {
		h.observe(700 * time.Microsecond) // (500µs, 1ms]
	}
	for range 10 {
		h.observe(40 * time.Millisecond) // (25ms, 50ms]
	}
	l := h.snapshot()
	assert.Equal(t, l.Count, uint64(100))
	p50 := l.Quantile(0.5)
	assert.Assert(t, p50 > 500*time.Microsecond && p50 <= time.Millisecond, "%v", p50)
	p99 := l.Quantile(0.99)
	assert.Assert(t, p99 > 25*time.Millisecond && p99 <= 50*time.Millisecond, "%v", p99)
	assert.Equal(t, l.Quantile(1), 50*time.Millisecond)

	h.observe(2 * time.Minute) // beyond the last bound: reported at it
	assert.Equal(t, h.snapshot().Quantile(1), LatencyBounds[len(LatencyBounds)-1])
	h.observe(-time.Second) // a clock oddity lands in the first bucket
	assert.Equal(t, h.snapshot().Buckets[0], uint64(1))
}

func TestCountersSub(t *testing.T) {
	var c counters
	c.requests.Add(3)
	c.status(200)
	c.status(503)
	c.status(99) // out of range: ignored
	c.latency.observe(time.Millisecond)
	before := c.snapshot()
	c.requests.Add(2)
	c.status(404)
	c.inFlight.Add(4)
	c.latency.observe(3 * time.Millisecond)
	d := c.snapshot().Sub(before)
	assert.Equal(t, d.Requests, uint64(2))
	assert.Equal(t, d.Responses4xx, uint64(1))
	assert.Equal(t, d.Responses5xx, uint64(0))
	assert.Equal(t, d.InFlight, int64(4), "a gauge is not subtracted")
	assert.Equal(t, d.Latency.Count, uint64(1))
	assert.Assert(t, d.Latency.P50Ms > 2.5 && d.Latency.P50Ms <= 5)
}
