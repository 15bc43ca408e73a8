package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-units"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// observeProject is a routed web service of 2 replicas whose first replica is given
// a known memory allocation and CPU burn; %[1]s is the image version, %[2]d the port.
const observeProject = `
services:
  web:
    image: {{image:%[1]s}}
    ports: ["127.0.0.1:%[2]d:8080"]
    environment: {MEMORY_HOG: "1", QUIET: "1"%[3]s}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    deploy:
      replicas: 2
`

func observeYAML(version string, port int, env string) string {
	return fmt.Sprintf(observeProject, version, port, env)
}

type statsReport struct {
	Services []struct {
		Service   string
		Total     statsUsage
		Revisions []struct {
			Revision   int
			Containers []struct {
				Name string
				statsUsage
			}
		}
	}
	Volumes  []struct{ Name string }
	Warnings []string
}

type statsUsage struct {
	Containers         int
	Health             string
	CPUPercent         float64 `json:"cpu_percent"`
	MemoryBytes        uint64  `json:"memory_bytes"`
	MemoryLimitBytes   uint64  `json:"memory_limit_bytes"`
	Pids               uint64
	Sampled            bool
	WritableLayerBytes int64 `json:"writable_layer_bytes"`
	Traffic            *struct {
		RequestsPerSecond float64 `json:"requests_per_second"`
		P99Ms             float64 `json:"p99_ms"`
	}
}

// TestStatsMatchEngine: `stats --no-stream --format json` against `docker stats
// --no-stream` of the same containers in the same second: a replica holding 64 MiB and
// burning a CPU shows both, the idle one neither, the service total sums them, and
// the router's traffic under load shows per backend and for the service.
func TestStatsMatchEngine(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	p := s.newProject(t, observeYAML("v1", port, ""))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	busy, idle := p.name+"-web-r1-1", p.name+"-web-r1-2"
	// The allocation goes on when the 2 s client gives up (a loaded machine): ask again.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		r := s.docker(t, p.dir, nil, "exec", busy, "/testapp", "healthcheck", "http://127.0.0.1:8080/hog?mib=64")
		if r.code == 0 {
			return poll.Success()
		}
		return poll.Continue("allocating 64 MiB: %s", r)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(100*time.Millisecond))
	r := s.docker(t, p.dir, nil, "exec", busy, "/testapp", "healthcheck", "http://127.0.0.1:8080/burn?d=40s")
	assert.Equal(t, r.code, 0, r.String())
	load := startRateLoad(t, port, "/", 50, 30*time.Second)
	time.Sleep(1500 * time.Millisecond) // the burn and the load are steady

	type dockerRow struct{ Name, CPUPerc, MemUsage string }
	engineStats := make(chan []dockerRow, 1)
	go func() {
		r := s.docker(t, p.dir, nil, "stats", "--no-stream", "--format", "{{json .}}", busy, idle)
		var rows []dockerRow
		for _, l := range lines(r.stdout) {
			var row dockerRow
			if json.Unmarshal([]byte(l), &row) == nil {
				rows = append(rows, row)
			}
		}
		engineStats <- rows
	}()
	ours := p.mustLifecycle("stats", "--no-stream", "--format", "json")
	theirs := <-engineStats
	load.stop()

	var rep statsReport
	assert.NilError(t, json.Unmarshal([]byte(ours.stdout), &rep), ours.stdout)
	assert.Check(t, is.Len(rep.Warnings, 0), ours.stdout)
	byName := map[string]statsUsage{}
	var web statsUsage
	for _, svc := range rep.Services {
		if svc.Service == "web" {
			web = svc.Total
		}
		for _, rev := range svc.Revisions {
			for _, c := range rev.Containers {
				byName[c.Name] = c.statsUsage
			}
		}
	}
	engineCPU, engineMem := map[string]float64{}, map[string]int64{}
	for _, row := range theirs {
		cpu, _ := strconv.ParseFloat(strings.TrimSuffix(row.CPUPerc, "%"), 64)
		mem, _ := units.RAMInBytes(strings.TrimSpace(strings.Split(row.MemUsage, "/")[0]))
		engineCPU[row.Name], engineMem[row.Name] = cpu, mem
	}
	t.Logf("ours: busy %+v idle %+v; docker stats: cpu %v mem %v", byName[busy], byName[idle], engineCPU, engineMem)
	b, i := byName[busy], byName[idle]
	assert.Check(t, b.Sampled && i.Sampled)
	// Memory: at least the 64 MiB held, and docker's number within 5 %.
	assert.Check(t, b.MemoryBytes >= 64<<20, "busy holds 64 MiB: %d", b.MemoryBytes)
	assert.Check(t, i.MemoryBytes < 32<<20, "idle: %d", i.MemoryBytes)
	assert.Check(t, within(float64(b.MemoryBytes), float64(engineMem[busy]), 0.05), "memory %d vs docker stats %d", b.MemoryBytes, engineMem[busy])
	// CPU: one core burning (100 %, much less on a machine the other tests load), the
	// other one serving half the load only. One sample pair swings with the host's
	// load, so the engine's own number is checked over a window below.
	assert.Check(t, b.CPUPercent > 20, "busy CPU %.1f", b.CPUPercent)
	assert.Check(t, b.CPUPercent > i.CPUPercent, "busy CPU %.1f, idle %.1f", b.CPUPercent, i.CPUPercent)
	assert.Check(t, b.Pids > 0 && b.Health == "healthy")
	// The service total sums its containers.
	assert.Check(t, is.Equal(web.Containers, 2))
	assert.Check(t, is.Equal(web.Health, "2/2"))
	assert.Check(t, is.Equal(web.MemoryBytes, b.MemoryBytes+i.MemoryBytes))
	// The router's traffic: about 50 req/s for the service, shared by the backends.
	assert.Assert(t, web.Traffic != nil, ours.stdout)
	assert.Check(t, web.Traffic.RequestsPerSecond > 20, "service req/s %.1f", web.Traffic.RequestsPerSecond)
	assert.Check(t, web.Traffic.P99Ms > 0)
	assert.Check(t, b.Traffic != nil && i.Traffic != nil && b.Traffic.RequestsPerSecond+i.Traffic.RequestsPerSecond > 20, ours.stdout)

	// CPU over a window: the mean of 5 s of reports against the engine's own CPU time
	// counter of the container over the same seconds (docker's formula reduces to
	// CPU nanoseconds over wall nanoseconds).
	engineCPUTime := func() (time.Time, uint64) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		samples, err := s.engine.StreamStats(ctx, busy)
		assert.NilError(t, err)
		v := <-samples
		return v.Read, v.CPUStats.CPUUsage.TotalUsage
	}
	t0, u0 := engineCPUTime()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
	defer cancel()
	cmd := execDocker(ctx, s, "lifecycle", "-p", p.name, "stats", "--format", "json", "--interval", "1s", "web")
	cmd.Dir = p.dir
	cmd.WaitDelay = 3 * time.Second // the plugin, the CLI's child, holds stdout until it ends
	streamed, _ := cmd.Output()     // ends when the context kills it
	t1, u1 := engineCPUTime()
	engineMean := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds()) * 100
	var sum float64
	var reports int
	for _, l := range lines(string(streamed)) {
		var rep statsReport
		assert.NilError(t, json.Unmarshal([]byte(l), &rep), l)
		for _, svc := range rep.Services {
			for _, rev := range svc.Revisions {
				for _, c := range rev.Containers {
					if c.Name == busy && c.Sampled {
						sum += c.CPUPercent
						reports++
					}
				}
			}
		}
	}
	assert.Assert(t, reports >= 2, "reports of the busy container: %d\n%s", reports, streamed)
	t.Logf("busy CPU: mean of %d reports %.1f%%, engine's counter over %s %.1f%%", reports, sum/float64(reports), t1.Sub(t0).Round(time.Millisecond), engineMean)
	assert.Check(t, within(sum/float64(reports), engineMean, 0.25), "busy CPU: ours %.1f, the engine's %.1f", sum/float64(reports), engineMean)

	// The router's access log is the pseudo-service router, its JSON lines parsed.
	rl := p.mustLifecycle("logs", "--tail", "3", "--format", "json", "router")
	assert.Check(t, is.Len(lines(rl.stdout), 3), rl.stdout)
	for _, l := range lines(rl.stdout) {
		var e struct{ Service, Container, Route string }
		assert.NilError(t, json.Unmarshal([]byte(l), &e), l)
		assert.Check(t, is.Equal(e.Service, "router"))
		assert.Check(t, is.Equal(e.Container, p.router()))
		assert.Check(t, is.Equal(e.Route, fmt.Sprintf("web:%d", port)))
	}

	// The table: a row per container and a total row, the router as its own service;
	// --disk adds the writable layers.
	table := p.mustLifecycle("stats", "--no-stream", "--disk", "--format", "table {{.Service}} {{.Name}} {{.WritableLayer}}")
	assert.Check(t, is.Contains(table.stdout, "web total"), table.stdout)
	assert.Check(t, is.Contains(table.stdout, "router "+p.router()), table.stdout)
	for _, l := range lines(table.stdout) {
		if strings.HasPrefix(l, "web "+busy) {
			assert.Check(t, !strings.HasSuffix(l, " -"), "writable layer known: %s", l)
		}
	}
}

func within(got, want, fraction float64) bool {
	return want > 0 && got >= want*(1-fraction) && got <= want*(1+fraction)
}

// TestLogsFollowAcrossRollingDeploy: `logs --follow web` started before a rolling
// deploy prints every sequence-numbered line of every container, old and new
// revision, once: per container 1, 2, 3, … without a gap or a repeat, and the old
// containers' last lines as the engine has them.
func TestLogsFollowAcrossRollingDeploy(t *testing.T) {
	s := setup(t)
	port := freePort(t)
	seq := `, LOG_SEQ_EVERY: "10ms"`
	p := s.newProject(t, observeYAML("v1", port, seq))
	p.mustLifecycle("deploy")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := execDocker(ctx, s, "lifecycle", "-p", p.name, "logs", "--follow", "--format", "json", "web")
	cmd.Dir = p.dir
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	assert.NilError(t, cmd.Start())
	p.write(observeYAML("v2", port, seq))
	p.mustLifecycle("deploy")
	newFirst := p.name + "-web-r2-1"
	// The new containers log for a while under the follower.
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if strings.Count(stdout.String(), newFirst) > 100 {
			return poll.Success()
		}
		return poll.Continue("waiting for %s's lines", newFirst)
	}, poll.WithTimeout(20*time.Second), poll.WithDelay(200*time.Millisecond))
	assert.NilError(t, cmd.Process.Signal(os.Interrupt))
	_ = cmd.Wait()
	assert.Check(t, is.Equal(stderr.String(), ""))

	// What we printed: sequence numbers per container.
	got := map[string][]int{}
	revisions := map[string]int{}
	for _, l := range lines(stdout.String()) {
		var e struct {
			Seq       int
			Container string
			Service   string
			Revision  int
		}
		assert.NilError(t, json.Unmarshal([]byte(l), &e), l)
		if e.Seq == 0 {
			continue // a lifecycle line of the app (listening, SIGTERM, …)
		}
		assert.Check(t, is.Equal(e.Service, "web"))
		got[e.Container] = append(got[e.Container], e.Seq)
		revisions[e.Container] = e.Revision
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	sort.Strings(names)
	assert.Check(t, is.DeepEqual(names, []string{p.name + "-web-r1-1", p.name + "-web-r1-2", p.name + "-web-r2-1", p.name + "-web-r2-2"}))
	for _, name := range names {
		seqs := got[name]
		lost, dup := 0, 0
		for i, n := range seqs {
			switch {
			case n == i+1-dup:
			case n <= i-dup:
				dup++
			default:
				lost += n - (i + 1 - dup)
			}
		}
		last := seqs[len(seqs)-1]
		t.Logf("%s (revision %d): %d lines, last %d", name, revisions[name], len(seqs), last)
		assert.Check(t, is.Equal(lost, 0), "%s: lost lines: %v", name, seqs)
		assert.Check(t, is.Equal(dup, 0), "%s: duplicated lines", name)
		assert.Check(t, is.Equal(len(seqs), last), "%s: %d lines up to %d", name, len(seqs), last)
		if revisions[name] == 1 {
			// The old revision's containers are stopped (kept for rollback): their last
			// line in the engine's log is the last one printed.
			engine := s.docker(t, p.dir, nil, "logs", name)
			engineLast := 0
			for _, l := range lines(engine.stdout) {
				var e struct{ Seq int }
				if json.Unmarshal([]byte(l), &e) == nil && e.Seq > 0 {
					engineLast = e.Seq
				}
			}
			assert.Check(t, is.Equal(last, engineLast), "%s: the old container's last lines", name)
		}
	}
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
