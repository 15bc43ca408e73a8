package e2e

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// protocolsProject publishes three ports of one service with no x-lifecycle at all:
// HTTP (8080), a server-first line protocol (7000: the server greets first) and a
// client-first binary protocol (7001). %[1]s is the image version, %[2]d..%[4]d the
// host ports.
const protocolsProject = `
services:
  app:
    image: {{image:%[1]s}}
    environment: {GREET_PORT: "7000", FRAME_PORT: "7001", QUIET: "1"}
    ports: ["127.0.0.1:%[2]d:8080", "127.0.0.1:%[3]d:7000", "127.0.0.1:%[4]d:7001"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    stop_grace_period: 5s
    deploy:
      replicas: 2
      update_config: {parallelism: 2}
`

// TestNonHTTPProtocolsRollingUnderLoad: with the default protocol (auto), every
// published port works, whatever it speaks, and keeps working through a rolling
// deploy: HTTP requests, server-first sessions and client-first binary sessions run
// the whole time, and none fails.
func TestNonHTTPProtocolsRollingUnderLoad(t *testing.T) {
	s := setup(t)
	began := time.Now()
	defer func() { t.Logf("test body took %s", time.Since(began).Round(time.Millisecond)) }()
	web, greet, frame := freePort(t), freePort(t), freePort(t)
	yaml := func(version string) string { return fmt.Sprintf(protocolsProject, version, web, greet, frame) }
	p := s.newProject(t, yaml("v1"))
	p.mustLifecycle("deploy")
	waitAnswers(t, web, "v1", 30*time.Second)

	httpLoad := startRateLoad(t, web, "/", 100, time.Minute)
	greetLoad := startSessionLoad(t, greet, greetSession, 4, time.Minute)
	frameLoad := startSessionLoad(t, frame, frameSession, 4, time.Minute)
	time.Sleep(time.Second) // sessions on v1 before the deploy starts
	p.write(yaml("v2"))
	start := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("rolling deploy v1->v2 took %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(time.Second) // and on v2 after it ended
	h, g, f := httpLoad.stop(), greetLoad.stop(), frameLoad.stop()
	t.Logf("http: %s", h)
	t.Logf("server-first: %s", g)
	t.Logf("client-first: %s", f)
	assert.Check(t, is.Equal(h.Failed, 0), h.String())
	assert.Check(t, h.Bodies["v1"] > 0 && h.Bodies["v2"] > 0, h.String())
	for _, r := range []sessionReport{g, f} {
		assert.Check(t, is.Equal(r.Failed, 0), r.String())
		assert.Check(t, r.Versions["v1"] > 0 && r.Versions["v2"] > 0, r.String())
	}
	// The greeting waits for the router's sniff window (200ms by default), not more.
	assert.Check(t, g.P50 >= 150*time.Millisecond && g.P50 < time.Second, g.String())
	// Client-first sessions do not wait for it.
	assert.Check(t, f.P50 < 150*time.Millisecond, f.String())
}

// greetSession speaks the test app's server-first protocol: it waits for the greeting,
// sends a line and QUIT. It returns the version that greeted.
func greetSession(c net.Conn) (string, error) {
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("greeting: %w", err)
	}
	version, ok := strings.CutPrefix(strings.TrimSpace(line), "HELLO ")
	if !ok {
		return "", fmt.Errorf("greeting %q", line)
	}
	if _, err := io.WriteString(c, "PING 1\n"); err != nil {
		return version, err
	}
	if line, err = br.ReadString('\n'); err != nil || line != version+" PING 1\n" {
		return version, fmt.Errorf("answer %q: %v", line, err)
	}
	if _, err := io.WriteString(c, "QUIT\n"); err != nil {
		return version, err
	}
	if line, err = br.ReadString('\n'); err != nil || line != "BYE\n" {
		return version, fmt.Errorf("answer to QUIT %q: %v", line, err)
	}
	return version, nil
}

// frameSession speaks the test app's client-first binary protocol: two frames, two
// answers from the same version.
func frameSession(c net.Conn) (string, error) {
	version := ""
	for _, payload := range []string{"\x00\x01ping", "pong\xff"} {
		if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)); err != nil {
			return version, err
		}
		var head [4]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return version, fmt.Errorf("answer: %w", err)
		}
		n := binary.BigEndian.Uint32(head[:])
		if n > 4096 {
			return version, fmt.Errorf("answer of %d bytes", n)
		}
		answer := make([]byte, n)
		if _, err := io.ReadFull(c, answer); err != nil {
			return version, fmt.Errorf("answer: %w", err)
		}
		v, rest, ok := strings.Cut(string(answer), ":")
		if !ok || rest != payload || (version != "" && v != version) {
			return version, fmt.Errorf("answer %q to %q", answer, payload)
		}
		version = v
	}
	return version, nil
}

// sessionLoad runs sessions of a TCP protocol against 127.0.0.1:port from a few
// workers, one connection per session, until stop or its time bound.
type sessionLoad struct {
	stopCh   chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	report   sessionReport
	stopOnce sync.Once
	stopFn   func()
}

type sessionReport struct {
	Total, Failed int
	Versions      map[string]int // who served the successful sessions
	Errors        map[string]int
	P50           time.Duration // connect to the first answer
}

func (r sessionReport) String() string {
	return fmt.Sprintf("sessions=%d failed=%d p50-first-answer=%s versions=%v errors=%v", r.Total, r.Failed, r.P50.Round(time.Millisecond), r.Versions, r.Errors)
}

func startSessionLoad(t *testing.T, port int, session func(net.Conn) (string, error), workers int, maxDuration time.Duration) *sessionLoad {
	t.Helper()
	l := &sessionLoad{stopCh: make(chan struct{}), report: sessionReport{Versions: map[string]int{}, Errors: map[string]int{}}}
	var firstAnswers []time.Duration
	deadline := time.Now().Add(maxDuration)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for range workers {
		l.wg.Go(func() {
			for time.Now().Before(deadline) {
				select {
				case <-l.stopCh:
					return
				default:
				}
				start := time.Now()
				version, err := func() (string, error) {
					c, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						return "", err
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(10 * time.Second))
					fc := &firstReadConn{Conn: c}
					v, err := session(fc)
					if err == nil {
						l.mu.Lock()
						firstAnswers = append(firstAnswers, fc.first.Sub(start))
						l.mu.Unlock()
					}
					return v, err
				}()
				l.mu.Lock()
				l.report.Total++
				if err != nil {
					l.report.Failed++
					if len(l.report.Errors) < 10 {
						l.report.Errors[err.Error()]++
					}
				} else {
					l.report.Versions[version]++
				}
				l.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	finish := func() {
		close(l.stopCh)
		l.wg.Wait()
		sort.Slice(firstAnswers, func(i, j int) bool { return firstAnswers[i] < firstAnswers[j] })
		if len(firstAnswers) > 0 {
			l.report.P50 = firstAnswers[len(firstAnswers)/2]
		}
	}
	l.stopFn = finish
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *sessionLoad) stop() sessionReport {
	l.stopOnce.Do(l.stopFn)
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.report
}

// firstReadConn notes when the first byte arrived.
type firstReadConn struct {
	net.Conn
	first time.Time
}

func (c *firstReadConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.first.IsZero() {
		c.first = time.Now()
	}
	return n, err
}
