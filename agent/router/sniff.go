package router

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

// A route with protocol auto decides per connection, from its first bytes, whether it
// carries HTTP or something else, so a published port of a redis, postgres, MySQL or
// game server works without any configuration, and an HTTP service keeps its
// per-request balancing, retries, counters and drains.
//
//   - The client's first bytes form a whole HTTP/1.x request line (a method token, a
//     space, a target, a space, "HTTP/1.<digit>", CRLF): the connection is handed,
//     with those bytes, to the route's HTTP server. A whole line is required, not a
//     method name: redis' inline "GET key\r\n" or RTSP's "OPTIONS x RTSP/1.0" are not
//     HTTP, and only a line ending in " HTTP/1.x" is taken for it.
//   - Bytes that cannot begin such a line (a TLS ClientHello, a postgres startup
//     message, RESP, an SSH banner, HTTP/2's preface), or a client that sends some and
//     half-closes: bytes are forwarded to one backend (TCP), the bytes already read
//     first. Nothing the client sent is lost.
//   - Nothing within the sniff window (default 200ms): the protocol may be
//     server-first (MySQL, SMTP, FTP, POP3, IMAP, VNC greet before the client speaks),
//     so the router connects to a backend and races its greeting against the client's
//     first bytes. The server speaks first: its bytes go to the client and the
//     connection is TCP. The client speaks first after all (an HTTP client that
//     opened a connection ahead of use): the speculative backend connection is closed
//     unused and the client's bytes are judged as above, so a slow HTTP client still
//     gets HTTP. The speculative connection is not counted in flight, so a drain
//     closes it at once; the router then connects to a backend of the new table.
//
// The window only delays server-first protocols (their greeting arrives one window
// late, once per connection); a client-first client's bytes arrive with, or right
// after, the handshake (measured: docs/benchmarks.md), so HTTP pays nothing but the
// parse of one line.

// sniffVerdict is what a connection's first bytes say about its protocol.
type sniffVerdict int

const (
	sniffMore  sniffVerdict = iota // a prefix of an HTTP/1.x request line: read on
	sniffHTTP                      // a whole HTTP/1.x request line
	sniffBytes                     // cannot be the start of an HTTP/1.x request line
)

const (
	// maxMethodLen bounds the method token (the longest registered method,
	// UPDATEREDIRECTREF, has 17 characters).
	maxMethodLen = 24
	// maxSniffLine: a request target still going after this many bytes is taken for
	// HTTP (net/http then answers it, e.g. 431); the sniff buffer never grows beyond it.
	maxSniffLine = 16 << 10
)

// classify judges the first bytes of a connection.
func classify(b []byte) sniffVerdict {
	i := 0
	for ; i < len(b) && b[i] != ' '; i++ {
		if i >= maxMethodLen || !isTokenChar(b[i]) {
			return sniffBytes
		}
	}
	if i == len(b) {
		return sniffMore
	}
	if i == 0 {
		return sniffBytes
	}
	i++
	start := i
	for ; i < len(b) && b[i] != ' '; i++ {
		if c := b[i]; c < 0x21 || c == 0x7f {
			return sniffBytes
		}
	}
	if i == len(b) {
		if len(b) >= maxSniffLine {
			return sniffHTTP
		}
		return sniffMore
	}
	if i == start {
		return sniffBytes
	}
	rest := b[i+1:]
	const version = "HTTP/1."
	n := min(len(rest), len(version))
	if string(rest[:n]) != version[:n] {
		return sniffBytes
	}
	if len(rest) <= len(version) {
		return sniffMore
	}
	if d := rest[len(version)]; d < '0' || d > '9' {
		return sniffBytes
	}
	rest = rest[len(version)+1:]
	switch {
	case len(rest) == 0:
		return sniffMore
	case rest[0] == '\n': // a bare LF ends a line for net/http too
		return sniffHTTP
	case rest[0] != '\r':
		return sniffBytes
	case len(rest) == 1:
		return sniffMore
	case rest[1] == '\n':
		return sniffHTTP
	}
	return sniffBytes
}

// isTokenChar reports whether c may appear in an HTTP token (RFC 9110, 5.6.2).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// sniffer reads a connection's first bytes until they decide.
type sniffer struct {
	c       net.Conn
	buf     []byte // everything read so far
	verdict sniffVerdict
	err     error // the read error that stopped it, if any (a deadline, EOF, a reset)
}

// read reads until the bytes decide or a read fails; the caller sets the deadline.
func (s *sniffer) read() {
	s.err = nil
	for s.verdict == sniffMore {
		if len(s.buf) == cap(s.buf) {
			s.buf = slices.Grow(s.buf, len(s.buf))
		}
		n, err := s.c.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if n > 0 {
			s.verdict = classify(s.buf)
		}
		if err != nil {
			s.err = err
			return
		}
	}
}

func (s *sniffer) timedOut() bool { return errors.Is(s.err, os.ErrDeadlineExceeded) }

// aLongTimeAgo is a deadline in the past: it makes a blocked Read return at once.
var aLongTimeAgo = time.Unix(1, 0)

// serveAuto sniffs one connection of an auto route and serves it as HTTP or TCP.
func (l *listener) serveAuto(rt *route, c net.Conn) {
	r := l.router
	// The router closing must not wait for a silent client.
	stop := context.AfterFunc(r.ctx, func() { c.Close() })
	defer stop()
	s := &sniffer{c: c, buf: make([]byte, 0, 2048)}
	_ = c.SetReadDeadline(time.Now().Add(time.Duration(rt.table.Load().cfg.SniffWindow)))
	s.read()
	if s.verdict == sniffMore && len(s.buf) > 0 && s.timedOut() {
		// The client speaks first, slowly (a person typing into telnet, a partial
		// request line): it gets the time an HTTP client has for its headers.
		_ = c.SetReadDeadline(time.Now().Add(clientReadHeaderTimeout))
		s.read()
	}
	_ = c.SetReadDeadline(time.Time{})
	switch {
	case r.ctx.Err() != nil:
		c.Close()
	case s.verdict == sniffHTTP:
		l.handOverHTTP(c, s.buf)
	case len(s.buf) > 0 || errors.Is(s.err, io.EOF):
		// Not HTTP, or bytes and a half-close, or a line still unfinished after the
		// header timeout: forwarded as they are.
		rt.serveTCP(c, s.buf)
	case s.timedOut():
		if rt.serveSilent(c, s) {
			l.handOverHTTP(c, s.buf)
		}
	default: // reset before a byte arrived
		c.Close()
	}
}

// handOverHTTP gives the connection to the listener's HTTP server, which reads the
// sniffed bytes first.
func (l *listener) handOverHTTP(c net.Conn, sniffed []byte) {
	if !l.httpConns.put(&sniffedConn{Conn: c, sniffed: sniffed}) {
		c.Close()
	}
}

// speculativeAttempts bounds how often in a row a silent connection is re-dialed
// because its speculative backend connection ended at once, before anyone spoke (a
// drain, a backend that closes what it accepts); a backend closing an idle connection
// after a while (an HTTP server's header timeout) is re-dialed until the client's idle
// timeout.
const (
	speculativeAttempts = 3
	quickEnd            = 100 * time.Millisecond
)

type greeting struct {
	buf []byte
	err error
}

// serveSilent serves a connection whose client sent nothing within the sniff window:
// it connects to a backend and races the backend's first bytes against the client's.
// It returns true when the client turned out to speak HTTP: the caller hands the
// connection to the HTTP server (the speculative backend connection is closed unused).
func (rt *route) serveSilent(c net.Conn, s *sniffer) (isHTTP bool) {
	rs := &rt.stats
	// Two silent ends: after the idle timeout the bytes are just forwarded.
	silentUntil := time.Now().Add(clientIdleTimeout)
	quickEnds := 0 // speculative connections the backend ended at once
	for {
		start := time.Now()
		b, upstream := rt.connect(start, false)
		if b == nil {
			rs.requests.Add(1)
			c.Close()
			return false
		}
		latency := time.Since(start)
		greeted := make(chan greeting, 1)
		go func() {
			buf := make([]byte, 4096)
			n, err := upstream.Read(buf)
			greeted <- greeting{buf[:n], err}
		}()
		// Set here, not in the goroutine, which would overwrite the interruption below.
		_ = c.SetReadDeadline(silentUntil)
		spoke := make(chan struct{})
		go func() {
			defer close(spoke)
			s.read()
		}()
		var g greeting
		upstreamStopped := false
		select {
		case g = <-greeted:
			_ = c.SetReadDeadline(aLongTimeAgo)
			<-spoke
		case <-spoke:
			_ = upstream.SetReadDeadline(aLongTimeAgo)
			upstreamStopped = true
			g = <-greeted
		}
		_ = c.SetReadDeadline(time.Time{})
		_ = upstream.SetReadDeadline(time.Time{})
		discard := func() {
			upstream.Close()
			b.untrack(upstream)
		}
		switch {
		case len(g.buf) == 0 && s.verdict == sniffHTTP:
			discard()
			return true
		case len(g.buf) == 0 && g.err != nil && !(upstreamStopped && errors.Is(g.err, os.ErrDeadlineExceeded)) && quickEnds < speculativeAttempts-1:
			// The backend ended the connection before anyone spoke (a drain closed it,
			// or the backend closes idle connections): nothing reached the client, so
			// wait on the client with a connection from the current table. Only a
			// backend that does so at once, again and again, has its end passed on.
			if time.Since(start) < quickEnd {
				quickEnds++
			} else {
				quickEnds = 0
			}
			discard()
			continue
		case rt.router.ctx.Err() != nil || (s.err != nil && !s.timedOut() && !errors.Is(s.err, io.EOF)):
			// The router is closing, or the client reset.
			discard()
			c.Close()
			return false
		}
		// The backend spoke, or the client sent bytes that are not HTTP: a TCP connection.
		if !b.acquire() {
			// Draining since the dial: its greeting never reached the client, so another
			// backend may greet instead.
			discard()
			if quickEnds++; quickEnds < speculativeAttempts {
				continue
			}
			c.Close()
			return false
		}
		defer c.Close()
		rs.requests.Add(1)
		rs.inFlight.Add(1)
		defer rs.inFlight.Add(-1)
		rt.relay(c, b, upstream, s.buf, g.buf, latency)
		return false
	}
}

// sniffedConn is a client connection whose first bytes were already read.
type sniffedConn struct {
	net.Conn
	sniffed []byte
}

func (c *sniffedConn) Read(p []byte) (int, error) {
	if len(c.sniffed) > 0 {
		n := copy(p, c.sniffed)
		c.sniffed = c.sniffed[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite passes a half-close on (net/http and pipe look for it).
func (c *sniffedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
