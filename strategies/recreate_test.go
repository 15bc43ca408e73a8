package strategies

import (
	"errors"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

const dbCompose = `
name: demo
services:
  db:
    image: db:1
    healthcheck: {test: ["CMD", "true"]}
    volumes: [data:/data]
    x-lifecycle: {history: 2}
  cache:
    image: app:1
    secrets: [token]
    volumes: [cachedata:/data]
volumes:
  data:
  cachedata:
secrets:
  token: {environment: HOME}
`

// dbObserved is db's revision running (under the service's name) and the revisions
// retained (stopped, under their revision's names), with an outdated configuration.
func dbObserved(running int, retained ...int) Observed {
	obs := Observed{Networks: map[string]bool{"demo_default": true}, Volumes: map[string]bool{"demo_data": true, "demo_cachedata": true}, ImageIDs: images}
	db := func(rev int, name, state string) ObservedContainer {
		return ObservedContainer{ID: name + "-id", Name: name, Service: "db", Number: 1, Revision: rev, ConfigHash: "old",
			Image: "db:1", ImageID: "sha256:db1", State: state}
	}
	if running > 0 {
		obs.Containers = append(obs.Containers, db(running, "demo-db-1", "running"))
	}
	for _, rev := range retained {
		obs.Containers = append(obs.Containers, db(rev, compose.RevisionContainerName("demo", "db", rev, 1), "exited"))
	}
	return obs
}

// TestRecreateKeepsThePreviousRevision: the old container is stopped and renamed before
// the new one takes the name, and the revisions beyond history are removed only after
// the new one passed its gate.
func TestRecreateKeepsThePreviousRevision(t *testing.T) {
	p := load(t, dbCompose)
	plan, err := MakePlan(desire(t, p), dbObserved(3, 1, 2), Options{Services: []string{"db"}})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "recreate-keeps-previous.golden")
}

// TestRecreateWithSecretsKeepsNothing: the secret files live under the container's
// name, which the new container takes: the old one is removed as before.
func TestRecreateWithSecretsKeepsNothing(t *testing.T) {
	p := load(t, dbCompose)
	obs := dbObserved(0)
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "c1", Name: "demo-cache-1", Service: "cache", Number: 1, Revision: 1,
		ConfigHash: "old", Image: "app:1", ImageID: "sha256:app1", State: "running"})
	plan, err := MakePlan(desire(t, p), obs, Options{Services: []string{"cache"}})
	assert.NilError(t, err)
	var actions []Action
	for _, s := range plan.Steps {
		actions = append(actions, s.Action)
	}
	assert.Check(t, is.DeepEqual(actions, []Action{Stop, Remove, Create, Start, WaitHealthy}), planText(t, plan))
}

// TestRecreateRollback: the running revision stops and is kept under its revision's
// name; the retained one gets the service's name back, starts and passes its gate;
// history is applied once it did.
func TestRecreateRollback(t *testing.T) {
	p := load(t, dbCompose)
	plan, err := MakePlan(desire(t, p), dbObserved(3, 1, 2), Options{Services: []string{"db"}, Rollback: map[string]int{"db": 2}})
	assert.NilError(t, err)
	golden.Assert(t, planText(t, plan), "recreate-rollback.golden")
	for _, s := range plan.Steps {
		if s.Action == Start || s.Action == WaitHealthy {
			assert.Check(t, is.Equal(s.ContainerID, "demo-db-r2-1-id"), "%+v", s)
			assert.Check(t, is.Equal(s.Target, "demo-db-1"), "%+v", s)
		}
	}
}

func TestRecreateRollbackUnknownRevision(t *testing.T) {
	p := load(t, dbCompose)
	_, err := MakePlan(desire(t, p), dbObserved(3, 2), Options{Services: []string{"db"}, Rollback: map[string]int{"db": 1}})
	assert.Check(t, errors.Is(err, ErrUnknownRevision), "%v", err)
	assert.Check(t, is.ErrorContains(err, "revisions with containers: 2, 3"))
}

func TestRecreateRollbackToTheRunningRevisionIsEmpty(t *testing.T) {
	p := load(t, dbCompose)
	plan, err := MakePlan(desire(t, p), dbObserved(3, 2), Options{Services: []string{"db"}, Rollback: map[string]int{"db": 3}})
	assert.NilError(t, err)
	assert.Check(t, plan.Empty(), planText(t, plan))
}

// TestRecreateAfterInterruptedRename: a rollout killed between the rename and the
// create leaves no container under the service's name; the next deploy creates one
// under a new revision number, never a retained one's.
func TestRecreateAfterInterruptedRename(t *testing.T) {
	p := load(t, dbCompose)
	plan, err := MakePlan(desire(t, p), dbObserved(0, 1, 2), Options{Services: []string{"db"}})
	assert.NilError(t, err)
	for _, s := range plan.Steps {
		if s.Action == Create {
			assert.Check(t, is.Equal(s.Revision, 3), planText(t, plan))
		}
		assert.Check(t, s.Action != Remove || s.Revision == 1, "only the revision beyond history goes: %s", planText(t, plan))
	}
}

// TestRecreateRollbackFinishesAFailedOne: a rollback whose revision failed its gate
// left it under the service's name (stopped) and the revision it left retained; the
// same rollback again starts it and waits, touching nothing else.
func TestRecreateRollbackFinishesAFailedOne(t *testing.T) {
	p := load(t, dbCompose)
	obs := dbObserved(0, 3)
	obs.Containers = append(obs.Containers, ObservedContainer{ID: "v2", Name: "demo-db-1", Service: "db", Number: 1, Revision: 2,
		ConfigHash: "old", Image: "db:1", ImageID: "sha256:db1", State: "exited", ExitCode: 1})
	plan, err := MakePlan(desire(t, p), obs, Options{Services: []string{"db"}, Rollback: map[string]int{"db": 2}})
	assert.NilError(t, err)
	var actions []Action
	for _, s := range plan.Steps {
		actions = append(actions, s.Action)
		assert.Check(t, is.Equal(s.ContainerID, "v2"), planText(t, plan))
	}
	assert.Check(t, is.DeepEqual(actions, []Action{Start, WaitHealthy}), planText(t, plan))
}
