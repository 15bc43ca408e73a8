package rollout

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// LogsOptions say which log lines `logs` shows.
type LogsOptions struct {
	// Services to show (empty: all, the routers' access logs as RouterService).
	Services []string
	// Follow keeps following the services: containers that start later (a rollout's
	// new revision) are read from their first line.
	Follow bool
	// Since and Until bound the lines by their engine timestamp (zero: unbounded).
	Since, Until time.Time
	// Tail is the number of lines per container to start with (< 0: all).
	Tail int
	// Revision keeps only the containers of this revision (0: all).
	Revision int
	// Grep keeps only the lines matching it (nil: all).
	Grep *regexp.Regexp
	// MinLevel keeps only the JSON lines whose level field is at least this level
	// (trace, debug, info, warn, error, fatal; "": all lines).
	MinLevel string
	// Structured fills each entry's Fields and Level (the JSON output needs them;
	// MinLevel implies it). Left unset, lines are not parsed: parsing every JSON line
	// was 14 % of `logs --follow`'s CPU for lines printed as text (benchmarks.md).
	Structured bool
}

// parses reports whether entries get their Fields and Level.
func (o LogsOptions) parses() bool { return o.Structured || o.MinLevel != "" }

// LogEntry is one log line of a container of the project.
type LogEntry struct {
	Service     string
	Revision    int
	Number      int
	Container   string // the container's name
	ContainerID string
	engine.LogLine
	// Fields is the line parsed, when it is a JSON object (nil otherwise).
	Fields map[string]json.RawMessage
	// Level is the line's level, normalised (trace … fatal), "" when it has none.
	Level string
}

// levelRanks orders the usual level names; numeric levels (pino, bunyan: 10 … 60) map
// onto the same ranks.
var levelRanks = map[string]int{
	"trace": 1, "debug": 2, "info": 3, "notice": 3, "warn": 4, "warning": 4,
	"error": 5, "err": 5, "fatal": 6, "critical": 6, "crit": 6, "panic": 6, "alert": 6, "emergency": 6,
}

// LogLevels are the values of LogsOptions.MinLevel.
var LogLevels = []string{"trace", "debug", "info", "warn", "error", "fatal"}

// levelFields are the keys a JSON log line usually carries its level in.
var levelFields = []string{"level", "severity", "lvl", "log.level"}

// parseLine fills Fields and Level of a line that is a JSON object.
func parseLine(e *LogEntry) {
	text := bytes.TrimSpace([]byte(e.Text))
	if len(text) < 2 || text[0] != '{' {
		return
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(text, &fields) != nil {
		return
	}
	e.Fields = fields
	for _, k := range levelFields {
		raw, ok := fields[k]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			e.Level = normalLevel(s)
		} else if n, err := strconv.Atoi(string(raw)); err == nil {
			e.Level = LogLevels[min(max(n/10-1, 0), len(LogLevels)-1)]
		}
		if e.Level != "" {
			return
		}
	}
}

func normalLevel(s string) string {
	if r, ok := levelRanks[strings.ToLower(strings.TrimSpace(s))]; ok {
		return LogLevels[r-1]
	}
	return ""
}

// keep says whether the entry passes --grep and --level.
func (o LogsOptions) keep(e LogEntry) bool {
	if o.Grep != nil && !o.Grep.MatchString(e.Text) {
		return false
	}
	if o.MinLevel != "" && (e.Level == "" || levelRanks[e.Level] < levelRanks[o.MinLevel]) {
		return false
	}
	return true
}

// logSource is a container whose logs are read.
type logSource struct {
	c        engine.Container
	service  string
	revision int
	number   int
}

func (s logSource) entry(l engine.LogLine, opts LogsOptions) LogEntry {
	e := LogEntry{Service: s.service, Revision: s.revision, Number: s.number, Container: s.c.Name, ContainerID: s.c.ID, LogLine: l}
	if opts.parses() {
		parseLine(&e)
	}
	return e
}

// logSources lists the project's containers whose logs are wanted (all states: a
// stopped container's last lines are part of the service's history).
func logSources(ctx context.Context, eng engine.Engine, project string, opts LogsOptions) ([]logSource, error) {
	listed, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project})
	if err != nil {
		return nil, fmt.Errorf("list the containers of project %s: %w", project, err)
	}
	var out []logSource
	for _, c := range listed {
		if c.Labels[compose.LabelOneoff] == "True" {
			continue
		}
		service := c.Labels[compose.LabelService]
		if c.Labels[compose.LabelRole] == compose.RoleRouter {
			service = RouterService
		}
		if len(opts.Services) > 0 && !slices.Contains(opts.Services, service) {
			continue
		}
		rev, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
		num, _ := strconv.Atoi(c.Labels[compose.LabelContainerNumber])
		if opts.Revision != 0 && rev != opts.Revision {
			continue
		}
		out = append(out, logSource{c: c, service: service, revision: rev, number: num})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].c.Name < out[j].c.Name })
	return out, nil
}

// Logs emits the log lines of the project's containers merged in timestamp order. With
// Follow it keeps following the services across rollouts until ctx ends (or Until
// passes): new containers are picked up at the next listing and read from their first
// line, a stream that ends while its container runs (a restart, a broken connection)
// is reopened from its last timestamp, and lines already emitted are dropped.
func Logs(ctx context.Context, eng engine.Engine, project string, opts LogsOptions, emit func(LogEntry) error) error {
	if err := checkServicesExist(ctx, eng, project, opts.Services); err != nil {
		return err
	}
	sources, err := logSources(ctx, eng, project, opts)
	if err != nil {
		return err
	}
	if !opts.Follow {
		return readAll(ctx, eng, sources, opts, emit)
	}
	return follow(ctx, eng, project, sources, opts, emit)
}

// followed is the reading state of one container while following.
type followed struct {
	src       logSource
	streaming bool
	started   bool // a stream was opened once
	// last is the timestamp of the last line emitted and lastTexts the lines emitted
	// at that instant, to drop them when a stream is reopened from last.
	last      time.Time
	lastTexts map[string]bool
}

// seen records a line and says whether it was emitted already (same container,
// same timestamp, same text, or older than the last line).
func (f *followed) seen(l engine.LogLine) bool {
	switch {
	case l.Time.Before(f.last):
		return true
	case l.Time.Equal(f.last):
		key := l.Stream + " " + l.Text
		if f.lastTexts[key] {
			return true
		}
		f.lastTexts[key] = true
		return false
	}
	f.last, f.lastTexts = l.Time, map[string]bool{l.Stream + " " + l.Text: true}
	return false
}

// `logs --follow` lists the project's containers again on each container start the
// engine's event stream reports (a new container's lines are read from its start, so
// none is lost), and every followSafetyListing besides, for a start missed while the
// stream reconnected. Without an event stream it lists every followListing.
const (
	followListing       = 500 * time.Millisecond
	followSafetyListing = 5 * time.Second
	// followRestream: a stream that ended is looked at again this much later (reopened
	// if its container still runs), not at once, so a stream that keeps failing does
	// not spin.
	followRestream = 200 * time.Millisecond
)

// reorderWindow is how long a followed line waits for older lines of other
// containers before it is emitted, so lines arriving together come out in order.
const reorderWindow = 250 * time.Millisecond

type arrived struct {
	at time.Time
	e  LogEntry
}

func follow(ctx context.Context, eng engine.Engine, project string, sources []logSource, opts LogsOptions, emit func(LogEntry) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	tracked := map[string]*followed{}
	lines := make(chan arrived, 1024)
	ended := make(chan struct{}, 1) // a stream ended: list again
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()

	start := func(f *followed, initial bool) {
		q := engine.LogOptions{Since: opts.Since, Until: opts.Until, Tail: -1, Follow: true}
		if initial {
			q.Tail = opts.Tail
		}
		if !f.last.IsZero() {
			q.Since, q.Tail = f.last, -1
		}
		f.streaming, f.started = true, true
		src := f.src // relist replaces f.src under mu while this stream runs
		wg.Go(func() {
			err := eng.ContainerLogs(ctx, src.c.ID, q, func(l engine.LogLine) error {
				mu.Lock()
				dup := f.seen(l)
				mu.Unlock()
				if dup {
					return nil
				}
				e := src.entry(l, opts)
				if !opts.keep(e) {
					return nil
				}
				select {
				case lines <- arrived{at: time.Now(), e: e}:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
			_ = err // a stream that failed is reopened at the next listing while its container runs
			mu.Lock()
			f.streaming = false
			mu.Unlock()
			select {
			case <-time.After(followRestream):
			case <-ctx.Done():
				return
			}
			select {
			case ended <- struct{}{}:
			default:
			}
		})
	}
	mu.Lock()
	for _, src := range sources {
		f := &followed{src: src, lastTexts: map[string]bool{}}
		tracked[src.c.ID] = f
		start(f, true)
	}
	mu.Unlock()

	relist := func() error {
		current, err := logSources(ctx, eng, project, opts)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, src := range current {
			f := tracked[src.c.ID]
			if f == nil {
				f = &followed{src: src, lastTexts: map[string]bool{}}
				tracked[src.c.ID] = f
			}
			f.src = src
			running := src.c.State == "running" || src.c.State == "restarting"
			if !f.streaming && (!f.started || running) {
				start(f, false)
			}
		}
		return nil
	}

	// pending lines are emitted in timestamp order once they waited reorderWindow; a
	// line still waiting holds back the newer ones, so the output stays ordered.
	var pending []arrived
	flush := func(all bool) error {
		sort.SliceStable(pending, func(i, j int) bool { return pending[i].e.Time.Before(pending[j].e.Time) })
		cutoff := time.Now().Add(-reorderWindow)
		n := 0
		for n < len(pending) && (all || !pending[n].at.After(cutoff)) {
			if err := emit(pending[n].e); err != nil {
				return err
			}
			n++
		}
		pending = slices.Delete(pending, 0, n)
		return nil
	}

	// drain emits what arrived when following stops (Ctrl-C, --until).
	drain := func() error {
		for {
			select {
			case a := <-lines:
				pending = append(pending, a)
			default:
				return flush(true)
			}
		}
	}

	// Subscribed before listing again: a container started after the first listing is
	// either in this listing or reported by the stream.
	starts, _ := eng.Events(ctx, map[string]string{compose.LabelProject: project}, []string{engine.EventStart})
	if err := relist(); err != nil && ctx.Err() == nil {
		return err
	}
	listing := time.NewTicker(followSafetyListing)
	defer listing.Stop()
	flushing := time.NewTicker(reorderWindow / 4)
	defer flushing.Stop()
	var untilC <-chan time.Time
	if !opts.Until.IsZero() {
		untilC = time.After(time.Until(opts.Until))
	}
	for {
		select {
		case <-ctx.Done():
			return drain()
		case <-untilC:
			return drain()
		case a := <-lines:
			pending = append(pending, a)
		case <-flushing.C:
			if err := flush(false); err != nil {
				return err
			}
		case _, open := <-starts:
			if !open { // no stream (an old engine, a lost connection): list on a timer
				starts = nil
				listing.Reset(followListing)
			}
			if err := relist(); err != nil && ctx.Err() == nil {
				return err
			}
		case <-ended:
			if err := relist(); err != nil && ctx.Err() == nil {
				return err
			}
		case <-listing.C:
			if err := relist(); err != nil && ctx.Err() == nil {
				return err
			}
		}
	}
}

// LogPrefix names an entry as compose does, with the revision: service-rN-number
// (service-number for unrevisioned containers, the container name for routers).
func LogPrefix(e LogEntry) string {
	switch {
	case e.Service == RouterService:
		return RouterService
	case e.Revision > 0:
		return fmt.Sprintf("%s-r%d-%d", e.Service, e.Revision, cmp.Or(e.Number, 1))
	}
	return fmt.Sprintf("%s-%d", e.Service, cmp.Or(e.Number, 1))
}
