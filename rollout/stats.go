package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// RouterService is the pseudo-service under which `stats` and `logs` show the project's
// routers (a real service of that name wins).
const RouterService = "router"

// StatsOptions say what `stats` watches.
type StatsOptions struct {
	// Services to show (empty: all, the routers included as RouterService).
	Services []string
	// Interval between two reports.
	Interval time.Duration
	// Once reports once, as soon as every container has two samples (CPU % and rates
	// need a previous sample), then returns.
	Once bool
	// Disk adds the writable layer size of each container and the size of the project's
	// volumes, from the engine's disk usage (slow: the engine walks the files).
	Disk bool
	// Swarm reads the containers of a Swarm project's tasks on this node (namespace
	// label) instead of a one-engine project's: a manager's engine streams the stats
	// of its own containers only, so other nodes' tasks are not shown (docs/swarm.md).
	Swarm bool
}

// StatsReport is one interval of `stats`; its JSON form is the documented schema of
// `stats --format json` (docs/observability.md).
type StatsReport struct {
	Time     time.Time      `json:"time"`
	Project  string         `json:"project"`
	Services []ServiceStats `json:"services"`
	// Volumes are the project's named volumes with their size (only with --disk).
	Volumes []VolumeUsage `json:"volumes,omitempty"`
	// Warnings say what could not be read this interval (a router, the disk usage).
	Warnings []string `json:"warnings,omitempty"`
}

// ServiceStats are a service's containers, grouped by revision, and their total.
type ServiceStats struct {
	Service   string          `json:"service"`
	Total     Usage           `json:"total"`
	Revisions []RevisionStats `json:"revisions"`
}

// RevisionStats are the containers of one revision of a service.
type RevisionStats struct {
	Revision   int              `json:"revision"`
	Total      Usage            `json:"total"`
	Containers []ContainerStats `json:"containers"`
}

// ContainerStats are one container's numbers.
type ContainerStats struct {
	Name     string `json:"name"`
	ID       string `json:"id"`
	Service  string `json:"service"`
	Revision int    `json:"revision"`
	Number   int    `json:"number"`
	State    string `json:"state"`
	Usage
}

// Usage are the numbers of a container, or the sums of a group of containers (the
// percentages of a group: CPU summed, memory of the summed limits).
type Usage struct {
	// Containers counts the containers summed (1 for a container).
	Containers int `json:"containers"`
	// Healthy counts the healthy ones; Health is a container's own health state
	// (healthy, unhealthy, starting, "" without a health check) or, for a group,
	// "healthy/containers".
	Healthy int    `json:"healthy"`
	Health  string `json:"health"`
	// CPUPercent is as `docker stats` computes it: 100 is one core busy.
	CPUPercent float64 `json:"cpu_percent"`
	// MemoryBytes is the usage without the page cache (inactive_file), as `docker stats`.
	MemoryBytes      uint64  `json:"memory_bytes"`
	MemoryLimitBytes uint64  `json:"memory_limit_bytes"`
	MemoryPercent    float64 `json:"memory_percent"`
	NetRxPerSecond   float64 `json:"net_rx_bytes_per_second"`
	NetTxPerSecond   float64 `json:"net_tx_bytes_per_second"`
	BlockReadPerSec  float64 `json:"block_read_bytes_per_second"`
	BlockWritePerSec float64 `json:"block_write_bytes_per_second"`
	Pids             uint64  `json:"pids"`
	Restarts         int     `json:"restarts"`
	// Traffic is what the router saw for this backend (or the service's routes) over
	// the last interval; nil when the service is not routed or the router could not be read.
	Traffic *RouterTraffic `json:"traffic,omitempty"`
	// WritableLayerBytes is the container's writable layer (with --disk; -1 unknown).
	WritableLayerBytes int64 `json:"writable_layer_bytes,omitempty"`
	// Sampled is false until the container gave two samples (its CPU % and rates are 0).
	Sampled bool `json:"sampled"`

	checked int // containers with a health check, in a group
}

// RouterTraffic is a router's view of a backend or route over an interval.
type RouterTraffic struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	Errors5xxPerSec   float64 `json:"responses_5xx_per_second"`
	P50Ms             float64 `json:"p50_ms"`
	P99Ms             float64 `json:"p99_ms"`
}

// VolumeUsage is a named volume's size (-1: the engine did not say).
type VolumeUsage struct {
	Name      string `json:"name"`
	SizeBytes int64  `json:"size_bytes"`
}

// calculateCPUPercentUnix is docker/cli's (cli/command/container/stats_helpers.go), so
// the numbers match `docker stats`.
func calculateCPUPercentUnix(previousCPU, curCPUStats container.CPUStats) float64 {
	var (
		cpuPercent  = 0.0
		cpuDelta    = float64(curCPUStats.CPUUsage.TotalUsage) - float64(previousCPU.CPUUsage.TotalUsage)
		systemDelta = float64(curCPUStats.SystemUsage) - float64(previousCPU.SystemUsage)
		onlineCPUs  = float64(curCPUStats.OnlineCPUs)
	)
	if onlineCPUs == 0.0 {
		onlineCPUs = float64(len(curCPUStats.CPUUsage.PercpuUsage))
	}
	if systemDelta > 0.0 && cpuDelta > 0.0 {
		cpuPercent = (cpuDelta / systemDelta) * onlineCPUs * 100.0
	}
	return cpuPercent
}

// calculateMemUsageUnixNoCache is docker/cli's: usage minus inactive_file (cgroup v2)
// or total_inactive_file (cgroup v1).
func calculateMemUsageUnixNoCache(mem container.MemoryStats) uint64 {
	if v, isCgroup1 := mem.Stats["total_inactive_file"]; isCgroup1 && v < mem.Usage {
		return mem.Usage - v
	}
	if v := mem.Stats["inactive_file"]; v < mem.Usage {
		return mem.Usage - v
	}
	return mem.Usage
}

func blockIO(blkio container.BlkioStats) (read, write uint64) {
	for _, e := range blkio.IoServiceBytesRecursive {
		if len(e.Op) == 0 {
			continue
		}
		switch e.Op[0] {
		case 'r', 'R':
			read += e.Value
		case 'w', 'W':
			write += e.Value
		}
	}
	return read, write
}

// sampler turns a container's stream of samples into its current Usage.
type sampler struct {
	samples   int
	last      container.StatsResponse
	usage     Usage
	restarts  int
	inspected time.Time
	streaming bool
	cancel    context.CancelFunc
	c         engine.Container

	// restartsRead: an inspect gave restarts (not only tried to).
	restartsRead bool
}

// add takes one sample: CPU % from its PreCPUStats (the daemon's previous sample), the
// rates from the sample before, which this sampler keeps.
func (s *sampler) add(v container.StatsResponse) {
	u := Usage{Containers: 1, Pids: v.PidsStats.Current}
	u.CPUPercent = calculateCPUPercentUnix(v.PreCPUStats, v.CPUStats)
	u.MemoryBytes = calculateMemUsageUnixNoCache(v.MemoryStats)
	u.MemoryLimitBytes = v.MemoryStats.Limit
	if u.MemoryLimitBytes != 0 {
		u.MemoryPercent = float64(u.MemoryBytes) / float64(u.MemoryLimitBytes) * 100
	}
	if s.samples > 0 {
		if d := v.Read.Sub(s.last.Read).Seconds(); d > 0 {
			rx, tx := networkBytes(v)
			prx, ptx := networkBytes(s.last)
			r, w := blockIO(v.BlkioStats)
			pr, pw := blockIO(s.last.BlkioStats)
			u.NetRxPerSecond, u.NetTxPerSecond = rate(rx, prx, d), rate(tx, ptx, d)
			u.BlockReadPerSec, u.BlockWritePerSec = rate(r, pr, d), rate(w, pw, d)
		}
	}
	s.samples++
	u.Sampled = s.samples >= 2 && v.PreCPUStats.SystemUsage != 0
	if !u.Sampled {
		u.CPUPercent = 0 // a first sample has no previous one: docker would show a since-boot average
	}
	s.last, s.usage = v, u
}

func networkBytes(v container.StatsResponse) (rx, tx uint64) {
	for _, n := range v.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	return rx, tx
}

// rate is the per-second increase of a counter; a counter that went back (a restart) is 0.
func rate(cur, prev uint64, seconds float64) float64 {
	if cur < prev {
		return 0
	}
	return float64(cur-prev) / seconds
}

// statsCollector keeps one stats stream per running container of the project: new
// containers get a stream at the next listing, removed or stopped ones lose theirs.
type statsCollector struct {
	eng     engine.Engine
	project string
	opts    StatsOptions

	mu       sync.Mutex
	samplers map[string]*sampler // by container ID
	sampled  chan struct{}       // a sample arrived

	routers   map[string]*routerClient // by router container ID
	snapshots map[string]router.Snapshot
	routerIDs []string
	disk      engine.DiskUsage
	diskAt    time.Time
	volumes   []VolumeUsage
	// swarmMembers are the project's Swarm services in compose terms (swarmMemberOf),
	// by Swarm service name, as of the last listing (c.mu): a task's container carries
	// its service's name, not the service's labels.
	swarmMembers map[string]swarmMember
}

// restartsRefresh is how often a container is inspected again for its restart count,
// which no list or stats call carries.
const restartsRefresh = 10 * time.Second

// diskRefresh bounds how often --disk asks the engine to walk the layers and volumes.
const diskRefresh = 30 * time.Second

// Stats reports the resource use of the project's containers every opts.Interval (once
// with opts.Once) until ctx ends, grouped by service and revision, with the router's
// per-backend traffic for routed services.
func Stats(ctx context.Context, eng engine.Engine, project string, opts StatsOptions, report func(StatsReport) error) error {
	if opts.Swarm {
		if opts.Disk {
			return errors.New("--disk does not work on Swarm yet: the volumes and layers are each node's (docs/swarm.md)")
		}
		if _, err := SwarmHistory(ctx, eng, project, opts.Services); err != nil {
			return err // an unknown service, named with the project's services
		}
	} else if err := checkServicesExist(ctx, eng, project, opts.Services); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := newStatsCollector(eng, project, opts)
	defer c.close()
	if err := c.refresh(ctx); err != nil {
		return err
	}
	if opts.Once {
		_, _, _ = c.readRouters(ctx, c.routerIDs) // the start of the traffic window
		// Two samples each (about two seconds), bounded: a container that stops
		// meanwhile is reported unsampled.
		deadline := time.After(5 * time.Second)
		for !c.allSampled() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-deadline:
				return report(c.report(ctx))
			case <-c.sampled:
			}
		}
		// A router whose first read failed (slow exec on a loaded engine) gets its
		// window now, a second long.
		if c.primeRouters(ctx) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
		return report(c.report(ctx))
	}
	ticker := time.NewTicker(opts.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if err := c.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := report(c.report(ctx)); err != nil {
			return err
		}
	}
}

func newStatsCollector(eng engine.Engine, project string, opts StatsOptions) *statsCollector {
	return &statsCollector{
		eng: eng, project: project, opts: opts,
		samplers: map[string]*sampler{}, sampled: make(chan struct{}, 1),
		routers: map[string]*routerClient{}, snapshots: map[string]router.Snapshot{},
	}
}

// serviceOf says under which service a listed container is shown, and whether it is.
func (c *statsCollector) serviceOf(ct engine.Container) (string, bool) {
	service := ct.Labels[compose.LabelService]
	if c.opts.Swarm {
		service = c.swarmMember(ct).Service
	}
	if ct.Labels[compose.LabelRole] == compose.RoleRouter {
		service = RouterService
	}
	if len(c.opts.Services) > 0 && !slices.Contains(c.opts.Services, service) {
		return service, false
	}
	return service, true
}

// swarmMember is what a task's container's Swarm service is in compose terms (c.mu
// held); a service created since the last listing is named by stack convention.
func (c *statsCollector) swarmMember(ct engine.Container) swarmMember {
	name := ct.Labels[labelSwarmServiceName]
	if m, ok := c.swarmMembers[name]; ok {
		return m
	}
	return swarmMember{Service: swarmComposeName(c.project, name)}
}

// refresh lists the project's running containers, opens streams for new ones, closes
// those of the gone ones, and refreshes restart counts that are due.
func (c *statsCollector) refresh(ctx context.Context) error {
	listed, err := c.containers(ctx)
	if err != nil {
		return fmt.Errorf("list the containers of project %s: %w", c.project, err)
	}
	// The routers are read even when only some services are shown.
	c.routerIDs = c.routerIDs[:0]
	for _, ct := range listed {
		if ct.Labels[compose.LabelRole] == compose.RoleRouter && ct.State == "running" {
			c.routerIDs = append(c.routerIDs, ct.ID)
		}
	}
	for id, client := range c.routers {
		if !slices.Contains(c.routerIDs, id) {
			client.Close()
			delete(c.routers, id)
			delete(c.snapshots, id)
		}
	}
	seen := map[string]bool{}
	var inspect []*sampler
	c.mu.Lock()
	for _, ct := range listed {
		if _, ok := c.serviceOf(ct); !ok {
			continue
		}
		seen[ct.ID] = true
		s := c.samplers[ct.ID]
		if s == nil {
			s = &sampler{}
			c.samplers[ct.ID] = s
		}
		s.c = ct
		if !s.streaming {
			c.startStream(ctx, ct.ID, s)
		}
		if time.Since(s.inspected) >= restartsRefresh {
			s.inspected = time.Now()
			inspect = append(inspect, s)
		}
	}
	for id, s := range c.samplers {
		if !seen[id] {
			if s.cancel != nil {
				s.cancel()
			}
			delete(c.samplers, id)
		}
	}
	c.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range inspect {
		wg.Go(func() {
			d, err := c.eng.InspectContainer(ctx, s.c.ID)
			if err == nil {
				c.mu.Lock()
				s.restarts, s.restartsRead = d.RestartCount, true
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return nil
}

// Labels the engine puts on a Swarm task's container.
const (
	labelSwarmServiceName = "com.docker.swarm.service.name"
	labelSwarmTaskName    = "com.docker.swarm.task.name" // <swarm service>.<slot>.<task ID>
)

// containers lists the running containers whose stats are read: the project's, or on
// Swarm its tasks' on this node.
func (c *statsCollector) containers(ctx context.Context) ([]engine.Container, error) {
	if !c.opts.Swarm {
		return ProjectContainers(ctx, c.eng, c.project, nil, false)
	}
	ns := map[string]string{compose.LabelStackNamespace: c.project}
	services, err := c.eng.ListServices(ctx, ns)
	if err != nil {
		return nil, err
	}
	members := map[string]swarmMember{}
	for _, s := range services {
		members[s.Name] = swarmMemberOf(c.project, s)
	}
	c.mu.Lock()
	c.swarmMembers = members
	c.mu.Unlock()
	listed, err := c.eng.ListContainers(ctx, ns)
	if err != nil {
		return nil, err
	}
	var out []engine.Container
	for _, ct := range listed {
		if ct.State == "running" && ct.Labels[labelSwarmServiceName] != "" {
			out = append(out, ct)
		}
	}
	return out, nil
}

// swarmTaskSlot is the slot in a task's name, <swarm service>.<slot>.<task ID> (0 when
// it has none).
func swarmTaskSlot(taskName string) int {
	parts := strings.Split(taskName, ".")
	if len(parts) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(parts[len(parts)-2])
	return n
}

// startStream opens the container's stats stream (c.mu held); when the stream ends
// the next refresh opens another if the container still runs.
func (c *statsCollector) startStream(ctx context.Context, id string, s *sampler) {
	sctx, cancel := context.WithCancel(ctx)
	s.cancel, s.streaming = cancel, true
	go func() {
		defer func() {
			c.mu.Lock()
			s.streaming = false
			c.mu.Unlock()
			cancel()
		}()
		samples, err := c.eng.StreamStats(sctx, id)
		if err != nil {
			return
		}
		for v := range samples {
			c.mu.Lock()
			s.add(v)
			c.mu.Unlock()
			select {
			case c.sampled <- struct{}{}:
			default:
			}
		}
	}()
}

func (c *statsCollector) allSampled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.samplers {
		if !s.usage.Sampled && s.streaming {
			return false
		}
	}
	return true
}

func (c *statsCollector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.samplers {
		if s.cancel != nil {
			s.cancel()
		}
	}
	for _, r := range c.routers {
		r.Close()
	}
}

// report builds the interval's report: the router's traffic and (with Disk) the disk
// usage are read now, the containers' numbers are the latest of their streams.
func (c *statsCollector) report(ctx context.Context) StatsReport {
	rep := StatsReport{Time: time.Now().UTC(), Project: c.project, Services: []ServiceStats{}}
	c.mu.Lock()
	var rows []ContainerStats
	for _, s := range c.samplers {
		service, _ := c.serviceOf(s.c)
		rev, _ := strconv.Atoi(s.c.Labels[compose.LabelRevision])
		num, _ := strconv.Atoi(s.c.Labels[compose.LabelContainerNumber])
		if c.opts.Swarm {
			rev, num = c.swarmMember(s.c).Revision, swarmTaskSlot(s.c.Labels[labelSwarmTaskName])
		}
		u := s.usage
		u.Containers, u.Restarts, u.Health = 1, s.restarts, s.c.Health
		if s.c.Health == "healthy" {
			u.Healthy = 1
		}
		rows = append(rows, ContainerStats{Name: s.c.Name, ID: s.c.ID, Service: service, Revision: rev, Number: num, State: s.c.State, Usage: u})
	}
	c.mu.Unlock()
	backends, routes, warnings := c.readRouters(ctx, c.routerIDs)
	rep.Warnings = append(rep.Warnings, warnings...)
	for i := range rows {
		if t, ok := backends[rows[i].Name]; ok {
			rows[i].Traffic = t
		}
	}
	if c.opts.Disk {
		if err := c.readDisk(ctx); err != nil {
			rep.Warnings = append(rep.Warnings, err.Error())
		}
		for i := range rows {
			size, ok := c.disk.ContainerSizes[rows[i].ID]
			rows[i].WritableLayerBytes = -1
			if ok {
				rows[i].WritableLayerBytes = size
			}
		}
		rep.Volumes = c.volumes
	}
	rep.Services = groupStats(rows, routes)
	return rep
}

// groupStats groups container rows by service and revision (sorted) and sums each
// group; a routed service's total traffic is its routes' (routes by service).
func groupStats(rows []ContainerStats, routes map[string]*RouterTraffic) []ServiceStats {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Revision, b.Revision), cmp.Compare(a.Number, b.Number), cmp.Compare(a.Name, b.Name)) < 0
	})
	var out []ServiceStats
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Service != r.Service {
			out = append(out, ServiceStats{Service: r.Service})
		}
		svc := &out[len(out)-1]
		if len(svc.Revisions) == 0 || svc.Revisions[len(svc.Revisions)-1].Revision != r.Revision {
			svc.Revisions = append(svc.Revisions, RevisionStats{Revision: r.Revision})
		}
		rev := &svc.Revisions[len(svc.Revisions)-1]
		rev.Containers = append(rev.Containers, r)
		rev.Total = sumUsage(rev.Total, r.Usage)
		svc.Total = sumUsage(svc.Total, r.Usage)
	}
	for i := range out {
		svc := &out[i]
		for j := range svc.Revisions {
			finishTotal(&svc.Revisions[j].Total)
			svc.Revisions[j].Total.Traffic = sumTraffic(svc.Revisions[j].Containers)
		}
		finishTotal(&svc.Total)
		if t, ok := routes[svc.Service]; ok {
			svc.Total.Traffic = t
		}
	}
	return out
}

func sumUsage(a, b Usage) Usage {
	a.Sampled = b.Sampled && (a.Containers == 0 || a.Sampled)
	a.Containers += b.Containers
	a.Healthy += b.Healthy
	if b.Health != "" {
		a.checked++
	}
	a.CPUPercent += b.CPUPercent
	a.MemoryBytes += b.MemoryBytes
	a.MemoryLimitBytes += b.MemoryLimitBytes
	a.NetRxPerSecond += b.NetRxPerSecond
	a.NetTxPerSecond += b.NetTxPerSecond
	a.BlockReadPerSec += b.BlockReadPerSec
	a.BlockWritePerSec += b.BlockWritePerSec
	a.Pids += b.Pids
	a.Restarts += b.Restarts
	if b.WritableLayerBytes > 0 {
		a.WritableLayerBytes += b.WritableLayerBytes
	}
	return a
}

func finishTotal(u *Usage) {
	if u.MemoryLimitBytes != 0 {
		u.MemoryPercent = float64(u.MemoryBytes) / float64(u.MemoryLimitBytes) * 100
	}
	u.Health = "" // no health check in the group
	if u.checked > 0 {
		u.Health = fmt.Sprintf("%d/%d", u.Healthy, u.Containers)
	}
}

// sumTraffic adds the containers' rates; a group's percentiles are not the sum of its
// members', so they are left out (the service total has them, from its routes).
func sumTraffic(cs []ContainerStats) *RouterTraffic {
	var t *RouterTraffic
	for _, c := range cs {
		if c.Traffic == nil {
			continue
		}
		if t == nil {
			t = &RouterTraffic{}
		}
		t.RequestsPerSecond += c.Traffic.RequestsPerSecond
		t.Errors5xxPerSec += c.Traffic.Errors5xxPerSec
	}
	return t
}

func trafficOf(window time.Duration, c router.Counters) *RouterTraffic {
	if window <= 0 {
		return nil
	}
	s := window.Seconds()
	return &RouterTraffic{
		RequestsPerSecond: float64(c.Requests) / s,
		Errors5xxPerSec:   float64(c.Responses5xx) / s,
		P50Ms:             msOf(c.Latency.Quantile(0.50)),
		P99Ms:             msOf(c.Latency.Quantile(0.99)),
	}
}

func msOf(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// readRouters reads each router's counters and returns the traffic since the previous
// read of that router, per backend (container name) and per service (its routes summed).
func (c *statsCollector) readRouters(ctx context.Context, ids []string) (backends, services map[string]*RouterTraffic, warnings []string) {
	backends, services = map[string]*RouterTraffic{}, map[string]*RouterTraffic{}
	for _, id := range ids {
		snap, err := c.readRouter(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				warnings = append(warnings, fmt.Sprintf("router %s: %v", id[:min(12, len(id))], err))
			}
			continue
		}
		prev, ok := c.snapshots[id]
		c.snapshots[id] = snap
		if !ok {
			continue
		}
		window := snap.Time.Sub(prev.Time)
		perBackend, perService := trafficWindow(prev, snap)
		for name, counters := range perBackend {
			backends[name] = trafficOf(window, counters)
		}
		for service, counters := range perService {
			services[service] = trafficOf(window, counters)
		}
	}
	return backends, services, warnings
}

// readRouter reads the counters of one router through its kept client.
func (c *statsCollector) readRouter(ctx context.Context, id string) (router.Snapshot, error) {
	client := c.routers[id]
	if client == nil {
		client = newRouterClient(c.eng, id)
		c.routers[id] = client
	}
	rctx, cancel := context.WithTimeout(ctx, routerReadTimeout)
	defer cancel()
	return routerStats(rctx, client)
}

// routerReadTimeout bounds one read of a router's counters (an exec on the engine).
const routerReadTimeout = 5 * time.Second

// primeRouters reads the routers that have no snapshot yet, the start of their
// traffic window; it reports whether it read any.
func (c *statsCollector) primeRouters(ctx context.Context) bool {
	var missing []string
	for _, id := range c.routerIDs {
		if _, ok := c.snapshots[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return false
	}
	_, _, _ = c.readRouters(ctx, missing)
	return true
}

// trafficWindow subtracts two snapshots of a router: per backend ID (summed over the
// routes it serves) and per service (its routes summed). A backend whose counters
// restarted (another Since) counts from zero.
func trafficWindow(prev, cur router.Snapshot) (perBackend, perService map[string]router.Counters) {
	perBackend, perService = map[string]router.Counters{}, map[string]router.Counters{}
	for _, route := range cur.Routes {
		var before *router.RouteStats
		if r := prev.Route(route.Name); r != nil {
			before = r
		}
		service := compose.ServiceOfRoute(route.Name)
		routeDelta := route.Counters
		if before != nil {
			routeDelta = route.Counters.Sub(before.Counters)
		}
		perService[service] = addCounters(perService[service], routeDelta)
		for _, b := range route.Backends {
			delta := b.Counters
			if before != nil {
				for _, p := range before.Backends {
					if p.ID == b.ID && p.Address == b.Address && p.Since.Equal(b.Since) {
						delta = b.Counters.Sub(p.Counters)
						break
					}
				}
			}
			perBackend[b.ID] = addCounters(perBackend[b.ID], delta)
		}
	}
	return perBackend, perService
}

// readDisk asks the engine for the disk usage at most every diskRefresh.
func (c *statsCollector) readDisk(ctx context.Context) error {
	if !c.diskAt.IsZero() && time.Since(c.diskAt) < diskRefresh {
		return nil
	}
	c.diskAt = time.Now()
	du, err := c.eng.DiskUsage(ctx)
	if err != nil {
		return err
	}
	vols, err := c.eng.ListVolumes(ctx, map[string]string{compose.LabelProject: c.project})
	if err != nil {
		return err
	}
	c.disk, c.volumes = du, nil
	for _, v := range vols {
		size, ok := du.VolumeSizes[v.Name]
		if !ok {
			size = -1
		}
		c.volumes = append(c.volumes, VolumeUsage{Name: v.Name, SizeBytes: size})
	}
	sort.Slice(c.volumes, func(i, j int) bool { return c.volumes[i].Name < c.volumes[j].Name })
	return nil
}
