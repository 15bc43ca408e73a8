package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"gotest.tools/v3/assert"
)

// Open-loop load with vegeta: requests leave at a constant rate whatever the answers do,
// so a gap in service shows up as failed requests instead of a slower loop.

// maxErrorKinds bounds the distinct keys of loadReport.Errors; further kinds are counted
// under otherErrors.
const (
	maxErrorKinds = 8
	otherErrors   = "(other kinds)"
)

// loadResult is what the suite keeps of one vegeta result.
type loadResult struct {
	at      time.Time // when the request was sent
	latency time.Duration
	code    int    // HTTP status, 0 when no answer arrived
	err     string // transport error or non-2xx status, "" on success
	body    string // trimmed
}

func (r loadResult) failed() bool { return r.code < 200 || r.code > 299 || r.err != "" }

// loadRun is one running vegeta attack against 127.0.0.1.
type loadRun struct {
	t        *testing.T
	attacker *vegeta.Attacker
	started  time.Time
	done     chan struct{} // closed when every result is collected

	mu      sync.Mutex
	results []loadResult

	stopOnce sync.Once
	report   loadReport
}

// loadReport summarises a set of results.
type loadReport struct {
	Total, Failed int            // Failed = non-2xx + transport errors
	Bodies        map[string]int // trimmed response body → count, for 2xx answers
	Errors        map[string]int // error text or status → count, the first maxErrorKinds kinds
	Duration      time.Duration  // first to last request sent
	Rate          float64        // requests sent per second over Duration
	P50, P99      time.Duration  // latency of every request, failed ones included
}

func (r loadReport) String() string {
	return fmt.Sprintf("total=%d failed=%d rate=%.1f/s duration=%s p50=%s p99=%s bodies=%v errors=%v",
		r.Total, r.Failed, r.Rate, r.Duration.Round(time.Millisecond), r.P50.Round(10*time.Microsecond),
		r.P99.Round(10*time.Microsecond), r.Bodies, r.Errors)
}

// startRateLoad attacks http://127.0.0.1:PORT/PATH at rate req/s (open loop, vegeta)
// until stop() or maxDuration, and records every result. The test's cleanup stops it.
//
// (It would be startLoad, but router_test.go's closed-loop load already has that name.)
func startRateLoad(t *testing.T, port int, path string, rate int, maxDuration time.Duration) *loadRun {
	t.Helper()
	assert.Assert(t, rate > 0 && maxDuration > 0 && maxDuration <= 5*time.Minute, "rate %d, duration %s", rate, maxDuration)
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	// Enough workers to keep the rate through 2 s of stalled requests, and no more: past
	// that the attack falls behind, which the achieved Rate shows.
	workers := uint64(max(64, 2*rate))
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil, // 127.0.0.1 only, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        64,
			MaxIdleConnsPerHost: 64,
			MaxConnsPerHost:     int(workers),
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	l := &loadRun{
		t: t,
		attacker: vegeta.NewAttacker(
			vegeta.Client(client),
			vegeta.Workers(16),
			vegeta.MaxWorkers(workers),
			vegeta.KeepAlive(true),
			vegeta.MaxBody(4096),
		),
		done: make(chan struct{}),
	}
	target := vegeta.Target{Method: http.MethodGet, URL: fmt.Sprintf("http://127.0.0.1:%d%s", port, path)}
	l.started = time.Now()
	results := l.attacker.Attack(vegeta.NewStaticTargeter(target), vegeta.ConstantPacer{Freq: rate, Per: time.Second}, maxDuration, "e2e")
	go func() {
		defer close(l.done)
		for res := range results {
			r := loadResult{at: res.Timestamp, latency: res.Latency, code: int(res.Code), err: res.Error,
				body: strings.TrimSpace(string(res.Body))}
			if r.code >= 300 && r.err == "" { // vegeta counts 3xx as success
				r.err = fmt.Sprintf("status %d", r.code)
			}
			l.mu.Lock()
			l.results = append(l.results, r)
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the attack, waits for the requests in flight (at most the client timeout)
// and returns the report of every result; calling it again returns the same report.
func (l *loadRun) stop() loadReport {
	l.stopOnce.Do(func() {
		l.attacker.Stop()
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		l.report = summarize(l.results)
	})
	return l.report
}

// window returns the report of the results sent in [from, to), for instance the
// version split observed at each canary step. It works while the attack runs too.
func (l *loadRun) window(from, to time.Time) loadReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	var in []loadResult
	for _, r := range l.results {
		if !r.at.Before(from) && r.at.Before(to) {
			in = append(in, r)
		}
	}
	return summarize(in)
}

// ephemeralPort hides the client's port in transport errors, so one kind of error is
// one key of loadReport.Errors.
var ephemeralPort = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+):\d+->`)

func summarize(results []loadResult) loadReport {
	rep := loadReport{Total: len(results), Bodies: map[string]int{}, Errors: map[string]int{}}
	if len(results) == 0 {
		return rep
	}
	latencies := make([]time.Duration, 0, len(results))
	first, last := results[0].at, results[0].at
	for _, r := range results {
		latencies = append(latencies, r.latency)
		if r.at.Before(first) {
			first = r.at
		}
		if r.at.After(last) {
			last = r.at
		}
		if !r.failed() {
			rep.Bodies[r.body]++
			continue
		}
		rep.Failed++
		kind := r.err
		if kind == "" {
			kind = fmt.Sprintf("status %d", r.code)
		}
		kind = ephemeralPort.ReplaceAllString(kind, "$1:*->")
		if r.code != 0 && r.body != "" {
			kind += ": " + truncate(r.body, 80)
		}
		if _, seen := rep.Errors[kind]; !seen && len(rep.Errors) >= maxErrorKinds {
			kind = otherErrors
		}
		rep.Errors[kind]++
	}
	slices.Sort(latencies)
	rep.P50 = percentile(latencies, 0.50)
	rep.P99 = percentile(latencies, 0.99)
	rep.Duration = last.Sub(first)
	if rep.Duration > 0 {
		rep.Rate = float64(rep.Total-1) / rep.Duration.Seconds()
	}
	return rep
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*q+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// waitAnswers polls http://127.0.0.1:PORT/ until it answers body (2xx), so a load starts
// on a warm path.
func waitAnswers(t *testing.T, port int, body string, timeout time.Duration) {
	t.Helper()
	c := http.Client{Timeout: 2 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			b := make([]byte, 256)
			n, _ := resp.Body.Read(b)
			resp.Body.Close()
			got := strings.TrimSpace(string(b[:n]))
			if resp.StatusCode/100 == 2 && got == body {
				return
			}
			last = fmt.Sprintf("status %d: %q", resp.StatusCode, got)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered %q within %s; last: %s", url, body, timeout, last)
}

// TestLoadGeneratorAgainstTestApp: the open-loop generator holds 200 req/s against one
// test app container and records every answer.
func TestLoadGeneratorAgainstTestApp(t *testing.T) {
	s := setup(t)
	p := s.newProject(t, "services: {}")
	port := freePort(t)
	r := s.docker(t, "", nil, "run", "-d", "--name", p.name+"-app", "--label", "com.docker.compose.project="+p.name,
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", port), imageRef("v1"))
	assert.Assert(t, r.code == 0, r.String())
	waitAnswers(t, port, "v1", 30*time.Second)

	l := startRateLoad(t, port, "/", 200, 3*time.Second)
	time.Sleep(3500 * time.Millisecond) // the attack ends by itself after 3 s
	rep := l.stop()
	t.Logf("200 req/s for 3 s: %s", rep)
	assert.Check(t, rep.Total >= 540 && rep.Total <= 660, "total %d, want 600±10%%", rep.Total)
	assert.Check(t, rep.Failed == 0, "failed requests: %v", rep.Errors)
	assert.Check(t, rep.Bodies["v1"] == rep.Total, "bodies %v", rep.Bodies)
	assert.Check(t, rep.Rate >= 180, "achieved rate %.1f/s", rep.Rate)
	assert.DeepEqual(t, l.stop(), rep) // idempotent

	// A window holds the results sent in it, and nothing else.
	mid := l.started.Add(1500 * time.Millisecond)
	a, b := l.window(l.started, mid), l.window(mid, l.started.Add(time.Hour))
	assert.Check(t, a.Total+b.Total == rep.Total, "windows %d + %d, total %d", a.Total, b.Total, rep.Total)
	assert.Check(t, a.Total >= 250 && a.Total <= 350, "first 1.5 s: %s", a)
}

// sample is one observation of a project's containers.
type sample struct {
	At      time.Time
	Running map[string]int // service → running containers
	Healthy map[string]int // service → running containers whose status says (healthy)
}

type samples []sample

// sampler lists a project's containers every few hundred milliseconds, for invariants
// over a rollout such as "never more than N+1 running" or "never fewer than N healthy".
type sampler struct {
	stopc    chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	samples samples
	errs    []string
}

// startSampler lists the containers of project through the engine API every `every`
// (at most 5 minutes long, stopped by the test's cleanup too).
func startSampler(t *testing.T, s *suite, project string, every time.Duration) *sampler {
	t.Helper()
	sm := &sampler{stopc: make(chan struct{}), done: make(chan struct{})}
	labels := map[string]string{"com.docker.compose.project": project}
	go func() {
		defer close(sm.done)
		deadline := time.After(5 * time.Minute)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			at := time.Now()
			cs, err := s.engine.ListContainers(ctx, labels)
			cancel()
			sm.mu.Lock()
			if err != nil {
				sm.errs = append(sm.errs, err.Error())
			} else {
				smp := sample{At: at, Running: map[string]int{}, Healthy: map[string]int{}}
				for _, c := range cs {
					if c.State != "running" {
						continue
					}
					if c.Labels["io.lifecycle.role"] == "router" {
						continue // the router is filed under a service too, for compose
					}
					svc := c.Labels["com.docker.compose.service"]
					smp.Running[svc]++
					if strings.Contains(c.Status, "(healthy)") || c.Health == "healthy" {
						smp.Healthy[svc]++
					}
				}
				sm.samples = append(sm.samples, smp)
			}
			sm.mu.Unlock()
			select {
			case <-sm.stopc:
				return
			case <-deadline:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		sm.stop()
		if len(sm.errs) > 0 {
			t.Logf("sampler: %d list errors, first: %s", len(sm.errs), sm.errs[0])
		}
	})
	return sm
}

// stop ends the sampling and returns every sample; it can be called again.
func (sm *sampler) stop() samples {
	sm.stopOnce.Do(func() { close(sm.stopc) })
	<-sm.done
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return slices.Clone(sm.samples)
}

// maxRunning is the most running containers of service seen in one sample.
func (ss samples) maxRunning(service string) int {
	n := 0
	for _, s := range ss {
		n = max(n, s.Running[service])
	}
	return n
}

// minHealthy is the fewest healthy containers of service seen in one sample, from the
// first sample where it had one (the initial deploy done) on; -1 if it never had one.
func (ss samples) minHealthy(service string) int {
	n := -1
	for _, s := range ss {
		h := s.Healthy[service]
		if n < 0 {
			if h > 0 {
				n = h
			}
			continue
		}
		n = min(n, h)
	}
	return n
}

func (ss samples) String() string {
	if len(ss) == 0 {
		return "no samples"
	}
	return fmt.Sprintf("%d samples over %s", len(ss), ss[len(ss)-1].At.Sub(ss[0].At).Round(time.Millisecond))
}
