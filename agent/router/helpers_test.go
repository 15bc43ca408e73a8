package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// newTestRouter returns a router closed at the end of the test.
func newTestRouter(t testing.TB, opts Options) *Router {
	t.Helper()
	r := New(opts)
	t.Cleanup(func() { r.Close() })
	return r
}

// newBackendServer starts an HTTP backend on 127.0.0.1 that answers its name (or runs h).
func newBackendServer(t testing.TB, name string, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func hostPort(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

// deadAddress is a 127.0.0.1 port nobody listens on: dials are refused.
func deadAddress(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	addr := l.Addr().String()
	l.Close()
	return addr
}

// httpRoute is a route on a free loopback port with the given backends.
func httpRoute(name string, backends ...Backend) Route {
	return Route{Name: name, Listen: "127.0.0.1:0", Protocol: HTTP, Backends: backends}
}

func applyRoutes(t testing.TB, r *Router, routes ...Route) {
	t.Helper()
	assert.NilError(t, r.Apply(Config{Version: ConfigVersion, Routes: routes}))
}

func routeURL(t testing.TB, r *Router, name string) string {
	t.Helper()
	addr := r.Addr(name)
	assert.Assert(t, addr != nil, "route %s has no listener", name)
	return "http://" + addr.String()
}

// newClient is a keep-alive client that never uses a proxy or follows redirects.
func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get returns status and body.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return resp.StatusCode, string(b)
}

// waitFor polls cond every 5ms until it holds or the timeout fails the test.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backendStats returns the named backend's stats (nil if it is gone).
func backendStats(r *Router, route, id string) *BackendStats {
	s := r.Stats()
	rs := s.Route(route)
	if rs == nil {
		return nil
	}
	return rs.Backend(id)
}

func waitDrained(t testing.TB, r *Router, route, id string) {
	t.Helper()
	waitFor(t, 5*time.Second, "backend "+id+" to drain", func() bool { return backendStats(r, route, id) == nil })
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
