package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// volumeStore gives a Fake the engine's volume-create semantics: creating an existing
// name returns the existing volume unchanged.
func volumeStore() *engine.Fake {
	var mu sync.Mutex
	vols := map[string]engine.Volume{}
	return &engine.Fake{
		CreateVolumeFn: func(_ context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			mu.Lock()
			defer mu.Unlock()
			if v, ok := vols[spec.Name]; ok {
				return v, nil
			}
			v := engine.Volume{Name: spec.Name, Labels: spec.Labels}
			vols[spec.Name] = v
			return v, nil
		},
		InspectVolumeFn: func(_ context.Context, name string) (engine.Volume, error) {
			mu.Lock()
			defer mu.Unlock()
			if v, ok := vols[name]; ok {
				return v, nil
			}
			return engine.Volume{}, fmt.Errorf("volume %s: %w", name, engine.ErrNotFound)
		},
		RemoveVolumeFn: func(_ context.Context, name string) error {
			mu.Lock()
			defer mu.Unlock()
			delete(vols, name)
			return nil
		},
	}
}

func TestAcquireIsExclusiveAndNamesTheHolder(t *testing.T) {
	ctx := context.Background()
	eng := volumeStore()
	first, err := Acquire(ctx, eng, "demo", "docker lifecycle deploy", nil)
	assert.NilError(t, err)

	_, err = Acquire(ctx, eng, "demo", "docker lifecycle deploy", nil)
	var locked *LockedError
	assert.Assert(t, errors.As(err, &locked), "got %v", err)
	assert.Check(t, errors.Is(err, engine.ErrLocked))
	host, _ := os.Hostname()
	assert.Check(t, is.ErrorContains(err, fmt.Sprintf("pid %d on host %s", os.Getpid(), host)))
	assert.Check(t, is.ErrorContains(err, "docker lifecycle -p demo unlock"))

	assert.NilError(t, first.Release(ctx))
	second, err := Acquire(ctx, eng, "demo", "docker lifecycle deploy", nil)
	assert.NilError(t, err)
	assert.NilError(t, second.Release(ctx))
}

func TestConcurrentAcquireHasOneWinner(t *testing.T) {
	ctx := context.Background()
	eng := volumeStore()
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Acquire(ctx, eng, "demo", "deploy", nil); err == nil {
				mu.Lock()
				winners++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, winners, 1)
}

func TestStaleLockOfDeadLocalProcessIsTakenOver(t *testing.T) {
	ctx := context.Background()
	eng := volumeStore()
	host, _ := os.Hostname()
	_, err := eng.CreateVolume(ctx, engine.VolumeSpec{Name: VolumeName("demo"), Labels: map[string]string{
		labelHost: host, labelPID: "999999999", labelCommand: "deploy", labelToken: "dead",
	}})
	assert.NilError(t, err)
	var reported Holder
	l, err := Acquire(ctx, eng, "demo", "deploy", func(h Holder) { reported = h })
	assert.NilError(t, err)
	assert.Check(t, is.Equal(reported.PID, 999999999))
	assert.NilError(t, l.Release(ctx))
}

func TestLockOfOtherHostIsNeverTakenOver(t *testing.T) {
	ctx := context.Background()
	eng := volumeStore()
	_, err := eng.CreateVolume(ctx, engine.VolumeSpec{Name: VolumeName("demo"), Labels: map[string]string{
		labelHost: "elsewhere", labelPID: "999999999", labelCommand: "deploy", labelToken: "theirs",
	}})
	assert.NilError(t, err)
	_, err = Acquire(ctx, eng, "demo", "deploy", nil)
	assert.Check(t, errors.Is(err, engine.ErrLocked))

	holder, held, err := Break(ctx, eng, "demo")
	assert.NilError(t, err)
	assert.Check(t, held)
	assert.Check(t, is.Equal(holder.Host, "elsewhere"))
	_, held, err = Inspect(ctx, eng, "demo")
	assert.NilError(t, err)
	assert.Check(t, !held)
}

func TestReleaseKeepsALockTakenOverBySomeoneElse(t *testing.T) {
	ctx := context.Background()
	eng := volumeStore()
	l, err := Acquire(ctx, eng, "demo", "deploy", nil)
	assert.NilError(t, err)
	_, _, err = Break(ctx, eng, "demo")
	assert.NilError(t, err)
	other, err := Acquire(ctx, eng, "demo", "deploy", nil)
	assert.NilError(t, err)

	assert.NilError(t, l.Release(ctx))
	_, held, err := Inspect(ctx, eng, "demo")
	assert.NilError(t, err)
	assert.Check(t, held, "the other holder's lock must survive")
	assert.NilError(t, other.Release(ctx))
}
