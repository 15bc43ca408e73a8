package benchgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Event is one line of `docker lifecycle --progress json`.
type Event struct {
	Time   time.Time `json:"time"`
	ID     string    `json:"id"`
	Status string    `json:"status"`
	Text   string    `json:"text"`
	Detail string    `json:"detail"`
}

// ReadEvents parses JSON progress lines; lines that are not JSON objects are skipped
// (stderr may carry other output).
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("progress line %q: %w", line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Inspected is the part of `docker inspect` the report needs.
type Inspected struct {
	Name  string
	State struct {
		StartedAt  time.Time
		FinishedAt time.Time
		Health     *struct {
			Log []struct {
				Start    time.Time
				End      time.Time
				ExitCode int
			}
		}
	}
}

// healthLogMax is how many health check results the engine keeps per container.
const healthLogMax = 5

// Metric names of a deploy run, in report order.
var DeployMetrics = []string{
	"total", "critical_path", "over_critical_path_pct", "wait_critical", "overhead",
	"pre_first_event", "setup_before_chain", "chain_create", "chain_start", "chain_stop", "chain_remove", "chain_gaps", "post_last_event",
	"wait_sum", "wait_union", "gate_detect", "steps",
}

// MetricDoc explains each metric for the printed summary.
var MetricDoc = map[string]string{
	"total":                  "wall time of the `docker lifecycle deploy` process",
	"critical_path":          "create + start + health/completion wait of each critical-path container: the floor the engine and the gates set (issue 8: total ≤ this + 10 %)",
	"over_critical_path_pct": "(total − critical_path) / critical_path, in %",
	"wait_critical":          "health/completion waits on the critical path",
	"overhead":               "total − wait_critical",
	"pre_first_event":        "process start → first progress event (docker CLI + plugin start, load, ping, lock, observe, plan)",
	"setup_before_chain":     "first event → first critical-path event (network/volume creation)",
	"chain_create":           "container create on the critical path",
	"chain_start":            "container start on the critical path",
	"chain_stop":             "container stop on the critical path (web drains 1s)",
	"chain_remove":           "container remove on the critical path",
	"chain_gaps":             "critical-path time between steps (scheduling, bookkeeping)",
	"post_last_event":        "last event → process exit (lock release, summary, exit)",
	"wait_sum":               "sum of all containers' waits (parallel waits overlap)",
	"wait_union":             "time during which at least one wait ran",
	"gate_detect":            "inside wait_critical: gate passed in the engine (first passing health check, or exit) → plugin noticed (it polls every 250ms)",
	"steps":                  "progress events with status working (≈ executed steps)",
}

// DeployRun computes the metrics of one deploy from its progress events, its process
// start and end, the critical chain's container names (in order) and, optionally, the
// chain's `docker inspect` (for gate_detect).
func DeployRun(events []Event, start, end time.Time, chain []string, inspected []Inspected) (map[string]float64, error) {
	m := map[string]float64{}
	for _, k := range DeployMetrics {
		m[k] = 0
	}
	m["total"] = ms(end.Sub(start))
	if len(events) == 0 {
		m["overhead"] = m["total"]
		m["pre_first_event"] = m["total"]
		for _, k := range []string{"gate_detect", "critical_path", "over_critical_path_pct"} {
			delete(m, k)
		}
		return m, nil
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time.Before(events[j].Time) })
	first, last := events[0].Time, events[len(events)-1].Time
	m["pre_first_event"] = ms(first.Sub(start))
	m["post_last_event"] = ms(end.Sub(last))

	inChain := map[string]bool{}
	for _, c := range chain {
		inChain["Container "+c] = true
	}

	type interval struct{ from, to time.Time }
	var waits []interval
	waitDone := map[string]time.Time{} // chain container → time its gate passed
	open := map[string]Event{}         // id → its pending working event
	var firstChain, lastChain time.Time
	phases := 0.0
	for _, e := range events {
		if inChain[e.ID] {
			if firstChain.IsZero() {
				firstChain = e.Time
			}
			lastChain = e.Time
		}
		switch e.Status {
		case "working":
			m["steps"]++
			open[e.ID] = e
		case "done", "error":
			w, ok := open[e.ID]
			if !ok {
				continue
			}
			delete(open, e.ID)
			d := e.Time.Sub(w.Time)
			isWait := strings.HasPrefix(w.Text, "Waiting for")
			if isWait {
				waits = append(waits, interval{w.Time, e.Time})
				m["wait_sum"] += ms(d)
			}
			if !inChain[e.ID] {
				continue
			}
			phases += ms(d)
			switch {
			case isWait:
				m["wait_critical"] += ms(d)
				waitDone[strings.TrimPrefix(e.ID, "Container ")] = e.Time
			case w.Text == "Creating":
				m["chain_create"] += ms(d)
			case w.Text == "Starting":
				m["chain_start"] += ms(d)
			case w.Text == "Stopping":
				m["chain_stop"] += ms(d)
			case w.Text == "Removing":
				m["chain_remove"] += ms(d)
			default:
				m["chain_gaps"] += ms(d) // an unexpected phase counts as time between waits
				phases -= ms(d)
			}
		}
	}
	if !firstChain.IsZero() {
		m["setup_before_chain"] = ms(firstChain.Sub(first))
		tail := ms(last.Sub(lastChain))
		m["chain_gaps"] += ms(last.Sub(first)) - m["setup_before_chain"] - tail - phases
		m["post_last_event"] += tail
	} else {
		m["setup_before_chain"] = ms(last.Sub(first))
	}
	m["overhead"] = m["total"] - m["wait_critical"]
	m["critical_path"] = m["chain_create"] + m["chain_start"] + m["wait_critical"]
	if m["critical_path"] > 0 {
		m["over_critical_path_pct"] = 100 * (m["total"] - m["critical_path"]) / m["critical_path"]
	} else {
		delete(m, "critical_path")
		delete(m, "over_critical_path_pct")
	}

	// Union of the wait intervals.
	sort.Slice(waits, func(i, j int) bool { return waits[i].from.Before(waits[j].from) })
	var cur interval
	for i, w := range waits {
		switch {
		case i == 0:
			cur = w
		case w.from.After(cur.to):
			m["wait_union"] += ms(cur.to.Sub(cur.from))
			cur = w
		case w.to.After(cur.to):
			cur.to = w.to
		}
	}
	if len(waits) > 0 {
		m["wait_union"] += ms(cur.to.Sub(cur.from))
	}

	// Gate detection latency: when the engine says the gate passed vs when we said so.
	known := 0
	for _, c := range inspected {
		name := strings.TrimPrefix(c.Name, "/")
		done, ok := waitDone[name]
		if !ok {
			continue
		}
		var ready time.Time
		switch {
		case c.State.Health != nil:
			log := c.State.Health.Log
			for i, h := range log {
				if h.ExitCode == 0 {
					if i == 0 && len(log) >= healthLogMax {
						break // older results were dropped: the first success may be older
					}
					ready = h.End
					break
				}
			}
		case c.State.FinishedAt.Year() > 1:
			ready = c.State.FinishedAt
		default:
			// Running without a healthcheck: the engine has no "ready" moment (the
			// plugin's gate adds its own stability period), so there is nothing to compare.
			continue
		}
		if ready.IsZero() || ready.After(done) {
			continue
		}
		m["gate_detect"] += ms(done.Sub(ready))
		known++
	}
	if known == 0 {
		delete(m, "gate_detect")
	}
	return m, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Sample is one labelled measurement.
type Sample struct {
	Group, Label string
	Value        float64
}

// ReadSamples reads "group<TAB>label<TAB>value" or "label<TAB>value" lines.
func ReadSamples(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(strings.TrimRight(sc.Text(), "\r\n"), "\t")
		if len(f) < 2 || strings.TrimSpace(f[0]) == "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(f[len(f)-1]), 64)
		if err != nil {
			return nil, fmt.Errorf("sample %q: %w", sc.Text(), err)
		}
		s := Sample{Label: f[len(f)-2], Value: v}
		if len(f) >= 3 {
			s.Group = f[0]
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// Stats summarizes samples.
type Stats struct {
	N                     int
	Median, P90, Min, Max float64
}

// Summarize computes the median (mean of the middle two for even n), the p90 (nearest
// rank), min and max.
func Summarize(v []float64) Stats {
	if len(v) == 0 {
		return Stats{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.9*float64(n))) - 1
	return Stats{N: n, Median: med, P90: s[max(rank, 0)], Min: s[0], Max: s[n-1]}
}

// WriteStatsTable prints one markdown row per label (first-seen order): n, median, p90, min, max.
func WriteStatsTable(w io.Writer, samples []Sample, unit string) {
	var labels []string
	by := map[string][]float64{}
	for _, s := range samples {
		if _, ok := by[s.Label]; !ok {
			labels = append(labels, s.Label)
		}
		by[s.Label] = append(by[s.Label], s.Value)
	}
	fmt.Fprintf(w, "| command | runs | median %s | p90 %s | min %s | max %s |\n|---|---:|---:|---:|---:|---:|\n", unit, unit, unit, unit)
	for _, l := range labels {
		st := Summarize(by[l])
		fmt.Fprintf(w, "| `%s` | %d | %.1f | %.1f | %.1f | %.1f |\n", l, st.N, st.Median, st.P90, st.Min, st.Max)
	}
}

// WriteDeployTable prints the medians of deploy metrics: one row per metric, one column
// per group (scenario), in first-seen order.
func WriteDeployTable(w io.Writer, samples []Sample) {
	var groups []string
	by := map[string]map[string][]float64{}
	for _, s := range samples {
		if _, ok := by[s.Group]; !ok {
			groups = append(groups, s.Group)
			by[s.Group] = map[string][]float64{}
		}
		by[s.Group][s.Label] = append(by[s.Group][s.Label], s.Value)
	}
	fmt.Fprint(w, "| median ms (runs) |")
	for _, g := range groups {
		fmt.Fprintf(w, " %s |", g)
	}
	fmt.Fprint(w, " meaning |\n|---|")
	for range groups {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprint(w, "---|\n")
	for _, metric := range DeployMetrics {
		fmt.Fprintf(w, "| %s |", metric)
		for _, g := range groups {
			v := by[g][metric]
			if len(v) == 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			st := Summarize(v)
			if metric == "steps" || metric == "over_critical_path_pct" {
				fmt.Fprintf(w, " %.0f |", st.Median)
			} else {
				fmt.Fprintf(w, " %.0f (%d) |", st.Median, st.N)
			}
		}
		fmt.Fprintf(w, " %s |\n", MetricDoc[metric])
	}
}
