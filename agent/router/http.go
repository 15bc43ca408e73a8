package router

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// statusClientClosed is logged (as nginx does) when the client went away before it
// got a response; it is never sent.
const statusClientClosed = 499

// Header values shared by every request. A header slice is only read by net/http, so
// one immutable slice can sit in many maps; this keeps the hot path allocation-free.
var (
	valHTTP       = []string{"http"}
	valHTTPS      = []string{"https"}
	valEmpty      = []string{""}
	valTrailers   = []string{"trailers"}
	valUpgrade    = []string{"Upgrade"}
	valClose      = []string{"close"}
	valTextPlain  = []string{"text/plain; charset=utf-8"}
	valNoSniff    = []string{"nosniff"}
	badGateway    = []byte("502 Bad Gateway: the backend could not be reached\n")
	gatewayTimout = []byte("504 Gateway Timeout: the backend did not answer in time\n")
	notHTTPRoute  = []byte("503 Service Unavailable: this address now serves TCP\n")
)

// hopHeaders are per-connection headers a proxy must not forward (RFC 9110 §7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// copyBuffers are reused between responses: a fresh 32 KiB buffer per request is what
// makes a naive proxy spend its time in the garbage collector.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// connInfo is computed once per client connection (http.Server.ConnContext), so the
// request path neither parses RemoteAddr nor allocates the X-Forwarded-For value.
type connInfo struct {
	ip  string
	xff []string
}

type connInfoKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	ip := c.RemoteAddr().String()
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return context.WithValue(ctx, connInfoKey{}, &connInfo{ip: ip, xff: []string{ip}})
}

// outcome is what the request path reports for counters and the access log.
type outcome struct {
	status   int // sent to the client, or statusClientClosed
	backend  *backend
	bytes    int64
	latency  time.Duration // to the response headers
	canceled bool          // the client went away
	abort    bool          // the response broke half-way: abort the client connection
}

func (rt *route) serveHTTP(w http.ResponseWriter, req *http.Request) {
	r := rt.router
	start := time.Now()
	rs := &rt.stats
	rs.requests.Add(1)
	rs.inFlight.Add(1)
	ci, _ := req.Context().Value(connInfoKey{}).(*connInfo)
	if ci == nil { // not served by our listener (tests calling ServeHTTP directly)
		ci = &connInfo{ip: req.RemoteAddr, xff: []string{req.RemoteAddr}}
	}

	o := rt.forward(w, req, ci, start)

	rs.inFlight.Add(-1)
	rs.latency.observe(o.latency)
	rs.bytesOut.Add(uint64(o.bytes))
	if o.status != statusClientClosed {
		rs.status(o.status)
	}
	if o.canceled {
		rs.canceled.Add(1)
	}
	if r.accessLog != nil {
		id, group := "", ""
		if o.backend != nil {
			id, group = o.backend.id, o.backend.group
		}
		r.accessLog.write(start, rt.name, id, group, req, ci.ip, o.status, time.Since(start), o.bytes)
	}
	if o.abort {
		// Headers are out; only a broken connection tells the client the body is short.
		panic(http.ErrAbortHandler)
	}
}

// maxRetries bounds how many other backends one request is retried on.
const maxRetries = 2

// forward sends req to a backend (retrying on up to maxRetries other backends when the
// backend could not be reached, or closed the connection without answering, and the
// request allows it; see retry) and copies the answer back.
func (rt *route) forward(w http.ResponseWriter, req *http.Request, ci *connInfo, start time.Time) outcome {
	tbl := rt.table.Load()
	if tbl.cfg.Protocol == TCP {
		w.Header()["Connection"] = valClose
		return writeError(w, http.StatusServiceUnavailable, notHTTPRoute, start)
	}
	now := rt.router.clock(start)
	b := tbl.acquire(now, nil)
	if b == nil {
		rt.stats.noBackend.Add(1)
		return writeError(w, http.StatusServiceUnavailable, tbl.noBackendBody, start)
	}
	upType := upgradeType(req.Header)
	prepareHeaders(req, ci, upType)
	var body *bodyReader
	if req.Body != nil && req.Body != http.NoBody {
		body = &bodyReader{rc: req.Body}
		defer body.finish()
	}
	fast := fastPathOK(req, body, upType)
	var out *http.Request
	if !fast {
		out = outboundRequest(req, b.addr, body)
	}
	var tried [maxRetries]*backend
	for attempt := 0; ; attempt++ {
		b.stats.requests.Add(1)
		var resp *http.Response
		var err error
		if fast {
			resp, err = b.fastRoundTrip(req)
		} else {
			resp, err = b.httpTr.RoundTrip(out)
		}
		if err == nil {
			o := rt.respond(w, req, resp, b, start, upType)
			if body != nil {
				n := body.n.Load()
				b.stats.bytesIn.Add(uint64(n))
				rt.stats.bytesIn.Add(uint64(n))
			}
			b.release()
			return o
		}
		status, unsent := rt.failed(b, req, err, now)
		if attempt < maxRetries && status != statusClientClosed && canRetry(req, body, unsent, err) {
			tried[attempt] = b
			if next := rt.table.Load().acquire(now, tried[:attempt+1]); next != nil {
				b.release()
				rt.stats.retries.Add(1)
				b = next
				if !fast {
					out = outboundRequest(req, b.addr, body)
				}
				continue
			}
		}
		b.release()
		o := outcome{status: status, backend: b, latency: time.Since(start)}
		switch status {
		case statusClientClosed:
			o.canceled = true
		case http.StatusGatewayTimeout:
			o = writeError(w, status, gatewayTimout, start)
			o.backend = b
		default:
			o = writeError(w, status, badGateway, start)
			o.backend = b
		}
		return o
	}
}

// failed counts a transport error against b and says what to answer and whether the
// request never left the router (a failed dial), which makes it safe to retry.
func (rt *route) failed(b *backend, req *http.Request, err error, now int64) (status int, dialFailed bool) {
	if req.Context().Err() != nil {
		b.stats.canceled.Add(1)
		return statusClientClosed, false
	}
	b.stats.errors.Add(1)
	var de *dialError
	dialFailed = errors.As(err, &de)
	var nr *noResponseError
	if dialFailed || errors.As(err, &nr) || errors.Is(err, syscall.ECONNRESET) {
		b.markDown(now)
	}
	rt.router.logger.Debug("backend request failed", "route", rt.name, "backend", b.id, "err", err)
	var ne net.Error
	if !dialFailed && errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout, false
	}
	return http.StatusBadGateway, dialFailed
}

// canRetry says whether a request that failed on one backend may be sent to another.
//
//   - Never sent (the dial failed, unsent): idempotent methods (GET, HEAD, OPTIONS,
//     PUT, DELETE, TRACE), if the body (if any) was never read, so the same bytes can
//     still be sent.
//   - Sent, but the backend closed the connection before any byte of a response
//     (noResponseError, which only the fast path reports): a GET or HEAD without a
//     body. The backend may have seen it, which is harmless for those; a PUT or
//     DELETE could have taken effect, so it is not sent twice.
//
// A POST or PATCH is never retried, not even after a failed dial: at-most-once is the
// contract clients of a POST expect from a proxy. Neither is a timeout: a slow backend
// should not get the request twice.
func canRetry(req *http.Request, body *bodyReader, unsent bool, err error) bool {
	if unsent {
		switch req.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodTrace:
			return body == nil || !body.touched.Load()
		}
		return false
	}
	var nr *noResponseError
	return errors.As(err, &nr) && body == nil && (req.Method == http.MethodGet || req.Method == http.MethodHead)
}

// prepareHeaders turns the client's headers into the backend's, in place: the server
// read everything it needs from them before calling the handler (net/http issue
// 14940), and a copy per request is exactly the garbage this package avoids.
func prepareHeaders(req *http.Request, ci *connInfo, upType string) {
	h := req.Header
	keepTE := hasToken(h["Te"], "trailers")
	for _, v := range h["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = textproto.TrimString(tok)
			// The common tokens name no header (or one deleted below): skip the
			// canonicalization, which allocates.
			if tok == "" || strings.EqualFold(tok, "keep-alive") || strings.EqualFold(tok, "close") || strings.EqualFold(tok, "upgrade") {
				continue
			}
			delete(h, textproto.CanonicalMIMEHeaderKey(tok))
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if keepTE {
		h["Te"] = valTrailers // gRPC-style trailers need it end to end
	}
	if upType != "" {
		h["Connection"] = valUpgrade
		h["Upgrade"] = []string{upType}
	}
	if prior := h["X-Forwarded-For"]; len(prior) > 0 {
		h["X-Forwarded-For"] = []string{strings.Join(prior, ", ") + ", " + ci.ip}
	} else {
		h["X-Forwarded-For"] = ci.xff
	}
	if req.TLS != nil {
		h["X-Forwarded-Proto"] = valHTTPS
	} else {
		h["X-Forwarded-Proto"] = valHTTP
	}
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = valEmpty // not Go's default User-Agent
	}
}

// outbound holds the request to the backend and its URL in one allocation.
type outbound struct {
	req http.Request
	url url.URL
}

func outboundRequest(in *http.Request, addr string, body *bodyReader) *http.Request {
	o := &outbound{req: *in, url: *in.URL}
	o.url.Scheme = "http"
	o.url.Host = addr
	o.req.URL = &o.url
	o.req.RequestURI = ""
	// The client's "Connection: close" ends its own connection, not the pooled one.
	o.req.Close = false
	if body != nil {
		o.req.Body = body
	} else {
		// A nil body (not NoBody) lets the Transport itself retry on a keep-alive
		// connection the backend closed at the same moment (Go issue 16036).
		o.req.Body = nil
	}
	return &o.req
}

// bodyReader passes the client's body to the Transport. Its Close does nothing: the
// Transport closes the body after a failed dial, and the client's body must stay
// readable for the retry. It records whether anything was read, which decides
// whether a retry could send the same bytes.
type bodyReader struct {
	rc      io.ReadCloser
	touched atomic.Bool
	done    atomic.Bool
	n       atomic.Int64
}

func (b *bodyReader) Read(p []byte) (int, error) {
	// The Transport may still read after the handler returned (it writes the body on
	// its own goroutine); the client's body must not be touched then.
	if b.done.Load() {
		return 0, io.ErrUnexpectedEOF
	}
	b.touched.Store(true)
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *bodyReader) Close() error { return nil }

func (b *bodyReader) finish() { b.done.Store(true) }

// respond copies the backend's response to the client.
func (rt *route) respond(w http.ResponseWriter, req *http.Request, resp *http.Response, b *backend, start time.Time, upType string) outcome {
	o := outcome{status: resp.StatusCode, backend: b, latency: time.Since(start)}
	b.stats.status(resp.StatusCode)
	b.stats.latency.observe(o.latency)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return rt.switchProtocols(w, req, resp, b, upType, o)
	}
	h := w.Header()
	copyResponseHeader(h, resp.Header)
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(resp.StatusCode)

	// Unknown length (chunked) or server-sent events: flush every read so streams
	// stream. Known lengths are buffered by net/http and sent in as few writes as it can.
	flush := resp.ContentLength == -1 || isEventStream(resp.Header)
	n, readErr, writeErr := copyBody(w, resp.Body, flush)
	o.bytes = n
	b.stats.bytesOut.Add(uint64(n))
	resp.Body.Close() // before reading resp.Trailer: Close finishes the body
	switch {
	case writeErr != nil || (readErr != nil && req.Context().Err() != nil):
		o.canceled = true
		b.stats.canceled.Add(1)
		return o
	case readErr != nil:
		b.stats.errors.Add(1)
		rt.router.logger.Debug("backend response broken", "route", rt.name, "backend", b.id, "err", readErr)
		o.abort = true
		return o
	}
	if len(resp.Trailer) > 0 {
		http.NewResponseController(w).Flush() // trailers need a chunked response
		for k, vv := range resp.Trailer {
			h[http.TrailerPrefix+k] = vv
		}
	}
	return o
}

func copyResponseHeader(dst, src http.Header) {
	for k, vv := range src {
		switch k {
		case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
			"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
			continue
		}
		dst[k] = vv // the response is ours: share its slices instead of copying them
	}
	for _, v := range src["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if tok = textproto.TrimString(tok); tok != "" && !strings.EqualFold(tok, "close") && !strings.EqualFold(tok, "keep-alive") {
				delete(dst, textproto.CanonicalMIMEHeaderKey(tok))
			}
		}
	}
}

// copyBody copies with a pooled buffer. It tells read errors (the backend) from write
// errors (the client) apart, because they are counted differently.
func copyBody(w http.ResponseWriter, body io.Reader, flush bool) (n int64, readErr, writeErr error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	var flusher http.Flusher
	if flush {
		flusher, _ = w.(http.Flusher)
	}
	for {
		nr, rerr := body.Read(buf)
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			n += int64(nw)
			if werr != nil {
				return n, nil, werr
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if rerr == io.EOF {
			return n, nil, nil
		}
		if rerr != nil {
			return n, rerr, nil
		}
	}
}

// switchProtocols completes an Upgrade (WebSocket and the like): the client's
// connection is hijacked and bytes are copied both ways until either side closes.
func (rt *route) switchProtocols(w http.ResponseWriter, req *http.Request, resp *http.Response, b *backend, upType string, o outcome) outcome {
	fail := func() outcome {
		resp.Body.Close()
		b.stats.errors.Add(1)
		f := writeError(w, http.StatusBadGateway, badGateway, time.Now())
		f.backend, f.latency = b, o.latency
		return f
	}
	backConn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || upType == "" || !strings.EqualFold(upType, upgradeType(resp.Header)) {
		return fail()
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fail()
	}
	defer conn.Close()
	defer backConn.Close()
	h := w.Header()
	for k, vv := range resp.Header { // including Connection and Upgrade: they are the point
		h[k] = vv
	}
	resp.Header = h
	resp.Body = nil // resp.Write writes the status line and headers only
	if err := resp.Write(brw); err != nil {
		o.canceled = true
		return o
	}
	if err := brw.Flush(); err != nil {
		o.canceled = true
		return o
	}
	var in atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, _ := io.Copy(backConn, brw.Reader) // brw may hold bytes the client already sent
		in.Store(n)
		conn.Close()
		backConn.Close()
	}()
	out, _ := io.Copy(conn, backConn)
	conn.Close()
	backConn.Close()
	<-done
	o.bytes = out
	b.stats.bytesOut.Add(uint64(out))
	b.stats.bytesIn.Add(uint64(in.Load()))
	rt.stats.bytesIn.Add(uint64(in.Load()))
	return o
}

// writeError answers with a short text body; the router's own answers carry no
// backend details, those go to the log.
func writeError(w http.ResponseWriter, status int, body []byte, start time.Time) outcome {
	h := w.Header()
	h["Content-Type"] = valTextPlain
	h["X-Content-Type-Options"] = valNoSniff
	w.WriteHeader(status)
	n, _ := w.Write(body)
	return outcome{status: status, bytes: int64(n), latency: time.Since(start)}
}

// upgradeType returns the protocol a request or response asks to switch to, or "".
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "upgrade") {
		return ""
	}
	if v := h["Upgrade"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hasToken reports whether a comma-separated header contains token (ASCII
// case-insensitively), without allocating.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(textproto.TrimString(tok), token) {
				return true
			}
		}
	}
	return false
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}
