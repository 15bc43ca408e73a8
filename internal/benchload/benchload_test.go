package benchload

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRunPacesAndMeasures(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++ // one connection at a time below: no race
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{URL: srv.URL, Rate: 200, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 100 || res.OK != 100 || res.Errors != 0 || hits != 120 {
		t.Fatalf("sent %d ok %d errors %d hits %d, want 100 100 0 120", res.Sent, res.OK, res.Errors, hits)
	}
	if res.Rate < 150 || res.Rate > 250 {
		t.Errorf("rate %.1f/s, want about 200", res.Rate)
	}
	if p50, p99 := res.Percentile(0.5), res.Percentile(0.99); p50 <= 0 || p99 < p50 {
		t.Errorf("p50 %v p99 %v", p50, p99)
	}
}

// A server slower than the rate: latency counts from the due time, so it grows with
// the queue instead of staying at the service time (no coordinated omission).
func TestRunCountsQueueing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
	}))
	defer srv.Close()
	res, err := Run(context.Background(), Options{URL: srv.URL, Rate: 100, Duration: 300 * time.Millisecond, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p99 := res.Percentile(0.99); p99 < 150*time.Millisecond {
		t.Errorf("p99 %v: the queueing behind a 20 ms server at 100 req/s on one connection is missing", p99)
	}
}

func TestFreePorts(t *testing.T) {
	ps, err := FreePorts(3)
	if err != nil || len(ps) != 3 || ps[0] == ps[1] || ps[1] == ps[2] || ps[0] == ps[2] {
		t.Fatalf("%v %v", ps, err)
	}
}
