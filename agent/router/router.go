package router

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune a Router. The zero value is usable.
type Options struct {
	// AccessLog receives one JSON line per HTTP request; nil disables it.
	AccessLog io.Writer
	// Logger receives operational events (backend down, drain timeout); nil discards them.
	Logger *slog.Logger
	// ConfigFile, when set, is where every config accepted by PUT /config is saved
	// (atomically), so an agent restart can LoadConfigFile and Apply it again.
	ConfigFile string
	// DialTimeout bounds connecting to a backend (default 2s).
	DialTimeout time.Duration
	// PassiveCooldown is how long a failed dial or a reset keeps a backend out of
	// rotation (default 2s).
	PassiveCooldown time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response headers; 0 (the
	// default) waits as long as the client does.
	ResponseHeaderTimeout time.Duration
	// MaxIdleConnsPerBackend is the keep-alive pool size per backend (default 1024).
	MaxIdleConnsPerBackend int
	// Listen, when set, opens the listening socket of a route's address (as written in
	// the config) instead of a plain TCP listen; nil listens on TCP. The router closes
	// what it returns when it stops using the address (the address left the config, an
	// Apply failed after binding it, or Close; perhaps more than once), so its Close is
	// where a copy of the socket held elsewhere must be released. The agent's
	// supervisor uses it to keep the router's listening sockets open across a restart
	// of the router process (cmd/lifecycle-agent, docs/rollouts.md).
	Listen func(ctx context.Context, addr string) (net.Listener, error)
}

// Server-side limits for client connections. Generous, but a stalled client cannot
// hold a goroutine forever.
const (
	clientReadHeaderTimeout = 30 * time.Second
	clientIdleTimeout       = 120 * time.Second
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("router closed")

// Router owns the listeners of its routes and forwards their traffic to the backends
// of the current Config. It is safe for concurrent use.
type Router struct {
	opts      Options
	logger    *slog.Logger
	accessLog *accessLog
	epoch     time.Time // the router clock: nanoseconds since epoch, monotonic
	ctx       context.Context
	cancel    context.CancelFunc // on Close: aborts dials, drains and health checks
	wg        sync.WaitGroup     // every goroutine the router starts

	applyMu sync.Mutex // serializes Apply, Close and Shutdown; never held on the request path
	putMu   sync.Mutex // serializes PUT /config: Apply, then save

	// mu guards the fields below. listeners and routes are only replaced with both
	// applyMu and mu held, so Apply reads them holding applyMu alone.
	mu        sync.Mutex
	closed    bool
	stopping  bool // Shutdown began: no more Applies
	cfg       Config
	listeners map[string]*listener // by Listen
	routes    map[string]*route    // by Name
	draining  map[*backend]*route
	controls  map[*http.Server]struct{}
}

// New returns a router with no routes; Apply gives it some.
func New(opts Options) *Router {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 2 * time.Second
	}
	if opts.PassiveCooldown <= 0 {
		opts.PassiveCooldown = 2 * time.Second
	}
	if opts.MaxIdleConnsPerBackend <= 0 {
		opts.MaxIdleConnsPerBackend = 1024
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Router{
		opts:      opts,
		logger:    logger,
		epoch:     time.Now(),
		ctx:       ctx,
		cancel:    cancel,
		cfg:       Config{Version: ConfigVersion, Routes: []Route{}},
		listeners: map[string]*listener{},
		routes:    map[string]*route{},
		draining:  map[*backend]*route{},
		controls:  map[*http.Server]struct{}{},
	}
	if opts.AccessLog != nil {
		r.accessLog = &accessLog{w: opts.AccessLog}
	}
	return r
}

// clock converts a wall-clock reading to the router clock (monotonic nanoseconds).
func (r *Router) clock(t time.Time) int64 { return int64(t.Sub(r.epoch)) }

// Config returns (a copy of) the config in effect, with defaults filled in.
func (r *Router) Config() Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.clone()
}

// Addr returns the bound address of the named route's listener (useful with a ":0"
// Listen), or nil if there is no such route.
func (r *Router) Addr(routeName string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rc := range r.cfg.Routes {
		if rc.Name == routeName {
			if l := r.listeners[rc.Listen]; l != nil {
				return l.ln.Addr()
			}
		}
	}
	return nil
}

// Apply makes cfg the router's state. It is all-or-nothing for listeners (if any new
// address cannot be bound, nothing changes) and otherwise atomic per route: each
// route's routing table is swapped in one pointer store, so a request sees either the
// old or the new backends. Applying the same config again changes nothing.
//
// Backends are matched by ID and Address: kept backends keep their connections and
// counters; removed ones drain (no new traffic, in-flight work runs until the route's
// DrainTimeout, then their connections are closed). Listeners whose address left the
// config stop accepting and let in-flight requests finish within the same timeout.
func (r *Router) Apply(cfg Config) error {
	cfg, err := cfg.Normalize()
	if err != nil {
		return err
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	closed := r.closed || r.stopping
	r.mu.Unlock()
	if closed {
		return ErrClosed
	}

	// Bind every new address first, so a port conflict changes nothing.
	opened := map[string]*listener{}
	for _, rc := range cfg.Routes {
		if r.listeners[rc.Listen] != nil {
			continue
		}
		l, err := r.listen(rc.Listen)
		if err != nil {
			for _, l := range opened {
				l.ln.Close()
			}
			return err
		}
		opened[rc.Listen] = l
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	type drainJob struct {
		rt       *route
		backends []*backend
		timeout  time.Duration
	}
	var drains []drainJob
	routes := make(map[string]*route, len(cfg.Routes))
	for _, rc := range cfg.Routes {
		rt := r.routes[rc.Name]
		if rt == nil {
			rt = &route{router: r, name: rc.Name}
		}
		if gone := rt.update(rc); len(gone) > 0 {
			drains = append(drains, drainJob{rt, gone, time.Duration(rc.DrainTimeout)})
		}
		routes[rc.Name] = rt
	}
	for name, rt := range r.routes {
		if routes[name] == nil {
			// The route's last table stays loaded for requests still arriving on its
			// listener's open connections; all its backends drain, so they get a 503.
			rt.stopHealth()
			old := rt.table.Load()
			drains = append(drains, drainJob{rt, old.backends, time.Duration(old.cfg.DrainTimeout)})
		}
	}
	// Point every listener at its route, start the new ones, retire the unused ones.
	listeners := make(map[string]*listener, len(cfg.Routes))
	for _, rc := range cfg.Routes {
		l := r.listeners[rc.Listen]
		if l == nil {
			l = opened[rc.Listen]
		}
		l.route.Store(routes[rc.Name])
		listeners[rc.Listen] = l
	}
	for _, l := range opened {
		l.start()
	}
	for addr, l := range r.listeners {
		if listeners[addr] == nil {
			l.retire(time.Duration(l.route.Load().table.Load().cfg.DrainTimeout))
		}
	}
	// The new tables are published: a request still holding an old table backs off a
	// draining backend (see backend.acquire), so drains may start.
	for _, d := range drains {
		r.startDrains(d.rt, d.backends, d.timeout)
	}
	r.routes = routes
	r.listeners = listeners
	r.cfg = cfg
	return nil
}

// startDrains marks backends as draining and drains each on its own goroutine. The
// new routing table is already in place, so no new request can pick them.
func (r *Router) startDrains(rt *route, bs []*backend, timeout time.Duration) {
	for _, b := range bs {
		b.draining.Store(true)
		r.draining[b] = rt
		r.wg.Go(func() {
			b.drain(timeout, r.ctx.Done())
			r.mu.Lock()
			delete(r.draining, b)
			r.mu.Unlock()
		})
	}
}

// Stats returns a snapshot of every route's and backend's counters, draining
// backends included.
func (r *Router) Stats() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	s := Snapshot{Time: now, LatencyBoundsMs: latencyBoundsMs(), Routes: make([]RouteStats, 0, len(r.cfg.Routes))}
	for _, rc := range r.cfg.Routes {
		rt := r.routes[rc.Name]
		tbl := rt.table.Load()
		rs := RouteStats{Name: rc.Name, Listen: rc.Listen, Protocol: rc.Protocol, Counters: rt.stats.snapshot()}
		for i, b := range tbl.backends {
			bc := tbl.cfg.Backends[i]
			rs.Backends = append(rs.Backends, b.snapshot(bc.Weight, bc.Group, Active, r.clock(now)))
		}
		var draining []BackendStats
		for b, owner := range r.draining {
			if owner == rt {
				draining = append(draining, b.snapshot(0, b.group, Draining, r.clock(now)))
			}
		}
		slices.SortFunc(draining, func(a, b BackendStats) int { return a.Since.Compare(b.Since) })
		rs.Backends = append(rs.Backends, draining...)
		s.Routes = append(s.Routes, rs)
	}
	return s
}

func (b *backend) snapshot(weight int, group string, state BackendState, now int64) BackendStats {
	return BackendStats{
		ID: b.id, Address: b.addr, Group: group, Weight: weight, State: state,
		Healthy: state == Active && b.usable(now), Since: b.since, Counters: b.stats.snapshot(),
	}
}

// Close stops the router at once: listeners, client and backend connections, control
// servers, health checks. In-flight requests fail. It waits for the router's own
// goroutines and is safe to call more than once.
func (r *Router) Close() error {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	r.cancel()
	for _, l := range r.listeners {
		l.ln.Close()
		l.server.Close()
	}
	for _, rt := range r.routes {
		rt.stopHealth()
		for _, b := range rt.table.Load().backends {
			b.close()
		}
	}
	for b := range r.draining {
		b.close()
	}
	for s := range r.controls {
		s.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Shutdown stops accepting new connections, lets in-flight requests and TCP
// connections finish until ctx is done, then closes the router.
func (r *Router) Shutdown(ctx context.Context) error {
	r.applyMu.Lock()
	r.mu.Lock()
	r.stopping = true
	listeners := make([]*listener, 0, len(r.listeners))
	for _, l := range r.listeners {
		listeners = append(listeners, l)
	}
	r.mu.Unlock()
	r.applyMu.Unlock()
	for _, l := range listeners {
		l.ln.Close()
	}
	var wg sync.WaitGroup
	for _, l := range listeners {
		wg.Go(func() { _ = l.server.Shutdown(ctx) })
	}
	wg.Wait()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for r.inFlight() > 0 && ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	err := ctx.Err()
	r.Close()
	return err
}

func (r *Router) inFlight() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, rt := range r.routes {
		n += rt.stats.inFlight.Load()
	}
	for b := range r.draining {
		n += b.stats.inFlight.Load()
	}
	return n
}

// route is the long-lived state of a route name: its counters and current table.
type route struct {
	router *Router
	name   string
	stats  counters
	table  atomic.Pointer[routeTable]

	mu     sync.Mutex // serializes table rebuilds: Apply and the health checker
	health *healthChecker
}

// routeTable is an immutable view of a route used by the request path: loaded with one
// atomic read, never modified, replaced whole.
type routeTable struct {
	route    *route
	cfg      Route
	backends []*backend // parallel to cfg.Backends
	picker   *picker
	// Precomputed answers, so errors cost no allocation either.
	noBackendBody []byte
}

// update installs the table for rc and returns the backends that left it, which the
// caller drains. Called with Router.mu held.
func (rt *route) update(rc Route) []*backend {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	old := rt.table.Load()
	byID := map[string]*backend{}
	if old != nil {
		for _, b := range old.backends {
			byID[b.id] = b
		}
	}
	rt.syncHealth(rc, false)
	backends := make([]*backend, len(rc.Backends))
	for i, bc := range rc.Backends {
		if b := byID[bc.ID]; b != nil && b.addr == bc.Address {
			backends[i] = b
			delete(byID, bc.ID)
		} else {
			backends[i] = newBackend(rt.router, bc)
		}
	}
	rt.table.Store(newRouteTable(rt, rc, backends))
	rt.syncHealth(rc, true)
	var removed []*backend
	if old != nil {
		for _, b := range old.backends { // config order, for deterministic logs
			if byID[b.id] == b {
				removed = append(removed, b)
			}
		}
	}
	return removed
}

func newRouteTable(rt *route, rc Route, backends []*backend) *routeTable {
	weights := make([]int, len(backends))
	for i, b := range backends {
		if !b.activeDown.Load() {
			weights[i] = rc.Backends[i].Weight
		}
	}
	return &routeTable{
		route:         rt,
		cfg:           rc,
		backends:      backends,
		picker:        newPicker(backends, weights),
		noBackendBody: []byte("503 Service Unavailable: no healthy backend for route \"" + rc.Name + "\"\n"),
	}
}

// acquire picks a backend (none of exclude) and counts the request in flight on it. If
// the pick lost a race with a drain, the newer table is consulted; the loop is
// bounded because each retry sees a table published after the previous one.
func (t *routeTable) acquire(now int64, exclude []*backend) *backend {
	for range 4 {
		b := t.picker.pick(now, exclude)
		if b == nil {
			return nil
		}
		if b.acquire() {
			return b
		}
		t = t.route.table.Load()
	}
	return nil
}

// listener is one bound address. It survives Applies that keep the address, so
// clients keep their connections while routes and backends change behind it; the
// route it serves is looked up per connection (TCP) or per request (HTTP).
type listener struct {
	router    *Router
	ln        net.Listener
	route     atomic.Pointer[route]
	server    *http.Server
	httpConns *connQueue
}

func (r *Router) listen(addr string) (*listener, error) {
	var ln net.Listener
	var err error
	if r.opts.Listen != nil {
		ln, err = r.opts.Listen(r.ctx, addr)
	} else {
		var lc net.ListenConfig
		ln, err = lc.Listen(r.ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	l := &listener{router: r, ln: ln, httpConns: newConnQueue(ln.Addr())}
	l.server = &http.Server{
		Handler:                      l,
		ReadHeaderTimeout:            clientReadHeaderTimeout,
		IdleTimeout:                  clientIdleTimeout,
		ConnContext:                  connContext,
		DisableGeneralOptionsHandler: true, // "OPTIONS *" belongs to the backend
		ErrorLog:                     slog.NewLogLogger(r.logger.Handler(), slog.LevelDebug),
	}
	return l, nil
}

// start runs the accept loop and the HTTP server behind it. Each accepted connection
// goes where the listener's route says now, so a route can even switch between TCP,
// HTTP and auto without rebinding the port. An auto route's connections are sniffed
// on their own goroutine (sniff.go), never in the accept loop.
func (l *listener) start() {
	r := l.router
	r.wg.Go(func() { _ = l.server.Serve(l.httpConns) })
	r.wg.Go(func() {
		var backoff time.Duration
		for {
			c, err := l.ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					l.httpConns.Close()
					return
				}
				// Out of file descriptors and the like: wait instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				r.logger.Warn("accept failed", "listen", l.ln.Addr().String(), "err", err)
				time.Sleep(backoff)
				continue
			}
			backoff = 0
			rt := l.route.Load()
			switch rt.table.Load().cfg.Protocol {
			case TCP:
				r.wg.Go(func() { rt.serveTCP(c, nil) })
				continue
			case Auto:
				r.wg.Go(func() { l.serveAuto(rt, c) })
				continue
			}
			if !l.httpConns.put(c) {
				c.Close()
			}
		}
	})
}

// retire stops accepting and gives in-flight HTTP requests up to timeout before the
// remaining client connections are closed. TCP connections drain with their backends.
func (l *listener) retire(timeout time.Duration) {
	l.ln.Close()
	r := l.router
	r.wg.Go(func() {
		ctx, cancel := context.WithTimeout(r.ctx, timeout)
		defer cancel()
		if l.server.Shutdown(ctx) != nil {
			l.server.Close()
		}
	})
}

// ServeHTTP serves one request with the listener's current route.
func (l *listener) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	l.route.Load().serveHTTP(w, req)
}

// connQueue hands connections from the accept loop to the http.Server, which wants a
// net.Listener of its own.
type connQueue struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }
