package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// MonitorOptions say where `monitor` serves its metrics.
type MonitorOptions struct {
	// Listen is the TCP address of the HTTP server (host:port; port 0 picks one).
	Listen string
	// Refresh is how often the project's containers are listed again, so that a new
	// revision's containers get their stats stream before they are scraped.
	Refresh time.Duration
	// Serving is called once the address is bound, with the address (its real port).
	Serving func(addr string)
	// Alerts, when set, are evaluated every Alerts.Interval from the same sources as
	// the metrics (rollout/alerts.go).
	Alerts *AlertOptions
	// BackupTo is x-lifecycle.backup.to (BackupTo): the monitor exports the age of the
	// project's last good restore drill recorded there, and evaluates drill-age rules
	// on it. Empty: neither.
	BackupTo string
}

// ErrListen says the --listen address could not be used.
var ErrListen = errors.New("cannot listen")

// Monitor serves the project's metrics in the Prometheus text format on
// opts.Listen/metrics until ctx ends, then stops the server and the stats streams.
// The numbers are those of `stats` (one stats stream per container, the routers'
// counters), read at each scrape.
func Monitor(ctx context.Context, eng engine.Engine, project string, opts MonitorOptions) error {
	if opts.Refresh <= 0 {
		opts.Refresh = 2 * time.Second
	}
	if _, _, err := net.SplitHostPort(opts.Listen); err != nil {
		return fmt.Errorf("%w on %q: %w (expected host:port, such as 127.0.0.1:9464)", ErrListen, opts.Listen, err)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("%w on %q: %w", ErrListen, opts.Listen, err)
	}
	defer ln.Close()

	var logf func(string)
	if opts.Alerts != nil && opts.Alerts.Log != nil {
		logf = func(msg string) { opts.Alerts.Log("alerts: " + msg) }
	}
	drills, err := newDrillWatch(opts.BackupTo, project)
	if err != nil {
		return fmt.Errorf("x-lifecycle.backup.to %q, where the monitor reads the drill records: %w", opts.BackupTo, err)
	}
	m := &metricsCollector{ctx: ctx, c: newStatsCollector(eng, project, StatsOptions{}), ooms: newOOMKills(eng, project, logf), drills: drills}
	go m.ooms.follow(ctx)
	defer m.close()
	if err := m.refresh(ctx); err != nil {
		return err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(m)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "docker lifecycle monitor of project %s: metrics at /metrics\n", project)
	})
	var alerts *alertWatcher
	if opts.Alerts != nil {
		// A first evaluation before the monitor says it serves: the start of the
		// windows (the routers' counters, restart counts) is now.
		alerts = newAlertWatcher(eng, project, *opts.Alerts, m.ooms, drills)
		alerts.evaluate(ctx, m, time.Now())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if opts.Serving != nil {
		opts.Serving(ln.Addr().String())
	}

	ticker := time.NewTicker(opts.Refresh)
	defer ticker.Stop()
	var alertTick <-chan time.Time
	if alerts != nil {
		t := time.NewTicker(opts.Alerts.Interval)
		defer t.Stop()
		alertTick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx)
			return nil
		case err := <-served:
			return fmt.Errorf("serve metrics on %s: %w", opts.Listen, err)
		case <-ticker.C:
			if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
				return err
			}
		case now := <-alertTick:
			// A new revision's containers are listed before they are judged.
			if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
				return err
			}
			alerts.evaluate(ctx, m, now)
		}
	}
}

// metricsCollector is a prometheus.Collector over the stats machinery: the latest
// sample of each container's stream, and the routers' counters read at each scrape.
type metricsCollector struct {
	ctx context.Context
	// mu serialises the stats collector's listing (refresh) and router reads (Collect),
	// which share its router clients.
	mu sync.Mutex
	c  *statsCollector
	// ooms follows the engine's oom events (for the metrics and the oom alert rule).
	ooms *oomKills
	// drills reads the project's drill records in its backup target; nil without one.
	drills *drillWatch
}

func (m *metricsCollector) refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c.refresh(ctx)
}

func (m *metricsCollector) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c.close()
}

var (
	containerLabels = []string{"project", "service", "revision", "container"}
	serviceLabels   = []string{"project", "service"}
	routeLabels     = []string{"project", "service", "route"}
	backendLabels   = []string{"project", "service", "route", "revision", "container"}
)

func desc(name, help string, labels []string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append(append([]string(nil), labels...), extra...), nil)
}

// The metrics, documented in docs/observability.md.
var (
	mContainerUp        = desc("lifecycle_container_up", "1 when the container is running, 0 when it exists but is not running.", containerLabels)
	mContainerCPU       = desc("lifecycle_container_cpu_seconds_total", "CPU time the container used (user and system), in seconds.", containerLabels)
	mContainerMemory    = desc("lifecycle_container_memory_usage_bytes", "Memory used by the container without the page cache (inactive_file), as docker stats.", containerLabels)
	mContainerMemLimit  = desc("lifecycle_container_memory_limit_bytes", "Memory limit of the container (the host's memory when it has none).", containerLabels)
	mContainerNetRx     = desc("lifecycle_container_network_receive_bytes_total", "Bytes received on all the container's networks.", containerLabels)
	mContainerNetTx     = desc("lifecycle_container_network_transmit_bytes_total", "Bytes sent on all the container's networks.", containerLabels)
	mContainerBlkRead   = desc("lifecycle_container_block_read_bytes_total", "Bytes read from block devices.", containerLabels)
	mContainerBlkWrite  = desc("lifecycle_container_block_write_bytes_total", "Bytes written to block devices.", containerLabels)
	mContainerPids      = desc("lifecycle_container_pids", "Processes (and threads) in the container.", containerLabels)
	mContainerRestarts  = desc("lifecycle_container_restarts_total", "Times the engine restarted the container (its restart count).", containerLabels)
	mContainerOOMKills  = desc("lifecycle_container_oom_kills_total", "OOM kills of the container seen by this monitor since it started (the engine's oom events), plus 1 when the engine said State.OOMKilled at the monitor's first sight of it. Not the kernel's lifetime count.", containerLabels)
	mContainerHealth    = desc("lifecycle_container_health_status", "1 for the container's current health state (healthy, unhealthy, starting, none), 0 for the others.", containerLabels, "state")
	mServiceContainers  = desc("lifecycle_service_containers", "Running containers of the service, all revisions.", serviceLabels)
	mServiceHealthy     = desc("lifecycle_service_healthy_containers", "Running containers of the service whose health check passes.", serviceLabels)
	mServiceRevision    = desc("lifecycle_service_revision", "The service's current revision (the last deployed or rolled-back-to record of its history), also as the revision label.", serviceLabels, "revision")
	mServiceLastRollout = desc("lifecycle_service_last_rollout_timestamp_seconds", "When the service's last rollout ended (Unix time), with its result.", serviceLabels, "revision", "result")
	mServiceRolloutDur  = desc("lifecycle_service_last_rollout_duration_seconds", "How long the service's last rollout took: from the first to the last event of its record's timeline (absent when the record has no timeline).", serviceLabels, "revision", "result")
	mServiceRecords     = desc("lifecycle_service_revision_records", "The service's revision records by result: the kept records (the newest 20 per service), not every rollout ever.", serviceLabels, "result")
	mRouteRequests      = desc("lifecycle_route_requests_total", "Requests (TCP: connections) the router received on the route.", routeLabels)
	mRouteResponses     = desc("lifecycle_route_responses_total", "Responses the route's clients got, by status class, the router's own answers (502, 503, 504) included.", routeLabels, "code")
	mRouteErrors        = desc("lifecycle_route_errors_total", "Transport failures on the route: refused or timed-out dials, resets, truncated bodies.", routeLabels)
	mRouteNoBackend     = desc("lifecycle_route_no_backend_total", "Requests answered 503 because the route had no usable backend.", routeLabels)
	mRouteLatency       = desc("lifecycle_route_request_duration_seconds", "Time to the backend's response headers (TCP: to connect), as the router measured it.", routeLabels)
	mBackendRequests    = desc("lifecycle_backend_requests_total", "Requests (TCP: connections) the router sent to the backend container.", backendLabels)
	mBackendResponses   = desc("lifecycle_backend_responses_total", "Responses of the backend, by status class.", backendLabels, "code")
	mBackendErrors      = desc("lifecycle_backend_errors_total", "Transport failures to the backend.", backendLabels)
	mBackendLatency     = desc("lifecycle_backend_request_duration_seconds", "Time to the backend's response headers (TCP: to connect).", backendLabels)
	mScrapeErrors       = desc("lifecycle_monitor_scrape_errors", "Sources that could not be read at this scrape (source: containers, history, router, backups).", []string{"project", "source"})
	mBackups            = desc("lifecycle_backups", "The project's backups in its backup target (x-lifecycle.backup.to), read at most once a minute.", []string{"project"})
	mLastGoodDrill      = desc("lifecycle_backup_last_good_drill_timestamp_seconds", "When the newest restore drill that passed, among the project's backups in its target, started (Unix time); absent when none passed.", []string{"project"})
	mLastGoodDrillRTO   = desc("lifecycle_backup_last_good_drill_rto_seconds", "That drill's RTO: restore plus the time to healthy, in seconds.", []string{"project"})
)

func (m *metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mContainerUp, mContainerCPU, mContainerMemory, mContainerMemLimit, mContainerNetRx, mContainerNetTx,
		mContainerBlkRead, mContainerBlkWrite, mContainerPids, mContainerRestarts, mContainerOOMKills, mContainerHealth, mServiceContainers, mServiceHealthy,
		mServiceRevision, mServiceLastRollout, mServiceRolloutDur, mServiceRecords, mRouteRequests, mRouteResponses, mRouteErrors, mRouteNoBackend, mRouteLatency,
		mBackendRequests, mBackendResponses, mBackendErrors, mBackendLatency, mScrapeErrors, mBackups, mLastGoodDrill, mLastGoodDrillRTO} {
		ch <- d
	}
}

// scrapeTimeout bounds the engine calls of one scrape.
const scrapeTimeout = 10 * time.Second

func revisionLabel(labels map[string]string) string { return labels[compose.LabelRevision] }

// Collect lists the project's containers (stopped ones give up 0), emits each running
// container's latest stream sample, the services' revisions from the history and the
// routers' counters read now.
func (m *metricsCollector) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx, cancel := context.WithTimeout(m.ctx, scrapeTimeout)
	defer cancel()
	c := m.c
	project := c.project
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	failed := map[string]int{"containers": 0, "history": 0, "router": 0}

	all, err := ProjectContainers(ctx, c.eng, project, nil, true)
	if err != nil {
		failed["containers"]++
	}
	revisionOf := map[string]string{} // container name → revision
	type serviceCount struct{ running, healthy int }
	services := map[string]*serviceCount{}
	ooms := m.ooms.totals(ctx, all)
	for _, ct := range all {
		service, _ := c.serviceOf(ct)
		revisionOf[ct.Name] = revisionLabel(ct.Labels)
		labels := []string{project, service, revisionLabel(ct.Labels), ct.Name}
		if services[service] == nil {
			services[service] = &serviceCount{}
		}
		counter(mContainerOOMKills, float64(ooms[ct.ID]), labels...)
		if ct.State != "running" {
			gauge(mContainerUp, 0, labels...)
			continue
		}
		gauge(mContainerUp, 1, labels...)
		services[service].running++
		health := ct.Health
		if health == "" {
			health = "none"
		}
		if health == "healthy" {
			services[service].healthy++
		}
		for _, state := range []string{"healthy", "unhealthy", "starting", "none"} {
			gauge(mContainerHealth, boolFloat(state == health), append(labels, state)...)
		}
	}
	for service, n := range services {
		gauge(mServiceContainers, float64(n.running), project, service)
		gauge(mServiceHealthy, float64(n.healthy), project, service)
	}

	// The streams' latest samples (containers seen by the last refresh).
	c.mu.Lock()
	for _, s := range c.samplers {
		if s.samples == 0 {
			continue
		}
		service, _ := c.serviceOf(s.c)
		labels := []string{project, service, revisionLabel(s.c.Labels), s.c.Name}
		v := s.last
		rx, tx := networkBytes(v)
		r, w := blockIO(v.BlkioStats)
		counter(mContainerCPU, float64(v.CPUStats.CPUUsage.TotalUsage)/1e9, labels...)
		gauge(mContainerMemory, float64(s.usage.MemoryBytes), labels...)
		gauge(mContainerMemLimit, float64(s.usage.MemoryLimitBytes), labels...)
		counter(mContainerNetRx, float64(rx), labels...)
		counter(mContainerNetTx, float64(tx), labels...)
		counter(mContainerBlkRead, float64(r), labels...)
		counter(mContainerBlkWrite, float64(w), labels...)
		gauge(mContainerPids, float64(v.PidsStats.Current), labels...)
		counter(mContainerRestarts, float64(s.restarts), labels...)
	}
	c.mu.Unlock()

	records, err := History(ctx, c.eng, project)
	if err != nil {
		failed["history"]++
	}
	current, last := map[string]Record{}, map[string]Record{}
	kept := map[string]map[string]int{} // service → result → records
	for _, r := range records {         // oldest first
		last[r.Service] = r
		if kept[r.Service] == nil {
			kept[r.Service] = map[string]int{}
		}
		kept[r.Service][r.Result]++
		if r.Result == ResultDeployed || r.Result == ResultRollback {
			current[r.Service] = r
		}
	}
	for service, r := range current {
		gauge(mServiceRevision, float64(r.Revision), project, service, strconv.Itoa(r.Revision))
	}
	for service, r := range last {
		gauge(mServiceLastRollout, float64(r.Time.UnixNano())/1e9, project, service, strconv.Itoa(r.Revision), r.Result)
		if d, ok := rolloutDuration(r); ok {
			gauge(mServiceRolloutDur, d.Seconds(), project, service, strconv.Itoa(r.Revision), r.Result)
		}
	}
	for service, byResult := range kept {
		results := []string{ResultDeployed, ResultRolledBack, ResultFailed, ResultRollback}
		for result := range byResult {
			if !slices.Contains(results, result) {
				results = append(results, result)
			}
		}
		for _, result := range results {
			gauge(mServiceRecords, float64(byResult[result]), project, service, result)
		}
	}

	seenRoute := map[string]bool{}
	seenBackend := map[[2]string]bool{}
	for _, id := range c.routerIDs {
		snap, err := c.readRouter(ctx, id)
		if err != nil {
			failed["router"]++
			continue
		}
		for _, route := range snap.Routes {
			if seenRoute[route.Name] { // two routers never serve one route; keep the series unique anyway
				continue
			}
			seenRoute[route.Name] = true
			service := compose.ServiceOfRoute(route.Name)
			rl := []string{project, service, route.Name}
			counter(mRouteRequests, float64(route.Requests), rl...)
			emitResponses(ch, mRouteResponses, route.Counters, rl)
			counter(mRouteErrors, float64(route.Errors), rl...)
			counter(mRouteNoBackend, float64(route.NoBackend), rl...)
			ch <- latencyHistogram(mRouteLatency, route.Latency, rl)
			for _, b := range route.Backends {
				key := [2]string{route.Name, b.ID}
				if seenBackend[key] { // the same container at two addresses: the first one
					continue
				}
				seenBackend[key] = true
				bl := []string{project, service, route.Name, revisionOf[b.ID], b.ID}
				counter(mBackendRequests, float64(b.Requests), bl...)
				emitResponses(ch, mBackendResponses, b.Counters, bl)
				counter(mBackendErrors, float64(b.Errors), bl...)
				ch <- latencyHistogram(mBackendLatency, b.Latency, bl)
			}
		}
	}
	if m.drills != nil {
		failed["backups"] = 0
		if st, err := m.drills.status(ctx, time.Now()); err != nil {
			failed["backups"]++
		} else {
			gauge(mBackups, float64(st.Backups), project)
			if d := st.LastGood; d != nil {
				gauge(mLastGoodDrill, float64(d.Started.UnixNano())/1e9, project)
				gauge(mLastGoodDrillRTO, d.RTOSeconds, project)
			}
		}
	}
	for source, n := range failed {
		gauge(mScrapeErrors, float64(n), project, source)
	}
}

// rolloutDuration is the span of the record's timeline: from its first event (the
// deploy's start when the oldest events were dropped) to its last (the result); false
// when the record has none or it cannot be read.
func rolloutDuration(r Record) (time.Duration, bool) {
	t, err := r.Timeline()
	if err != nil || len(t.Events) == 0 {
		return 0, false
	}
	first, last := t.Events[0].Time, t.Events[len(t.Events)-1].Time
	if t.DroppedEvents > 0 && !t.Start.IsZero() {
		first = t.Start
	}
	if last.Before(first) {
		return 0, false
	}
	return last.Sub(first), true
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func emitResponses(ch chan<- prometheus.Metric, d *prometheus.Desc, c router.Counters, labels []string) {
	for _, class := range []struct {
		code string
		n    uint64
	}{{"1xx", c.Responses1xx}, {"2xx", c.Responses2xx}, {"3xx", c.Responses3xx}, {"4xx", c.Responses4xx}, {"5xx", c.Responses5xx}} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(class.n), append(append([]string(nil), labels...), class.code)...)
	}
}

// latencyHistogram turns the router's per-bucket counts over router.LatencyBounds
// into a Prometheus histogram (cumulative buckets, in seconds; the router's last,
// open bucket is +Inf).
func latencyHistogram(d *prometheus.Desc, l router.Latency, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(router.LatencyBounds))
	var cumulative uint64
	for i, bound := range router.LatencyBounds {
		if i < len(l.Buckets) {
			cumulative += l.Buckets[i]
		}
		buckets[bound.Seconds()] = cumulative
	}
	return prometheus.MustNewConstHistogram(d, l.Count, float64(l.SumNs)/1e9, buckets, labels...)
}
