package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// monitorProject is a routed web service of 2 replicas with a 64 MiB memory limit
// (GET /hog?mib=N allocates: over the limit, the kernel kills the replica).
const monitorProject = `
services:
  web:
    image: {{image:v1}}
    ports: ["127.0.0.1:%d:8080"]
    environment: {QUIET: "1", MEMORY_HOG: "1"}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy:
      replicas: 2
      resources: {limits: {memory: 64M}}
`

// scrapeMetrics gets /metrics and parses it with the Prometheus text parser.
func scrapeMetrics(addr string) (map[string]*dto.MetricFamily, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var parser expfmt.TextParser
	return parser.TextToMetricFamilies(resp.Body)
}

// metricValues are the values of a family's series whose labels include want, by the
// value of the label key.
func metricValues(families map[string]*dto.MetricFamily, name string, want map[string]string, key string) map[string]float64 {
	out := map[string]float64{}
	f := families[name]
	if f == nil {
		return out
	}
next:
	for _, m := range f.Metric {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		v := m.GetGauge().GetValue()
		if m.Counter != nil {
			v = m.Counter.GetValue()
		}
		out[labels[key]] = v
	}
	return out
}

func sumValues(m map[string]float64) float64 {
	total := 0.0
	for _, v := range m {
		total += v
	}
	return total
}

// TestPrometheusMonitor: `monitor` scraped while the project runs: both
// replicas with their labels, memory within the limit, the router's request counter
// grows by the requests sent through the published port, the deploy's duration and
// record, an OOM kill counted, and SIGINT stops it (exit 0, port released).
func TestPrometheusMonitor(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, fmt.Sprintf(monitorProject, port))
	start := time.Now()
	p.mustLifecycle("deploy")
	deployed := time.Since(start)
	waitAnswers(t, port, "v1", 30*time.Second)
	t.Logf("deployed in %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()

	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := execDocker(ctx, s, "lifecycle", "-p", p.name, "monitor", "--listen", addr)
	cmd.Dir = p.dir
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	assert.NilError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()

	want := map[string]string{"project": p.name, "service": "web", "revision": "1"}
	replicas := []string{p.name + "-web-r1-1", p.name + "-web-r1-2"}
	var families map[string]*dto.MetricFamily
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		var err error
		families, err = scrapeMetrics(addr)
		if err != nil {
			return poll.Continue("scrape: %v (stderr: %s)", err, stderr.String())
		}
		if mem := metricValues(families, "lifecycle_container_memory_usage_bytes", want, "container"); len(mem) < 2 {
			return poll.Continue("memory of %v", mem)
		}
		return poll.Success()
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))

	t.Logf("first complete scrape %s after starting the monitor", time.Since(start).Round(time.Millisecond))
	mem := metricValues(families, "lifecycle_container_memory_usage_bytes", want, "container")
	limit := metricValues(families, "lifecycle_container_memory_limit_bytes", want, "container")
	up := metricValues(families, "lifecycle_container_up", want, "container")
	cpu := metricValues(families, "lifecycle_container_cpu_seconds_total", want, "container")
	t.Logf("memory %v limit %v cpu %v", mem, limit, cpu)
	for _, name := range replicas {
		assert.Check(t, mem[name] > 0, "%s: memory %v", name, mem[name])
		assert.Check(t, is.Equal(limit[name], float64(64<<20)), name)
		assert.Check(t, mem[name] <= limit[name], "%s: memory %v over its limit", name, mem[name])
		assert.Check(t, is.Equal(up[name], 1.0), name)
		assert.Check(t, cpu[name] > 0, "%s: cpu %v", name, cpu[name])
	}
	assert.Check(t, is.Len(mem, 2), "%v", mem)
	assert.Check(t, is.DeepEqual(metricValues(families, "lifecycle_service_revision", map[string]string{"project": p.name, "service": "web"}, "revision"), map[string]float64{"1": 1}))
	assert.Check(t, is.Equal(metricValues(families, "lifecycle_service_healthy_containers", map[string]string{"service": "web"}, "service")["web"], 2.0))
	assert.Check(t, is.Equal(sumValues(metricValues(families, "lifecycle_monitor_scrape_errors", nil, "source")), 0.0))
	duration := metricValues(families, "lifecycle_service_last_rollout_duration_seconds", map[string]string{"project": p.name, "service": "web", "revision": "1"}, "result")
	t.Logf("rollout duration %v (the deploy command took %s)", duration, deployed.Round(time.Millisecond))
	assert.Check(t, is.Len(duration, 1), "%v", duration)
	assert.Check(t, duration["deployed"] > 0 && duration["deployed"] <= deployed.Seconds(), "duration %v, deploy %s", duration, deployed)
	records := metricValues(families, "lifecycle_service_revision_records", map[string]string{"project": p.name, "service": "web"}, "result")
	assert.Check(t, is.DeepEqual(records, map[string]float64{"deployed": 1, "rolled-back": 0, "failed": 0, "rollback": 0}))
	assert.Check(t, is.DeepEqual(metricValues(families, "lifecycle_container_oom_kills_total", want, "container"), map[string]float64{replicas[0]: 0, replicas[1]: 0}))

	routed := map[string]string{"project": p.name, "service": "web"}
	before := sumValues(metricValues(families, "lifecycle_route_requests_total", routed, "route"))
	backendsBefore := sumValues(metricValues(families, "lifecycle_backend_requests_total", routed, "container"))
	const n = 20
	for range n {
		assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
	}
	families, err := scrapeMetrics(addr)
	assert.NilError(t, err)
	after := sumValues(metricValues(families, "lifecycle_route_requests_total", routed, "route"))
	backends := metricValues(families, "lifecycle_backend_requests_total", routed, "container")
	twoxx := sumValues(metricValues(families, "lifecycle_route_responses_total", map[string]string{"project": p.name, "code": "2xx"}, "route"))
	t.Logf("route requests %v → %v; backends %v; 2xx %v", before, after, backends, twoxx)
	assert.Check(t, after-before >= n, "route requests %v → %v after %d requests", before, after, n)
	assert.Check(t, sumValues(backends)-backendsBefore >= n)
	for name := range backends {
		assert.Check(t, name == replicas[0] || name == replicas[1], "backend %s", name)
	}
	assert.Check(t, twoxx >= n)
	h := families["lifecycle_route_request_duration_seconds"]
	assert.Assert(t, h != nil && h.GetType() == dto.MetricType_HISTOGRAM)

	// One replica allocates over its 64 MiB limit (asked from inside it: through the
	// router, a retry would kill the other one too): the kernel kills it, the engine's
	// oom event is counted.
	start = time.Now()
	r := s.docker(t, p.dir, nil, "exec", replicas[0], "/testapp", "healthcheck", "http://127.0.0.1:8080/hog?mib=128")
	t.Logf("exec GET /hog?mib=128 in %s: exit %d", replicas[0], r.code)
	var ooms map[string]float64
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		families, err = scrapeMetrics(addr)
		if err != nil {
			return poll.Continue("scrape: %v", err)
		}
		ooms = metricValues(families, "lifecycle_container_oom_kills_total", want, "container")
		if sumValues(ooms) < 1 {
			return poll.Continue("oom kills %v", ooms)
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second), poll.WithDelay(200*time.Millisecond))
	t.Logf("oom kills %v, %s after the hog request", ooms, time.Since(start).Round(time.Millisecond))
	// The kernel may kill more than one process of the cgroup for one allocation (the
	// exec'd client and the server): each kill is an oom event, so at least one.
	assert.Check(t, ooms[replicas[0]] >= 1, "the hog replica: %v", ooms)
	assert.Check(t, is.Equal(ooms[replicas[1]], 0.0), "the other replica: %v", ooms)
	assert.Check(t, is.Len(ooms, 2), "%v", ooms)
	assert.Check(t, is.Equal(families["lifecycle_container_oom_kills_total"].GetType(), dto.MetricType_COUNTER))

	assert.NilError(t, cmd.Process.Signal(os.Interrupt))
	start = time.Now()
	select {
	case err := <-exited:
		t.Logf("monitor exited %s after SIGINT", time.Since(start).Round(time.Millisecond))
		assert.Check(t, err == nil, "monitor exit: %v; stderr %s", err, stderr.String()) // exit 0
	case <-time.After(15 * time.Second):
		t.Fatalf("monitor still runs 15 s after SIGINT; stderr: %s", stderr.String())
	}
	assert.Check(t, is.Contains(stderr.String(), "serving metrics of project "+p.name))
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		conn.Close()
	}
	assert.Check(t, err != nil, "%s still accepts connections after the monitor exited", addr)
}
