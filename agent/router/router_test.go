package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestApplyIsIdempotent(t *testing.T) {
	srv := newBackendServer(t, "a", nil)
	r := newTestRouter(t, Options{})
	route := httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1})
	applyRoutes(t, r, route)
	addr := r.Addr("web").String()
	c := newClient(t)
	get(t, c, routeURL(t, r, "web"))
	since := backendStats(r, "web", "a").Since

	applyRoutes(t, r, route)
	assert.Equal(t, r.Addr("web").String(), addr, "the listener was reopened")
	b := backendStats(r, "web", "a")
	assert.Equal(t, b.Requests, uint64(1), "counters were reset")
	assert.Equal(t, b.Since, since)
	assert.Equal(t, len(r.Stats().Route("web").Backends), 1, "nothing drains")

	// A weight change keeps the backend object too.
	route.Backends[0].Weight = 5
	applyRoutes(t, r, route)
	b = backendStats(r, "web", "a")
	assert.Equal(t, b.Requests, uint64(1))
	assert.Equal(t, b.Weight, 5)
}

func TestApplyListenConflictChangesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer busy.Close()
	srv := newBackendServer(t, "a", nil)
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	before := r.Config()

	err = r.Apply(Config{Routes: []Route{
		httpRoute("web"),
		{Name: "db", Listen: busy.Addr().String(), Protocol: TCP},
	}})
	assert.ErrorContains(t, err, "address already in use")
	assert.DeepEqual(t, r.Config(), before)
	status, body := get(t, newClient(t), routeURL(t, r, "web"))
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "a")
}

func TestApplyRejectsInvalidConfig(t *testing.T) {
	r := newTestRouter(t, Options{})
	err := r.Apply(Config{Routes: []Route{{Name: "web", Listen: "nope"}}})
	assert.ErrorContains(t, err, `route "web": listen "nope"`)
}

func TestRouteMovesToAnotherAddress(t *testing.T) {
	srv := newBackendServer(t, "a", nil)
	r := newTestRouter(t, Options{})
	route := httpRoute("web", Backend{ID: "a", Address: hostPort(srv), Weight: 1})
	route.Listen = "127.0.0.1:0"
	applyRoutes(t, r, route)
	oldAddr := r.Addr("web").String()
	route.Listen = "127.0.0.1:00" // another literal: a new listener
	applyRoutes(t, r, route)
	newAddr := r.Addr("web").String()
	assert.Assert(t, oldAddr != newAddr)
	status, _ := get(t, newClient(t), "http://"+newAddr)
	assert.Equal(t, status, http.StatusOK)
	waitFor(t, 2*time.Second, "the old listener to close", func() bool {
		c, err := net.DialTimeout("tcp", oldAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	assert.Equal(t, r.Stats().Route("web").Backend("a").State, Active)
}

// The same address can change from HTTP to TCP without being rebound.
func TestRouteSwitchesProtocolOnSameListener(t *testing.T) {
	srv := newBackendServer(t, "a", nil)
	echo := newEchoServer(t, "E:")
	r := newTestRouter(t, Options{})
	route := httpRoute("svc", Backend{ID: "a", Address: hostPort(srv), Weight: 1})
	applyRoutes(t, r, route)
	addr := r.Addr("svc").String()
	status, body := get(t, newClient(t), "http://"+addr)
	assert.Equal(t, status, http.StatusOK)
	assert.Equal(t, body, "a")

	route.Protocol = TCP
	route.Backends = []Backend{{ID: "echo", Address: echo, Weight: 1}}
	applyRoutes(t, r, route)
	assert.Equal(t, r.Addr("svc").String(), addr)
	conn := dialRoute(t, r, "svc")
	assert.Equal(t, echoLine(t, conn, "ping"), "E:ping")
}

func TestCloseAndApplyAfterClose(t *testing.T) {
	r := New(Options{})
	assert.NilError(t, r.Close())
	assert.NilError(t, r.Close())
	assert.Check(t, is.ErrorIs(r.Apply(Config{}), ErrClosed))
	assert.Check(t, is.ErrorIs(r.ServeControl(nil), ErrClosed))
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	srv := newBackendServer(t, "slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	})
	r := New(Options{})
	defer r.Close()
	applyRoutes(t, r, httpRoute("web", Backend{ID: "s", Address: hostPort(srv), Weight: 1}))
	url := routeURL(t, r, "web")
	c := newClient(t)
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{string(b), err}
	}()
	waitFor(t, 2*time.Second, "the request to start", func() bool { return r.Stats().Route("web").InFlight == 1 })
	assert.NilError(t, r.Shutdown(ctxTimeout(t, 5*time.Second)))
	got := <-res
	assert.NilError(t, got.err)
	assert.Equal(t, got.body, "done")
	_, err := c.Get(url)
	assert.Assert(t, err != nil, "the listener still accepts after Shutdown")
}

// Everything the router starts stops with Close: listeners, servers, drains, health
// checks, tunnels and TCP pipes, and the backends' keep-alive connections.
func TestNoGoroutineLeakAfterClose(t *testing.T) {
	before := runtime.NumGoroutine()
	// A subtest, so that its cleanups (backends, clients) have run when it returns.
	t.Run("traffic", func(t *testing.T) {
		web := newBackendServer(t, "web", nil)
		echo := newEchoServer(t, "E:")
		r := New(Options{AccessLog: io.Discard})
		health := httpRoute("web", Backend{ID: "w", Address: hostPort(web), Weight: 1})
		health.HealthPath = "/"
		health.HealthInterval = Duration(10 * time.Millisecond)
		// Listen addresses are compared literally: "…:00" is a second free port.
		applyRoutes(t, r, health, Route{Name: "tcp", Listen: "127.0.0.1:00", Protocol: TCP,
			Backends: []Backend{{ID: "e", Address: echo, Weight: 1}}})
		c := newClient(t)
		for range 20 {
			get(t, c, routeURL(t, r, "web"))
		}
		conn := dialRoute(t, r, "tcp")
		assert.Equal(t, echoLine(t, conn, "x"), "E:x")
		ctl, err := net.Listen("unix", t.TempDir()+"/ctl.sock")
		assert.NilError(t, err)
		served := make(chan error, 1)
		go func() { served <- r.ServeControl(ctl) }()
		// A drain in progress (the TCP connection holds "e") when Close comes.
		applyRoutes(t, r, health, Route{Name: "tcp", Listen: "127.0.0.1:00", Protocol: TCP})
		time.Sleep(30 * time.Millisecond) // a few health rounds
		assert.NilError(t, r.Close())
		assert.NilError(t, <-served)
		c.Transport.(*http.Transport).CloseIdleConnections()
		conn.Close()
	})
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("goroutines: %d before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShutdownRespectsContext(t *testing.T) {
	echo := newEchoServer(t, "E:")
	r := New(Options{})
	applyRoutes(t, r, Route{Name: "tcp", Listen: "127.0.0.1:0", Protocol: TCP,
		Backends: []Backend{{ID: "e", Address: echo, Weight: 1}}})
	conn := dialRoute(t, r, "tcp")
	defer conn.Close()
	assert.Equal(t, echoLine(t, conn, "x"), "E:x")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := r.Shutdown(ctx)
	assert.Assert(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	// Close ran: the open connection was cut.
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	assert.Assert(t, err != nil)
}
