// Package router is the traffic router of the lifecycle agent: it owns the host-facing
// ports of a project and forwards their traffic to the service containers on the
// project network, so rollouts can shift, split and drain traffic without a client
// noticing. It uses only the standard library and no other package of this module,
// because it ships inside a tiny FROM-scratch agent image.
//
// # Model
//
// A Config (JSON, versioned) lists Routes; a Route is one listen address, a protocol
// (http, tcp, or auto: decided per connection by its first bytes) and weighted
// Backends. Router.Apply makes a Config current:
//
//   - Listeners are keyed by their Listen string (compared literally). An address kept
//     across Applies keeps its socket and its clients' connections; a new address is
//     bound before anything else changes, so a port conflict fails the Apply without
//     side effects; an address that left the config stops accepting and lets its
//     in-flight requests finish within the route's DrainTimeout. Each accepted
//     connection is dispatched by the route's protocol at that moment, so an address
//     can even switch between HTTP and TCP without being rebound.
//   - Backends are keyed by ID and Address. A kept backend keeps its keep-alive
//     connections, counters and health state (a weight change is just a new table); a
//     removed backend drains: it gets no new work, requests and connections in flight
//     finish, and after DrainTimeout whatever is left is closed. It stays in Stats
//     with state "draining" until then, which tells the plugin when the old container
//     may be stopped.
//   - The request path reads one immutable routing table per route through an
//     atomic.Pointer: no lock is taken per request, and a request sees either the old
//     or the new backends, never a mix. A request that picked a backend from a table
//     replaced a moment later cannot be lost by the drain: it registers itself in
//     flight and then checks the draining flag, while the drain sets the flag and then
//     waits for in-flight to reach zero (sequentially consistent atomics make one side
//     see the other); a request that loses that race re-picks from the new table.
//
// # Balancing and health
//
// Weighted selection is nginx's smooth weighted round-robin, precomputed once per
// table into one cycle of backend indexes (weights reduced by their gcd, capped at
// 1024 entries), so picking is one atomic add: 90/10 is exactly 9:1 per 10 requests,
// interleaved. Weight 0 takes no new traffic but is not drained.
//
// Passive health: a failed dial or a reset takes a backend out of rotation for
// Options.PassiveCooldown; its share flows to the next backends in the cycle. When
// every eligible backend is marked so, the picker fails open (a single failed dial
// is a guess, a 503 for everyone is worse). Active health is optional per route
// (HealthPath; none by default because the plugin only adds backends it has seen
// healthy): GET every HealthInterval, 2xx/3xx is healthy, two failures take a backend
// out and one success brings it back, by rebuilding the table.
//
// # HTTP
//
// The proxy is written on http.Transport directly rather than httputil.ReverseProxy,
// to avoid its per-request garbage: the outbound request and its URL are one
// allocation; headers are edited in place (net/http reads what it needs from the
// inbound headers before calling the handler, issue 14940); shared immutable header
// values ("http", the per-connection X-Forwarded-For computed once in ConnContext);
// response headers are moved by sharing the slices; body copies use a sync.Pool of
// 32 KiB buffers; counters are atomics; the access log is built with strconv appends
// in pooled buffers. What remains per request is net/http's own allocation.
//
// A GET or HEAD without body, Upgrade or Expect (nearly all traffic) takes a fast path
// (fastpath.go): the handler's own goroutine writes it on a pooled keep-alive
// connection and reads the answer with http.ReadResponse, without the Transport's
// per-connection goroutines, channel hand-offs and per-request contexts (a fifth of the
// CPU per request; docs/benchmarks.md, section 7). It keeps the Transport's behaviour
// where it matters: 1xx skipped, a connection reused only after a complete body, a GET
// that meets a keep-alive connection the backend just closed sent again on a new one,
// ResponseHeaderTimeout, the backend connection closed when the client goes away.
// Everything else goes through the backend's Transport (keep-alive, 1024 idle
// connections, no compression, HTTP/1.1 only, no proxy from the environment). Both
// dial with the backend's dialer, which registers every connection, so a drain can
// close exactly that backend's connections.
// Hop-by-hop headers are removed both ways (Connection-listed ones too, "TE:
// trailers" kept); Host is preserved; X-Forwarded-For is appended to and
// X-Forwarded-Proto set. Responses of unknown length and server-sent events are
// flushed after every read (streaming); others are buffered by net/http. Upgrade
// requests (WebSocket) are tunnelled after a 101. Trailers are forwarded. A backend
// that breaks off a body aborts the client connection, so a truncated response never
// looks complete.
//
// Retries: a request is sent again, to another backend (up to 2 others, never one it
// already failed on, which is marked down), when
//   - the dial failed, so it was never sent: idempotent methods (GET, HEAD, OPTIONS,
//     PUT, DELETE, TRACE); a body is replayed only if the Transport never read from it;
//   - or the backend took the request and closed the connection before any byte of
//     an answer (EOF, reset, broken pipe: a replica SIGKILLed or OOM-killed with it in
//     hand): GET and HEAD without a body only, the fast path's traffic. It may have
//     reached the dead process, which is harmless for those; a PUT or DELETE may have
//     taken effect and gets 502.
//
// POST and PATCH are never retried and get 502; neither is a timeout (504): a slow
// backend should not get the same request twice. A stale keep-alive connection is
// first redialled on the same backend (the Transport's rule), unless that backend is
// already marked down. Route stats count the retries. So a replica killed under load
// costs its clients no failed GET: what was in flight on it, and what met its dead
// connections, is answered by the others, and the first failure takes it out of
// rotation for PassiveCooldown; after that one request pays a failed dial (a stopped
// container's name no longer resolves: fast) and takes it out again, until it
// answers. Active checks (HealthPath) are not needed for this; they catch a backend
// that hangs or answers errors, which no transport failure reveals.
//
// The router's own answers: 503 when no backend is usable (body names the route), 502
// when the backend could not be reached or broke the connection, 504 on
// Options.ResponseHeaderTimeout; a client that went away is logged as 499.
//
// # TCP
//
// Connections are balanced with the same picker; a failed dial is retried once on
// another backend. Bytes are copied with io.Copy between the two TCP connections
// (splice on Linux), EOF is passed on as a half-close, an error closes both.
//
// # Auto
//
// An auto route sniffs each connection on its own goroutine (sniff.go): a whole
// HTTP/1.x request line hands the connection, with the bytes read, to the HTTP server;
// bytes that cannot start one are forwarded as TCP, those bytes first; a client silent
// for the route's SniffWindow gets a backend connection whose greeting (server-first
// protocols) races the client's first bytes, and whichever comes first decides. The
// speculative connection is not in flight, so a drain closes it and the router dials
// the new table.
//
// # Stats
//
// Router.Stats returns per-route counters (what clients saw, including the router's
// own 5xx) and per-backend counters (what each backend answered, and its transport
// errors): requests, responses by class, errors, retries, no-backend answers,
// cancellations, in-flight, bytes, and a latency histogram with fixed buckets
// (LatencyBounds) and p50/p90/p99 estimates. Latency is time to the response headers
// (TCP: to connect), so slow clients and long streams do not read as a slow backend.
// Counters are monotonic for the life of a route or backend; Counters.Sub gives a
// window with its own percentiles, the primitive for canary analysis.
//
// # Control plane
//
// Router.ServeControl serves PUT/GET /config, GET /stats and GET /healthz (JSON). It
// has no authentication by design: the agent serves it on a unix socket in a volume,
// never on a published port. With Options.ConfigFile set, every accepted config is
// saved atomically (temp file, fsync, rename), and an agent restart can
// LoadConfigFile and Apply it.
//
// # Listening sockets from elsewhere
//
// Options.Listen opens each route's listener. The agent's supervisor uses it so a
// restarted router process serves the sockets the dead one bound (held open across
// the restart, so no connection is refused); the package itself stays free of
// descriptor passing.
//
// # Known limits
//
// HTTP/1.1 only (no HTTP/2 or TLS termination; an auto route carries h2c prior
// knowledge and TLS per connection, as TCP); 1xx informational responses other
// than 100 and 101 are not forwarded; no request body size limit, rate limit or
// per-request timeout beyond ResponseHeaderTimeout; active checks are HTTP only; a
// half-closed TCP connection whose peer never closes stays open until its backend
// drains or the router closes; an idle fast-path connection older than 90 s is closed
// when the pool is next used, not by a timer (a drain closes them all).
package router
