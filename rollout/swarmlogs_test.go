package rollout

import (
	"context"
	"errors"
	"fmt"
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
	eng := &engine.Fake{
		ListServicesFn: func(_ context.Context, labels map[string]string) ([]engine.Service, error) {
			if labels[compose.LabelStackNamespace] != "shop" {
				return nil, errors.New("listed without the namespace label")
			}
			return []engine.Service{{ID: "s-web", Name: "shop_web"}, {ID: "s-worker", Name: "shop_worker"}}, nil
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
			asked = opts
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
	assert.DeepEqual(t, read(LogsOptions{Tail: 5}), []string{
		"web-1 shop_web.1 t1 web one", "worker-1 shop_worker.1 k1 worker one",
		`web-2 shop_web.2 t2 {"level":"error","msg":"web two"}`, "web-3 shop_web.3 t3 web three",
	})
	assert.Equal(t, asked.Tail, 5)
	assert.DeepEqual(t, read(LogsOptions{Services: []string{"web"}, MinLevel: "error", Tail: -1}), []string{`web-2 shop_web.2 t2 {"level":"error","msg":"web two"}`})
	err := SwarmLogs(ctx, eng, "shop", LogsOptions{Services: []string{"db"}}, func(LogEntry) error { return nil })
	assert.ErrorContains(t, err, "no Swarm service db in project shop (services: web, worker)")
}
