package router

import (
	"io"
	"net"
	"time"
)

// serveTCP forwards one client connection to a backend chosen per connection. A
// failed dial is retried once on another backend: nothing was sent yet. The
// connection counts as in flight on its backend until both directions are done, so a
// drain waits for it (up to the drain timeout, which then closes it).
func (rt *route) serveTCP(client net.Conn) {
	defer client.Close()
	r := rt.router
	start := time.Now()
	now := r.clock(start)
	rs := &rt.stats
	rs.requests.Add(1)
	rs.inFlight.Add(1)
	defer rs.inFlight.Add(-1)

	var exclude *backend
	for attempt := 0; attempt < 2; attempt++ {
		b := rt.table.Load().acquire(now, exclude)
		if b == nil {
			if attempt == 0 {
				rs.noBackend.Add(1)
			} else {
				rs.errors.Add(1)
			}
			return
		}
		if attempt > 0 {
			rs.retries.Add(1)
		}
		b.stats.requests.Add(1)
		upstream, err := b.dial(r.ctx)
		if err != nil {
			b.stats.errors.Add(1)
			b.markDown(now)
			b.release()
			r.logger.Debug("tcp dial failed", "route", rt.name, "backend", b.id, "err", err)
			exclude = b
			continue
		}
		latency := time.Since(start)
		b.stats.latency.observe(latency)
		rs.latency.observe(latency)
		if !b.track(client) { // the drain ended between acquire and now
			upstream.Close()
			b.untrack(upstream)
			b.release()
			return
		}
		in, out := pipe(client, upstream)
		upstream.Close()
		b.untrack(upstream)
		b.untrack(client)
		b.stats.bytesIn.Add(uint64(in))
		b.stats.bytesOut.Add(uint64(out))
		rs.bytesIn.Add(uint64(in))
		rs.bytesOut.Add(uint64(out))
		b.release()
		return
	}
	rs.errors.Add(1)
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
