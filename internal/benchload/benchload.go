// Package benchload is a small open-loop HTTP load generator for scripts/bench-router.sh:
// it sends GET requests at a fixed rate, whatever the server's answers, and measures
// each request's latency from the moment it was due to be sent, not from the moment a
// free connection sent it. A server that stalls therefore shows its stall in every
// request that should have been sent meanwhile (no coordinated omission), as wrk2
// does; Debian ships wrk but no wrk2.
//
// It uses only the standard library: keep-alive connections from one http.Transport,
// one goroutine per connection, a pacer that hands out due times. Latencies are kept
// whole (one int64 per request) and sorted for exact percentiles.
package benchload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Options describe one run.
type Options struct {
	URL      string
	Rate     int           // requests per second (> 0)
	Duration time.Duration // measured part of the run
	Warmup   time.Duration // sent at Rate first, not measured
	Conns    int           // connections (= concurrent requests at most); default 32
	Timeout  time.Duration // per request; default 10s
}

// Result is what a run measured.
type Result struct {
	Sent     int           // requests due in the measured window
	OK       int           // 2xx answers, fully read
	Errors   int           // transport errors and non-2xx answers
	Elapsed  time.Duration // measured window, first due time to last completion
	Rate     float64       // completed requests per second over Elapsed
	Latency  []time.Duration
	Dropped  int // due requests never sent because every connection was busy until the end
	Late     time.Duration
	firstErr error
}

// Percentile returns the q-quantile (0..1) of the OK and failed requests' latencies.
func (r *Result) Percentile(q float64) time.Duration {
	if len(r.Latency) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latency))+0.5) - 1
	i = max(0, min(i, len(r.Latency)-1))
	return r.Latency[i]
}

// FirstError is the first error met, if any.
func (r *Result) FirstError() error { return r.firstErr }

type job struct {
	due      time.Time
	measured bool
}

// Run sends Options.Rate requests per second to Options.URL for Warmup+Duration.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Rate <= 0 || o.Duration <= 0 {
		return nil, errors.New("benchload: rate and duration must be > 0")
	}
	if o.Conns <= 0 {
		o.Conns = 32
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: o.Conns,
		MaxConnsPerHost:     o.Conns,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: o.Timeout}

	total := int((o.Warmup + o.Duration).Seconds() * float64(o.Rate))
	warm := int(o.Warmup.Seconds() * float64(o.Rate))
	jobs := make(chan job, total) // never blocks the pacer: an overloaded server queues here
	res := &Result{Latency: make([]time.Duration, 0, total-warm)}
	var mu sync.Mutex
	var last time.Time
	var wg sync.WaitGroup
	for range o.Conns {
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for j := range jobs {
				if ctx.Err() != nil {
					continue
				}
				resp, err := client.Do(req)
				ok := false
				if err == nil {
					for {
						_, rerr := resp.Body.Read(buf)
						if rerr == io.EOF {
							break
						}
						if rerr != nil {
							err = rerr
							break
						}
					}
					resp.Body.Close()
					ok = err == nil && resp.StatusCode/100 == 2
					if err == nil && !ok {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				done := time.Now()
				if !j.measured {
					continue
				}
				mu.Lock()
				res.Latency = append(res.Latency, done.Sub(j.due))
				if ok {
					res.OK++
				} else {
					res.Errors++
					if res.firstErr == nil {
						res.firstErr = err
					}
				}
				if done.After(last) {
					last = done
				}
				mu.Unlock()
			}
		})
	}

	start := time.Now()
	interval := float64(time.Second) / float64(o.Rate)
	var firstDue time.Time
	for i := range total {
		due := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		if late := time.Since(due); late > res.Late {
			res.Late = late
		}
		if i == warm {
			firstDue = due
		}
		jobs <- job{due: due, measured: i >= warm}
		if i >= warm {
			res.Sent++
		}
	}
	close(jobs)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(res.Latency)
	res.Elapsed = last.Sub(firstDue)
	if res.Elapsed > 0 {
		res.Rate = float64(len(res.Latency)) / res.Elapsed.Seconds()
	}
	res.Dropped = res.Sent - len(res.Latency)
	return res, nil
}

// FreePorts returns n distinct TCP ports that were free on 127.0.0.1 a moment ago.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
