package router

import (
	"bufio"
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
)

// hangupBackend is a backend that accepts connections, reads one request and closes the
// connection without answering, as a process SIGKILLed with the request in hand does.
// It counts the requests it read by method.
type hangupBackend struct {
	ln      net.Listener
	mu      sync.Mutex
	methods map[string]int
}

func newHangupBackend(t *testing.T) *hangupBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	h := &hangupBackend{ln: ln, methods: map[string]int{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err == nil {
				h.mu.Lock()
				h.methods[req.Method]++
				h.mu.Unlock()
			}
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return h
}

func (h *hangupBackend) count(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.methods[method]
}

func do(t *testing.T, c *http.Client, method, url, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	assert.NilError(t, err)
	resp, err := c.Do(req)
	assert.NilError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	assert.NilError(t, err)
	return resp.StatusCode, string(b)
}

// A backend that reads a request and hangs up without a byte of answer: a GET or HEAD
// goes to another backend and the client sees 200; a PUT, DELETE or POST could have
// taken effect there, so it gets 502 and is not sent twice.
func TestRetryGetOnBackendThatHangsUp(t *testing.T) {
	var live atomic.Int64
	liveSrv := newBackendServer(t, "live", func(w http.ResponseWriter, req *http.Request) {
		live.Add(1)
		io.WriteString(w, "live "+req.Method)
	})
	hangup := newHangupBackend(t)
	r := newTestRouter(t, Options{PassiveCooldown: time.Minute})
	c := newClient(t)
	// Equal weights: the first pick of a fresh table is the first backend.
	apply := func(id string) string {
		applyRoutes(t, r, httpRoute("web",
			Backend{ID: id, Address: hangup.ln.Addr().String(), Weight: 1},
			Backend{ID: "live", Address: hostPort(liveSrv), Weight: 1},
		))
		return routeURL(t, r, "web")
	}

	url := apply("hangup-get")
	status, body := do(t, c, http.MethodGet, url, "")
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "live GET")
	assert.Equal(t, hangup.count(http.MethodGet), 1, "the GET reached the backend that hung up first")
	s := r.Stats().Route("web")
	assert.Equal(t, s.Retries, uint64(1))
	assert.Equal(t, s.Responses2xx, uint64(1))
	assert.Equal(t, s.Responses5xx, uint64(0))
	assert.Equal(t, s.Backend("hangup-get").Errors, uint64(1))
	assert.Equal(t, s.Backend("hangup-get").Healthy, false, "a backend that hung up is marked down")
	// Marked down: the next requests do not try it at all.
	for range 4 {
		status, _ := do(t, c, http.MethodGet, url, "")
		assert.Equal(t, status, http.StatusOK)
	}
	assert.Equal(t, hangup.count(http.MethodGet), 1)
	assert.Equal(t, r.Stats().Route("web").Retries, uint64(1))

	url = apply("hangup-head")
	status, _ = do(t, c, http.MethodHead, url, "")
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, hangup.count(http.MethodHead), 1)

	for _, method := range []string{http.MethodPut, http.MethodDelete, http.MethodPost} {
		t.Run(method+" is not sent twice", func(t *testing.T) {
			url := apply("hangup-" + strings.ToLower(method))
			before := live.Load()
			status, body := do(t, c, method, url, "payload")
			assert.Equal(t, status, http.StatusBadGateway, body)
			assert.Equal(t, hangup.count(method), 1)
			assert.Equal(t, live.Load(), before, "sent to a second backend")
		})
	}
}

// The backend process dies with keep-alive connections open (its listener and every
// connection closed at once): the next GETs, on connections the router had pooled, go
// to the other backends without a failure, and the dead one is out of rotation.
func TestRetryGetWhenBackendDiesWithPooledConnections(t *testing.T) {
	victim := newBackendServer(t, "victim", nil)
	a := newBackendServer(t, "a", nil)
	b := newBackendServer(t, "b", nil)
	r := newTestRouter(t, Options{PassiveCooldown: time.Minute})
	applyRoutes(t, r, httpRoute("web",
		Backend{ID: "victim", Address: hostPort(victim), Weight: 1},
		Backend{ID: "a", Address: hostPort(a), Weight: 1},
		Backend{ID: "b", Address: hostPort(b), Weight: 1},
	))
	url := routeURL(t, r, "web")
	c := newClient(t)
	// Concurrent requests leave several pooled connections to each backend.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 6 {
				status, _ := get(t, c, url)
				assert.Check(t, status == http.StatusOK)
			}
		})
	}
	wg.Wait()
	assert.Assert(t, backendStats(r, "web", "victim").Responses2xx > 0)

	victim.CloseClientConnections()
	victim.Listener.Close()
	before := backendStats(r, "web", "victim").Requests
	for i := range 30 {
		status, body := get(t, c, url)
		assert.Equal(t, status, http.StatusOK, "request %d after the kill", i)
		assert.Check(t, body == "a" || body == "b", body)
	}
	s := r.Stats().Route("web")
	assert.Equal(t, s.Responses5xx, uint64(0))
	assert.Equal(t, s.Backend("victim").Healthy, false)
	assert.Check(t, s.Retries >= 1)
	// The first request that met the dead backend marked it down: it was tried once.
	assert.Equal(t, s.Backend("victim").Requests-before, uint64(1), fmt.Sprintf("%+v", s.Backend("victim")))
}

// Two of three backends refuse: a GET is retried twice, never on a backend it already
// failed on, and answered by the third.
func TestRetryOnUpToTwoOtherBackends(t *testing.T) {
	live := newBackendServer(t, "live", nil)
	r := newTestRouter(t, Options{PassiveCooldown: time.Minute})
	applyRoutes(t, r, httpRoute("web",
		Backend{ID: "dead1", Address: deadAddress(t), Weight: 1},
		Backend{ID: "dead2", Address: deadAddress(t), Weight: 1},
		Backend{ID: "live", Address: hostPort(live), Weight: 1},
	))
	status, body := get(t, newClient(t), routeURL(t, r, "web"))
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "live")
	s := r.Stats().Route("web")
	assert.Equal(t, s.Retries, uint64(2))
	assert.Equal(t, s.Backend("dead1").Requests, uint64(1))
	assert.Equal(t, s.Backend("dead2").Requests, uint64(1))
}
