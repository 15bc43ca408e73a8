package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestWeightedSplit(t *testing.T) {
	a := newBackendServer(t, "a", nil)
	b := newBackendServer(t, "b", nil)
	z := newBackendServer(t, "zero", nil)
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web",
		Backend{ID: "a", Address: hostPort(a), Weight: 90},
		Backend{ID: "b", Address: hostPort(b), Weight: 10},
		Backend{ID: "zero", Address: hostPort(z), Weight: 0},
	))
	c := newClient(t)
	url := routeURL(t, r, "web")
	const total = 2000
	counts := map[string]int{}
	for range total {
		status, body := get(t, c, url)
		assert.Equal(t, status, http.StatusOK)
		counts[body]++
	}
	share := float64(counts["a"]) / total
	assert.Assert(t, share >= 0.87 && share <= 0.93, "a got %.3f of the traffic: %v", share, counts)
	assert.Equal(t, counts["a"]+counts["b"], total, "%v", counts)
	assert.Equal(t, counts["zero"], 0)

	s := r.Stats()
	assert.Equal(t, s.Route("web").Backend("zero").Requests, uint64(0))
	assert.Equal(t, s.Route("web").Requests, uint64(total))
}

// A load loop runs while the backends are replaced v1 → v2 → v3 and each removed
// backend's server is shut down once its drain ended: not one request may fail.
func TestApplySwapsBackendsWithoutFailedRequests(t *testing.T) {
	servers := map[string]*http.Server{}
	addrs := map[string]string{}
	for _, v := range []string{"v1", "v2", "v3"} {
		srv := newBackendServer(t, v, nil)
		servers[v] = srv.Config
		addrs[v] = hostPort(srv)
	}
	r := newTestRouter(t, Options{})
	route := func(v string) Route {
		rt := httpRoute("web", Backend{ID: v, Address: addrs[v], Weight: 100, Group: v})
		rt.DrainTimeout = Duration(5 * time.Second)
		return rt
	}
	applyRoutes(t, r, route("v1"))
	url := routeURL(t, r, "web")
	c := newClient(t)

	const workers = 8
	stop := time.Now().Add(1500 * time.Millisecond)
	var failed atomic.Int64
	var firstErr atomic.Value
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[string]int{}
			for time.Now().Before(stop) {
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d body %q err %v", resp.StatusCode, body, err))
					continue
				}
				local[string(body)]++
			}
			mu.Lock()
			for k, v := range local {
				seen[k] += v
			}
			mu.Unlock()
		})
	}

	for _, step := range []struct{ from, to string }{{"v1", "v2"}, {"v2", "v3"}} {
		time.Sleep(400 * time.Millisecond)
		applyRoutes(t, r, route(step.to))
		waitDrained(t, r, "web", step.from)
		// The old revision's container stops now: its server closes its listener and
		// any connection still open.
		assert.NilError(t, servers[step.from].Close())
	}
	wg.Wait()
	assert.Equal(t, failed.Load(), int64(0), "first failure: %v", firstErr.Load())
	for _, v := range []string{"v1", "v2", "v3"} {
		assert.Assert(t, seen[v] > 0, "no request reached %s: %v", v, seen)
	}
	t.Logf("requests per revision: %v", seen)
}

func TestDrainLetsInFlightRequestFinish(t *testing.T) {
	v1 := newBackendServer(t, "v1", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		io.WriteString(w, "v1")
	})
	v2 := newBackendServer(t, "v2", nil)
	r := newTestRouter(t, Options{})
	route := httpRoute("web", Backend{ID: "v1", Address: hostPort(v1), Weight: 1})
	route.DrainTimeout = Duration(5 * time.Second)
	applyRoutes(t, r, route)
	url := routeURL(t, r, "web")
	c := newClient(t)

	type result struct {
		status int
		body   string
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := c.Get(url + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{resp.StatusCode, string(b), err}
	}()
	waitFor(t, 2*time.Second, "the slow request to reach v1", func() bool {
		b := backendStats(r, "web", "v1")
		return b != nil && b.InFlight == 1
	})

	route.Backends = []Backend{{ID: "v2", Address: hostPort(v2), Weight: 1}}
	applyRoutes(t, r, route)
	for range 5 {
		status, body := get(t, c, url)
		assert.Equal(t, status, http.StatusOK)
		assert.Equal(t, body, "v2")
	}
	b := backendStats(r, "web", "v1")
	assert.Assert(t, b != nil)
	assert.Equal(t, b.State, Draining)
	assert.Equal(t, b.InFlight, int64(1))

	res := <-slow
	assert.NilError(t, res.err)
	assert.Equal(t, res.status, http.StatusOK)
	assert.Equal(t, res.body, "v1")
	waitDrained(t, r, "web", "v1")
}

func TestDrainTimeoutClosesStuckRequest(t *testing.T) {
	release := make(chan struct{})
	v1 := newBackendServer(t, "v1", func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before v1.Close
	v2 := newBackendServer(t, "v2", nil)
	r := newTestRouter(t, Options{})
	route := httpRoute("web", Backend{ID: "v1", Address: hostPort(v1), Weight: 1})
	route.DrainTimeout = Duration(200 * time.Millisecond)
	applyRoutes(t, r, route)
	url := routeURL(t, r, "web")
	c := newClient(t)

	done := make(chan int, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitFor(t, 2*time.Second, "the request to reach v1", func() bool {
		b := backendStats(r, "web", "v1")
		return b != nil && b.InFlight == 1
	})
	start := time.Now()
	route.Backends = []Backend{{ID: "v2", Address: hostPort(v2), Weight: 1}}
	applyRoutes(t, r, route)
	select {
	case status := <-done:
		assert.Equal(t, status, http.StatusBadGateway)
	case <-time.After(3 * time.Second):
		t.Fatal("the drain timeout did not end the stuck request")
	}
	assert.Assert(t, time.Since(start) < 2*time.Second)
	waitDrained(t, r, "web", "v1")
}

func TestRetryIdempotentRequestOnRefusedDial(t *testing.T) {
	var posts atomic.Int64
	live := newBackendServer(t, "live", func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			posts.Add(1)
		}
		body, _ := io.ReadAll(req.Body)
		fmt.Fprintf(w, "live %s %s", req.Method, body)
	})
	// A long cooldown keeps every later pick deterministic.
	r := newTestRouter(t, Options{PassiveCooldown: time.Minute})
	c := newClient(t)
	// Equal weights: the first pick of a fresh table is the first backend, the dead one.
	apply := func(deadID string) string {
		applyRoutes(t, r, httpRoute("web",
			Backend{ID: deadID, Address: deadAddress(t), Weight: 1},
			Backend{ID: "live", Address: hostPort(live), Weight: 1},
		))
		return routeURL(t, r, "web")
	}

	url := apply("dead-get")
	status, body := get(t, c, url)
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "live GET ")
	s := r.Stats()
	assert.Equal(t, s.Route("web").Retries, uint64(1))
	assert.Equal(t, s.Route("web").Backend("dead-get").Errors, uint64(1))
	assert.Equal(t, s.Route("web").Backend("dead-get").Healthy, false)
	assert.Equal(t, s.Route("web").Responses2xx, uint64(1))

	t.Run("PUT with a body is replayed", func(t *testing.T) {
		url := apply("dead-put")
		req, err := http.NewRequest(http.MethodPut, url+"/x", strings.NewReader("payload"))
		assert.NilError(t, err)
		resp, err := c.Do(req)
		assert.NilError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusOK)
		assert.Equal(t, string(b), "live PUT payload")
	})

	t.Run("POST is not retried", func(t *testing.T) {
		url := apply("dead-post")
		before := r.Stats().Route("web").Retries
		resp, err := c.Post(url, "text/plain", strings.NewReader("order #1"))
		assert.NilError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusBadGateway)
		assert.Check(t, is.Contains(string(b), "502 Bad Gateway"))
		assert.Equal(t, posts.Load(), int64(0))
		assert.Equal(t, r.Stats().Route("web").Retries, before)
		// The dead backend is now marked down: the next POST goes to the live one.
		resp, err = c.Post(url, "text/plain", strings.NewReader("order #2"))
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusOK)
		assert.Equal(t, posts.Load(), int64(1))
	})
}

// HTTP/1.0 keep-alive depends on the inbound Connection header, which the proxy edits
// in place: the client connection must still be kept alive.
func TestHTTP10KeepAlive(t *testing.T) {
	srv := newBackendServer(t, "a", nil)
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	conn := dialRoute(t, r, "web")
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for range 2 {
		_, err := io.WriteString(conn, "GET / HTTP/1.0\r\nHost: app\r\nConnection: keep-alive\r\n\r\n")
		assert.NilError(t, err)
		resp, err := http.ReadResponse(br, nil)
		assert.NilError(t, err)
		body, err := io.ReadAll(resp.Body)
		assert.NilError(t, err)
		assert.Equal(t, string(body), "a")
		assert.Equal(t, resp.Header.Get("Connection"), "keep-alive")
	}
}

func TestOnlyBackendUnreachableAnswers502(t *testing.T) {
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "dead", Address: deadAddress(t), Weight: 1}))
	status, body := get(t, newClient(t), routeURL(t, r, "web"))
	assert.Equal(t, status, http.StatusBadGateway)
	assert.Equal(t, body, string(badGateway))
	rs := r.Stats().Route("web")
	assert.Equal(t, rs.Responses5xx, uint64(1))
	assert.Equal(t, rs.Backend("dead").Errors, uint64(1))
}

func TestNoBackendAnswers503(t *testing.T) {
	srv := newBackendServer(t, "a", nil)
	r := newTestRouter(t, Options{})
	c := newClient(t)
	for _, tc := range []struct {
		name     string
		backends []Backend
	}{
		{"no backends", nil},
		{"all weights zero", []Backend{{ID: "a", Address: hostPort(srv), Weight: 0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			applyRoutes(t, r, httpRoute("web", tc.backends...))
			status, body := get(t, c, routeURL(t, r, "web"))
			assert.Equal(t, status, http.StatusServiceUnavailable)
			assert.Equal(t, body, "503 Service Unavailable: no healthy backend for route \"web\"\n")
		})
	}
	rs := r.Stats().Route("web")
	assert.Equal(t, rs.NoBackend, uint64(2))
	assert.Equal(t, rs.Responses5xx, uint64(2))
}

func TestUpgradeIsTunnelled(t *testing.T) {
	echo := newBackendServer(t, "echo", func(w http.ResponseWriter, req *http.Request) {
		if !strings.EqualFold(req.Header.Get("Upgrade"), "echo") || !hasToken(req.Header["Connection"], "upgrade") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw) // echo until the client closes
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("ws", Backend{ID: "echo", Address: hostPort(echo), Weight: 1}))

	conn, err := net.Dial("tcp", r.Addr("ws").String())
	assert.NilError(t, err)
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, "GET /socket HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	assert.NilError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	assert.NilError(t, err)
	assert.Equal(t, resp.StatusCode, http.StatusSwitchingProtocols)
	assert.Equal(t, resp.Header.Get("Upgrade"), "echo")
	for _, msg := range []string{"hello\n", "second message\n"} {
		_, err = io.WriteString(conn, msg)
		assert.NilError(t, err)
		line, err := br.ReadString('\n')
		assert.NilError(t, err)
		assert.Equal(t, line, msg)
	}
	conn.Close()
	waitFor(t, 2*time.Second, "the tunnel to close", func() bool {
		return r.Stats().Route("ws").InFlight == 0
	})
	b := r.Stats().Route("ws").Backend("echo")
	assert.Equal(t, b.Responses1xx, uint64(1))
	assert.Equal(t, b.BytesIn, uint64(len("hello\nsecond message\n")))
}

func TestStreamingResponseIsFlushed(t *testing.T) {
	release := make(chan struct{})
	srv := newBackendServer(t, "stream", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "second\n")
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "s", Address: hostPort(srv), Weight: 1}))
	c := newClient(t)
	start := time.Now()
	resp, err := c.Get(routeURL(t, r, "web"))
	assert.NilError(t, err)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	assert.NilError(t, err)
	assert.Equal(t, line, "first\n")
	assert.Assert(t, time.Since(start) < 2*time.Second, "the first chunk waited for the whole response")
	close(release)
	rest, err := io.ReadAll(br)
	assert.NilError(t, err)
	assert.Equal(t, string(rest), "second\n")
}

func TestForwardedAndHopByHopHeaders(t *testing.T) {
	srv := newBackendServer(t, "h", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Connection", "X-Backend-Hop")
		w.Header().Set("X-Backend-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-App", "yes")
		json.NewEncoder(w).Encode(map[string]any{"host": req.Host, "header": req.Header})
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "h", Address: hostPort(srv), Weight: 1}))
	req, err := http.NewRequest(http.MethodGet, routeURL(t, r, "web")+"/p?q=1", nil)
	assert.NilError(t, err)
	req.Host = "app.example"
	req.Header.Set("Connection", "X-Client-Hop")
	req.Header.Set("X-Client-Hop", "drop me")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "") // the client sends none; the backend must not get Go's
	resp, err := newClient(t).Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	var got struct {
		Host   string
		Header http.Header
	}
	assert.NilError(t, json.NewDecoder(resp.Body).Decode(&got))
	assert.Equal(t, got.Host, "app.example")
	assert.Equal(t, got.Header.Get("X-Forwarded-For"), "203.0.113.7, 127.0.0.1")
	assert.Equal(t, got.Header.Get("X-Forwarded-Proto"), "http")
	assert.Equal(t, got.Header.Get("X-Client-Hop"), "")
	assert.Equal(t, got.Header.Get("Proxy-Authorization"), "")
	assert.Equal(t, got.Header.Get("Te"), "trailers")
	assert.Equal(t, got.Header.Get("User-Agent"), "")
	assert.Equal(t, resp.Header.Get("X-App"), "yes")
	assert.Equal(t, resp.Header.Get("X-Backend-Hop"), "")
	assert.Equal(t, resp.Header.Get("Keep-Alive"), "")
}

func TestTrailersAreForwarded(t *testing.T) {
	srv := newBackendServer(t, "t", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc")
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "t", Address: hostPort(srv), Weight: 1}))
	resp, err := newClient(t).Get(routeURL(t, r, "web"))
	assert.NilError(t, err)
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	resp.Body.Close()
	assert.Equal(t, string(b), "body")
	assert.Equal(t, resp.Trailer.Get("X-Checksum"), "abc")
}

// A backend that dies half-way through a body must not look like a complete response.
func TestBrokenResponseAbortsClientConnection(t *testing.T) {
	srv := newBackendServer(t, "broken", func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
		brw.Flush()
		conn.Close()
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "b", Address: hostPort(srv), Weight: 1}))
	// Depending on what net/http had flushed, the client sees the break before or
	// after the headers; either way it must see an error.
	resp, err := newClient(t).Get(routeURL(t, r, "web"))
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	assert.Assert(t, err != nil, "a truncated body was delivered as complete")
	waitFor(t, 2*time.Second, "the error to be counted", func() bool {
		return r.Stats().Route("web").Backend("b").Errors == 1
	})
}

func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	a := newBackendServer(t, "a", func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/health" && sick.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "a")
	})
	b := newBackendServer(t, "b", nil)
	r := newTestRouter(t, Options{})
	route := httpRoute("web",
		Backend{ID: "a", Address: hostPort(a), Weight: 1},
		Backend{ID: "b", Address: hostPort(b), Weight: 1},
	)
	route.HealthPath = "/health"
	route.HealthInterval = Duration(20 * time.Millisecond)
	applyRoutes(t, r, route)
	c := newClient(t)
	url := routeURL(t, r, "web")

	sick.Store(true)
	waitFor(t, 2*time.Second, "a to fail its check", func() bool { return !backendStats(r, "web", "a").Healthy })
	for range 10 {
		_, body := get(t, c, url)
		assert.Equal(t, body, "b")
	}
	sick.Store(false)
	waitFor(t, 2*time.Second, "a to recover", func() bool { return backendStats(r, "web", "a").Healthy })
	seen := map[string]int{}
	for range 10 {
		_, body := get(t, c, url)
		seen[body]++
	}
	assert.Equal(t, seen["a"], 5, "%v", seen)

	// Turning the check off puts a sick backend back: the plugin decides again.
	sick.Store(true)
	waitFor(t, 2*time.Second, "a to fail its check", func() bool { return !backendStats(r, "web", "a").Healthy })
	route.HealthPath = ""
	applyRoutes(t, r, route)
	assert.Assert(t, backendStats(r, "web", "a").Healthy)
}

func TestAccessLog(t *testing.T) {
	srv := newBackendServer(t, "a", nil)
	var buf syncBuffer
	r := newTestRouter(t, Options{AccessLog: &buf})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a-1", Address: hostPort(srv), Weight: 1, Group: "r7"}))
	c := newClient(t)
	get(t, c, routeURL(t, r, "web")+"/hello%22world?secret=1")
	applyRoutes(t, r, httpRoute("web"))
	get(t, c, routeURL(t, r, "web")+"/none")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	assert.Equal(t, len(lines), 2)
	type entry struct {
		Time       time.Time `json:"time"`
		Route      string    `json:"route"`
		Backend    string    `json:"backend"`
		Group      string    `json:"group"`
		Method     string    `json:"method"`
		Path       string    `json:"path"`
		Status     int       `json:"status"`
		DurationMs float64   `json:"duration_ms"`
		Bytes      int64     `json:"bytes"`
		Remote     string    `json:"remote"`
	}
	var e entry
	dec := json.NewDecoder(strings.NewReader(lines[0]))
	dec.DisallowUnknownFields()
	assert.NilError(t, dec.Decode(&e))
	assert.Equal(t, e.Route, "web")
	assert.Equal(t, e.Backend, "a-1")
	assert.Equal(t, e.Group, "r7")
	assert.Equal(t, e.Method, "GET")
	assert.Equal(t, e.Path, `/hello"world`)
	assert.Equal(t, e.Status, 200)
	assert.Equal(t, e.Bytes, int64(1))
	assert.Equal(t, e.Remote, "127.0.0.1")
	assert.Assert(t, e.DurationMs >= 0 && time.Since(e.Time) < time.Minute)
	assert.NilError(t, json.Unmarshal([]byte(lines[1]), &e))
	assert.Equal(t, e.Status, 503)
	assert.Equal(t, e.Backend, "")
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\`, "tab\tnl\n\x00\x1f", "é 日本", "bad\xffutf8"} {
		var got string
		assert.NilError(t, json.Unmarshal(appendJSONString(nil, s), &got), "%q", s)
		want := strings.ToValidUTF8(s, "\uFFFD")
		assert.Equal(t, got, want)
	}
}

// syncBuffer is a bytes.Buffer safe for the router's writer and the test's reader.
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
