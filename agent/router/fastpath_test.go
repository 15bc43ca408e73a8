package router

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// The fast path keeps one backend connection for sequential GETs and HEADs.
func TestFastPathReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Length", "2")
		io.WriteString(w, "ok")
	}))
	// Set before the server starts: its goroutines read ConnState.
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	c := newClient(t)
	for range 5 {
		status, body := get(t, c, routeURL(t, r, "web")+"/")
		assert.Equal(t, status, http.StatusOK)
		assert.Equal(t, body, "ok")
		resp, err := c.Head(routeURL(t, r, "web") + "/")
		assert.NilError(t, err)
		resp.Body.Close()
		assert.Equal(t, resp.StatusCode, http.StatusOK)
		assert.Equal(t, resp.ContentLength, int64(2))
	}
	assert.Equal(t, conns.Load(), int32(1))
}

// A backend that closes a keep-alive connection just as the router reuses it: the GET
// is sent again on a new connection, the client sees no error and the backend is not
// marked down.
func TestFastPathReplaysOnClosedKeepAlive(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { // one answer per connection, then close without saying so
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: l.Addr().String(), Weight: 1}))
	c := newClient(t)
	for range 4 {
		status, body := get(t, c, routeURL(t, r, "web")+"/")
		assert.Equal(t, status, http.StatusOK)
		assert.Equal(t, body, "ok")
		time.Sleep(10 * time.Millisecond) // let the close arrive
	}
	bs := backendStats(r, "web", "a")
	assert.Equal(t, bs.Errors, uint64(0))
	assert.Assert(t, bs.Healthy)
}

// A client that gives up while the backend is still thinking: the backend connection
// is closed (the backend's request context ends) and the request counts as canceled.
func TestFastPathClientGoneClosesBackendConnection(t *testing.T) {
	backendDone := make(chan struct{})
	srv := newBackendServer(t, "", func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
			close(backendDone)
		case <-time.After(10 * time.Second):
		}
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, routeURL(t, r, "web")+"/", nil)
	assert.NilError(t, err)
	_, err = newClient(t).Do(req)
	assert.Assert(t, err != nil)
	select {
	case <-backendDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend connection stayed open after the client went away")
	}
	waitFor(t, 5*time.Second, "the request to count as canceled", func() bool {
		return r.Stats().Route("web").Canceled == 1
	})
}

func TestFastPathResponseHeaderTimeout(t *testing.T) {
	srv := newBackendServer(t, "", func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	r := newTestRouter(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	status, body := get(t, newClient(t), routeURL(t, r, "web")+"/")
	assert.Equal(t, status, http.StatusGatewayTimeout)
	assert.Assert(t, strings.HasPrefix(body, "504"))
}

// 1xx answers before the final one (103 Early Hints) are not forwarded.
func TestFastPathSkipsInformationalResponses(t *testing.T) {
	srv := newBackendServer(t, "", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "final")
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	status, body := get(t, newClient(t), routeURL(t, r, "web")+"/")
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "final")
}

// The request line and headers the backend gets from the fast path.
func TestFastPathWritesRequestLikeTheTransport(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := newBackendServer(t, "", func(w http.ResponseWriter, req *http.Request) { got <- req })
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	req, err := http.NewRequest(http.MethodGet, routeURL(t, r, "web")+"/a%2Fb/c?x=1&y=%20", nil)
	assert.NilError(t, err)
	req.Host = "example.test"
	req.Header["User-Agent"] = []string{""}
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	resp, err := newClient(t).Do(req)
	assert.NilError(t, err)
	resp.Body.Close()
	in := <-got
	assert.Equal(t, in.RequestURI, "/a%2Fb/c?x=1&y=%20")
	assert.Equal(t, in.Host, "example.test")
	assert.DeepEqual(t, in.Header["X-Multi"], []string{"1", "2"})
	assert.Equal(t, len(in.Header["User-Agent"]), 0)
	assert.Equal(t, len(in.Header["Content-Length"]), 0)
	assert.Equal(t, in.Header.Get("X-Forwarded-Proto"), "http")
}
