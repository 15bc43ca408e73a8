package router

import (
	"sync/atomic"
	"time"
)

// LatencyBounds are the upper bounds of the latency histogram buckets (a 1-2.5-5
// series, fine where proxied latencies live); one more bucket counts everything slower.
// Fixed buckets keep recording to one atomic add and make two snapshots subtractable.
var LatencyBounds = [...]time.Duration{
	25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	1 * time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second, 60 * time.Second,
}

const numBuckets = len(LatencyBounds) + 1

// Snapshot is a point-in-time copy of the router's counters. All counters except
// InFlight are monotonic for the life of a route (by name) or backend (by ID and
// Address, see BackendStats.Since), so two snapshots can be subtracted for a window.
type Snapshot struct {
	Time time.Time `json:"time"`
	// LatencyBoundsMs are the bucket upper bounds of every Latency.Buckets, in ms.
	LatencyBoundsMs []float64    `json:"latency_bounds_ms"`
	Routes          []RouteStats `json:"routes"`
}

// RouteStats are the counters of one route: what clients saw, including the answers
// the router gave itself (503 without a backend, 502/504 on transport errors).
type RouteStats struct {
	Name     string   `json:"name"`
	Listen   string   `json:"listen"`
	Protocol Protocol `json:"protocol"`
	Counters
	Backends []BackendStats `json:"backends"`
}

// BackendState says whether a backend takes new traffic.
type BackendState string

const (
	// Active backends are in the current config (with weight 0 they get no new traffic).
	Active BackendState = "active"
	// Draining backends were removed: no new traffic, in-flight work finishes until the
	// route's DrainTimeout. A draining backend leaves the snapshot once it is closed,
	// which is when the plugin may stop its container.
	Draining BackendState = "draining"
)

// BackendStats are the counters of one backend: what the backend answered, and the
// transport errors met on the way to it.
type BackendStats struct {
	ID      string       `json:"id"`
	Address string       `json:"address"`
	Group   string       `json:"group,omitempty"`
	Weight  int          `json:"weight"`
	State   BackendState `json:"state"`
	// Healthy is false while a passive mark (failed dial, reset) or the active check
	// holds the backend out of rotation.
	Healthy bool `json:"healthy"`
	// Since is when the router started counting for this backend; a different Since for
	// the same ID means the counters restarted from zero.
	Since time.Time `json:"since"`
	Counters
}

// Counters are the per-route and per-backend numbers. For TCP routes a "request" is a
// connection and only Requests, Errors, Canceled, InFlight, bytes and Latency (time
// to connect to the backend) move.
type Counters struct {
	// Requests counts requests (connections for TCP) sent to a backend, or received by a route.
	Requests     uint64 `json:"requests"`
	Responses1xx uint64 `json:"responses_1xx"`
	Responses2xx uint64 `json:"responses_2xx"`
	Responses3xx uint64 `json:"responses_3xx"`
	Responses4xx uint64 `json:"responses_4xx"`
	Responses5xx uint64 `json:"responses_5xx"`
	// Errors counts transport failures: refused or timed-out dials, resets, truncated bodies.
	Errors uint64 `json:"errors"`
	// Retries (route only) counts requests sent again to another backend: after a failed
	// dial, or (GET and HEAD) after the backend closed the connection without answering.
	Retries uint64 `json:"retries"`
	// NoBackend (route only) counts requests answered 503 because no backend was usable.
	NoBackend uint64 `json:"no_backend"`
	// Canceled counts requests the client gave up on before the response was complete.
	Canceled uint64 `json:"canceled"`
	// InFlight is a gauge, not a counter.
	InFlight int64 `json:"in_flight"`
	// BytesIn is request-body (TCP: client-to-backend) bytes; BytesOut response-body
	// (TCP: backend-to-client) bytes.
	BytesIn  uint64 `json:"bytes_in"`
	BytesOut uint64 `json:"bytes_out"`
	// Latency is time to the backend's response headers (TCP: to connect), so a slow
	// client or a long stream does not look like a slow backend.
	Latency Latency `json:"latency"`
}

// Latency is a histogram over LatencyBounds with estimated percentiles.
type Latency struct {
	Count uint64 `json:"count"`
	SumNs uint64 `json:"sum_ns"`
	// Buckets[i] counts observations in (LatencyBounds[i-1], LatencyBounds[i]]; the
	// last one those above every bound. Counts are per bucket, not cumulative.
	Buckets []uint64 `json:"buckets"`
	P50Ms   float64  `json:"p50_ms"`
	P90Ms   float64  `json:"p90_ms"`
	P99Ms   float64  `json:"p99_ms"`
}

// Quantile estimates the q-quantile (0 < q ≤ 1) by linear interpolation inside the
// bucket holding it; observations in the open last bucket are reported at its lower
// bound.
func (l Latency) Quantile(q float64) time.Duration {
	if l.Count == 0 || len(l.Buckets) != numBuckets {
		return 0
	}
	rank := q * float64(l.Count)
	var cum float64
	for i, c := range l.Buckets {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lower := time.Duration(0)
			if i > 0 {
				lower = LatencyBounds[i-1]
			}
			if i == len(LatencyBounds) {
				return lower
			}
			frac := (rank - cum) / float64(c)
			return lower + time.Duration(frac*float64(LatencyBounds[i]-lower))
		}
		cum += float64(c)
	}
	return LatencyBounds[len(LatencyBounds)-1]
}

// Mean is the average observation.
func (l Latency) Mean() time.Duration {
	if l.Count == 0 {
		return 0
	}
	return time.Duration(l.SumNs / l.Count)
}

// Sub returns the counters accumulated since prev (an earlier snapshot of the same
// route or backend), with percentiles recomputed for that window. InFlight stays the
// current gauge. This is the canary-analysis primitive: compare Sub windows of the
// old and new groups.
func (c Counters) Sub(prev Counters) Counters {
	d := Counters{
		Requests:     c.Requests - prev.Requests,
		Responses1xx: c.Responses1xx - prev.Responses1xx,
		Responses2xx: c.Responses2xx - prev.Responses2xx,
		Responses3xx: c.Responses3xx - prev.Responses3xx,
		Responses4xx: c.Responses4xx - prev.Responses4xx,
		Responses5xx: c.Responses5xx - prev.Responses5xx,
		Errors:       c.Errors - prev.Errors,
		Retries:      c.Retries - prev.Retries,
		NoBackend:    c.NoBackend - prev.NoBackend,
		Canceled:     c.Canceled - prev.Canceled,
		InFlight:     c.InFlight,
		BytesIn:      c.BytesIn - prev.BytesIn,
		BytesOut:     c.BytesOut - prev.BytesOut,
	}
	d.Latency = Latency{
		Count:   c.Latency.Count - prev.Latency.Count,
		SumNs:   c.Latency.SumNs - prev.Latency.SumNs,
		Buckets: make([]uint64, numBuckets),
	}
	for i := range d.Latency.Buckets {
		var a, b uint64
		if i < len(c.Latency.Buckets) {
			a = c.Latency.Buckets[i]
		}
		if i < len(prev.Latency.Buckets) {
			b = prev.Latency.Buckets[i]
		}
		d.Latency.Buckets[i] = a - b
	}
	d.Latency.fillPercentiles()
	return d
}

func (l *Latency) fillPercentiles() {
	l.P50Ms = durationMs(l.Quantile(0.50))
	l.P90Ms = durationMs(l.Quantile(0.90))
	l.P99Ms = durationMs(l.Quantile(0.99))
}

func durationMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Route returns the stats of the named route, or nil.
func (s Snapshot) Route(name string) *RouteStats {
	for i := range s.Routes {
		if s.Routes[i].Name == name {
			return &s.Routes[i]
		}
	}
	return nil
}

// Backend returns the stats of the backend with this ID (the active one first, if a
// draining backend has the same ID), or nil.
func (rs RouteStats) Backend(id string) *BackendStats {
	var found *BackendStats
	for i := range rs.Backends {
		if b := &rs.Backends[i]; b.ID == id && (found == nil || b.State == Active) {
			found = b
		}
	}
	return found
}

// counters is the live, atomically updated form of Counters.
type counters struct {
	requests  atomic.Uint64
	classes   [5]atomic.Uint64 // 1xx..5xx
	errors    atomic.Uint64
	retries   atomic.Uint64
	noBackend atomic.Uint64
	canceled  atomic.Uint64
	inFlight  atomic.Int64
	bytesIn   atomic.Uint64
	bytesOut  atomic.Uint64
	latency   histogram
}

func (c *counters) status(code int) {
	if i := code/100 - 1; i >= 0 && i < len(c.classes) {
		c.classes[i].Add(1)
	}
}

func (c *counters) snapshot() Counters {
	return Counters{
		Requests:     c.requests.Load(),
		Responses1xx: c.classes[0].Load(),
		Responses2xx: c.classes[1].Load(),
		Responses3xx: c.classes[2].Load(),
		Responses4xx: c.classes[3].Load(),
		Responses5xx: c.classes[4].Load(),
		Errors:       c.errors.Load(),
		Retries:      c.retries.Load(),
		NoBackend:    c.noBackend.Load(),
		Canceled:     c.canceled.Load(),
		InFlight:     c.inFlight.Load(),
		BytesIn:      c.bytesIn.Load(),
		BytesOut:     c.bytesOut.Load(),
		Latency:      c.latency.snapshot(),
	}
}

type histogram struct {
	buckets [numBuckets]atomic.Uint64
	sum     atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(LatencyBounds) && d > LatencyBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(uint64(d))
}

// snapshot reads the buckets first and derives Count from them, so Count always
// equals the sum of Buckets even while requests are being recorded.
func (h *histogram) snapshot() Latency {
	l := Latency{Buckets: make([]uint64, numBuckets), SumNs: h.sum.Load()}
	for i := range h.buckets {
		l.Buckets[i] = h.buckets[i].Load()
		l.Count += l.Buckets[i]
	}
	l.fillPercentiles()
	return l
}

func latencyBoundsMs() []float64 {
	out := make([]float64, len(LatencyBounds))
	for i, b := range LatencyBounds {
		out[i] = durationMs(b)
	}
	return out
}
