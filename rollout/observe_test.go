package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// The CPU % of two samples is docker's: the container's share of the system's CPU
// time, times the online CPUs.
func TestCPUPercentIsDockers(t *testing.T) {
	prev := container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1_000_000_000}, SystemUsage: 100_000_000_000, OnlineCPUs: 4}
	cur := container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1_500_000_000}, SystemUsage: 104_000_000_000, OnlineCPUs: 4}
	// 0.5 s of CPU over 4 s of system time (1 s wall on 4 CPUs): half a core.
	assert.Check(t, is.Equal(calculateCPUPercentUnix(prev, cur), 50.0))
	// Without OnlineCPUs, the per-CPU list counts.
	cur.OnlineCPUs = 0
	cur.CPUUsage.PercpuUsage = []uint64{1, 2, 3, 4}
	assert.Check(t, is.Equal(calculateCPUPercentUnix(prev, cur), 50.0))
	// No progress of the system's clock: 0, not a division by zero.
	assert.Check(t, is.Equal(calculateCPUPercentUnix(cur, cur), 0.0))
}

func TestMemoryWithoutCache(t *testing.T) {
	v2 := container.MemoryStats{Usage: 100 << 20, Limit: 400 << 20, Stats: map[string]uint64{"inactive_file": 20 << 20}}
	assert.Check(t, is.Equal(calculateMemUsageUnixNoCache(v2), uint64(80<<20)))
	v1 := container.MemoryStats{Usage: 100 << 20, Stats: map[string]uint64{"total_inactive_file": 30 << 20, "inactive_file": 1}}
	assert.Check(t, is.Equal(calculateMemUsageUnixNoCache(v1), uint64(70<<20)))
	odd := container.MemoryStats{Usage: 10, Stats: map[string]uint64{"inactive_file": 20}}
	assert.Check(t, is.Equal(calculateMemUsageUnixNoCache(odd), uint64(10)))
}

func sample(at time.Time, cpu, system uint64, prevCPU, prevSystem uint64, rx, blkRead uint64) container.StatsResponse {
	return container.StatsResponse{
		Read:        at,
		CPUStats:    container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: cpu}, SystemUsage: system, OnlineCPUs: 2},
		PreCPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: prevCPU}, SystemUsage: prevSystem, OnlineCPUs: 2},
		MemoryStats: container.MemoryStats{Usage: 64 << 20, Limit: 256 << 20, Stats: map[string]uint64{"inactive_file": 0}},
		Networks:    map[string]container.NetworkStats{"eth0": {RxBytes: rx, TxBytes: rx / 2}},
		BlkioStats:  container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{{Op: "read", Value: blkRead}, {Op: "Write", Value: 7}}},
		PidsStats:   container.PidsStats{Current: 5},
	}
}

// A first sample has no previous one: not sampled, CPU 0; the second gives CPU % and
// the rates over the time between the two.
func TestSamplerRates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var s sampler
	s.add(sample(t0, 5e9, 100e9, 0, 0, 1000, 0))
	assert.Check(t, !s.usage.Sampled)
	assert.Check(t, is.Equal(s.usage.CPUPercent, 0.0))
	s.add(sample(t0.Add(2*time.Second), 6e9, 104e9, 5e9, 100e9, 5000, 4096))
	u := s.usage
	assert.Check(t, u.Sampled)
	assert.Check(t, is.Equal(u.CPUPercent, 50.0)) // 1 s of CPU in 4 s of system time on 2 CPUs
	assert.Check(t, is.Equal(u.NetRxPerSecond, 2000.0))
	assert.Check(t, is.Equal(u.NetTxPerSecond, 1000.0))
	assert.Check(t, is.Equal(u.BlockReadPerSec, 2048.0))
	assert.Check(t, is.Equal(u.BlockWritePerSec, 0.0))
	assert.Check(t, is.Equal(u.MemoryBytes, uint64(64<<20)))
	assert.Check(t, is.Equal(u.MemoryPercent, 25.0))
	assert.Check(t, is.Equal(u.Pids, uint64(5)))
	// A counter that went back (a restarted container) is no negative rate.
	s.add(sample(t0.Add(3*time.Second), 7e9, 106e9, 6e9, 104e9, 10, 0))
	assert.Check(t, is.Equal(s.usage.NetRxPerSecond, 0.0))
}

// Rows are grouped by service then revision then number, with totals per revision and
// service; the service's traffic total is its routes'.
func TestGroupStats(t *testing.T) {
	row := func(service string, rev, n int, cpu float64, mem uint64, health string) ContainerStats {
		u := Usage{Containers: 1, CPUPercent: cpu, MemoryBytes: mem, MemoryLimitBytes: 100, Health: health, Sampled: true, Pids: 1}
		if health == "healthy" {
			u.Healthy = 1
		}
		return ContainerStats{Name: fmt.Sprintf("p-%s-r%d-%d", service, rev, n), Service: service, Revision: rev, Number: n, Usage: u}
	}
	rows := []ContainerStats{row("web", 2, 1, 10, 30, "healthy"), row("db", 0, 1, 1, 10, ""), row("web", 1, 2, 5, 20, "unhealthy"), row("web", 1, 1, 5, 10, "healthy")}
	rows[0].Traffic = &RouterTraffic{RequestsPerSecond: 10, Errors5xxPerSec: 1, P50Ms: 1, P99Ms: 9}
	rows[3].Traffic = &RouterTraffic{RequestsPerSecond: 20}
	out := groupStats(rows, map[string]*RouterTraffic{"web": {RequestsPerSecond: 30, Errors5xxPerSec: 1, P50Ms: 2, P99Ms: 8}})
	assert.Assert(t, is.Len(out, 2))
	assert.Check(t, is.Equal(out[0].Service, "db"))
	web := out[1]
	assert.Check(t, is.Len(web.Revisions, 2))
	assert.Check(t, is.Equal(web.Revisions[0].Revision, 1))
	assert.Check(t, is.Equal(web.Revisions[0].Containers[0].Number, 1))
	assert.Check(t, is.Equal(web.Revisions[0].Total.CPUPercent, 10.0))
	assert.Check(t, is.Equal(web.Revisions[0].Total.Traffic.RequestsPerSecond, 20.0))
	assert.Check(t, is.Equal(web.Total.CPUPercent, 20.0))
	assert.Check(t, is.Equal(web.Total.MemoryBytes, uint64(60)))
	assert.Check(t, is.Equal(web.Total.MemoryPercent, 20.0)) // 60 of 300
	assert.Check(t, is.Equal(web.Total.Health, "2/3"))
	assert.Check(t, is.Equal(web.Total.Pids, uint64(3)))
	assert.Check(t, web.Total.Sampled)
	assert.Check(t, is.Equal(web.Total.Traffic.P99Ms, 8.0))
}

// The router's window: per backend summed over routes, counters restarted (another
// Since) count from zero; per service from the routes.
func TestTrafficWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := func(id string, since time.Time, req, e5 uint64) router.BackendStats {
		return router.BackendStats{ID: id, Address: id + ":8080", Since: since, Counters: router.Counters{Requests: req, Responses5xx: e5}}
	}
	prev := router.Snapshot{Time: t0, Routes: []router.RouteStats{
		{Name: "web:80", Counters: router.Counters{Requests: 100}, Backends: []router.BackendStats{b("w1", t0, 60, 1), b("w2", t0, 40, 0)}},
	}}
	later := t0.Add(time.Second)
	cur := router.Snapshot{Time: t0.Add(2 * time.Second), Routes: []router.RouteStats{
		{Name: "web:80", Counters: router.Counters{Requests: 150}, Backends: []router.BackendStats{b("w1", t0, 80, 3), b("w2", later, 30, 0)}},
		{Name: "web:443", Counters: router.Counters{Requests: 5}, Backends: []router.BackendStats{b("w1", t0, 5, 0)}},
	}}
	perBackend, perService := trafficWindow(prev, cur)
	assert.Check(t, is.Equal(perBackend["w1"].Requests, uint64(25))) // 20 on :80, 5 on the new :443
	assert.Check(t, is.Equal(perBackend["w1"].Responses5xx, uint64(2)))
	assert.Check(t, is.Equal(perBackend["w2"].Requests, uint64(30))) // restarted counters
	assert.Check(t, is.Equal(perService["web"].Requests, uint64(55)))
	tr := trafficOf(cur.Time.Sub(prev.Time), perService["web"])
	assert.Check(t, is.Equal(tr.RequestsPerSecond, 27.5))
}

// statsFake is a project with two web containers and one router whose stats streams
// and router counters the test drives.
func TestStatsOnceGroupsByServiceWithRouterTraffic(t *testing.T) {
	labels := func(service, rev, n, role string) map[string]string {
		return map[string]string{compose.LabelProject: "p", compose.LabelService: service, compose.LabelRevision: rev, compose.LabelContainerNumber: n, compose.LabelRole: role}
	}
	containers := []engine.Container{
		{ID: "id-w1", Name: "p-web-r1-1", State: "running", Health: "healthy", Labels: labels("web", "1", "1", "app")},
		{ID: "id-w2", Name: "p-web-r2-1", State: "running", Health: "starting", Labels: labels("web", "2", "1", "app")},
		{ID: "id-r", Name: "p-lifecycle-router", State: "running", Labels: labels("web", "", "", compose.RoleRouter)},
		{ID: "id-old", Name: "p-web-r0-1", State: "exited", Labels: labels("web", "0", "1", "app")},
	}
	t0 := time.Now()
	var mu sync.Mutex
	streams := map[string]int{}
	reads := 0
	fake := &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) { return containers, nil },
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			return engine.ContainerDetails{ID: id, RestartCount: 2}, nil
		},
		StreamStatsFn: func(ctx context.Context, id string) (<-chan container.StatsResponse, error) {
			mu.Lock()
			streams[id]++
			mu.Unlock()
			ch := make(chan container.StatsResponse, 2)
			ch <- sample(t0, 1e9, 100e9, 0, 0, 0, 0)
			ch <- sample(t0.Add(time.Second), 2e9, 104e9, 1e9, 100e9, 1000, 0)
			go func() { <-ctx.Done(); close(ch) }()
			return ch, nil
		},
		ExecSessionFn: func(ctx context.Context, id string, cmd []string) (*engine.Session, error) {
			return nil, fmt.Errorf("no session")
		},
		ExecFn: func(ctx context.Context, id string, cmd []string, stdin []byte) ([]byte, error) {
			assert.Check(t, is.Equal(id, "id-r"))
			mu.Lock()
			defer mu.Unlock()
			reads++
			w1 := router.BackendStats{ID: "p-web-r1-1", Since: t0, Counters: router.Counters{Requests: uint64(100 * reads), Responses5xx: uint64(reads)}}
			snap := router.Snapshot{Time: t0.Add(time.Duration(reads) * time.Second), Routes: []router.RouteStats{
				{Name: "web:80", Counters: router.Counters{Requests: uint64(100 * reads)}, Backends: []router.BackendStats{w1}},
			}}
			return jsonOf(t, snap), nil
		},
	}
	var got []StatsReport
	err := Stats(context.Background(), fake, "p", StatsOptions{Once: true, Interval: time.Second}, func(r StatsReport) error {
		got = append(got, r)
		return nil
	})
	assert.NilError(t, err)
	assert.Assert(t, is.Len(got, 1))
	rep := got[0]
	assert.Check(t, is.Len(rep.Warnings, 0))
	assert.Assert(t, is.Len(rep.Services, 2), "%+v", rep.Services)
	assert.Check(t, is.Equal(rep.Services[0].Service, RouterService))
	web := rep.Services[1]
	assert.Check(t, is.Equal(web.Service, "web"))
	assert.Assert(t, is.Len(web.Revisions, 2)) // the exited container is not shown
	w1 := web.Revisions[0].Containers[0]
	assert.Check(t, is.Equal(w1.Name, "p-web-r1-1"))
	assert.Check(t, is.Equal(w1.CPUPercent, 50.0))
	assert.Check(t, is.Equal(w1.Restarts, 2))
	assert.Check(t, is.Equal(w1.NetRxPerSecond, 1000.0))
	assert.Assert(t, w1.Traffic != nil)
	assert.Check(t, is.Equal(w1.Traffic.RequestsPerSecond, 100.0))
	assert.Check(t, is.Equal(w1.Traffic.Errors5xxPerSec, 1.0))
	assert.Check(t, web.Revisions[1].Containers[0].Traffic == nil)
	assert.Check(t, is.Equal(web.Total.Health, "1/2"))
	assert.Check(t, is.Equal(web.Total.Restarts, 4))
	assert.Check(t, is.Equal(web.Total.Traffic.RequestsPerSecond, 100.0))
	mu.Lock()
	defer mu.Unlock()
	assert.Check(t, is.DeepEqual(streams, map[string]int{"id-w1": 1, "id-w2": 1, "id-r": 1}))
}

// One stream per container, kept: a new container gets one at the next listing, a
// removed one's is closed.
func TestStatsStreamsFollowContainers(t *testing.T) {
	mk := func(id string) engine.Container {
		return engine.Container{ID: id, Name: "p-web-" + id, State: "running", Labels: map[string]string{compose.LabelProject: "p", compose.LabelService: "web", compose.LabelRevision: "1"}}
	}
	var mu sync.Mutex
	listed := []engine.Container{mk("a")}
	opened, closed := map[string]int{}, map[string]int{}
	fake := &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]engine.Container(nil), listed...), nil
		},
		InspectContainerFn: func(ctx context.Context, id string) (engine.ContainerDetails, error) {
			return engine.ContainerDetails{}, nil
		},
		StreamStatsFn: func(ctx context.Context, id string) (<-chan container.StatsResponse, error) {
			mu.Lock()
			opened[id]++
			mu.Unlock()
			ch := make(chan container.StatsResponse)
			go func() {
				<-ctx.Done()
				mu.Lock()
				closed[id]++
				mu.Unlock()
				close(ch)
			}()
			return ch, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	reports := 0
	err := Stats(ctx, fake, "p", StatsOptions{Interval: 20 * time.Millisecond}, func(r StatsReport) error {
		reports++
		mu.Lock()
		defer mu.Unlock()
		switch reports {
		case 2:
			listed = append(listed, mk("b"))
		case 4:
			listed = listed[1:] // a removed
		case 6:
			cancel()
		}
		return nil
	})
	assert.NilError(t, err)
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Check(t, is.DeepEqual(opened, map[string]int{"a": 1, "b": 1}))
	assert.Check(t, is.Equal(closed["a"], 1))
}

// logsFake serves log lines per container ID; with follow, it holds the stream open
// until ctx ends (or stop closes).
func logsFake(mu *sync.Mutex, lines map[string][]engine.LogLine, containers func() []engine.Container, follow map[string]chan engine.LogLine) *engine.Fake {
	return &engine.Fake{
		ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) { return containers(), nil },
		ContainerLogsFn: func(ctx context.Context, id string, o engine.LogOptions, emit func(engine.LogLine) error) error {
			mu.Lock()
			all := lines[id]
			live := follow[id]
			mu.Unlock()
			if o.Tail >= 0 && o.Tail < len(all) {
				all = all[len(all)-o.Tail:]
			}
			for _, l := range all {
				if !o.Since.IsZero() && l.Time.Before(o.Since) {
					continue
				}
				if err := emit(l); err != nil {
					return err
				}
			}
			if !o.Follow || live == nil {
				return nil
			}
			for {
				select {
				case l, ok := <-live:
					if !ok {
						return nil
					}
					if err := emit(l); err != nil {
						return err
					}
				case <-ctx.Done():
					return nil
				}
			}
		},
	}
}

func webContainer(id string, rev int, state string) engine.Container {
	return engine.Container{ID: id, Name: fmt.Sprintf("p-web-r%d-1", rev), State: state, Labels: map[string]string{
		compose.LabelProject: "p", compose.LabelService: "web", compose.LabelRevision: fmt.Sprint(rev), compose.LabelContainerNumber: "1"}}
}

// Lines of several containers come out in timestamp order, --tail per container,
// --grep and --level applied, JSON lines parsed.
func TestLogsMergedByTime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int, text string) engine.LogLine {
		return engine.LogLine{Time: t0.Add(time.Duration(ms) * time.Millisecond), Stream: "stdout", Text: text}
	}
	lines := map[string][]engine.LogLine{
		"a": {at(1, "a1"), at(4, `{"level":"warn","msg":"a4"}`), at(5, "a5")},
		"b": {at(2, "b2"), at(3, `{"severity":"ERROR","msg":"b3"}`), at(6, `{"lvl":10,"msg":"b6"}`)},
	}
	containers := []engine.Container{webContainer("a", 1, "exited"), webContainer("b", 2, "running")}
	fake := logsFake(&sync.Mutex{}, lines, func() []engine.Container { return containers }, nil)
	collect := func(o LogsOptions) []string {
		var out []string
		assert.NilError(t, Logs(context.Background(), fake, "p", o, func(e LogEntry) error {
			out = append(out, LogPrefix(e)+" "+e.Text)
			return nil
		}))
		return out
	}
	assert.Check(t, is.DeepEqual(collect(LogsOptions{Tail: -1}), []string{
		"web-r1-1 a1", "web-r2-1 b2", `web-r2-1 {"severity":"ERROR","msg":"b3"}`, `web-r1-1 {"level":"warn","msg":"a4"}`, "web-r1-1 a5", `web-r2-1 {"lvl":10,"msg":"b6"}`,
	}))
	assert.Check(t, is.DeepEqual(collect(LogsOptions{Tail: 1}), []string{"web-r1-1 a5", `web-r2-1 {"lvl":10,"msg":"b6"}`}))
	assert.Check(t, is.DeepEqual(collect(LogsOptions{Tail: -1, Grep: regexp.MustCompile(`^[ab]\d$`)}), []string{"web-r1-1 a1", "web-r2-1 b2", "web-r1-1 a5"}))
	assert.Check(t, is.DeepEqual(collect(LogsOptions{Tail: -1, MinLevel: "warn"}), []string{`web-r2-1 {"severity":"ERROR","msg":"b3"}`, `web-r1-1 {"level":"warn","msg":"a4"}`}))
	assert.Check(t, is.DeepEqual(collect(LogsOptions{Tail: -1, Revision: 2}), []string{"web-r2-1 b2", `web-r2-1 {"severity":"ERROR","msg":"b3"}`, `web-r2-1 {"lvl":10,"msg":"b6"}`}))
}

func TestParseLevels(t *testing.T) {
	for text, want := range map[string]string{
		`{"level":"WARNING"}`: "warn", `{"severity":"critical"}`: "fatal", `{"lvl":50}`: "error", `{"level":30}`: "info",
		`{"msg":"x"}`: "", `not json`: "", `{"level":"chatty"}`: "",
	} {
		e := LogEntry{LogLine: engine.LogLine{Text: text}}
		parseLine(&e)
		assert.Check(t, is.Equal(e.Level, want), text)
	}
}

// Following: a container that starts later is read from its first line, a stream that
// ends while its container runs is reopened from its last timestamp without repeating
// a line, and lines come out in timestamp order.
func TestLogsFollowAcrossRolloutNoGapNoDuplicate(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	at := func(ms int, text string) engine.LogLine {
		return engine.LogLine{Time: t0.Add(time.Duration(ms) * time.Millisecond), Stream: "stdout", Text: text}
	}
	var mu sync.Mutex
	containers := []engine.Container{webContainer("old", 1, "running")}
	// The old container's history; its live stream breaks once (the engine restarted
	// the stream), then the old container's last lines.
	lines := map[string][]engine.LogLine{"old": {at(1, "old 1"), at(2, "old 2")}}
	liveOld := make(chan engine.LogLine, 10)
	liveNew := make(chan engine.LogLine, 10)
	follow := map[string]chan engine.LogLine{"old": liveOld, "new": liveNew}
	fake := logsFake(&mu, lines, func() []engine.Container {
		mu.Lock()
		defer mu.Unlock()
		return append([]engine.Container(nil), containers...)
	}, follow)
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	done := make(chan error)
	go func() {
		done <- Logs(ctx, fake, "p", LogsOptions{Follow: true, Tail: -1}, func(e LogEntry) error {
			mu.Lock()
			got = append(got, e.Text)
			n := len(got)
			mu.Unlock()
			if n == 6 {
				cancel()
			}
			return nil
		})
	}()
	liveOld <- at(3, "old 3")
	// The stream breaks; the engine's log still has lines 1-3 and a 4th, which the
	// reopened stream (since line 3's timestamp) replays from 3.
	mu.Lock()
	lines["old"] = []engine.LogLine{at(1, "old 1"), at(2, "old 2"), at(3, "old 3"), at(4, "old 4")}
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	follow["old"] = nil
	mu.Unlock()
	close(liveOld)
	// The rollout's new container, whose first lines were written before it was listed.
	mu.Lock()
	lines["new"] = []engine.LogLine{at(5, "new 1")}
	containers = append(containers, webContainer("new", 2, "running"))
	mu.Unlock()
	liveNew <- at(6, "new 2")
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("logs --follow did not deliver the lines")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Check(t, is.DeepEqual(got, []string{"old 1", "old 2", "old 3", "old 4", "new 1", "new 2"}), strings.Join(got, "\n"))
}

// With the engine's event stream, a container is followed as soon as its start is
// reported, not at the next timed listing.
func TestLogsFollowPicksUpAStartedContainerAtItsEvent(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	var mu sync.Mutex
	containers := []engine.Container{webContainer("old", 1, "running")}
	lines := map[string][]engine.LogLine{"old": {{Time: t0, Stream: "stdout", Text: "old 1"}}}
	fake := logsFake(&mu, lines, func() []engine.Container {
		mu.Lock()
		defer mu.Unlock()
		return append([]engine.Container(nil), containers...)
	}, map[string]chan engine.LogLine{"old": make(chan engine.LogLine), "new": make(chan engine.LogLine)})
	events := make(chan engine.Event, 1)
	fake.EventsFn = func(_ context.Context, labels map[string]string, actions []string) (<-chan engine.Event, <-chan error) {
		assert.Check(t, is.DeepEqual(labels, map[string]string{compose.LabelProject: "p"}))
		assert.Check(t, is.DeepEqual(actions, []string{engine.EventStart}))
		return events, make(chan error)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- Logs(ctx, fake, "p", LogsOptions{Follow: true, Tail: -1}, func(e LogEntry) error {
			got <- e.Text
			return nil
		})
	}()
	assert.Equal(t, <-got, "old 1")
	time.Sleep(100 * time.Millisecond) // past the listing made after subscribing
	mu.Lock()
	lines["new"] = []engine.LogLine{{Time: t0.Add(time.Second), Stream: "stdout", Text: "new 1"}}
	containers = append(containers, webContainer("new", 2, "running"))
	mu.Unlock()
	started := time.Now()
	events <- engine.Event{Action: engine.EventStart, ContainerID: "new"}
	select {
	case text := <-got:
		assert.Check(t, is.Equal(text, "new 1"))
		assert.Check(t, time.Since(started) < followSafetyListing/2, "picked up after %s", time.Since(started))
	case <-time.After(followSafetyListing - time.Second):
		t.Fatal("the started container was not followed before the timed listing")
	}
	cancel()
	assert.NilError(t, <-done)
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	assert.NilError(t, err)
	return b
}

// Unknown services are named all at once, with the ones that exist; a project with no
// containers says so. Logs and stats share the check.
func TestUnknownServicesAreRefused(t *testing.T) {
	labels := func(service, role string) map[string]string {
		return map[string]string{compose.LabelProject: "p", compose.LabelService: service, compose.LabelRole: role}
	}
	listed := []engine.Container{
		{ID: "a", Labels: labels("web", "app")},
		{ID: "b", Labels: labels("db", "app")},
		{ID: "r", Labels: labels("web", compose.RoleRouter)},
	}
	fake := &engine.Fake{ListContainersFn: func(ctx context.Context, l map[string]string) ([]engine.Container, error) { return listed, nil }}
	ctx := context.Background()
	assert.NilError(t, checkServicesExist(ctx, fake, "p", []string{"web", RouterService}))
	err := Logs(ctx, fake, "p", LogsOptions{Services: []string{"wbe", "web", "cache"}}, func(LogEntry) error { return nil })
	assert.Check(t, errors.Is(err, ErrNoSuchService))
	assert.Check(t, is.Error(err, `no such service: "wbe", "cache" in project "p" (services with containers: db, router, web)`))
	err = Stats(ctx, fake, "p", StatsOptions{Services: []string{"wbe"}, Once: true}, func(StatsReport) error { return nil })
	assert.Check(t, errors.Is(err, ErrNoSuchService))

	listed = nil
	err = checkServicesExist(ctx, fake, "p", []string{"web"})
	assert.Check(t, is.ErrorContains(err, `project "p" has no containers on this engine`))
}
