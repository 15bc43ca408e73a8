package router

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// newEchoServer answers every line with prefix+line on 127.0.0.1 and returns its address.
func newEchoServer(t testing.TB, prefix string) string {
	t.Helper()
	return newGreetingServer(t, "", prefix)
}

func dialRoute(t testing.TB, r *Router, name string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.Addr(name).String(), 2*time.Second)
	assert.NilError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// echoLine sends one line and returns the answer without its newline.
func echoLine(t testing.TB, c net.Conn, msg string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	_, err := io.WriteString(c, msg+"\n")
	assert.NilError(t, err)
	// One byte at a time: a buffered reader could swallow the next answer.
	var sb strings.Builder
	b := make([]byte, 1)
	for {
		_, err := c.Read(b)
		assert.NilError(t, err)
		if b[0] == '\n' {
			return sb.String()
		}
		sb.WriteByte(b[0])
	}
}

func tcpRoute(name string, drain time.Duration, backends ...Backend) Route {
	return Route{Name: name, Listen: "127.0.0.1:0", Protocol: TCP, DrainTimeout: Duration(drain), Backends: backends}
}

func TestTCPRouteDrainsOpenConnections(t *testing.T) {
	a := newEchoServer(t, "A:")
	b := newEchoServer(t, "B:")
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, tcpRoute("db", 5*time.Second, Backend{ID: "a", Address: a, Weight: 1}))
	old := dialRoute(t, r, "db")
	assert.Equal(t, echoLine(t, old, "one"), "A:one")

	applyRoutes(t, r, tcpRoute("db", 5*time.Second, Backend{ID: "b", Address: b, Weight: 1}))
	fresh := dialRoute(t, r, "db")
	assert.Equal(t, echoLine(t, fresh, "two"), "B:two")
	assert.Equal(t, echoLine(t, old, "three"), "A:three", "the open connection was cut by the swap")
	st := backendStats(r, "db", "a")
	assert.Equal(t, st.State, Draining)
	assert.Equal(t, st.InFlight, int64(1))

	old.Close()
	waitDrained(t, r, "db", "a")
	rs := r.Stats().Route("db")
	assert.Equal(t, rs.Requests, uint64(2))
	assert.Equal(t, rs.Backend("b").Requests, uint64(1))
	assert.Equal(t, rs.BytesIn, uint64(len("one\nthree\n")), "bytes of the closed connection")
}

func TestTCPDrainTimeoutClosesConnection(t *testing.T) {
	a := newEchoServer(t, "A:")
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, tcpRoute("db", 100*time.Millisecond, Backend{ID: "a", Address: a, Weight: 1}))
	conn := dialRoute(t, r, "db")
	assert.Equal(t, echoLine(t, conn, "one"), "A:one")
	applyRoutes(t, r, tcpRoute("db", 100*time.Millisecond))
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	assert.Assert(t, err != nil && !isTimeout(err), "the connection outlived the drain timeout: %v", err)
	waitDrained(t, r, "db", "a")
}

func TestTCPRetriesRefusedDial(t *testing.T) {
	a := newEchoServer(t, "A:")
	r := newTestRouter(t, Options{PassiveCooldown: time.Minute})
	applyRoutes(t, r, tcpRoute("db", time.Second,
		Backend{ID: "dead", Address: deadAddress(t), Weight: 1},
		Backend{ID: "a", Address: a, Weight: 1},
	))
	for range 3 {
		conn := dialRoute(t, r, "db")
		assert.Equal(t, echoLine(t, conn, "x"), "A:x")
		conn.Close()
	}
	rs := r.Stats().Route("db")
	assert.Equal(t, rs.Retries, uint64(1))
	assert.Equal(t, rs.Backend("dead").Errors, uint64(1))
}

func TestTCPNoBackendClosesConnection(t *testing.T) {
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, tcpRoute("db", time.Second))
	conn := dialRoute(t, r, "db")
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	assert.Assert(t, err == io.EOF, "%v", err)
	waitFor(t, time.Second, "the refusal to be counted", func() bool { return r.Stats().Route("db").NoBackend == 1 })
}

// A client that half-closes (sends EOF) still gets the rest of the answer.
func TestTCPHalfClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		data, _ := io.ReadAll(c) // until the client's EOF
		io.WriteString(c, strings.ToUpper(string(data)))
	}()
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, tcpRoute("up", time.Second, Backend{ID: "u", Address: l.Addr().String(), Weight: 1}))
	conn := dialRoute(t, r, "up").(*net.TCPConn)
	io.WriteString(conn, "shout")
	assert.NilError(t, conn.CloseWrite())
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, err := io.ReadAll(conn)
	assert.NilError(t, err)
	assert.Equal(t, string(got), "SHOUT")
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
