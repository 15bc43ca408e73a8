package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestNetworkTopAndAccessLog: under load, `network top` shows the router receiving and
// the web containers sending, and the router's access log has one JSON line per
// request naming the route (service:port), the backend, its revision, status and
// duration.
func TestNetworkTopAndAccessLog(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, rolloutYAML("v1", port))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, time.Minute)
	time.Sleep(500 * time.Millisecond)
	r := p.mustLifecycle("network", "top", "--format", "json", "--interval", "1s")
	load.stop()

	type row struct {
		Service, Name, Role                string
		RxBytesPerSecond, TxBytesPerSecond float64
		RxBytes, TxBytes                   uint64
	}
	rows := map[string]row{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var x row
		assert.NilError(t, json.Unmarshal([]byte(line), &x), line)
		rows[x.Name] = x
	}
	assert.Check(t, is.Len(rows, 4), r.stdout) // the router and 3 replicas
	router := rows[p.router()]
	assert.Check(t, is.Equal(router.Role, "router"))
	assert.Check(t, router.RxBytesPerSecond > 1000, "the router receives the load: %+v", router)
	for n := 1; n <= 3; n++ {
		web := rows[fmt.Sprintf("%s-web-r1-%d", p.name, n)]
		assert.Check(t, is.Equal(web.Role, "app"))
		assert.Check(t, web.TxBytesPerSecond > 0, "web-r1-%d answers: %+v", n, web)
	}

	logs := p.s.docker(t, p.dir, nil, "logs", "--tail", "5", p.router())
	var entry struct {
		Route, Backend, Group string
		Status                int
		DurationMs            float64 `json:"duration_ms"`
	}
	lines := strings.Split(strings.TrimSpace(logs.stdout), "\n")
	assert.NilError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &entry), logs.stdout)
	assert.Check(t, is.Equal(entry.Route, fmt.Sprintf("web:%d", port)))
	assert.Check(t, strings.HasPrefix(entry.Backend, p.name+"-web-r1-"), entry.Backend)
	assert.Check(t, is.Equal(entry.Group, "r1"))
	assert.Check(t, is.Equal(entry.Status, 200))
	assert.Check(t, entry.DurationMs > 0)
}

// TestTCPRouteRollingUnderLoad: with protocol tcp the router balances connections; a
// rolling deploy sends new connections to the new containers, and the old ones' open
// connections are closed after the drain bound (idle keep-alive connections the client
// then replaces): no request fails.
func TestTCPRouteRollingUnderLoad(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	tcp := func(version string) string {
		return rolloutYAML(version, port, "    x-lifecycle: {protocol: tcp, drain: 1s}")
	}
	p := s.newProject(t, tcp("v1"))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", loadRate, 2*time.Minute)
	p.write(tcp("v2"))
	p.mustLifecycle("deploy")
	time.Sleep(2 * time.Second)
	rep := load.stop()
	t.Logf("tcp route, rolling v1->v2: %s", rep)
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, rep.Bodies["v2"] > 0, rep.String())
}
