package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// server holds the state shared by the HTTP handlers.
type server struct {
	cfg       config
	logger    *log.Logger
	hostname  string
	startedAt time.Time

	// now and lookupEnv are os/time functions outside tests; tests replace
	// them to control the clock and the environment seen by /env.
	now       func() time.Time
	lookupEnv func(string) (string, bool)

	// draining is set on SIGTERM so that /healthz fails while in-flight and
	// new requests are still served.
	draining atomic.Bool
	failures errorInjector

	// GET /hog's memory, kept for the life of the process, and its size in MiB.
	hogMu  sync.Mutex
	hoard  [][]byte
	hogMiB atomic.Int64
}

func newServer(cfg config, logger *log.Logger) *server {
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "unknown"
	}
	return &server{
		cfg:       cfg,
		logger:    logger,
		hostname:  hostname,
		startedAt: time.Now(),
		now:       time.Now,
		lookupEnv: os.LookupEnv,
		failures:  newErrorInjector(cfg.errorRate),
	}
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.handleRoot)
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /slow", s.handleSlow)
	mux.HandleFunc("GET /env", s.handleEnv)
	mux.HandleFunc("GET /file", s.handleFile)
	mux.HandleFunc("GET /whoami", s.handleWhoami)
	mux.HandleFunc("GET /stat", s.handleStat)
	mux.HandleFunc("GET /hog", s.handleHog)
	mux.HandleFunc("GET /burn", s.handleBurn)
	return s.logRequests(s.identify(mux))
}

// identify adds the headers that tell tests which version and which
// container answered, on every response including errors.
func (s *server) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Version", s.cfg.version)
		w.Header().Set("X-Hostname", s.hostname)
		next.ServeHTTP(w, r)
	})
}

func (s *server) handleRoot(w http.ResponseWriter, r *http.Request) {
	// Count the request on arrival, so the failing ones follow the order in
	// which requests came in, whatever SLOW does.
	fail := s.failures.next()
	if !sleep(r.Context(), s.cfg.slow) {
		http.Error(w, "request canceled", http.StatusServiceUnavailable)
		return
	}
	if fail {
		http.Error(w, fmt.Sprintf("injected error (ERROR_RATE=%g)", s.cfg.errorRate), http.StatusInternalServerError)
		return
	}
	fmt.Fprintln(w, s.cfg.version)
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if healthy, reason := s.health(); !healthy {
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// health reports whether /healthz should answer 200 and, if not, why; the
// reason ends up in `docker inspect` through the healthcheck subcommand.
func (s *server) health() (healthy bool, reason string) {
	if s.cfg.neverHealthy {
		return false, "NEVER_HEALTHY is set"
	}
	if s.draining.Load() {
		return false, "draining before shutdown"
	}
	up := s.now().Sub(s.startedAt)
	if s.cfg.unhealthyAfter > 0 && up >= s.cfg.unhealthyAfter {
		return false, fmt.Sprintf("unhealthy since %s after start (UNHEALTHY_AFTER)", s.cfg.unhealthyAfter)
	}
	if remaining := s.cfg.readyAfter - up; remaining > 0 {
		return false, fmt.Sprintf("starting, ready in %s (READY_AFTER=%s)",
			remaining.Round(time.Millisecond), s.cfg.readyAfter)
	}
	return true, "ok"
}

func (s *server) handleSlow(w http.ResponseWriter, r *http.Request) {
	value := r.URL.Query().Get("d")
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		http.Error(w, fmt.Sprintf("d=%q: want a non-negative duration, e.g. /slow?d=2s", value), http.StatusBadRequest)
		return
	}
	if !sleep(r.Context(), d) {
		http.Error(w, "request canceled", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "slept %s\n", d)
}

// handleEnv answers the raw value, without a newline, so tests can compare
// it exactly with what they configured.
func (s *server) handleEnv(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		http.Error(w, "missing query parameter name, e.g. /env?name=HOME", http.StatusBadRequest)
		return
	}
	value, ok := s.lookupEnv(name)
	if !ok {
		http.Error(w, fmt.Sprintf("environment variable %s is not set", name), http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, value)
}

// handleFile answers the raw content of a file, for tests of volumes,
// configs and secrets.
func (s *server) handleFile(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Query().Get("path")
	if path == "" {
		http.Error(w, "missing query parameter path, e.g. /file?path=/run/secrets/token", http.StatusBadRequest)
		return
	}
	content, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case errors.Is(err, fs.ErrPermission):
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(content)
}

func (s *server) handleWhoami(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "uid=%d gid=%d\n", os.Getuid(), os.Getgid())
}

// handleStat answers "mode=0400 uid=N gid=N" for the file at ?path=, so tests check
// how a file was delivered without a shell in the image.
func (s *server) handleStat(w http.ResponseWriter, r *http.Request) {
	fi, err := os.Stat(r.URL.Query().Get("path"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	uid, gid := -1, -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	fmt.Fprintf(w, "mode=%04o uid=%d gid=%d\n", fi.Mode().Perm(), uid, gid)
}

// hogChunkMiB is the size of each allocation of GET /hog.
const hogChunkMiB = 16

// handleHog allocates and touches memory in 16 MiB chunks. Without ?mib it goes on
// until the kernel's OOM killer (or the container memory limit) ends the process,
// and it answers nothing before: a health check pointed at it can never pass. (It
// used to answer 200 and stream progress at once, so a health check could see the
// 200 and pass before the allocation got the process killed: a race.) With ?mib=N
// it stops once N MiB (in whole chunks) are resident, keeps them for the life of the
// process, and only then answers 200 "allocated N MiB": a health check on
// /hog?mib=N passes only once the container holds that much. It deliberately keeps
// going after the client goes away: the test wants the kill, not a clean stop.
func (s *server) handleHog(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.memoryHog {
		http.Error(w, "GET /hog needs MEMORY_HOG=1", http.StatusForbidden)
		return
	}
	target := int64(-1) // until killed
	if v := r.URL.Query().Get("mib"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			http.Error(w, fmt.Sprintf("mib must be a positive number of MiB, got %q", v), http.StatusBadRequest)
			return
		}
		target = n
	}
	const chunkSize = hogChunkMiB << 20
	// Fresh memory is not resident until written, so touch one byte per
	// page; otherwise the RSS, and the cgroup charge, would barely grow.
	const pageSize = 4096

	if target < 0 {
		s.logger.Printf("hog: allocating memory until killed")
	}
	for target < 0 || s.hogMiB.Load() < target {
		chunk := make([]byte, chunkSize)
		for i := 0; i < len(chunk); i += pageSize {
			chunk[i] = 1
		}
		s.hogMu.Lock()
		s.hoard = append(s.hoard, chunk)
		s.hogMu.Unlock()
		if allocated := s.hogMiB.Add(hogChunkMiB); allocated%256 == 0 {
			s.logger.Printf("hog: allocated %d MiB", allocated)
		}
	}
	fmt.Fprintf(w, "allocated %d MiB\n", s.hogMiB.Load())
}

// sleep waits for d, or until the client goes away; it reports whether the
// whole duration passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// logRequests logs one line per request (method, URI, status, duration)
// unless QUIET is set.
func (s *server) logRequests(next http.Handler) http.Handler {
	if s.cfg.quiet {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		recorder := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(recorder, r)
		s.logger.Printf("%s %s %d %s", r.Method, r.URL.RequestURI(), recorder.statusCode(),
			time.Since(start).Round(time.Microsecond))
	})
}

// statusRecorder remembers the status code a handler sent, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}

func (r *statusRecorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK // the handler wrote nothing: net/http sends 200
	}
	return r.status
}

// errorInjector decides which requests fail for ERROR_RATE. It is
// deterministic so tests can count on the exact pattern: request k (from 1)
// fails when floor(k*rate) goes up, so 0.2 fails requests 5, 10, 15, ...,
// 0.5 fails every second request and 1 fails all of them. Integer parts per
// million avoid floating-point surprises such as 0.1*10 != 1.
type errorInjector struct {
	perMillion uint64
	requests   atomic.Uint64
}

func newErrorInjector(rate float64) errorInjector {
	return errorInjector{perMillion: uint64(rate*1e6 + 0.5)}
}

// next counts one request and reports whether it should fail.
func (e *errorInjector) next() bool {
	k := e.requests.Add(1)
	return k*e.perMillion/1e6 > (k-1)*e.perMillion/1e6
}

// handleBurn keeps one CPU busy for ?d (a duration, at most 1m) in the background and
// answers at once: a known CPU load for the stats tests.
func (s *server) handleBurn(w http.ResponseWriter, r *http.Request) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d <= 0 || d > time.Minute {
		http.Error(w, "d: want a duration up to 1m, e.g. /burn?d=10s", http.StatusBadRequest)
		return
	}
	go func() {
		x := uint64(1)
		for end := time.Now().Add(d); time.Now().Before(end); {
			for i := 0; i < 100000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		burnSink.Store(x)
	}()
	fmt.Fprintf(w, "burning one CPU for %s\n", d)
}

// burnSink keeps the burn loop's result alive, so the compiler cannot drop the loop.
var burnSink atomic.Uint64
