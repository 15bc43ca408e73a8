package router

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// backend is one upstream of one route. It lives from the Apply that adds it until its
// drain ends; Applies that keep its ID and address keep the same object, so counters,
// keep-alive connections and health state survive weight changes.
type backend struct {
	router *Router
	id     string
	addr   string
	group  string // as first configured; stats of active backends use the current config
	since  time.Time
	stats  counters
	dialer net.Dialer
	httpTr *http.Transport

	downUntil   atomic.Int64 // router clock; a passive mark keeps the backend out until then
	activeDown  atomic.Bool  // the active check failed twice in a row
	healthFails atomic.Int32 // consecutive active check failures
	draining    atomic.Bool
	idle        chan struct{} // signalled when InFlight drops to 0 while draining

	mu        sync.Mutex
	conns     map[net.Conn]struct{} // every open upstream connection, closed when the drain ends
	idleConns []*fastConn           // the fast path's keep-alive pool, most recently used last
	closed    bool
}

// http1Only: backends speak plain HTTP/1.1 on the project network (no TLS, no h2c).
var http1Only = func() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	return p
}()

// errBackendClosed is returned when a dial races with the end of a drain.
var errBackendClosed = errors.New("backend removed")

func newBackend(r *Router, cfg Backend) *backend {
	b := &backend{
		router: r,
		id:     cfg.ID,
		addr:   cfg.Address,
		group:  cfg.Group,
		since:  time.Now(),
		dialer: net.Dialer{Timeout: r.opts.DialTimeout, KeepAlive: 30 * time.Second},
		idle:   make(chan struct{}, 1),
		conns:  map[net.Conn]struct{}{},
	}
	b.httpTr = &http.Transport{
		Proxy:       nil, // never take HTTP_PROXY from the agent's environment
		DialContext: b.dialHTTP,
		// Many idle connections per backend: under load every concurrent request keeps
		// one warm, and re-dialing costs more than an idle socket.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   r.opts.MaxIdleConnsPerBackend,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: r.opts.ResponseHeaderTimeout,
		// Pass Accept-Encoding and bodies through untouched.
		DisableCompression: true,
		Protocols:          http1Only,
		WriteBufferSize:    16 << 10,
		ReadBufferSize:     16 << 10,
	}
	return b
}

// usable reports whether the backend may take new traffic at now (router clock).
func (b *backend) usable(now int64) bool {
	return !b.activeDown.Load() && b.downUntil.Load() <= now
}

// markDown takes the backend out of rotation for the passive cooldown after a failed
// dial or a reset: the next requests should not pay for the same failure.
func (b *backend) markDown(now int64) {
	until := now + int64(b.router.opts.PassiveCooldown)
	if old := b.downUntil.Swap(until); old <= now {
		b.router.logger.Warn("backend marked down", "backend", b.id, "address", b.addr, "for", b.router.opts.PassiveCooldown)
	}
}

// acquire counts a request or connection in flight, unless the backend is draining.
// Together with drain (which sets draining and then waits for InFlight to reach 0),
// this guarantees a drain never ends under a request that picked the backend from a
// routing table that was current a moment ago.
func (b *backend) acquire() bool {
	b.stats.inFlight.Add(1)
	if b.draining.Load() {
		b.release()
		return false
	}
	return true
}

func (b *backend) release() {
	if b.stats.inFlight.Add(-1) == 0 && b.draining.Load() {
		select {
		case b.idle <- struct{}{}:
		default:
		}
	}
}

// drain waits until nothing is in flight or the timeout passes, then closes every
// connection to the backend. Called on its own goroutine after draining was set.
func (b *backend) drain(timeout time.Duration, abort <-chan struct{}) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for b.stats.inFlight.Load() > 0 {
		select {
		case <-b.idle:
		case <-timer.C:
			b.router.logger.Warn("drain timeout: closing connections", "backend", b.id, "in_flight", b.stats.inFlight.Load())
			b.close()
			return
		case <-abort:
			b.close()
			return
		}
	}
	b.close()
}

// close shuts every connection to the backend and refuses new dials.
func (b *backend) close() {
	b.mu.Lock()
	b.closed = true
	conns := make([]net.Conn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	b.closeIdleConns()
	b.httpTr.CloseIdleConnections()
}

func (b *backend) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *backend) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// dialError marks an error from connecting to a backend: nothing of the request was
// sent, so retrying it elsewhere cannot duplicate it.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial backend: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to the backend and registers the connection so a drain can close it.
func (b *backend) dial(ctx context.Context) (net.Conn, error) {
	c, err := b.dialer.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		return nil, &dialError{err}
	}
	if !b.track(c) {
		c.Close()
		return nil, &dialError{errBackendClosed}
	}
	return c, nil
}

// dialHTTP is the Transport's dialer: the connection is wrapped so that the
// Transport's own Close also unregisters it.
func (b *backend) dialHTTP(ctx context.Context, _, _ string) (net.Conn, error) {
	c, err := b.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c, b: b}, nil
}

type trackedConn struct {
	net.Conn
	b    *backend
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.b.untrack(c.Conn) })
	return c.Conn.Close()
}

// recordHealth applies one active check result and reports whether the backend went
// in or out of rotation. Two failures in a row take it out, one success brings it
// back: a single slow answer should not flap the routing table.
func (b *backend) recordHealth(ok bool, path string) (changed bool) {
	if ok {
		b.healthFails.Store(0)
		if b.activeDown.Swap(false) {
			b.router.logger.Info("backend healthy again", "backend", b.id, "address", b.addr)
			return true
		}
		return false
	}
	if b.healthFails.Add(1) >= 2 && !b.activeDown.Swap(true) {
		b.router.logger.Warn("backend failed its health check", "backend", b.id, "address", b.addr, "path", path)
		return true
	}
	return false
}

func (b *backend) probe(ctx context.Context, path string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.addr+path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "docker-lifecycle-router/health")
	resp, err := b.httpTr.RoundTrip(req)
	if err != nil {
		return false
	}
	// Read a little so the connection can be reused, but never a whole large page.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}
