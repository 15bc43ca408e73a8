package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// routerFixture is an agent router container publishing one HTTP route on 127.0.0.1, in
// front of test app containers on a network the test creates.
type routerFixture struct {
	t       *testing.T
	s       *suite
	p       *project
	net     string
	router  string
	port    int
	imageID string
}

func newRouterFixture(t *testing.T) *routerFixture {
	s := setup(t)
	tag := s.agentImage(t)
	p := s.newProject(t, "services: {}")
	f := &routerFixture{t: t, s: s, p: p, net: p.name + "_net", router: p.name + "-router", port: freePort(t), imageID: tag}
	label := "com.docker.compose.project=" + p.name
	f.must("network", "create", "--label", label, f.net)
	f.must("volume", "create", "--label", label, p.name+"_state")
	f.must("run", "-d", "--name", f.router, "--label", label, "--network", f.net,
		"-p", fmt.Sprintf("127.0.0.1:%d:8080", f.port), "--user", "0:0",
		"-v", p.name+"_state:/state", tag, "router")
	return f
}

func (f *routerFixture) must(args ...string) string {
	f.t.Helper()
	r := f.s.docker(f.t, "", nil, args...)
	assert.Assert(f.t, r.code == 0, "docker %s\n%s", strings.Join(args, " "), r)
	return strings.TrimSpace(r.stdout)
}

// backend starts a test app container on the fixture's network.
func (f *routerFixture) backend(name, version string, env ...string) string {
	f.t.Helper()
	args := []string{"run", "-d", "--name", f.p.name + "-" + name, "--label", "com.docker.compose.project=" + f.p.name, "--network", f.net}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	f.must(append(args, imageRef(version))...)
	return f.p.name + "-" + name + ":8080"
}

// apply sends a config with one route to the router through `docker exec … agent ctl`.
func (f *routerFixture) apply(backends map[string]int) {
	f.t.Helper()
	type backend struct {
		ID      string `json:"id"`
		Address string `json:"address"`
		Weight  int    `json:"weight"`
	}
	var bs []backend
	for addr, w := range backends {
		bs = append(bs, backend{ID: addr, Address: addr, Weight: w})
	}
	cfg, err := json.Marshal(map[string]any{"version": 1, "routes": []any{map[string]any{
		"name": "web", "listen": ":8080", "health_path": "/healthz", "health_interval": "500ms", "drain_timeout": "10s", "backends": bs,
	}}})
	assert.NilError(f.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := execDocker(ctx, f.s, "exec", "-i", f.router, "/agent", "ctl", "put-config")
	cmd.Stdin = strings.NewReader(string(cfg))
	out, err := cmd.CombinedOutput()
	assert.NilError(f.t, err, string(out))
}

// waitServing polls the route until it answers body, so a load loop starts on a warm path.
func (f *routerFixture) waitServing(body string) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got, err := routerGet(f.port, "/"); err == nil && got == body {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("router on 127.0.0.1:%d never answered %q", f.port, body)
}

var loadClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func routerGet(port int, path string) (string, error) {
	resp, err := loadClient.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// load sends requests from 8 workers until stop is closed (at most 60 s), counting
// answers per body and every failure.
type load struct {
	mu       sync.Mutex
	versions map[string]int
	failures []string
	total    atomic.Int64
	stop     chan struct{}
	done     sync.WaitGroup
}

func startLoad(port int) *load {
	l := &load{versions: map[string]int{}, stop: make(chan struct{})}
	deadline := time.Now().Add(60 * time.Second)
	for range 8 {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for time.Now().Before(deadline) {
				select {
				case <-l.stop:
					return
				default:
				}
				body, err := routerGet(port, "/")
				l.total.Add(1)
				l.mu.Lock()
				if err != nil {
					l.failures = append(l.failures, err.Error())
				} else {
					l.versions[body]++
				}
				l.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return l
}

func (l *load) finish() {
	close(l.stop)
	l.done.Wait()
}

// TestRouterSwitchesBackendsWithoutFailedRequests runs the agent's router as a container
// and replaces its backend v1 → v2 → v3 under load: no request fails, the old backends
// are drained, and the config survives a restart of the router container.
func TestRouterSwitchesBackendsWithoutFailedRequests(t *testing.T) {
	f := newRouterFixture(t)
	v1 := f.backend("v1", "v1")
	f.apply(map[string]int{v1: 1})
	f.waitServing("v1")

	l := startLoad(f.port)
	time.Sleep(time.Second)
	v2 := f.backend("v2", "v2")
	f.apply(map[string]int{v1: 1, v2: 1})
	time.Sleep(time.Second)
	f.apply(map[string]int{v2: 1})
	time.Sleep(time.Second)
	f.must("rm", "-f", f.p.name+"-v1") // drained: the router sends it nothing any more
	v3 := f.backend("v3", "v3")
	f.apply(map[string]int{v2: 1, v3: 1})
	time.Sleep(time.Second)
	f.apply(map[string]int{v3: 1})
	time.Sleep(time.Second)
	l.finish()

	t.Logf("%d requests, versions %v", l.total.Load(), l.versions)
	assert.Check(t, is.Len(l.failures, 0), "failed requests: %v", l.failures)
	for _, v := range []string{"v1", "v2", "v3"} {
		assert.Check(t, l.versions[v] > 0, "version %s served: %v", v, l.versions)
	}
	assert.Check(t, l.total.Load() > 200)

	f.must("restart", f.router)
	f.waitServing("v3")
}

// TestRouterDrainsInFlightRequests removes a backend while 2 s requests are in flight on
// it: they all complete.
func TestRouterDrainsInFlightRequests(t *testing.T) {
	f := newRouterFixture(t)
	old := f.backend("old", "v1")
	f.apply(map[string]int{old: 1})
	f.waitServing("v1")

	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := routerGet(f.port, "/slow?d=2s")
			errs <- err
		}()
	}
	time.Sleep(500 * time.Millisecond)
	f.apply(map[string]int{f.backend("new", "v2"): 1})
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.Check(t, is.Nil(err), "a request in flight on the removed backend failed")
	}
	f.waitServing("v2")
}
