package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// swarmLogsProject: web (2 replicas, rolled both at once) and worker (1 replica), each
// task printing a sequence-numbered line every 100 ms; %[1]s is web's VERSION, which an
// update changes (a new task per slot, without a second image); %[2]s more services.
const swarmLogsProject = `
services:
  web:
    image: {{image:v1}}
    environment: {QUIET: "1", LOG_SEQ_EVERY: "100ms", VERSION: "%[1]s"}
    deploy: {replicas: 2, update_config: {parallelism: 2, monitor: 1s}}
  worker:
    image: {{image:v1}}
    environment: {QUIET: "1", LOG_SEQ_EVERY: "100ms"}
%[2]s`

// swarmLogsAdded is a service the update adds to swarmLogsProject.
const swarmLogsAdded = `  extra:
    image: {{image:v1}}
    environment: {QUIET: "1", LOG_SEQ_EVERY: "100ms"}
`

// followedLine is a line `logs --follow --timestamps` printed, with when it came.
type followedLine struct {
	prefix   string // service-slot
	time     time.Time
	text     string
	received time.Time
}

var followedLineRE = regexp.MustCompile(`^(\S+?) +\| (\S+) (.*)$`)

// TestSwarmLogsFollow (docs/swarm.md, "logs"): `logs --follow --timestamps` on a Swarm
// manager, started as a process while the project's tasks print lines: the lines the
// tasks write after it started arrive, prefixed service-slot; a rolling update of web
// replaces its tasks and the new tasks' lines come in the same stream under the same
// prefixes; a service the update adds is followed from its first line. Compared with
// the engine's own logs of every task container (old and new), no line of the followed
// window is missing or printed twice. SIGINT ends it with exit code 0.
func TestSwarmLogsFollow(t *testing.T) {
	t.Parallel()
	s := setup(t)
	defer logDuration(t, time.Now())
	d := startSwarm(t, s)
	d.copyImage(imageRef("v1"))
	p := swarmProjectOn(t, s, d, fmt.Sprintf(swarmLogsProject, "v1", ""))
	deployed := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("first deploy took %s", time.Since(deployed).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := execDocker(ctx, s, "lifecycle", "-p", p.name, "logs", "--follow", "--timestamps")
	cmd.Dir = p.dir
	cmd.Env = append(cmd.Env, "DOCKER_HOST="+d.host)
	stdout, err := cmd.StdoutPipe()
	assert.NilError(t, err)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	var (
		mu  sync.Mutex
		got []followedLine
		bad []string
	)
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			now := time.Now()
			m := followedLineRE.FindStringSubmatch(sc.Text())
			var ts time.Time
			var perr error
			if m != nil {
				ts, perr = time.Parse(time.RFC3339Nano, m[2])
			}
			mu.Lock()
			if m == nil || perr != nil {
				bad = append(bad, sc.Text())
			} else {
				got = append(got, followedLine{prefix: m[1], time: ts, text: m[3], received: now})
			}
			mu.Unlock()
		}
	}()
	followed := time.Now()
	assert.NilError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { <-read; exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})

	// seen is when the first line of each prefix written after since arrived.
	seen := func(since time.Time, match func(followedLine) bool) map[string]time.Time {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]time.Time{}
		for _, l := range got {
			if l.time.After(since) && match(l) {
				if _, ok := out[l.prefix]; !ok {
					out[l.prefix] = l.received
				}
			}
		}
		return out
	}
	isSeq := func(l followedLine) bool { return strings.HasPrefix(l.text, `{"level":"info","seq":`) }
	waitFor(t, 15*time.Second, "lines of web-1, web-2 and worker-1 written after logs --follow started", func() bool {
		return len(seen(followed, isSeq)) == 3
	})
	first := seen(followed, isSeq)
	assert.Check(t, is.DeepEqual(slices.Sorted(func(yield func(string) bool) {
		for k := range first {
			if !yield(k) {
				return
			}
		}
	}), []string{"web-1", "web-2", "worker-1"}))
	for prefix, at := range first {
		t.Logf("%s: first line written after the start arrived %s after logs --follow started", prefix, at.Sub(followed).Round(time.Millisecond))
	}

	// A rolling update of web: new tasks in both slots, followed under the same prefixes;
	// and a service added, followed from its first line.
	p.write(fmt.Sprintf(swarmLogsProject, "v2", swarmLogsAdded))
	updated := time.Now()
	p.mustLifecycle("deploy")
	t.Logf("update of web (2 tasks replaced) and a service added took %s", time.Since(updated).Round(time.Millisecond))
	isV2 := func(l followedLine) bool { return strings.Contains(l.text, "version v2 listening on") }
	waitFor(t, 15*time.Second, "the new web tasks' first lines", func() bool {
		v2 := seen(updated, isV2)
		return !v2["web-1"].IsZero() && !v2["web-2"].IsZero()
	})
	for prefix, at := range seen(updated, isV2) {
		t.Logf("%s: the new task's first line arrived %s after the update began", prefix, at.Sub(updated).Round(time.Millisecond))
	}
	isV1 := func(l followedLine) bool { return strings.Contains(l.text, "version v1 listening on") }
	waitFor(t, 10*time.Second, "the added service's first line", func() bool { return !seen(updated, isV1)["extra-1"].IsZero() })
	t.Logf("extra-1: the added service's first line arrived %s after the update began", seen(updated, isV1)["extra-1"].Sub(updated).Round(time.Millisecond))
	// The window ends 1 s from now (the new tasks' lines for a while); SIGINT once every
	// task has delivered a line written after it: a task's lines come in order, so all
	// of the window has arrived by then, however loaded the machine.
	cutoff := time.Now().Add(time.Second)
	waitFor(t, 15*time.Second, "lines of every task written after the window", func() bool {
		return len(seen(cutoff, isSeq)) == 4
	})

	interrupted := time.Now()
	assert.NilError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		t.Logf("logs --follow exited %s after SIGINT: %v", time.Since(interrupted).Round(time.Millisecond), err)
		assert.Check(t, err, "exit code 0 on SIGINT (docs/swarm.md)")
	case <-time.After(10 * time.Second):
		t.Fatalf("logs --follow still runs 10 s after SIGINT")
	}
	assert.Check(t, is.Equal(stderr.String(), ""))
	mu.Lock()
	defer mu.Unlock()
	assert.Check(t, is.Len(bad, 0), "lines not prefixed service-slot | TIMESTAMP: %q", bad)

	// The engine's own logs of every task container of the project, old and new: each
	// line written in [followed, cutoff] printed exactly once, under its service-slot.
	type key struct {
		prefix string
		nanos  int64
		text   string
	}
	printed := map[key]int{}
	var delays []time.Duration
	for _, l := range got {
		if l.time.After(followed) && !l.time.After(cutoff) {
			printed[key{l.prefix, l.time.UnixNano(), l.text}]++
			delays = append(delays, l.received.Sub(l.time))
		}
	}
	tasks := lines(d.mustDocker("ps", "-a", "--filter", "label=com.docker.stack.namespace="+p.name, "--format", `{{.ID}} {{.Label "com.docker.swarm.task.name"}}`))
	taskName := regexp.MustCompile(`^` + regexp.QuoteMeta(p.name) + `_(\w+)\.(\d+)\.\w+$`)
	perSlot := map[string]int{} // task containers with lines in the window
	missing, want := 0, 0
	for _, row := range tasks {
		id, name, _ := strings.Cut(row, " ")
		m := taskName.FindStringSubmatch(name)
		assert.Assert(t, m != nil, "task container %q", row)
		prefix := m[1] + "-" + m[2]
		r := d.docker("logs", "--timestamps", id)
		assert.Assert(t, r.code == 0, r.String())
		n := 0
		for _, l := range lines(r.stdout) {
			stamp, text, _ := strings.Cut(l, " ")
			ts, err := time.Parse(time.RFC3339Nano, stamp)
			assert.NilError(t, err, l)
			if !ts.After(followed) || ts.After(cutoff) {
				continue
			}
			n++
			k := key{prefix, ts.UnixNano(), text}
			switch printed[k] {
			case 1:
			case 0:
				missing++
				if missing <= 5 {
					t.Errorf("not printed: %s (task container %s) %s %s", prefix, name, stamp, text)
				}
			default:
				t.Errorf("printed %d times: %s %s %s", printed[k], prefix, stamp, text)
			}
			delete(printed, k)
			want++
		}
		if n > 0 {
			perSlot[prefix]++
		}
	}
	t.Logf("%d task containers; %d lines written in the followed window, %d missing; lines printed that no task wrote: %d", len(tasks), want, missing, len(printed))
	assert.Check(t, is.Equal(missing, 0))
	assert.Check(t, is.Len(printed, 0), "printed, not in the engine's logs: %v", printed)
	assert.Check(t, is.DeepEqual(perSlot, map[string]int{"web-1": 2, "web-2": 2, "worker-1": 1, "extra-1": 1}), "task containers per slot with lines in the window (web: the old task and the new)")
	assert.Check(t, want > 100, "only %d lines in the window", want)
	if len(delays) > 0 {
		slices.Sort(delays)
		t.Logf("from a line's engine timestamp to its arrival: median %s, p99 %s, max %s (%d lines)", delays[len(delays)/2].Round(time.Millisecond),
			delays[len(delays)*99/100].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond), len(delays))
	}
}
