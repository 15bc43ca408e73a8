package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// Many batches of three containers, with lines at the same instant: the streamed merge
// gives exactly what a stable sort of everything by time gives.
func TestReadAllMergesBatchesAsAStableSort(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	lines := map[string][]engine.LogLine{}
	var want []string
	type tagged struct {
		at   time.Time
		name string
	}
	var all []tagged
	for c, step := range map[string]int{"a": 3, "b": 5, "c": 7} {
		for i := range 3*logBatch + 17 {
			at := t0.Add(time.Duration(i*step/2) * time.Millisecond) // repeated instants
			text := fmt.Sprintf("%s%d", c, i)
			lines[c] = append(lines[c], engine.LogLine{Time: at, Stream: "stdout", Text: text})
			all = append(all, tagged{at, "web-r1-1-" + c + " " + text})
		}
	}
	// The sources' order is by container name (a, b, c), as logSources sorts them.
	sort.SliceStable(all, func(i, j int) bool { return all[i].name < all[j].name })
	sort.SliceStable(all, func(i, j int) bool {
		if !all[i].at.Equal(all[j].at) {
			return all[i].at.Before(all[j].at)
		}
		return all[i].name[:10] < all[j].name[:10]
	})
	for _, l := range all {
		want = append(want, l.name)
	}
	var sources []logSource
	for _, id := range []string{"a", "b", "c"} {
		c := webContainer(id, 1, "running")
		c.Name += "-" + id
		sources = append(sources, logSource{c: c, service: "web", revision: 1, number: 1})
	}
	fake := logsFake(&sync.Mutex{}, lines, nil, nil)
	var got []string
	assert.NilError(t, readAll(context.Background(), fake, sources, LogsOptions{Tail: -1}, func(e LogEntry) error {
		got = append(got, "web-r1-1-"+e.Container[len(e.Container)-1:]+" "+e.Text)
		return nil
	}))
	assert.Check(t, is.DeepEqual(got, want))
}

// The first line is emitted while a container's history is still being read (nothing
// waits for the end of every stream), and an error of the caller stops every reader.
func TestReadAllStreams(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	firstEmitted := make(chan struct{})
	readers := sync.WaitGroup{}
	fake := &engine.Fake{ContainerLogsFn: func(ctx context.Context, id string, o engine.LogOptions, emit func(engine.LogLine) error) error {
		readers.Add(1)
		defer readers.Done()
		for i := 0; ; i++ {
			if i == 10*logBatch {
				select { // the history goes on only once a line came out
				case <-firstEmitted:
				case <-time.After(5 * time.Second):
					return errors.New("no line was emitted while the history was read")
				}
			}
			if err := emit(engine.LogLine{Time: t0.Add(time.Duration(i) * time.Millisecond), Text: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
	}}
	sources := []logSource{{c: webContainer("a", 1, "running")}, {c: webContainer("b", 1, "running")}}
	stop := errors.New("stop")
	n := 0
	err := readAll(context.Background(), fake, sources, LogsOptions{Tail: -1}, func(e LogEntry) error {
		if n++; n == 1 {
			close(firstEmitted)
		}
		if n == 20*logBatch {
			return stop
		}
		return nil
	})
	assert.Check(t, errors.Is(err, stop), "%v", err)
	readers.Wait() // readAll returned after its readers: nothing is left reading
}
