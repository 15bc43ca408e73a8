package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger
// shared by handlers and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestServer returns a server for cfg (version defaults to v1) and the
// buffer its log goes to.
func newTestServer(t *testing.T, cfg config) (*server, *syncBuffer) {
	t.Helper()
	if cfg.version == "" {
		cfg.version = "v1"
	}
	logs := &syncBuffer{}
	return newServer(cfg, log.New(logs, "", 0)), logs
}

// get sends GET target to h and returns the recorded response.
func get(h http.Handler, target string) *httptest.ResponseRecorder {
	recorder := httptest.NewRecorder()
	h.ServeHTTP(recorder, httptest.NewRequest(http.MethodGet, target, nil))
	return recorder
}

func TestRoot(t *testing.T) {
	srv, _ := newTestServer(t, config{version: "v2"})
	hostname, _ := os.Hostname()

	resp := get(srv.routes(), "/")
	if resp.Code != http.StatusOK || resp.Body.String() != "v2\n" {
		t.Errorf("GET / = %d %q, want 200 %q", resp.Code, resp.Body, "v2\n")
	}
	if got := resp.Header().Get("X-Version"); got != "v2" {
		t.Errorf("X-Version = %q, want v2", got)
	}
	if got := resp.Header().Get("X-Hostname"); got != hostname {
		t.Errorf("X-Hostname = %q, want %q", got, hostname)
	}
}

func TestRouting(t *testing.T) {
	srv, _ := newTestServer(t, config{})
	tests := []struct {
		method, target string
		wantStatus     int
	}{
		{http.MethodGet, "/", http.StatusOK},
		{http.MethodHead, "/", http.StatusOK},
		{http.MethodPost, "/", http.StatusMethodNotAllowed},
		{http.MethodGet, "/nope", http.StatusNotFound},
		{http.MethodGet, "/healthz", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			recorder := httptest.NewRecorder()
			srv.routes().ServeHTTP(recorder, httptest.NewRequest(tt.method, tt.target, nil))
			if recorder.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", recorder.Code, tt.wantStatus)
			}
			// Error responses must identify the container too.
			if recorder.Header().Get("X-Version") != "v1" {
				t.Errorf("X-Version missing on a %d response", recorder.Code)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		cfg        config
		sinceStart time.Duration
		draining   bool
		wantStatus int
		wantBody   string
	}{
		{"healthy by default", config{}, 0, false, http.StatusOK, "ok"},
		{"starting", config{readyAfter: 3 * time.Second}, time.Second, false, http.StatusServiceUnavailable, "starting, ready in 2s"},
		{"ready once READY_AFTER has passed", config{readyAfter: 3 * time.Second}, 3 * time.Second, false, http.StatusOK, "ok"},
		{"never healthy", config{neverHealthy: true}, time.Hour, false, http.StatusServiceUnavailable, "NEVER_HEALTHY"},
		{"healthy before UNHEALTHY_AFTER", config{unhealthyAfter: 3 * time.Second}, 2 * time.Second, false, http.StatusOK, "ok"},
		{"unhealthy from UNHEALTHY_AFTER on", config{unhealthyAfter: 3 * time.Second}, 3 * time.Second, false, http.StatusServiceUnavailable, "UNHEALTHY_AFTER"},
		{"draining", config{}, time.Hour, true, http.StatusServiceUnavailable, "draining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, tt.cfg)
			srv.startedAt = start
			srv.now = func() time.Time { return start.Add(tt.sinceStart) }
			srv.draining.Store(tt.draining)

			resp := get(srv.routes(), "/healthz")
			if resp.Code != tt.wantStatus || !strings.Contains(resp.Body.String(), tt.wantBody) {
				t.Errorf("GET /healthz = %d %q, want %d containing %q", resp.Code, resp.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestErrorInjectorPattern(t *testing.T) {
	tests := []struct {
		rate float64
		want string // first 10 requests: x fails, . succeeds
	}{
		{0, ".........."},
		{0.2, "....x....x"},
		{0.5, ".x.x.x.x.x"},
		{0.1, ".........x"},
		{0.3, "...x..x..x"},
		{1, "xxxxxxxxxx"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rate), func(t *testing.T) {
			injector := newErrorInjector(tt.rate)
			var got strings.Builder
			for range len(tt.want) {
				if injector.next() {
					got.WriteByte('x')
				} else {
					got.WriteByte('.')
				}
			}
			if got.String() != tt.want {
				t.Errorf("pattern = %s, want %s", got.String(), tt.want)
			}
		})
	}
}

func TestRootErrorRate(t *testing.T) {
	srv, _ := newTestServer(t, config{errorRate: 0.2})
	handler := srv.routes()
	var statuses []int
	for range 10 {
		statuses = append(statuses, get(handler, "/").Code)
	}
	want := []int{200, 200, 200, 200, 500, 200, 200, 200, 200, 500}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	// Only / counts towards ERROR_RATE: health checks must not shift the pattern.
	if resp := get(handler, "/healthz"); resp.Code != http.StatusOK {
		t.Errorf("GET /healthz = %d with ERROR_RATE, want 200", resp.Code)
	}
}

func TestSlow(t *testing.T) {
	const delay = 50 * time.Millisecond
	tests := []struct {
		name       string
		cfg        config
		target     string
		wantStatus int
		wantBody   string
		wantDelay  time.Duration
	}{
		{"SLOW delays /", config{slow: delay}, "/", http.StatusOK, "v1\n", delay},
		{"/slow?d", config{}, "/slow?d=50ms", http.StatusOK, "slept 50ms\n", delay},
		{"/slow without d", config{}, "/slow", http.StatusBadRequest, "want a non-negative duration", 0},
		{"/slow with a bad d", config{}, "/slow?d=forever", http.StatusBadRequest, "want a non-negative duration", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newTestServer(t, tt.cfg)
			start := time.Now()
			resp := get(srv.routes(), tt.target)
			elapsed := time.Since(start)
			if resp.Code != tt.wantStatus || !strings.Contains(resp.Body.String(), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.target, resp.Code, resp.Body, tt.wantStatus, tt.wantBody)
			}
			if elapsed < tt.wantDelay {
				t.Errorf("GET %s took %s, want at least %s", tt.target, elapsed, tt.wantDelay)
			}
		})
	}
}

func TestSlowStopsWhenClientLeaves(t *testing.T) {
	srv, _ := newTestServer(t, config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	recorder := httptest.NewRecorder()
	start := time.Now()
	srv.routes().ServeHTTP(recorder, httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow?d=1h", nil))
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("GET /slow?d=1h with a canceled request took %s", elapsed)
	}
}

func TestEnv(t *testing.T) {
	srv, _ := newTestServer(t, config{})
	srv.lookupEnv = func(name string) (string, bool) {
		value, ok := map[string]string{"GREETING": "hello world", "EMPTY": ""}[name]
		return value, ok
	}
	tests := []struct {
		target     string
		wantStatus int
		wantBody   string
	}{
		{"/env?name=GREETING", http.StatusOK, "hello world"}, // raw, no newline
		{"/env?name=EMPTY", http.StatusOK, ""},
		{"/env?name=MISSING", http.StatusNotFound, "MISSING is not set\n"},
		{"/env", http.StatusBadRequest, "missing query parameter name, e.g. /env?name=HOME\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			resp := get(srv.routes(), tt.target)
			if resp.Code != tt.wantStatus || !strings.HasSuffix(resp.Body.String(), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d %q", tt.target, resp.Code, resp.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ := newTestServer(t, config{})
	tests := []struct {
		name       string
		target     string
		wantStatus int
		wantBody   string
	}{
		{"existing file", "/file?path=" + secret, http.StatusOK, "s3cr3t"},
		{"missing file", "/file?path=" + filepath.Join(dir, "missing"), http.StatusNotFound, "no such file"},
		{"missing path", "/file", http.StatusBadRequest, "missing query parameter path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(srv.routes(), tt.target)
			if resp.Code != tt.wantStatus || !strings.Contains(resp.Body.String(), tt.wantBody) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.target, resp.Code, resp.Body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestWhoami(t *testing.T) {
	srv, _ := newTestServer(t, config{})
	resp := get(srv.routes(), "/whoami")
	want := fmt.Sprintf("uid=%d gid=%d\n", os.Getuid(), os.Getgid())
	if resp.Code != http.StatusOK || resp.Body.String() != want {
		t.Errorf("GET /whoami = %d %q, want 200 %q", resp.Code, resp.Body, want)
	}
}

func TestHogNeedsMemoryHog(t *testing.T) {
	srv, _ := newTestServer(t, config{})
	if resp := get(srv.routes(), "/hog"); resp.Code != http.StatusForbidden {
		t.Errorf("GET /hog without MEMORY_HOG = %d, want 403", resp.Code)
	}
}

// firstWriteRecorder notes how much GET /hog held when the first byte of the answer
// (its status line) went out.
type firstWriteRecorder struct {
	*httptest.ResponseRecorder
	srv         *server
	heldAtFirst int64
	wrote       bool
}

func (r *firstWriteRecorder) note() {
	if !r.wrote {
		r.wrote, r.heldAtFirst = true, r.srv.hogMiB.Load()
	}
}
func (r *firstWriteRecorder) WriteHeader(code int) { r.note(); r.ResponseRecorder.WriteHeader(code) }
func (r *firstWriteRecorder) Write(b []byte) (int, error) {
	r.note()
	return r.ResponseRecorder.Write(b)
}

// TestHogAnswersOnlyOnceItHoldsTheTarget: a health check on /hog?mib=N can only pass
// once N MiB are resident, because nothing (not even the status) is sent before.
func TestHogAnswersOnlyOnceItHoldsTheTarget(t *testing.T) {
	srv, _ := newTestServer(t, config{memoryHog: true, quiet: true})
	rec := &firstWriteRecorder{ResponseRecorder: httptest.NewRecorder(), srv: srv}
	srv.routes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hog?mib=40", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "allocated 48 MiB\n" {
		t.Errorf("GET /hog?mib=40 = %d %q, want 200 %q (whole 16 MiB chunks)", rec.Code, rec.Body, "allocated 48 MiB\n")
	}
	if rec.heldAtFirst != 48 {
		t.Errorf("the answer began while %d MiB were held, want 48: a health check could pass before the target", rec.heldAtFirst)
	}
	// The memory stays held: a second call with a lower target answers at once.
	if resp := get(srv.routes(), "/hog?mib=16"); resp.Body.String() != "allocated 48 MiB\n" {
		t.Errorf("GET /hog?mib=16 after 48 MiB = %q, want the 48 MiB still held", resp.Body)
	}
	for _, bad := range []string{"0", "-1", "x"} {
		if resp := get(srv.routes(), "/hog?mib="+bad); resp.Code != http.StatusBadRequest {
			t.Errorf("GET /hog?mib=%s = %d, want 400", bad, resp.Code)
		}
	}
}

func TestRequestLog(t *testing.T) {
	tests := []struct {
		name    string
		quiet   bool
		target  string
		wantLog string
	}{
		{"success", false, "/healthz", "GET /healthz 200 "},
		{"error status and query", false, "/slow?d=bad", "GET /slow?d=bad 400 "},
		{"quiet", true, "/healthz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, logs := newTestServer(t, config{quiet: tt.quiet})
			get(srv.routes(), tt.target)
			got := logs.String()
			if tt.wantLog == "" && got != "" || !strings.HasPrefix(got, tt.wantLog) {
				t.Errorf("log = %q, want a line starting %q", got, tt.wantLog)
			}
		})
	}
}
