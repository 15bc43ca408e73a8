package router

// Benchmarks over real loopback TCP with keep-alive, client, proxy and backend in
// this one process (so allocs/op counts all three; subtract BenchmarkDirect's to get
// the proxy's own). "serial" is one request at a time (latency), "parallel" is
// RunParallel with GOMAXPROCS×4 clients (throughput; ns/op ≈ CPU per request when
// the cores are saturated).
//
//	go test -run '^$' -bench . -benchmem ./agent/router/

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var benchSizes = []struct {
	name string
	body []byte
}{
	{"13B", []byte("Hello, World!")},
	{"64KiB", bytes.Repeat([]byte("x"), 64<<10)},
}

// benchServer serves body from 127.0.0.1 and returns its host:port.
func benchServer(b *testing.B, h http.Handler) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	b.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func benchBackend(b *testing.B, body []byte) string {
	return benchServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	}))
}

// benchTransport is tuned the same for the client and for the httputil baseline, so
// neither pays for reconnecting.
func benchTransport(b *testing.B) *http.Transport {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1024, DisableCompression: true}
	b.Cleanup(tr.CloseIdleConnections)
	return tr
}

// runBench sends GET http://addr/ serially and in parallel, checking every answer.
func runBench(b *testing.B, addr string, size int) {
	client := benchTransport(b)
	do := func(req *http.Request) {
		resp, err := client.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n != int64(size) {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	newReq := func() *http.Request {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
		if err != nil {
			b.Fatal(err)
		}
		return req
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		req := newReq()
		do(req) // warm the connection
		cpu := processCPU()
		for b.Loop() {
			do(req)
		}
		reportCPU(b, cpu)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		cpu := processCPU()
		b.RunParallel(func(pb *testing.PB) {
			req := newReq()
			for pb.Next() {
				do(req)
			}
		})
		reportCPU(b, cpu)
	})
}

// processCPU is the user+system CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports CPU per request of the whole process (client, proxy and backend):
// unlike ns/op it does not depend on how well the cores were kept busy. Subtract
// BenchmarkDirect's to get the proxy's own CPU per request.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkDirect is the floor: client → backend.
func BenchmarkDirect(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			runBench(b, benchBackend(b, sz.body), len(sz.body))
		})
	}
}

// BenchmarkHTTPUtilProxy is the baseline: client → httputil.ReverseProxy (with the
// same tuned Transport, no BufferPool) → backend.
func BenchmarkHTTPUtilProxy(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			target, _ := url.Parse("http://" + benchBackend(b, sz.body))
			proxy := httputil.NewSingleHostReverseProxy(target)
			proxy.Transport = benchTransport(b)
			proxy.ErrorLog = nil
			runBench(b, benchServer(b, proxy), len(sz.body))
		})
	}
}

// BenchmarkRouter is client → Router → backend.
func BenchmarkRouter(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			r := newTestRouter(b, Options{})
			applyRoutes(b, r, httpRoute("web", Backend{ID: "a", Address: benchBackend(b, sz.body), Weight: 1}))
			runBench(b, r.Addr("web").String(), len(sz.body))
		})
	}
}

// BenchmarkRouterAuto is BenchmarkRouter (13 B) on an auto route: keep-alive requests
// after the connection's first pay nothing for the sniff.
func BenchmarkRouterAuto(b *testing.B) {
	r := newTestRouter(b, Options{})
	body := benchSizes[0].body
	applyRoutes(b, r, Route{Name: "web", Listen: "127.0.0.1:0", Protocol: Auto, Backends: []Backend{{ID: "a", Address: benchBackend(b, body), Weight: 1}}})
	runBench(b, r.Addr("web").String(), len(body))
}

// BenchmarkRouterAccessLog is BenchmarkRouter with the access log on (to io.Discard).
func BenchmarkRouterAccessLog(b *testing.B) {
	r := newTestRouter(b, Options{AccessLog: io.Discard})
	body := benchSizes[0].body
	applyRoutes(b, r, httpRoute("web", Backend{ID: "a", Address: benchBackend(b, body), Weight: 1}))
	runBench(b, r.Addr("web").String(), len(body))
}

// BenchmarkTCP is a 1 KiB echo round trip on one connection, direct and through a TCP route.
func BenchmarkTCP(b *testing.B) {
	echo := newEchoServer(b, "")
	msg := strings.Repeat("x", 1023) + "\n"
	run := func(b *testing.B, addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, len(msg))
		b.ReportAllocs()
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := io.WriteString(c, msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, echo) })
	b.Run("router", func(b *testing.B) {
		r := newTestRouter(b, Options{})
		applyRoutes(b, r, tcpRoute("tcp", time.Second, Backend{ID: "e", Address: echo, Weight: 1}))
		run(b, r.Addr("tcp").String())
	})
}

// BenchmarkPick is the weighted choice alone, under contention.
func BenchmarkPick(b *testing.B) {
	p := newPicker(testBackends(3), []int{90, 9, 1})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p.pick(0, nil) == nil {
				b.Fatal("no backend")
			}
		}
	})
}

// BenchmarkAutoNewConnection is what protocol auto's sniffing costs per connection:
// each op dials an explicit route (http or tcp) and an auto route (default sniff
// window), interleaved so both see the same machine, and runs one exchange on a new
// connection to each. Reported: the median time of each (p50-explicit-us,
// p50-auto-us) and their difference (added-us). HTTP and a client-first binary line
// should cost the same on both (their first bytes arrive with the connection); a
// server-first greeting arrives one sniff window late on the auto route.
//
//	go test -run '^$' -bench AutoNewConnection -benchtime 300x ./agent/router/
func BenchmarkAutoNewConnection(b *testing.B) {
	httpBackend := benchBackend(b, benchSizes[0].body)
	echo := newEchoServer(b, "")
	greeter := newGreetingServer(b, "220 ready\r\n", "")
	request := "GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
	binary := "\x00\x00\x00\x08\x04\xd2\x16\x2f\n"
	exchanges := []struct {
		name, backend string
		explicit      Protocol
		do            func(c net.Conn) error
	}{
		{"http-get", httpBackend, HTTP, func(c net.Conn) error {
			if _, err := io.WriteString(c, request); err != nil {
				return err
			}
			_, err := io.ReadAll(c) // Connection: close
			return err
		}},
		{"client-first-binary", echo, TCP, func(c net.Conn) error {
			if _, err := io.WriteString(c, binary); err != nil {
				return err
			}
			_, err := io.ReadFull(c, make([]byte, len(binary)))
			return err
		}},
		{"server-first-greeting", greeter, TCP, func(c net.Conn) error {
			_, err := io.ReadFull(c, make([]byte, len("220 ready\r\n")))
			return err
		}},
	}
	for _, ex := range exchanges {
		b.Run(ex.name, func(b *testing.B) {
			backends := []Backend{{ID: "a", Address: ex.backend, Weight: 1}}
			re, ra := newTestRouter(b, Options{}), newTestRouter(b, Options{})
			applyRoutes(b, re, Route{Name: "r", Listen: "127.0.0.1:0", Protocol: ex.explicit, Backends: backends})
			applyRoutes(b, ra, Route{Name: "r", Listen: "127.0.0.1:0", Protocol: Auto, Backends: backends})
			once := func(addr string) time.Duration {
				start := time.Now()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := ex.do(c); err != nil {
					b.Fatal(err)
				}
				return time.Since(start)
			}
			explicitAddr, autoAddr := re.Addr("r").String(), ra.Addr("r").String()
			var explicit, auto []time.Duration
			for b.Loop() {
				explicit = append(explicit, once(explicitAddr))
				auto = append(auto, once(autoAddr))
			}
			median := func(d []time.Duration) float64 {
				slices.Sort(d)
				return float64(d[len(d)/2].Microseconds())
			}
			e, a := median(explicit), median(auto)
			b.ReportMetric(e, "p50-explicit-us")
			b.ReportMetric(a, "p50-auto-us")
			b.ReportMetric(a-e, "added-us")
		})
	}
}
