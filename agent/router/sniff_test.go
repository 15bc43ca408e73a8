package router

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sniffVerdict
	}{
		{"", sniffMore},
		{"G", sniffMore},
		{"GET", sniffMore},
		{"GET ", sniffMore},
		{"GET /x", sniffMore},
		{"GET /x ", sniffMore},
		{"GET /x HTTP/1", sniffMore},
		{"GET /x HTTP/1.1", sniffMore},
		{"GET /x HTTP/1.1\r", sniffMore},
		{"GET /x HTTP/1.1\r\n", sniffHTTP},
		{"GET /x HTTP/1.0\r\nHost: a\r\n\r\n", sniffHTTP},
		{"GET /x HTTP/1.1\n", sniffHTTP},
		{"PROPFIND /dav HTTP/1.1\r\n", sniffHTTP},
		{"OPTIONS * HTTP/1.1\r\n", sniffHTTP},
		{"CONNECT example:443 HTTP/1.1\r\n", sniffHTTP},
		{"GET /" + strings.Repeat("a", maxSniffLine), sniffHTTP},
		// Not HTTP/1.x.
		{"GET key\r\n", sniffBytes},                         // redis inline command
		{"get foo\r\n", sniffBytes},                         // memcached
		{"OPTIONS rtsp://cam/1 RTSP/1.0\r\n", sniffBytes},   // RTSP
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sniffBytes},    // HTTP/2 prior knowledge
		{"SSH-2.0-OpenSSH_9.6\r\n", sniffBytes},             // SSH banner
		{"*1\r\n$4\r\nPING\r\n", sniffBytes},                // RESP
		{"\x16\x03\x01\x02\x00\x01", sniffBytes},            // TLS ClientHello
		{"\x00\x00\x00\x08\x04\xd2\x16\x2f", sniffBytes},    // postgres SSLRequest
		{"CONNECT\naccept-version:1.2\n\n\x00", sniffBytes}, // STOMP
		{"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", sniffBytes},  // PROXY protocol v1
		{" GET / HTTP/1.1\r\n", sniffBytes},                 // no method
		{"GET  HTTP/1.1\r\n", sniffBytes},                   // no target
		{"GET / HTTP/1.x\r\n", sniffBytes},                  // no minor version
		{"GET / HTTP/1.1 \r\n", sniffBytes},                 // junk after the version
		{strings.Repeat("A", maxMethodLen+1) + " / HTTP/1.1\r\n", sniffBytes},
	} {
		assert.Equal(t, classify([]byte(tc.in)), tc.want, "%q", tc.in)
	}
}

func autoRoute(name string, window time.Duration, backends ...Backend) Route {
	return Route{Name: name, Listen: "127.0.0.1:0", Protocol: Auto, SniffWindow: Duration(window), DrainTimeout: Duration(5 * time.Second), Backends: backends}
}

// newGreetingServer is a server-first line protocol: on connect it sends greeting (if
// any), then answers every line with prefix+line. It returns its address.
func newGreetingServer(t testing.TB, greeting, prefix string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				if greeting != "" {
					if _, err := io.WriteString(c, greeting); err != nil {
						return
					}
				}
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := io.WriteString(c, prefix+line); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// readLine reads one line byte by byte (so nothing after it is swallowed).
func readLine(t testing.TB, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var sb strings.Builder
	b := make([]byte, 1)
	for {
		_, err := c.Read(b)
		assert.NilError(t, err, "after %q", sb.String())
		if b[0] == '\n' {
			return sb.String()
		}
		sb.WriteByte(b[0])
	}
}

// An HTTP client on an auto route gets the HTTP proxy: per request (the backend sees
// X-Forwarded-For, the route counts requests, not connections), without waiting for
// the sniff window.
func TestAutoServesHTTP(t *testing.T) {
	srv := newBackendServer(t, "a", func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "xff="+req.Header.Get("X-Forwarded-For"))
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("web", time.Second, Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	c := newClient(t)
	for range 3 {
		start := time.Now()
		status, body := get(t, c, routeURL(t, r, "web")+"/")
		assert.Equal(t, status, 200)
		assert.Equal(t, body, "xff=127.0.0.1")
		assert.Assert(t, time.Since(start) < 500*time.Millisecond, "HTTP waited for the 1s sniff window: %v", time.Since(start))
	}
	rs := r.Stats().Route("web")
	assert.Equal(t, rs.Requests, uint64(3))
	assert.Equal(t, rs.Protocol, Auto)
}

// A client-first binary protocol is forwarded byte for byte, the sniffed bytes first,
// without waiting for the window.
func TestAutoForwardsClientFirstBinary(t *testing.T) {
	a := newEchoServer(t, "A:")
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("db", time.Second, Backend{ID: "a", Address: a, Weight: 1}))
	for _, msg := range []string{"\x00\x00\x00\x08\x04\xd2\x16\x2f", "*1\r$4\rPING", "GET key"} {
		start := time.Now()
		conn := dialRoute(t, r, "db")
		assert.Equal(t, echoLine(t, conn, msg), "A:"+msg)
		assert.Equal(t, echoLine(t, conn, "again"), "A:again")
		assert.Assert(t, time.Since(start) < 500*time.Millisecond, "%q waited for the sniff window", msg)
		conn.Close()
	}
	waitFor(t, 2*time.Second, "connections to finish", func() bool { return r.Stats().Route("db").InFlight == 0 })
	rs := r.Stats().Route("db")
	assert.Equal(t, rs.Requests, uint64(3))
	assert.Equal(t, rs.Backend("a").Requests, uint64(3))
}

// A server-first protocol: the client waits for the greeting, which arrives one sniff
// window after connecting; then the session goes on as TCP.
func TestAutoServerFirstGreeting(t *testing.T) {
	const window = 50 * time.Millisecond
	a := newGreetingServer(t, "220 a ready\r\n", "A:")
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("smtp", window, Backend{ID: "a", Address: a, Weight: 1}))
	for range 3 {
		start := time.Now()
		conn := dialRoute(t, r, "smtp")
		assert.Equal(t, readLine(t, conn), "220 a ready\r")
		waited := time.Since(start)
		assert.Assert(t, waited >= window && waited < window+time.Second, "greeting after %v", waited)
		assert.Equal(t, echoLine(t, conn, "HELO x"), "A:HELO x")
		// An HTTP-looking line later in the session is just bytes.
		assert.Equal(t, echoLine(t, conn, "GET / HTTP/1.1\r"), "A:GET / HTTP/1.1\r")
		conn.Close()
	}
	waitFor(t, 2*time.Second, "connections to finish", func() bool { return r.Stats().Route("smtp").InFlight == 0 })
	rs := r.Stats().Route("smtp")
	assert.Equal(t, rs.Requests, uint64(3))
	assert.Equal(t, rs.Backend("a").Requests, uint64(3))
}

// A request line split over several writes is still recognised, whether it turns out
// to be HTTP or not.
func TestAutoPartialRequestLineAcrossReads(t *testing.T) {
	srv := newBackendServer(t, "a", func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, req.Method+" "+req.URL.Path+" xff="+req.Header.Get("X-Forwarded-For"))
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("web", 30*time.Millisecond, Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	conn := dialRoute(t, r, "web")
	for _, part := range []string{"GE", "T /sp", "lit HT", "TP/1.", "1\r", "\nHost: x\r\nConnection: close\r\n\r\n"} {
		_, err := io.WriteString(conn, part)
		assert.NilError(t, err)
		time.Sleep(60 * time.Millisecond) // longer than the window: the client has started
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, string(body), "GET /split xff=127.0.0.1")

	echo := newEchoServer(t, "E:")
	applyRoutes(t, r, autoRoute("kv", 30*time.Millisecond, Backend{ID: "e", Address: echo, Weight: 1}))
	conn = dialRoute(t, r, "kv")
	for _, part := range []string{"GE", "T ke", "y"} {
		io.WriteString(conn, part)
		time.Sleep(60 * time.Millisecond)
	}
	assert.Equal(t, echoLine(t, conn, ""), "E:GET key")
}

// An HTTP client that opens its connection well before it sends (a browser's
// preconnect, a pool) still gets HTTP, although the router has meanwhile connected to
// a backend in case the server speaks first; that connection is closed unused.
func TestAutoSlowHTTPClient(t *testing.T) {
	srv := newBackendServer(t, "a", func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "xff="+req.Header.Get("X-Forwarded-For"))
	})
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("web", 20*time.Millisecond, Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	conn := dialRoute(t, r, "web")
	time.Sleep(150 * time.Millisecond)
	for i := range 2 { // keep-alive: two requests on the connection, each proxied
		_, err := io.WriteString(conn, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		assert.NilError(t, err)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		assert.NilError(t, err, "request %d", i)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, string(body), "xff=127.0.0.1", "request %d went through the HTTP proxy", i)
		assert.Equal(t, br.Buffered(), 0)
	}
	rs := r.Stats().Route("web")
	assert.Equal(t, rs.Requests, uint64(2))
	assert.Equal(t, rs.Backend("a").InFlight, int64(0), "the speculative connection is not in flight")
}

// A backend that closes a connection on which nothing arrived (an HTTP server's
// header timeout) does not cut a silent client: the router connects again, and the
// client's request, when it comes, is served as HTTP.
func TestAutoSilentClientOutlivesBackendHeaderTimeout(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "xff="+req.Header.Get("X-Forwarded-For"))
	}))
	srv.Config.ReadHeaderTimeout = 200 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("web", 20*time.Millisecond, Backend{ID: "a", Address: hostPort(srv), Weight: 1}))
	conn := dialRoute(t, r, "web")
	time.Sleep(700 * time.Millisecond) // three speculative connections timed out
	_, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	assert.NilError(t, err)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	assert.NilError(t, err)
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, string(body), "xff=127.0.0.1")
}

// A backend that closes every connection at once has its close passed on to a silent
// client after a few attempts, rather than being re-dialed forever.
func TestAutoSilentClientOfClosingBackend(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	accepted := 0
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted++
			mu.Unlock()
			c.Close()
		}
	}()
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("svc", 20*time.Millisecond, Backend{ID: "a", Address: l.Addr().String(), Weight: 1}))
	conn := dialRoute(t, r, "svc")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	assert.Equal(t, err, io.EOF)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, accepted, speculativeAttempts)
}

// A silent client of a server-first backend that starts draining gets the greeting of
// the new backend: the speculative connection to the old one never reached it.
func TestAutoSilentClientFollowsDrain(t *testing.T) {
	silent := newGreetingServer(t, "", "OLD:") // accepted, says nothing
	fresh := newGreetingServer(t, "hello from new\n", "NEW:")
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("svc", 20*time.Millisecond, Backend{ID: "old", Address: silent, Weight: 1}))
	conn := dialRoute(t, r, "svc")
	time.Sleep(100 * time.Millisecond) // the router has connected to "old" and waits
	applyRoutes(t, r, autoRoute("svc", 20*time.Millisecond, Backend{ID: "new", Address: fresh, Weight: 1}))
	assert.Equal(t, readLine(t, conn), "hello from new")
	assert.Equal(t, echoLine(t, conn, "x"), "NEW:x")
	waitDrained(t, r, "svc", "old")
}

// Bytes and a half-close: the backend gets both and the answer comes back.
func TestAutoHalfClose(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			data, _ := io.ReadAll(c)
			io.WriteString(c, strings.ToUpper(string(data)))
			c.Close()
		}
	}()
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("up", time.Second, Backend{ID: "u", Address: l.Addr().String(), Weight: 1}))
	for _, msg := range []string{"shout", "GET /x", ""} { // the last one sends nothing at all
		conn := dialRoute(t, r, "up").(*net.TCPConn)
		io.WriteString(conn, msg)
		assert.NilError(t, conn.CloseWrite())
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, err := io.ReadAll(conn)
		assert.NilError(t, err)
		assert.Equal(t, string(got), strings.ToUpper(msg))
	}
}

// A TCP connection of an auto route drains like a tcp route's: it keeps its backend
// while new connections go to the new one.
func TestAutoTCPConnectionDrains(t *testing.T) {
	a := newGreetingServer(t, "a\n", "A:")
	b := newGreetingServer(t, "b\n", "B:")
	r := newTestRouter(t, Options{})
	applyRoutes(t, r, autoRoute("db", 10*time.Millisecond, Backend{ID: "a", Address: a, Weight: 1}))
	old := dialRoute(t, r, "db")
	assert.Equal(t, readLine(t, old), "a")
	applyRoutes(t, r, autoRoute("db", 10*time.Millisecond, Backend{ID: "b", Address: b, Weight: 1}))
	fresh := dialRoute(t, r, "db")
	assert.Equal(t, readLine(t, fresh), "b")
	assert.Equal(t, echoLine(t, old, "still"), "A:still")
	assert.Equal(t, backendStats(r, "db", "a").State, Draining)
	old.Close()
	waitDrained(t, r, "db", "a")
}

func TestAutoConfig(t *testing.T) {
	cfg, err := Config{Routes: []Route{{Name: "a", Listen: ":1", Protocol: Auto, HealthPath: "/h"}}}.Normalize()
	assert.NilError(t, err)
	assert.Equal(t, cfg.Routes[0].SniffWindow, Duration(DefaultSniffWindow))
	_, err = Config{Routes: []Route{{Name: "a", Listen: ":1", Protocol: TCP, SniffWindow: Duration(time.Second)}}}.Normalize()
	assert.ErrorContains(t, err, "sniff_window needs protocol auto")
	_, err = Config{Routes: []Route{{Name: "a", Listen: ":1", Protocol: Auto, SniffWindow: -1}}}.Normalize()
	assert.ErrorContains(t, err, "must not be negative")
	_, err = Config{Routes: []Route{{Name: "a", Listen: ":1", Protocol: TCP, HealthPath: "/h"}}}.Normalize()
	assert.ErrorContains(t, err, "health_path needs protocol http or auto")
}
