package benchgen

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FollowCounter checks the lines a log follower printed, as scripts/bench-logs.sh
// reads them: each line carries the engine's timestamp (--timestamps) and the test
// app's {"level":"info","seq":N}. Per stream (a container), the sequence numbers
// must go up by one from the first line seen; a jump is a lost line, a step back a
// duplicate. The latency of a line is from the engine's timestamp (when the engine
// read it from the container) to its arrival at the reader.
type FollowCounter struct {
	Lines, Lost, Duplicated, Unparsed int
	Latencies                         []time.Duration
	last                              map[string]int
	first                             map[string]seqAt // each stream's first line
	newest                            map[string]seqAt // and its newest
}

// seqAt is a sequence number with the engine's timestamp of its line.
type seqAt struct {
	seq int
	at  time.Time
}

// Line counts one printed line of stream key (the plugin's "service-rN-M" prefix is
// taken from the line itself when key is empty), read at time at.
func (c *FollowCounter) Line(key, line string, at time.Time) {
	if c.last == nil {
		c.last, c.first, c.newest = map[string]int{}, map[string]seqAt{}, map[string]seqAt{}
	}
	rest := line
	if prefix, after, ok := strings.Cut(line, " | "); ok { // docker lifecycle logs
		rest = after
		if key == "" {
			key = strings.TrimSpace(prefix)
		}
	}
	ts, text, _ := strings.Cut(rest, " ")
	written, err := time.Parse(time.RFC3339Nano, ts)
	i := strings.Index(text, `"seq":`)
	if err != nil || i < 0 {
		c.Unparsed++
		return
	}
	digits := text[i+len(`"seq":`):]
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		digits = digits[:end]
	}
	seq, err := strconv.Atoi(digits)
	if err != nil {
		c.Unparsed++
		return
	}
	c.Lines++
	c.Latencies = append(c.Latencies, at.Sub(written))
	last, seen := c.last[key]
	switch {
	case !seen || seq == last+1:
	case seq > last+1:
		c.Lost += seq - last - 1
	default:
		c.Duplicated++
	}
	if !seen {
		c.first[key] = seqAt{seq, written}
	}
	if seq > last {
		c.last[key] = seq
		c.newest[key] = seqAt{seq, written}
	}
}

// WrittenRate is the rate at which the containers wrote the lines read, summed over
// the streams: each stream's sequence numbers over its engine timestamps, first line
// read to newest. Below the configured rate, the writers (or the engine) fell behind.
func (c *FollowCounter) WrittenRate() float64 {
	var rate float64
	for key, f := range c.first {
		n := c.newest[key]
		if d := n.at.Sub(f.at); d > 0 {
			rate += float64(n.seq-f.seq) / d.Seconds()
		}
	}
	return rate
}

// Streams is the number of streams that printed a line.
func (c *FollowCounter) Streams() int { return len(c.last) }

// Percentile is the latency at q (0..1), 0 without lines.
func (c *FollowCounter) Percentile(q float64) time.Duration {
	if len(c.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(c.Latencies)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// WriteFollowRow prints one markdown row of scripts/bench-logs.sh's table.
func WriteFollowRow(w io.Writer, label string, c *FollowCounter, wall, cpuUser, cpuSys time.Duration) {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
	fmt.Fprintf(w, "| %s | %d | %.0f | %d | %.0f | %d | %d | %s | %s | %s | %.2fs + %.2fs in %.1fs | %.1f %% |\n",
		label, c.Streams(), c.WrittenRate(), c.Lines, float64(c.Lines)/wall.Seconds(), c.Lost, c.Duplicated,
		ms(c.Percentile(0.5)), ms(c.Percentile(0.99)), ms(c.Percentile(1)),
		cpuUser.Seconds(), cpuSys.Seconds(), wall.Seconds(), 100*(cpuUser+cpuSys).Seconds()/wall.Seconds())
}

// FollowHeader is the header of WriteFollowRow's table.
const FollowHeader = "| follower | containers | written lines/s | lines read | read lines/s | lost | duplicated | latency p50 ms | p99 ms | max ms | follower CPU (user + sys in wall) | % of one core |\n" +
	"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n"
