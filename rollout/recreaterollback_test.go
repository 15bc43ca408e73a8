package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

const recreateDBCompose = `
name: demo
services:
  db:
    image: db:%s
    volumes: [data:/data]
volumes:
  data:
`

// TestRecreateRollback: a recreate service keeps its previous revision (stopped, under
// its revision's name); `rollback db` stops the current one, keeps it, gives revision 1
// the service's name back and starts it; the record says rollback; a rollback of the
// rollback returns to revision 2.
func TestRecreateRollback(t *testing.T) {
	w := newWorld()
	v := func(tag string) string { return fmt.Sprintf(recreateDBCompose, tag) }
	_, err := deploy(t, w, loadProject(t, v("1")), DeployOptions{})
	assert.NilError(t, err)
	p2 := loadProject(t, v("2"))
	_, err = deploy(t, w, p2, DeployOptions{})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-db-1:running", "demo-db-r1-1:exited"}))
	assert.Check(t, w.index("stop demo-db-1") < w.index("rename demo-db-1 demo-db-r1-1"))
	reversed := slices.Clone(w.calls)
	slices.Reverse(reversed)
	lastCreate := len(w.calls) - 1 - slices.Index(reversed, "create demo-db-1")
	assert.Check(t, w.index("rename demo-db-1 demo-db-r1-1") < lastCreate, "revision 2 is created after the rename: %v", w.calls)

	targets, err := RollbackTargets(context.Background(), w.fake(), p2, []string{"db"}, 0)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(targets, map[string]int{"db": 1}))
	_, err = deploy(t, w, p2, DeployOptions{Services: []string{"db"}, Rollback: targets, Command: "rollback"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-db-1:running", "demo-db-r2-1:exited"}))
	running := w.containers["id-demo-db-1"]
	assert.Check(t, is.Equal(running.Name, "demo-db-1"), "revision 1's own container serves again")
	assert.Check(t, w.index("rename demo-db-1 demo-db-r2-1") < w.index("rename demo-db-r1-1 demo-db-1"))

	records, err := History(context.Background(), w.fake(), "demo")
	assert.NilError(t, err)
	last := records[len(records)-1]
	assert.Check(t, is.Equal(last.Result, ResultRollback))
	assert.Check(t, is.Equal(last.Revision, 1))
	assert.Check(t, is.Equal(last.Image, "db:1"), "the record names the image that runs")

	targets, err = RollbackTargets(context.Background(), w.fake(), p2, []string{"db"}, 0)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(targets, map[string]int{"db": 2}), "a rollback of the rollback returns to where it started")

	// Without services named, a recreate service is not rolled back (and a project of
	// recreate services only is not deployed instead).
	_, err = RollbackTargets(context.Background(), w.fake(), p2, nil, 0)
	assert.Check(t, errors.Is(err, ErrNothingToRollBack), "got %v", err)
	assert.Check(t, is.ErrorContains(err, "a recreate service is rolled back only when named"))
}

// TestRecreateRollbackFailureLosesNothing: when the previous revision fails its gate,
// nothing is removed, and the error says where each revision is and which commands
// finish the rollback or return to the revision left; those commands work.
func TestRecreateRollbackFailureLosesNothing(t *testing.T) {
	w := newWorld()
	v := func(tag string) string { return fmt.Sprintf(recreateDBCompose, tag) }
	_, err := deploy(t, w, loadProject(t, v("1")), DeployOptions{})
	assert.NilError(t, err)
	p2 := loadProject(t, v("2"))
	_, err = deploy(t, w, p2, DeployOptions{})
	assert.NilError(t, err)

	broken := true
	w.health = func(name string) engine.ContainerDetails {
		if broken && name == "demo-db-1" {
			return engine.ContainerDetails{State: "exited", ExitCode: 3}
		}
		return engine.ContainerDetails{State: "running"}
	}
	_, err = deploy(t, w, p2, DeployOptions{Services: []string{"db"}, Rollback: map[string]int{"db": 1}})
	assert.Check(t, errors.Is(err, ErrDeployFailed), "got %v", err)
	assert.Check(t, !errors.Is(err, ErrRolledBack))
	assert.Check(t, is.ErrorContains(err, `service "db" (recreate): the rollback to revision 1 did not finish and nothing was removed`))
	assert.Check(t, is.ErrorContains(err, "its containers now: demo-db-1 (revision 1) "))
	assert.Check(t, is.ErrorContains(err, "demo-db-r2-1 (revision 2) exited"))
	assert.Check(t, is.ErrorContains(err, "`docker lifecycle rollback db --to 1` finishes the rollback"))
	assert.Check(t, is.ErrorContains(err, "`docker lifecycle rollback db --to 2` returns to revision 2"))
	assert.Check(t, is.Len(w.containers, 2), "nothing removed: %v", w.state())

	// The first command the error gives, once the cause is gone.
	broken = false
	_, err = deploy(t, w, p2, DeployOptions{Services: []string{"db"}, Rollback: map[string]int{"db": 1}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-db-1:running", "demo-db-r2-1:exited"}))
	// The second one.
	_, err = deploy(t, w, p2, DeployOptions{Services: []string{"db"}, Rollback: map[string]int{"db": 2}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-db-1:running", "demo-db-r1-1:exited"}))
	assert.Check(t, is.Equal(w.containers["id-demo-db-1+"].Name, "demo-db-1"), "revision 2's container: %v", w.state())
}

// TestRecreateRollbackFailureStopsTheFailedRevision: on the engine, a previous revision
// that fails its gate keeps running, unhealthy. The failed rollback stops it (kept), so
// the error lists it exited, and `rollback db --to 1` once the cause is gone starts it
// and waits for its gate and records the rollback, instead of finding revision 1
// running (its health check passing again) and doing nothing.
func TestRecreateRollbackFailureStopsTheFailedRevision(t *testing.T) {
	w := newWorld()
	v := func(tag string) string { return fmt.Sprintf(recreateDBCompose, tag) }
	_, err := deploy(t, w, loadProject(t, v("1")), DeployOptions{})
	assert.NilError(t, err)
	p2 := loadProject(t, v("2"))
	_, err = deploy(t, w, p2, DeployOptions{})
	assert.NilError(t, err)

	broken := true
	w.health = func(name string) engine.ContainerDetails {
		if broken && name == "demo-db-1" {
			return engine.ContainerDetails{State: "running", Health: "unhealthy"}
		}
		return engine.ContainerDetails{State: "running", Health: "healthy"}
	}
	_, err = deploy(t, w, p2, DeployOptions{Services: []string{"db"}, Rollback: map[string]int{"db": 1}})
	assert.Check(t, errors.Is(err, ErrDeployFailed), "got %v", err)
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-db-1:exited", "demo-db-r2-1:exited"}))
	last := func(call string) int {
		for i := len(w.calls) - 1; i >= 0; i-- {
			if w.calls[i] == call {
				return i
			}
		}
		return -1
	}
	assert.Check(t, last("start demo-db-1") < last("stop demo-db-1"), "revision 1 is stopped after its failed gate: %v", w.calls)
	assert.Check(t, is.ErrorContains(err, "its containers now: demo-db-1 (revision 1) exited, demo-db-r2-1 (revision 2) exited."))

	// Its health check passes again: the command the error gives still starts it,
	// waits, and records the rollback.
	broken = false
	calls := len(w.calls)
	_, err = deploy(t, w, p2, DeployOptions{Services: []string{"db"}, Rollback: map[string]int{"db": 1}})
	assert.NilError(t, err)
	assert.Check(t, slices.Contains(w.calls[calls:], "start demo-db-1"), "%v", w.calls[calls:])
	assert.Check(t, is.DeepEqual(w.state(), []string{"demo-db-1:running", "demo-db-r2-1:exited"}))
	records, err := History(context.Background(), w.fake(), "demo")
	assert.NilError(t, err)
	record := records[len(records)-1]
	assert.Check(t, is.Equal(record.Result, ResultRollback))
	assert.Check(t, is.Equal(record.Revision, 1))
}
