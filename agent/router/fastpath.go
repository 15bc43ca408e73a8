package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// The fast path sends a body-less GET or HEAD (what nearly all traffic is) on a pooled
// keep-alive connection from the handler's own goroutine: the request is written and
// the response read right there, without http.Transport's two goroutines per
// connection, their channel hand-offs, its per-request contexts and connection queue.
// A profile under wrk put that machinery at a fifth of the router's CPU per request.
// Everything else (request bodies, Upgrade, Expect, other methods) goes through the
// backend's http.Transport as before, so its semantics stay the Transport's.
//
// What the fast path keeps from the Transport: requests are written as the Transport
// writes them (request line with URL.RequestURI, Host, no Content-Length for a GET or
// HEAD without body, an empty User-Agent omitted, one line per header value);
// responses are parsed by http.ReadResponse (chunked bodies, trailers, HEAD, 204/304,
// close-delimited bodies); 1xx responses before the final one are skipped; a
// connection is reused only after its body was read to EOF and the response did not
// ask to close; a request that fails on a reused connection before any byte of the
// response arrived is sent once more on a new connection (the backend closed an idle
// connection as we used it; GET and HEAD are safe to replay), as the Transport does;
// ResponseHeaderTimeout is a read deadline; a client that goes away closes the
// backend connection (context.AfterFunc). Connections come from the backend's dialer,
// so a drain closes them like the Transport's.

// fastIdleTimeout is how long an idle pooled connection may wait for its next request.
const fastIdleTimeout = 90 * time.Second

// fastConn is one pooled keep-alive connection to a backend.
type fastConn struct {
	c         net.Conn // a trackedConn: Close unregisters it from the backend
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

func (fc *fastConn) close() { fc.c.Close() }

// fastPathOK reports whether req can take the fast path.
func fastPathOK(req *http.Request, body *bodyReader, upType string) bool {
	return body == nil && upType == "" && (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		len(req.Header["Expect"]) == 0
}

// getConn returns an idle connection (reused = true) or dials a new one.
func (b *backend) getConn(ctx context.Context, fresh bool) (fc *fastConn, reused bool, err error) {
	if !fresh {
		now := time.Now()
		b.mu.Lock()
		for n := len(b.idleConns); n > 0; n = len(b.idleConns) {
			fc = b.idleConns[n-1]
			b.idleConns[n-1] = nil
			b.idleConns = b.idleConns[:n-1]
			if now.Sub(fc.idleSince) < fastIdleTimeout {
				b.mu.Unlock()
				return fc, true, nil
			}
			b.mu.Unlock()
			fc.close()
			b.mu.Lock()
		}
		b.mu.Unlock()
	}
	c, err := b.dialHTTP(ctx, "tcp", b.addr)
	if err != nil {
		return nil, false, err
	}
	return &fastConn{c: c, br: bufio.NewReaderSize(c, 8<<10), bw: bufio.NewWriterSize(c, 4<<10)}, false, nil
}

// putConn returns a connection whose response was read completely to the pool, and
// closes the pool's oldest connection if it idled too long.
func (b *backend) putConn(fc *fastConn) {
	now := time.Now()
	fc.idleSince = now
	b.mu.Lock()
	if b.closed || len(b.idleConns) >= b.router.opts.MaxIdleConnsPerBackend {
		b.mu.Unlock()
		fc.close()
		return
	}
	var stale *fastConn
	if len(b.idleConns) > 0 && now.Sub(b.idleConns[0].idleSince) >= fastIdleTimeout {
		stale = b.idleConns[0]
		copy(b.idleConns, b.idleConns[1:])
		b.idleConns[len(b.idleConns)-1] = nil
		b.idleConns = b.idleConns[:len(b.idleConns)-1]
	}
	b.idleConns = append(b.idleConns, fc)
	b.mu.Unlock()
	if stale != nil {
		stale.close()
	}
}

// closeIdleConns closes the pooled connections (the backend is closing).
func (b *backend) closeIdleConns() {
	b.mu.Lock()
	idle := b.idleConns
	b.idleConns = nil
	b.mu.Unlock()
	for _, fc := range idle {
		fc.close()
	}
}

// fastRoundTrip sends req (the client's request, headers already prepared) to b on a
// pooled connection and returns the response; its Body hands the connection back
// when closed.
func (b *backend) fastRoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	host := req.Host
	if host == "" {
		host = b.addr
	}
	for attempt := 0; ; attempt++ {
		fc, reused, err := b.getConn(ctx, attempt > 0)
		if err != nil {
			return nil, err
		}
		conn := fc.c
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
		resp, replay, err := b.exchange(ctx, fc, req, host, reused)
		if err != nil {
			stop()
			fc.close()
			// A backend another request already found dead (marked down) is not
			// dialled again: the caller retries on another backend at once.
			if replay && attempt == 0 && ctx.Err() == nil && b.usable(b.router.clock(time.Now())) {
				continue
			}
			return nil, err
		}
		resp.Body = &fastBody{body: resp.Body, b: b, fc: fc, stop: stop, resp: resp}
		return resp, nil
	}
}

// exchange writes the request and reads the response headers. replay says the
// connection was reused and failed before any byte of a response came back.
func (b *backend) exchange(ctx context.Context, fc *fastConn, req *http.Request, host string, reused bool) (resp *http.Response, replay bool, err error) {
	writeRequest(fc.bw, req, host)
	err = fc.bw.Flush()
	timeout := b.router.opts.ResponseHeaderTimeout
	if err == nil && timeout > 0 {
		err = fc.c.SetReadDeadline(time.Now().Add(timeout))
	}
	if err == nil {
		_, err = fc.br.Peek(1)
	}
	if err != nil {
		if !staleConnError(err) {
			return nil, false, err
		}
		return nil, reused, &noResponseError{err}
	}
	for range 5 { // 1xx before the final answer: skipped, as the Transport does
		resp, err = http.ReadResponse(fc.br, req)
		if err != nil || resp.StatusCode < 100 || resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if err == nil && resp.StatusCode >= 100 && resp.StatusCode < 200 {
		err = errors.New("too many 1xx responses")
	}
	if err != nil {
		return nil, false, err
	}
	if timeout > 0 {
		if err := fc.c.SetReadDeadline(time.Time{}); err != nil {
			return nil, false, err
		}
		// A client that went away meanwhile set a deadline that the line above cleared.
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
	}
	return resp, false, nil
}

// noResponseError: the request was written (or writing it failed) and the connection
// then broke — EOF, reset, broken pipe — before a single byte of a response came
// back. On a reused connection it is usually the backend closing an idle connection;
// on a fresh one, a backend that died (SIGKILL, OOM) with the request unanswered. A
// GET or HEAD without body (all the fast path carries) is safe to send elsewhere.
type noResponseError struct{ err error }

func (e *noResponseError) Error() string {
	return "backend closed the connection without answering: " + e.err.Error()
}
func (e *noResponseError) Unwrap() error { return e.err }

// staleConnError: a reused connection that the backend had closed (EOF, reset, broken
// pipe), as opposed to a timeout or a cancellation.
func staleConnError(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// writeRequest writes the request line and headers as http.Request.Write would for a
// GET or HEAD without body. The header values were validated by the server that read
// them, or set by prepareHeaders.
func writeRequest(bw *bufio.Writer, req *http.Request, host string) {
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(req.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	for k, vv := range req.Header {
		switch k {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		case "User-Agent":
			if len(vv) == 0 || vv[0] == "" {
				continue
			}
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
}

// fastBody is a fast-path response body: Close gives the connection back to the pool
// if the body was read to its end, and closes it otherwise.
type fastBody struct {
	body io.ReadCloser
	b    *backend
	fc   *fastConn
	stop func() bool
	resp *http.Response
	eof  bool
	done bool
}

func (f *fastBody) Read(p []byte) (int, error) {
	n, err := f.body.Read(p)
	if err == io.EOF {
		f.eof = true
	}
	return n, err
}

func (f *fastBody) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	canceled := !f.stop() // the client went away: the connection's deadline is spoiled
	if !f.eof || canceled || f.resp.Close {
		f.fc.close() // first, so that closing an unread body does not read it to its end
		f.body.Close()
		return nil
	}
	f.body.Close()
	f.b.putConn(f.fc)
	return nil
}
