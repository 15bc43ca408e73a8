package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// A recreate service's rollback (strategies/recreate.go) stops the running revision and
// keeps it under its revision's name, gives the retained revision the service's name
// back and starts it. When that fails (typically the previous revision fails its health
// gate) nothing is removed and there is no automatic way back — the service has no
// copy that may serve meanwhile — so the error says where each revision is and which
// command finishes the rollback or returns to the revision left.
//
// The revision that failed its gate is stopped (and kept): left running, unhealthy, it
// would go on writing to the volumes it mounts, and a health check that passes again
// later would make `rollback db --to <prev>` find the revision already running, plan
// nothing and record nothing, instead of starting it and waiting for its gate as the
// error says.

// stopFailedRecreateRollback stops, after a failed run, the containers a recreate
// service's rollback started or waited for that did not pass their gate.
func (x *executor) stopFailedRecreateRollback(plan strategies.Plan) {
	if len(x.opts.Rollback) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	seen := map[string]bool{}
	for _, s := range plan.Steps {
		to, ok := x.opts.Rollback[s.Service]
		spec, inProject := x.project.ServiceSpecs[s.Service]
		if !ok || !inProject || spec.Routed() || s.Revision != to || s.ContainerID == "" || seen[s.ContainerID] ||
			(s.Action != strategies.Start && s.Action != strategies.WaitHealthy) {
			continue
		}
		seen[s.ContainerID] = true
		x.mu.Lock()
		passed := x.healthy[s.Target]
		x.mu.Unlock()
		if passed {
			continue
		}
		d, err := x.eng.InspectContainer(ctx, s.ContainerID)
		if err != nil || (d.State != "running" && d.State != "restarting") {
			continue // never started, or stopped already: nothing to stop
		}
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Stopping", fmt.Sprintf("the rollback to revision %d did not finish: stopped and kept", to))
		if err := x.eng.StopContainer(ctx, s.ContainerID, "", nil); err != nil && !errors.Is(err, engine.ErrNotFound) {
			progress.Emit(x.events, containerID(s.Target), progress.Warning, "Not stopped", err.Error())
			continue
		}
		progress.Emit(x.events, containerID(s.Target), progress.Done, "Stopped", "")
	}
}

// explainRecreateRollback adds to a failed rollback's error, for each recreate service
// it rolled back, its containers as they are now and the commands that finish the
// rollback or undo it; backups are the pre-deploy backups taken before the rollback
// (the data the revision left had).
func explainRecreateRollback(ctx context.Context, eng engine.Engine, p *compose.Project, plan strategies.Plan, targets map[string]int, backups map[string]string, cause error) error {
	var notes []string
	for _, service := range plan.Services() {
		to, ok := targets[service]
		if spec, inProject := p.ServiceSpecs[service]; !ok || !inProject || spec.Routed() {
			continue
		}
		left := 0
		for _, s := range plan.Steps {
			if s.Service == service && s.Action == strategies.Stop && s.Revision != to {
				left = max(left, s.Revision)
			}
		}
		var now []string
		containers, err := eng.ListContainers(context.WithoutCancel(ctx), map[string]string{compose.LabelProject: p.Name, compose.LabelService: service})
		if err != nil {
			now = append(now, "unknown ("+err.Error()+")")
		}
		slices.SortFunc(containers, func(a, b engine.Container) int { return strings.Compare(a.Name, b.Name) })
		for _, c := range containers {
			state := c.State
			if c.Health != "" && c.State == "running" {
				state += " (" + c.Health + ")" // not a comma: the containers are listed with commas
			}
			now = append(now, fmt.Sprintf("%s (revision %s) %s", strings.TrimPrefix(c.Name, "/"), c.Labels[compose.LabelRevision], state))
		}
		note := fmt.Sprintf("service %q (recreate): the rollback to revision %d did not finish and nothing was removed; its containers now: %s. "+
			"Fix the cause, then `docker lifecycle rollback %s --to %d` finishes the rollback (it starts revision %d again and waits for its health gate)",
			service, to, strings.Join(now, ", "), service, to, to)
		if left > 0 {
			note += fmt.Sprintf("; or `docker lifecycle rollback %s --to %d` returns to revision %d", service, left, left)
			if b := backups[service]; b != "" {
				note += fmt.Sprintf(" (its data as it left it is in %s: stop the service and `docker lifecycle restore %s --force` first when the volumes were restored)", b, b)
			}
		}
		notes = append(notes, note)
	}
	if len(notes) == 0 {
		return cause
	}
	return fmt.Errorf("%w\n%s", cause, strings.Join(notes, "\n"))
}
