package router

import (
	"io"
	"net"
	"time"
)

// serveTCP forwards one client connection to a backend chosen per connection. prefix
// holds bytes already read from the client (an auto route's sniff); they are sent
// first. The connection counts as in flight on its backend until both directions are
// done, so a drain waits for it (up to the drain timeout, which then closes it).
func (rt *route) serveTCP(client net.Conn, prefix []byte) {
	defer client.Close()
	start := time.Now()
	rs := &rt.stats
	rs.requests.Add(1)
	rs.inFlight.Add(1)
	defer rs.inFlight.Add(-1)
	b, upstream := rt.connect(start, true)
	if b == nil {
		return
	}
	rt.relay(client, b, upstream, prefix, nil, time.Since(start))
}

// connect picks a backend and dials it; a failed dial is retried once on another
// backend: nothing was sent yet. With hold the connection stays counted in flight on
// the backend (relay releases it); without, the caller has only a tracked connection,
// which a drain closes at once. Failures are counted on the route and the backend.
func (rt *route) connect(start time.Time, hold bool) (*backend, net.Conn) {
	r := rt.router
	now := r.clock(start)
	rs := &rt.stats
	var exclude []*backend
	for attempt := 0; attempt < 2; attempt++ {
		b := rt.table.Load().acquire(now, exclude)
		if b == nil {
			if attempt == 0 {
				rs.noBackend.Add(1)
			} else {
				rs.errors.Add(1)
			}
			return nil, nil
		}
		if attempt > 0 {
			rs.retries.Add(1)
		}
		upstream, err := b.dial(r.ctx)
		if err != nil {
			b.stats.requests.Add(1)
			b.stats.errors.Add(1)
			b.markDown(now)
			b.release()
			r.logger.Debug("tcp dial failed", "route", rt.name, "backend", b.id, "err", err)
			exclude = append(exclude, b)
			continue
		}
		if !hold {
			b.release()
		}
		return b, upstream
	}
	rs.errors.Add(1)
	return nil, nil
}

// relay copies bytes both ways between the client and upstream, a tracked connection
// to b that is counted in flight (relay releases it). greeting (bytes the backend
// already sent) goes to the client first, prefix (bytes the client already sent) to
// the backend first.
func (rt *route) relay(client net.Conn, b *backend, upstream net.Conn, prefix, greeting []byte, latency time.Duration) {
	defer b.release()
	rs := &rt.stats
	b.stats.requests.Add(1)
	b.stats.latency.observe(latency)
	rs.latency.observe(latency)
	if !b.track(client) { // the drain ended between acquire and now
		upstream.Close()
		b.untrack(upstream)
		return
	}
	var in, out int64
	ok := true
	if len(greeting) > 0 {
		n, err := client.Write(greeting)
		out, ok = int64(n), err == nil
	}
	if ok && len(prefix) > 0 {
		n, err := upstream.Write(prefix)
		in, ok = int64(n), err == nil
	}
	if ok {
		i, o := pipe(client, upstream)
		in, out = in+i, out+o
	} else {
		b.stats.errors.Add(1)
		rs.errors.Add(1)
	}
	upstream.Close()
	client.Close()
	b.untrack(upstream)
	b.untrack(client)
	b.stats.bytesIn.Add(uint64(in))
	b.stats.bytesOut.Add(uint64(out))
	rs.bytesIn.Add(uint64(in))
	rs.bytesOut.Add(uint64(out))
}

// pipe copies both ways until both directions end. A clean EOF is passed on as a
// half-close, so request/response protocols that shut down their write side first
// still get their answer; an error on either side closes both. On Linux, io.Copy
// between two TCP connections uses splice: the bytes never enter user space.
func pipe(client, upstream net.Conn) (in, out int64) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		in = copyHalf(upstream, client)
	}()
	out = copyHalf(client, upstream)
	<-done
	return in, out
}

func copyHalf(dst, src net.Conn) int64 {
	n, err := io.Copy(dst, src)
	if err == nil {
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			if cw.CloseWrite() == nil {
				return n
			}
		}
	}
	// An error, or no half-close: tear both down so the other direction ends too.
	src.Close()
	dst.Close()
	return n
}
