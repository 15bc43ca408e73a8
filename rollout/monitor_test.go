package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// monitorFake is a project with a running web container of revision 2, a stopped one of
// revision 1, and a router whose counters grow by 100 requests at each read.
func monitorFake(t *testing.T) *engine.Fake {
	labels := func(service, rev, role string) map[string]string {
		return map[string]string{compose.LabelProject: "p", compose.LabelService: service, compose.LabelRevision: rev, compose.LabelRole: role}
	}
	containers := []engine.Container{
		{ID: "id-w2", Name: "p-web-r2-1", State: "running", Health: "healthy", Labels: labels("web", "2", "app")},
		{ID: "id-w1", Name: "p-web-r1-1", State: "exited", Labels: labels("web", "1", "app")},
		{ID: "id-r", Name: "p-lifecycle-router", State: "running", Labels: labels("web", "", compose.RoleRouter)},
	}
	t0 := time.Now()
	var mu sync.Mutex
	reads := uint64(0)
	record := func(rev, result string, at time.Time) engine.Volume {
		return engine.Volume{Name: "h" + rev, Labels: map[string]string{labelHistory: "web", compose.LabelRevision: rev, labelResult: result, labelTime: at.Format(time.RFC3339Nano)}}
	}
	// Revision 3's rollout: 42 s from its first event to its result.
	rolledBack := record("3", ResultRolledBack, t0.Add(-time.Minute))
	timeline, err := encodeTimeline(Timeline{Start: t0.Add(-2 * time.Minute), End: t0.Add(-time.Minute), Events: []TimelineEvent{
		{Time: t0.Add(-time.Minute - 42*time.Second), Kind: KindStep, Text: "Creating"},
		{Time: t0.Add(-time.Minute), Kind: KindResult, Text: ResultRolledBack},
	}})
	assert.NilError(t, err)
	rolledBack.Labels[labelTimeline] = timeline
	return &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) { return containers, nil },
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			// The stopped revision-1 container was OOM-killed before the monitor started.
			return engine.ContainerDetails{ID: id, RestartCount: 3, OOMKilled: id == "id-w1"}, nil
		},
		// The running container is OOM-killed twice while the monitor runs.
		EventsFn: func(ctx context.Context, l map[string]string, actions []string) (<-chan engine.Event, <-chan error) {
			evs, errs := make(chan engine.Event, 2), make(chan error, 1)
			evs <- engine.Event{Action: engine.EventOOM, ContainerID: "id-w2", Name: "p-web-r2-1"}
			evs <- engine.Event{Action: engine.EventOOM, ContainerID: "id-w2", Name: "p-web-r2-1"}
			go func() { <-ctx.Done(); close(evs); close(errs) }()
			return evs, errs
		},
		StreamStatsFn: func(ctx context.Context, id string) (<-chan container.StatsResponse, error) {
			ch := make(chan container.StatsResponse, 2)
			ch <- sample(t0, 1e9, 100e9, 0, 0, 0, 0)
			ch <- sample(t0.Add(time.Second), 2_500_000_000, 104e9, 1e9, 100e9, 1000, 4096)
			go func() { <-ctx.Done(); close(ch) }()
			return ch, nil
		},
		ListVolumesFn: func(ctx context.Context, l map[string]string) ([]engine.Volume, error) {
			// Revision 3 failed and was rolled back: 2 is current.
			return []engine.Volume{record("1", ResultDeployed, t0.Add(-2*time.Hour)), record("2", ResultDeployed, t0.Add(-time.Hour)), rolledBack}, nil
		},
		ExecSessionFn: func(ctx context.Context, id string, cmd []string) (*engine.Session, error) {
			return nil, fmt.Errorf("no session")
		},
		ExecFn: func(ctx context.Context, id string, cmd []string, stdin []byte) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			// 100 requests per read: 60 within 1 ms, 40 within 10 ms; 1 in 100 a 5xx.
			lat := router.Latency{Count: 100 * reads, SumNs: reads * 100 * 3e6, Buckets: make([]uint64, len(router.LatencyBounds)+1)}
			lat.Buckets[5], lat.Buckets[8] = 60*reads, 40*reads
			c := router.Counters{Requests: 100 * reads, Responses2xx: 99 * reads, Responses5xx: reads, Errors: 2, Latency: lat}
			snap := router.Snapshot{Time: t0, Routes: []router.RouteStats{
				{Name: "web:80", Counters: c, Backends: []router.BackendStats{{ID: "p-web-r2-1", Since: t0, Counters: c}}},
			}}
			return jsonOf(t, snap), nil
		},
	}
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	assert.NilError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, resp.StatusCode, http.StatusOK)
	var parser expfmt.TextParser
	families, err := parser.TextToMetricFamilies(resp.Body)
	assert.NilError(t, err)
	return families
}

// find returns the metric of the family whose labels include want.
func find(families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := families[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func TestMonitorServesPrometheusMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Monitor(ctx, monitorFake(t), "p", MonitorOptions{Listen: "127.0.0.1:0", Refresh: time.Hour, Serving: func(a string) { addrs <- a }})
	}()
	addr := <-addrs
	web := map[string]string{"project": "p", "service": "web", "revision": "2", "container": "p-web-r2-1"}
	var families map[string]*dto.MetricFamily
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		families = scrape(t, addr)
		if find(families, "lifecycle_container_cpu_seconds_total", web) == nil {
			return poll.Continue("no sample yet")
		}
		if m := find(families, "lifecycle_container_oom_kills_total", web); m == nil || m.GetCounter().GetValue() < 2 {
			return poll.Continue("oom events not counted yet: %v", m)
		}
		return poll.Success()
	}, poll.WithTimeout(5*time.Second), poll.WithDelay(20*time.Millisecond))

	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		m := find(families, name, labels)
		assert.Assert(t, m != nil, "%s%v missing", name, labels)
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
		return -1
	}
	assert.Check(t, is.Equal(families["lifecycle_container_cpu_seconds_total"].GetType(), dto.MetricType_COUNTER))
	assert.Check(t, is.Equal(value("lifecycle_container_cpu_seconds_total", web), 2.5))
	assert.Check(t, is.Equal(value("lifecycle_container_memory_usage_bytes", web), float64(64<<20)))
	assert.Check(t, is.Equal(value("lifecycle_container_memory_limit_bytes", web), float64(256<<20)))
	assert.Check(t, is.Equal(value("lifecycle_container_network_receive_bytes_total", web), 1000.0))
	assert.Check(t, is.Equal(value("lifecycle_container_network_transmit_bytes_total", web), 500.0))
	assert.Check(t, is.Equal(value("lifecycle_container_block_read_bytes_total", web), 4096.0))
	assert.Check(t, is.Equal(value("lifecycle_container_block_write_bytes_total", web), 7.0))
	assert.Check(t, is.Equal(value("lifecycle_container_pids", web), 5.0))
	assert.Check(t, is.Equal(value("lifecycle_container_restarts_total", web), 3.0))
	assert.Check(t, is.Equal(value("lifecycle_container_up", web), 1.0))
	assert.Check(t, is.Equal(value("lifecycle_container_up", map[string]string{"container": "p-web-r1-1", "revision": "1"}), 0.0))
	assert.Check(t, find(families, "lifecycle_container_cpu_seconds_total", map[string]string{"container": "p-web-r1-1"}) == nil, "a stopped container has no stream")
	assert.Check(t, is.Equal(value("lifecycle_container_health_status", map[string]string{"container": "p-web-r2-1", "state": "healthy"}), 1.0))
	assert.Check(t, is.Equal(value("lifecycle_container_health_status", map[string]string{"container": "p-web-r2-1", "state": "unhealthy"}), 0.0))
	assert.Check(t, is.Equal(value("lifecycle_container_health_status", map[string]string{"service": RouterService, "state": "none"}), 1.0))
	assert.Check(t, is.Equal(value("lifecycle_service_containers", map[string]string{"service": "web"}), 1.0))
	assert.Check(t, is.Equal(value("lifecycle_service_healthy_containers", map[string]string{"service": "web"}), 1.0))
	assert.Check(t, is.Equal(value("lifecycle_service_revision", map[string]string{"service": "web", "revision": "2"}), 2.0))
	assert.Check(t, find(families, "lifecycle_service_revision", map[string]string{"revision": "3"}) == nil)
	assert.Check(t, find(families, "lifecycle_service_last_rollout_timestamp_seconds", map[string]string{"revision": "3", "result": ResultRolledBack}) != nil)
	assert.Check(t, is.Equal(families["lifecycle_container_oom_kills_total"].GetType(), dto.MetricType_COUNTER))
	assert.Check(t, is.Equal(value("lifecycle_container_oom_kills_total", web), 2.0), "two oom events")
	assert.Check(t, is.Equal(value("lifecycle_container_oom_kills_total", map[string]string{"container": "p-web-r1-1", "revision": "1"}), 1.0), "OOMKilled at first sight")
	assert.Check(t, is.Equal(value("lifecycle_container_oom_kills_total", map[string]string{"service": RouterService}), 0.0))
	assert.Check(t, is.Equal(value("lifecycle_service_last_rollout_duration_seconds", map[string]string{"service": "web", "revision": "3", "result": ResultRolledBack}), 42.0))
	assert.Check(t, is.Len(families["lifecycle_service_last_rollout_duration_seconds"].GetMetric(), 1), "only the last record's")
	assert.Check(t, is.Equal(value("lifecycle_service_revision_records", map[string]string{"service": "web", "result": ResultDeployed}), 2.0))
	assert.Check(t, is.Equal(value("lifecycle_service_revision_records", map[string]string{"service": "web", "result": ResultRolledBack}), 1.0))
	assert.Check(t, is.Equal(value("lifecycle_service_revision_records", map[string]string{"service": "web", "result": ResultFailed}), 0.0))

	route := map[string]string{"project": "p", "service": "web", "route": "web:80"}
	backend := map[string]string{"route": "web:80", "container": "p-web-r2-1", "revision": "2", "service": "web"}
	first := value("lifecycle_route_requests_total", route)
	assert.Check(t, first >= 100, first)
	assert.Check(t, is.Equal(value("lifecycle_backend_requests_total", backend), first))
	route5xx := map[string]string{"route": "web:80", "code": "5xx"}
	assert.Check(t, is.Equal(value("lifecycle_route_responses_total", route5xx), first/100))
	assert.Check(t, is.Equal(value("lifecycle_route_errors_total", route), 2.0))
	h := find(families, "lifecycle_backend_request_duration_seconds", backend)
	assert.Assert(t, h != nil && h.Histogram != nil)
	assert.Check(t, is.Equal(h.Histogram.GetSampleCount(), uint64(first)))
	assert.Check(t, is.Equal(h.Histogram.GetSampleSum(), first*0.003))
	for _, b := range h.Histogram.Bucket {
		switch b.GetUpperBound() {
		case 0.0005:
			assert.Check(t, is.Equal(b.GetCumulativeCount(), uint64(0)))
		case 0.001:
			assert.Check(t, is.Equal(b.GetCumulativeCount(), uint64(first*0.6)))
		case 0.01:
			assert.Check(t, is.Equal(b.GetCumulativeCount(), uint64(first)))
		}
	}
	assert.Check(t, is.Equal(value("lifecycle_monitor_scrape_errors", map[string]string{"source": "router"}), 0.0))
	// The router's counters are read at each scrape: the counter grows.
	families = scrape(t, addr)
	assert.Check(t, value("lifecycle_route_requests_total", route) > first)

	cancel()
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("monitor did not stop")
	}
	_, err := http.Get("http://" + addr + "/metrics")
	assert.Check(t, err != nil, "the server still answers after the monitor stopped")
}

func TestMonitorBadListen(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer busy.Close()
	for _, listen := range []string{"9464", "127.0.0.1", "localhost:notaport", busy.Addr().String()} {
		err := Monitor(context.Background(), &engine.Fake{}, "p", MonitorOptions{Listen: listen})
		assert.Check(t, errors.Is(err, ErrListen), "%s: %v", listen, err)
		assert.Check(t, is.ErrorContains(err, listen))
	}
}

// A router that does not answer is counted in lifecycle_monitor_scrape_errors and the
// containers' metrics are still served.
func TestMonitorRouterDownIsAScrapeError(t *testing.T) {
	fake := monitorFake(t)
	fake.ExecFn = func(ctx context.Context, id string, cmd []string, stdin []byte) ([]byte, error) {
		return nil, fmt.Errorf("container %s is restarting", id)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Monitor(ctx, fake, "p", MonitorOptions{Listen: "127.0.0.1:0", Refresh: time.Hour, Serving: func(a string) { addrs <- a }})
	}()
	addr := <-addrs
	families := scrape(t, addr)
	m := find(families, "lifecycle_monitor_scrape_errors", map[string]string{"source": "router"})
	assert.Assert(t, m != nil)
	assert.Check(t, is.Equal(m.GetGauge().GetValue(), 1.0))
	assert.Check(t, families["lifecycle_route_requests_total"] == nil)
	assert.Check(t, find(families, "lifecycle_container_up", map[string]string{"container": "p-web-r2-1"}) != nil)
	cancel()
	assert.NilError(t, <-done)
}

// A record's rollout duration spans its timeline's events (from the deploy's start when
// the oldest were dropped); a record without timeline has none.
func TestRolloutDuration(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	withTimeline := func(tl Timeline) Record {
		s, err := encodeTimeline(tl)
		assert.NilError(t, err)
		return Record{Service: "web", Revision: 2, timeline: s}
	}
	events := []TimelineEvent{{Time: t0.Add(3 * time.Second)}, {Time: t0.Add(5 * time.Second)}, {Time: t0.Add(10 * time.Second)}}

	_, ok := rolloutDuration(Record{Service: "web", Revision: 1})
	assert.Check(t, !ok, "no timeline")
	_, ok = rolloutDuration(Record{Service: "web", Revision: 1, timeline: "gz1:not base64"})
	assert.Check(t, !ok, "unreadable timeline")
	_, ok = rolloutDuration(withTimeline(Timeline{Start: t0, End: t0.Add(time.Second)}))
	assert.Check(t, !ok, "no event")
	d, ok := rolloutDuration(withTimeline(Timeline{Start: t0, End: t0.Add(10 * time.Second), Events: events}))
	assert.Check(t, ok)
	assert.Check(t, is.Equal(d, 7*time.Second))
	d, ok = rolloutDuration(withTimeline(Timeline{Start: t0, End: t0.Add(10 * time.Second), Events: events[1:], DroppedEvents: 1}))
	assert.Check(t, ok)
	assert.Check(t, is.Equal(d, 10*time.Second), "the deploy's start when events were dropped")
}

// The OOM kills of a container seen first with State.OOMKilled are not counted twice
// when its oom event came first (the monitor saw the kill itself).
func TestOOMKillsFirstSight(t *testing.T) {
	var inspects atomic.Int32
	fake := &engine.Fake{InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		inspects.Add(1)
		if id == "gone" {
			return engine.ContainerDetails{}, fmt.Errorf("no such container")
		}
		return engine.ContainerDetails{ID: id, OOMKilled: true}, nil
	}}
	k := newOOMKills(fake, "p", nil)
	k.events["a"] = 1 // the event, before the first sight
	listed := []engine.Container{{ID: "a"}, {ID: "b"}, {ID: "gone"}}
	got := k.totals(context.Background(), listed)
	assert.Check(t, is.DeepEqual(got, map[string]uint64{"a": 1, "b": 1, "gone": 0}))
	assert.Check(t, is.Equal(inspects.Load(), int32(3)))
	k.events["b"]++ // b is killed again, while watched
	got = k.totals(context.Background(), listed[:2])
	assert.Check(t, is.DeepEqual(got, map[string]uint64{"a": 1, "b": 2}))
	assert.Check(t, is.Equal(inspects.Load(), int32(3)), "seen containers are not inspected again; gone ones are no longer listed")
	assert.Check(t, is.DeepEqual(k.eventCounts(), map[string]uint64{"a": 1, "b": 1}), "the alert rule counts the events only")
}

// With x-lifecycle.backup.to the monitor exports the project's backups and its last
// good drill, read from the target; an unreadable target is a scrape error, not a
// failed scrape.
func TestMonitorBackupMetrics(t *testing.T) {
	target, base := fakeBackups(t)
	for _, tc := range []struct {
		to      string
		backups float64
		errors  float64
	}{
		{to: target.Dir, backups: 3},
		{to: filepath.Join(target.Dir, "shop-1", ManifestFile), errors: 1}, // a file, not a directory
	} {
		ctx, cancel := context.WithCancel(context.Background())
		addrs := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- Monitor(ctx, monitorFake(t), "shop", MonitorOptions{Listen: "127.0.0.1:0", Refresh: time.Hour, BackupTo: tc.to, Serving: func(a string) { addrs <- a }})
		}()
		families := scrape(t, <-addrs)
		m := find(families, "lifecycle_monitor_scrape_errors", map[string]string{"source": "backups"})
		assert.Assert(t, m != nil, tc.to)
		assert.Check(t, is.Equal(m.GetGauge().GetValue(), tc.errors), tc.to)
		if tc.errors == 0 {
			assert.Check(t, is.Equal(find(families, "lifecycle_backups", map[string]string{"project": "shop"}).GetGauge().GetValue(), tc.backups))
			good := find(families, "lifecycle_backup_last_good_drill_timestamp_seconds", map[string]string{"project": "shop"})
			assert.Assert(t, good != nil)
			assert.Check(t, is.Equal(good.GetGauge().GetValue(), float64(base.Add(49*time.Hour).Unix())))
			assert.Check(t, is.Equal(find(families, "lifecycle_backup_last_good_drill_rto_seconds", nil).GetGauge().GetValue(), 8.5))
		} else {
			assert.Check(t, families["lifecycle_backups"] == nil)
		}
		cancel()
		assert.NilError(t, <-done)
	}
}
