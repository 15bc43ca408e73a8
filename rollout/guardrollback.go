package rollout

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// The guard's escalation (docs/guard.md, "Escalation: automatic rollback"): when the
// restart budget of a container is spent and its service's current revision was
// deployed within x-lifecycle.guard.rollback-window, with a previous revision retained,
// the guard rolls the service back to it through the code path of `docker lifecycle
// rollback` (Deploy with Rollback targets: under the project lock, the service's
// strategy and rollback_config, the router switched and drained), recorded in history
// with the trigger guard-rollback and why. Otherwise, or when the rollback fails, the
// container is quarantined as before.

// escalation is the outcome of an automatic rollback considered for a container whose
// budget is spent, handed from the background to the guard's loop.
type escalation struct {
	alert   GuardAlert // the quarantine alert the spent budget made
	cause   string     // the spent budget, in words
	service string
	began   time.Time // when the budget was found spent
	// revision is the one the container runs, to the one the service went (or was to
	// go) back to.
	revision, to int
	rolledBack   bool
	took         time.Duration
	// why says why there was a rollback, or why not (to == 0, or the detached guard).
	why string
	// err: the rollback failed; postponed: the project lock was held (a deploy runs).
	err, postponed error
}

// escalate is what schedule does when the budget of w is spent: roll back, or
// quarantine. Only the engine's records decide, so they are read in the background.
func (g *guard) escalate(w *watchedContainer, a GuardAlert) {
	spec := g.project.Services[w.service]
	window := spec.Policy.RollbackWindowOrDefault()
	switch {
	case window == 0:
		g.quarantineOrAlert(w, a) // rollback-window: 0s turns the escalation off
		return
	case !spec.Routed:
		a.Reason += "; no automatic rollback of a recreate service (its previous revision would run on this one's data): `docker lifecycle rollback " + w.service + " [--with-data]` does it by hand"
		g.quarantineOrAlert(w, a)
		return
	case g.rollingBack[w.service]:
		// A sibling's rollback is in flight; it stops this container too. Ask again then.
		w.tracker.quarantined = false
		w.retryAt = time.Now().Add(lockRetry)
		return
	}
	w.busy = true
	g.rollingBack[w.service] = true
	began := time.Now()
	id, name, service := w.id, w.name, w.service
	cause := fmt.Sprintf("still unhealthy after %d restarts within %s (x-lifecycle.guard budget %d)", a.Restarts, w.tracker.policy.window, a.Budget)
	g.wg.Go(func() {
		// Not the command's context: a rollback, once begun, ends (Deploy reverts a failed one).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+2*time.Duration(spec.WaitTimeout))
		defer cancel()
		e := g.tryRollback(ctx, id, name, service, a, cause, window, began)
		g.done <- restartResult{id: id, escalated: &e}
	})
}

func (g *guard) quarantineOrAlert(w *watchedContainer, a GuardAlert) {
	if g.project.Services[w.service].Routed {
		g.quarantine(w, a)
	} else {
		g.alert(a)
	}
}

// tryRollback reads the revision records and the containers, decides, and rolls back.
func (g *guard) tryRollback(ctx context.Context, id, name, service string, a GuardAlert, cause string, window time.Duration, began time.Time) escalation {
	e := escalation{alert: a, cause: cause, service: service, began: began}
	d, err := g.eng.InspectContainer(ctx, id)
	if err != nil {
		e.why = fmt.Sprintf("no automatic rollback: inspect the container: %v", err)
		return e
	}
	e.revision, _ = strconv.Atoi(d.Labels[compose.LabelRevision])
	containers, err := g.eng.ListContainers(ctx, projectFilter(g.project.Project))
	if err != nil {
		e.why = fmt.Sprintf("no automatic rollback: list the project's containers: %v", err)
		return e
	}
	records, err := History(ctx, g.eng, g.project.Project)
	if err != nil {
		e.why = fmt.Sprintf("no automatic rollback: read the revision records: %v", err)
		return e
	}
	to, why := decideGuardRollback(service, e.revision, containers, records, window, began)
	if to == 0 {
		e.why = why
		return e
	}
	rollBack := g.opts.rollBack
	if rollBack == nil && g.opts.Project != nil {
		rollBack = deployRollback(g.eng, g.opts.Project)
	}
	if rollBack == nil {
		e.why = fmt.Sprintf("no automatic rollback although %s and revision %d is retained: the detached guard has no compose files to roll back with; `docker lifecycle rollback %s` does it (or run the guard in the foreground)", why, to, service)
		return e
	}
	e.to, e.why = to, why
	reason := fmt.Sprintf("guard: %s (%s) %s; %s", name, service, cause, why)
	err = rollBack(ctx, service, to, reason)
	e.took = time.Since(began)
	switch {
	case errors.Is(err, engine.ErrLocked):
		e.postponed = err
	case err != nil:
		e.err = err
	default:
		e.rolledBack = true
	}
	return e
}

// decideGuardRollback says to which revision the service goes back (0: none, and why
// not) when a container running revision has spent its budget at now: only when that
// is the service's current revision, made current by a deploy (not by a rollback: the
// guard does not roll a rollback back) within window, and a previous revision is
// retained (the one `docker lifecycle rollback` picks).
func decideGuardRollback(service string, revision int, containers []engine.Container, records []Record, window time.Duration, now time.Time) (to int, why string) {
	current, target := previousRevision(service, containers, records)
	if revision == 0 || revision != current {
		return 0, fmt.Sprintf("no automatic rollback: the container runs revision %d, the service's current revision is %d", revision, current)
	}
	var rec *Record
	for i := len(records) - 1; i >= 0 && rec == nil; i-- {
		if records[i].Service == service && records[i].Revision == current {
			rec = &records[i]
		}
	}
	switch {
	case rec == nil:
		return 0, fmt.Sprintf("no automatic rollback: revision %d has no revision record (history)", current)
	case rec.Result != ResultDeployed:
		return 0, fmt.Sprintf("no automatic rollback: revision %d is current by a %s, not a deploy, and the guard does not roll a rollback back", current, rec.Result)
	}
	age := now.Sub(rec.Time).Round(time.Second)
	switch {
	case age > window:
		return 0, fmt.Sprintf("no automatic rollback: revision %d was deployed %s ago, longer than rollback-window (%s)", current, age, window)
	case target == 0:
		return 0, fmt.Sprintf("no automatic rollback: revision %d was deployed %s ago, but no previous revision is retained (x-lifecycle.history)", current, age)
	}
	return target, fmt.Sprintf("revision %d was deployed %s ago (rollback-window %s)", current, age, window)
}

// deployRollback rolls service back to revision to as `docker lifecycle rollback
// SERVICE --to REV` does, recording the trigger and the reason.
func deployRollback(eng engine.Engine, p *compose.Project) func(ctx context.Context, service string, to int, reason string) error {
	return func(ctx context.Context, service string, to int, reason string) error {
		plan, err := Deploy(ctx, eng, p, progress.Nop, DeployOptions{
			Services: []string{service}, Rollback: map[string]int{service: to},
			Command: "docker lifecycle guard (automatic rollback)", Trigger: TriggerGuardRollback, Reason: reason,
		})
		if err == nil && plan.Empty() {
			err = fmt.Errorf("service %q: nothing to do to go back to revision %d", service, to)
		}
		return err
	}
}

// escalated takes an escalation's outcome in the guard's loop: an alert for the
// rollback, or the quarantine.
func (g *guard) escalated(ctx context.Context, w *watchedContainer, e escalation) {
	delete(g.rollingBack, e.service)
	a := e.alert
	switch {
	case e.postponed != nil:
		w.tracker.quarantined = false // asked again
		w.retryAt = time.Now().Add(lockRetry)
		if !w.postponed {
			w.postponed = true
			g.alert(GuardAlert{Kind: AlertUnhealthy, Action: ActionPostponed, Service: w.service, Container: w.name,
				Reason: fmt.Sprintf("automatic rollback to revision %d postponed, tried again every %s: %v", e.to, lockRetry, e.postponed)})
		}
	case e.rolledBack:
		w.postponed = false
		done := time.Now()
		g.alert(GuardAlert{
			Time: done, Kind: AlertUnhealthy, Action: ActionRolledBack, Service: w.service, Container: w.name,
			Restarts: a.Restarts, Budget: a.Budget, Revision: e.revision, RollbackTo: e.to, RollbackBegan: &e.began,
			Reason: fmt.Sprintf("%s; %s: rolled the service back to revision %d through its strategy in %s (recorded in history as guard-rollback); revision %d's containers are stopped and kept",
				e.cause, e.why, e.to, done.Sub(e.began).Round(time.Millisecond), e.revision),
		})
		// The rollback stopped this revision's containers and started the previous one's.
		if err := g.resync(ctx, done); err != nil && ctx.Err() == nil {
			g.alert(GuardAlert{Kind: AlertGuard, Action: ActionReported, Reason: fmt.Sprintf("re-synchronise after the rollback of %s: %v", w.service, err)})
		}
	case e.err != nil:
		w.postponed = false
		g.alert(GuardAlert{
			Kind: AlertUnhealthy, Action: ActionRollbackFail, Service: w.service, Container: w.name,
			Restarts: a.Restarts, Budget: a.Budget, Revision: e.revision, RollbackTo: e.to, RollbackBegan: &e.began,
			Reason: fmt.Sprintf("automatic rollback to revision %d failed after %s: %v; the container is quarantined instead", e.to, e.took.Round(time.Millisecond), e.err),
		})
		a.Reason += fmt.Sprintf("; the automatic rollback to revision %d failed", e.to)
		g.quarantineOrAlert(w, a)
	default:
		a.Revision = e.revision
		a.Reason += "; " + e.why
		g.quarantineOrAlert(w, a)
	}
}
