package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func TestSwarmLogs(t *testing.T) {
	ctx := context.Background()
	at := func(s int) time.Time { return time.Unix(1000+int64(s), 0) }
	listings := 0
	var asked engine.LogOptions
	var askedMu sync.Mutex // the streams run concurrently
	eng := &engine.Fake{
		ListServicesFn: func(_ context.Context, labels map[string]string) ([]engine.Service, error) {
			if labels[compose.LabelStackNamespace] != "shop" {
				return nil, errors.New("listed without the namespace label")
			}
			return []engine.Service{{ID: "s-web", Name: "shop_web-r2", Labels: map[string]string{compose.LabelSwarmService: "web", compose.LabelSwarmRevision: "2"}}, {ID: "s-worker", Name: "shop_worker"}}, nil
		},
		ListTasksFn: func(_ context.Context, labels map[string]string) ([]engine.Task, error) {
			listings++
			tasks := []engine.Task{{ID: "t1", Slot: 1}, {ID: "t2", Slot: 2}, {ID: "k1", Slot: 1}}
			if listings > 1 {
				tasks = append(tasks, engine.Task{ID: "t3", Slot: 3}) // started after the first listing
			}
			return tasks, nil
		},
		ServiceLogsFn: func(_ context.Context, id string, _ bool, opts engine.LogOptions, emit func(engine.ServiceLogLine) error) error {
			askedMu.Lock()
			asked = opts
			askedMu.Unlock()
			lines := map[string][]engine.ServiceLogLine{
				"s-web": {
					{TaskID: "t1", LogLine: engine.LogLine{Time: at(1), Stream: "stdout", Text: "web one"}},
					{TaskID: "t2", LogLine: engine.LogLine{Time: at(3), Stream: "stderr", Text: `{"level":"error","msg":"web two"}`}},
					{TaskID: "t3", LogLine: engine.LogLine{Time: at(4), Stream: "stdout", Text: "web three"}},
				},
				"s-worker": {{TaskID: "k1", LogLine: engine.LogLine{Time: at(2), Stream: "stdout", Text: "worker one"}}},
			}[id]
			for _, l := range lines {
				if err := emit(l); err != nil {
					return err
				}
			}
			return nil
		},
	}
	read := func(opts LogsOptions) []string {
		var out []string
		assert.NilError(t, SwarmLogs(ctx, eng, "shop", opts, func(e LogEntry) error {
			out = append(out, fmt.Sprintf("%s %s %s %s", LogPrefix(e), e.Container, e.ContainerID, e.Text))
			return nil
		}))
		return out
	}
	// web is blue-green: its revision service's lines show as web's revision 2, as on
	// one engine.
	assert.DeepEqual(t, read(LogsOptions{Tail: 5}), []string{
		"web-r2-1 shop_web-r2.1 t1 web one", "worker-1 shop_worker.1 k1 worker one",
		`web-r2-2 shop_web-r2.2 t2 {"level":"error","msg":"web two"}`, "web-r2-3 shop_web-r2.3 t3 web three",
	})
	assert.Equal(t, asked.Tail, 5)
	assert.DeepEqual(t, read(LogsOptions{Services: []string{"web"}, MinLevel: "error", Tail: -1}), []string{`web-r2-2 shop_web-r2.2 t2 {"level":"error","msg":"web two"}`})
	assert.DeepEqual(t, read(LogsOptions{Revision: 2, Tail: -1}), []string{
		"web-r2-1 shop_web-r2.1 t1 web one", `web-r2-2 shop_web-r2.2 t2 {"level":"error","msg":"web two"}`, "web-r2-3 shop_web-r2.3 t3 web three",
	})
	assert.DeepEqual(t, read(LogsOptions{Revision: 1, Tail: -1}), []string(nil))
	err := SwarmLogs(ctx, eng, "shop", LogsOptions{Services: []string{"db"}}, func(LogEntry) error { return nil })
	assert.ErrorContains(t, err, "no Swarm service db in project shop (services: web, worker)")
}

// TestSwarmLogsFollowsNewServices: with Follow, a service created after following began
// is found by the next listing and read from its first line (not the --tail given for
// the others); Ctrl-C (ctx) ends it without an error; a stream that fails ends
// following with its error.
func TestSwarmLogsFollowsNewServices(t *testing.T) {
	var mu sync.Mutex
	listings := 0
	tails := map[string]int{}
	failWeb := false
	eng := &engine.Fake{
		ListServicesFn: func(context.Context, map[string]string) ([]engine.Service, error) {
			mu.Lock()
			defer mu.Unlock()
			listings++
			if listings == 1 {
				return []engine.Service{{ID: "s-web", Name: "shop_web"}}, nil
			}
			return []engine.Service{{ID: "s-web", Name: "shop_web-r2", Labels: map[string]string{compose.LabelSwarmService: "web", compose.LabelSwarmRevision: "2"}}, {ID: "s-worker", Name: "shop_worker"}}, nil
		},
		ListTasksFn: func(context.Context, map[string]string) ([]engine.Task, error) {
			return []engine.Task{{ID: "t1", Slot: 1}, {ID: "k1", Slot: 1}}, nil
		},
		ServiceLogsFn: func(ctx context.Context, id string, _ bool, opts engine.LogOptions, emit func(engine.ServiceLogLine) error) error {
			mu.Lock()
			tails[id] = opts.Tail
			fail := failWeb
			mu.Unlock()
			if fail {
				return errors.New("connection to the manager lost")
			}
			task := map[string]string{"s-web": "t1", "s-worker": "k1"}[id]
			if err := emit(engine.ServiceLogLine{TaskID: task, LogLine: engine.LogLine{Time: time.Unix(1000, 0), Text: id + " line"}}); err != nil {
				return err
			}
			<-ctx.Done()
			return ctx.Err()
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	began := time.Now()
	err := SwarmLogs(ctx, eng, "shop", LogsOptions{Follow: true, Tail: 0}, func(e LogEntry) error {
		got = append(got, LogPrefix(e)+" "+e.Text)
		if e.Service == "worker" {
			cancel() // Ctrl-C
		}
		return nil
	})
	assert.NilError(t, err)
	assert.DeepEqual(t, got, []string{"web-1 s-web line", "worker-1 s-worker line"})
	assert.DeepEqual(t, tails, map[string]int{"s-web": 0, "s-worker": -1})
	assert.Assert(t, time.Since(began) < 5*time.Second, "found after %s", time.Since(began))

	mu.Lock()
	failWeb = true
	mu.Unlock()
	err = SwarmLogs(context.Background(), eng, "shop", LogsOptions{Follow: true}, func(LogEntry) error { return nil })
	assert.ErrorContains(t, err, "connection to the manager lost")
}
