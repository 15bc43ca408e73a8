package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gotest.tools/v3/assert"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// swarmDownWorld is a project shop on Swarm: 2 services whose tasks shut down over
// taskPolls listings, a network, a secret and a config. Every write is recorded in
// order; a network removed while a task still runs fails, as Swarm refuses it.
type swarmDownWorld struct {
	mu        sync.Mutex
	calls     []string
	taskPolls int
	removed   map[string]bool
	failOn    map[string]error
	volumes   []engine.Volume
	// shutDownLeft: a task that shut down is never deleted (its node is down).
	shutDownLeft bool
}

func (w *swarmDownWorld) record(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, fmt.Sprintf(format, args...))
}

func (w *swarmDownWorld) fake(t *testing.T) *engine.Fake {
	ns := func(labels map[string]string) error {
		if labels[compose.LabelStackNamespace] != "shop" {
			return fmt.Errorf("listed without the namespace label: %v", labels)
		}
		return nil
	}
	running := func() bool { return w.taskPolls > 0 }
	return &engine.Fake{
		CreateVolumeFn: func(_ context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			return engine.Volume{Name: spec.Name, Labels: spec.Labels}, nil
		},
		InspectVolumeFn: func(_ context.Context, name string) (engine.Volume, error) {
			return engine.Volume{}, engine.ErrNotFound
		},
		RemoveVolumeFn: func(_ context.Context, name string) error {
			if !strings.HasPrefix(name, "lifecycle-lock-") {
				w.record("remove volume %s", name)
			}
			return nil
		},
		ListVolumesFn: func(_ context.Context, labels map[string]string) ([]engine.Volume, error) {
			return w.volumes, nil
		},
		ListServicesFn: func(_ context.Context, labels map[string]string) ([]engine.Service, error) {
			if err := ns(labels); err != nil {
				return nil, err
			}
			return []engine.Service{{ID: "s1", Name: "shop_web"}, {ID: "s2", Name: "shop_worker"}}, nil
		},
		RemoveServiceFn: func(_ context.Context, id string) error {
			w.record("remove service %s", id)
			return w.failOn[id]
		},
		ListTasksFn: func(_ context.Context, labels map[string]string) ([]engine.Task, error) {
			if err := ns(labels); err != nil {
				return nil, err
			}
			w.record("list tasks")
			if w.shutDownLeft {
				return []engine.Task{{ID: "t0", ServiceID: "s1", State: "shutdown", DesiredState: "remove"}}, nil
			}
			if !running() {
				return nil, nil
			}
			w.taskPolls--
			return []engine.Task{{ID: "t0", ServiceID: "s1", State: "failed"}, {ID: "t1", ServiceID: "s1", State: "running", DesiredState: "remove"}}, nil
		},
		ListNetworksFn: func(_ context.Context, labels map[string]string) ([]engine.Network, error) {
			if err := ns(labels); err != nil {
				return nil, err
			}
			return []engine.Network{{Name: "shop_default"}}, nil
		},
		RemoveNetworkFn: func(_ context.Context, name string) error {
			w.record("remove network %s", name)
			if running() {
				t.Errorf("network %s removed while a task runs", name)
			}
			return w.failOn[name]
		},
		ListSwarmObjectsFn: func(_ context.Context, kind string, labels map[string]string) ([]engine.SwarmObject, error) {
			if err := ns(labels); err != nil {
				return nil, err
			}
			return []engine.SwarmObject{{ID: kind + "1", Name: "shop_x_" + kind}}, nil
		},
		RemoveSwarmObjFn: func(_ context.Context, kind, id string) error {
			w.record("remove %s %s", kind, id)
			return w.failOn[id]
		},
	}
}

func TestDownSwarmOrder(t *testing.T) {
	swarmPoll = time.Millisecond
	w := &swarmDownWorld{taskPolls: 3, volumes: []engine.Volume{{Name: "shop_data"}}}
	err := DownSwarm(context.Background(), w.fake(t), "shop", progress.Nop, DownOptions{Command: "test"})
	assert.NilError(t, err)
	assert.DeepEqual(t, w.calls, []string{
		"remove service s1", "remove service s2",
		"list tasks", "list tasks", "list tasks", "list tasks", // the fourth shows the tasks gone
		"remove network shop_default",
		"remove secret secret1", "remove config config1",
	})

	t.Run("--volumes removes the manager's volumes", func(t *testing.T) {
		w := &swarmDownWorld{volumes: []engine.Volume{{Name: "shop_data"}}}
		assert.NilError(t, DownSwarm(context.Background(), w.fake(t), "shop", progress.Nop, DownOptions{Command: "test", RemoveVolumes: true}))
		assert.Equal(t, w.calls[len(w.calls)-1], "remove volume shop_data")
	})
}

func TestDownSwarmReportsEveryFailure(t *testing.T) {
	swarmPoll = time.Millisecond
	w := &swarmDownWorld{failOn: map[string]error{
		"s1": errors.New("remove Swarm service s1: boom"), "secret1": errors.New("remove Swarm secret secret1: denied"),
		"config1": engine.ErrNotFound, // gone meanwhile: not a failure
	}}
	err := DownSwarm(context.Background(), w.fake(t), "shop", progress.Nop, DownOptions{Command: "test"})
	assert.ErrorContains(t, err, "project shop on Swarm not fully removed")
	assert.ErrorContains(t, err, "service s1: boom")
	assert.ErrorContains(t, err, "secret shop_x_secret: remove Swarm secret secret1: denied")
	assert.Assert(t, !strings.Contains(err.Error(), "config"), err.Error())
	// The failed service did not stop the rest.
	assert.Assert(t, strings.Contains(strings.Join(w.calls, ","), "remove service s2,list tasks,remove network shop_default,remove secret secret1,remove config config1"), "%v", w.calls)
}

func TestDownSwarmBoundedWait(t *testing.T) {
	swarmPoll = time.Millisecond
	defer func(m time.Duration) { swarmDownMargin = m }(swarmDownMargin)
	swarmDownMargin = 0
	zero := time.Duration(0)
	w := &swarmDownWorld{taskPolls: 1 << 30, failOn: map[string]error{"shop_default": errors.New("network shop_default is in use by task t1")}}
	f := w.fake(t)
	f.RemoveNetworkFn = func(_ context.Context, name string) error { w.record("remove network %s", name); return w.failOn[name] }
	err := DownSwarm(context.Background(), f, "shop", progress.Nop, DownOptions{Command: "test", Timeout: &zero})
	assert.ErrorContains(t, err, "1 tasks of project shop still not shut down after the wait")
	assert.ErrorContains(t, err, "network shop_default: network shop_default is in use by task t1")
	assert.Assert(t, strings.HasSuffix(strings.Join(w.calls, ","), "remove secret secret1,remove config config1"), "%v", w.calls)
}

func TestDownSwarmShutDownTasksNotDeleted(t *testing.T) {
	swarmPoll = time.Millisecond
	defer func(m time.Duration) { swarmDownMargin = m }(swarmDownMargin)
	swarmDownMargin = 0
	zero := time.Duration(0)
	w := &swarmDownWorld{shutDownLeft: true}
	assert.NilError(t, DownSwarm(context.Background(), w.fake(t), "shop", progress.Nop, DownOptions{Command: "test", Timeout: &zero}))
	assert.Assert(t, strings.HasSuffix(strings.Join(w.calls, ","), "remove network shop_default,remove secret secret1,remove config config1"), "%v", w.calls)
}
