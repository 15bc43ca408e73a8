package strategies

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// serviceChange is what must happen to one service's containers.
type serviceChange struct {
	name     string
	replace  []ObservedContainer // stop (if running) and remove
	create   []int               // replica numbers to create
	start    []ObservedContainer // up to date but not running
	pending  []ObservedContainer // up to date, running, health not yet known
	revision int                 // revision of the containers to create
	hash     string              // configuration hash of the containers to create
	causes   map[string]string   // container name or number → cause
	// keep are the containers of replace that are kept (stopped, under their
	// revision's name) for a rollback instead of removed, by ID; retained are the
	// service's containers kept so by earlier rollouts.
	keep     map[string]bool
	retained []ObservedContainer
	// rollback is the revision a rollback starts again (its retained containers are
	// in start, renamed back to the service's names first); 0: a deploy.
	rollback int
}

// A recreate service keeps its previous revisions as stopped containers named like a
// routed service's, <project>-<service>-r<revision>-<n>, so `rollback` can start one
// again: before a new container takes the service's name, the old one is stopped and
// renamed, and a rollback swaps the names back. x-lifecycle.history bounds how many are
// kept; a service with secrets keeps none (its secret files are kept under the
// container's name, which the new container takes), nor one whose container joins
// another service's namespaces (network_mode, ipc, pid service:NAME).

// retainedName is the name a recreate service's container is kept under.
func retainedName(project string, c ObservedContainer) string {
	return compose.RevisionContainerName(project, c.Service, c.Revision, c.Number)
}

// isRetained reports whether c is a previous revision kept by a recreate rollout: not
// running, under its revision's name rather than the service's.
func (pl *planner) isRetained(c ObservedContainer) bool {
	return !c.Running() && c.Name == retainedName(pl.project.Name, c) && c.Name != compose.ReplicaName(pl.project, c.Service, c.Revision, c.Number)
}

// retains reports whether the service keeps its previous revisions: not one that joins
// another service's namespaces (its kept container would join a container that is
// gone), nor one with secrets (see above).
func (pl *planner) retains(name string) bool {
	spec, svc := pl.project.ServiceSpecs[name], pl.project.Project.Services[name]
	return spec.History != nil && *spec.History > 0 && len(svc.Secrets) == 0 && len(compose.SharedNamespaceServices(svc)) == 0
}

// diffService compares the desired service with its containers.
func (pl *planner) diffService(name string) (*serviceChange, error) {
	p := pl.project
	svc := p.Project.Services[name]
	hash, ref := pl.desired.Services[name].ConfigHash, pl.desired.Services[name].Image
	imageID := pl.observed.ImageIDs[ref]

	ch := &serviceChange{name: name, hash: hash, causes: map[string]string{}, keep: map[string]bool{}}
	byNumber := map[int][]ObservedContainer{}
	current, highestRetained := 0, 0
	for _, c := range pl.observed.Containers {
		if c.Service != name {
			continue
		}
		if pl.isRetained(c) {
			ch.retained = append(ch.retained, c)
			highestRetained = max(highestRetained, c.Revision)
			continue
		}
		byNumber[c.Number] = append(byNumber[c.Number], c)
		current = max(current, c.Revision)
	}
	replicas := svc.GetScale()
	outdated := false
	for n := 1; n <= replicas; n++ {
		cs := byNumber[n]
		if len(cs) == 0 {
			ch.create = append(ch.create, n)
			if len(byNumber) == 0 {
				ch.causes[strconv.Itoa(n)] = "service not deployed"
			} else {
				ch.causes[strconv.Itoa(n)] = fmt.Sprintf("scale up to %d", replicas)
			}
			continue
		}
		// Keep the newest; older duplicates (e.g. left by a killed deploy) go.
		sort.Slice(cs, func(i, j int) bool { return cs[i].Revision > cs[j].Revision })
		for _, dup := range cs[1:] {
			ch.replace = append(ch.replace, dup)
			ch.causes[dup.Name+"#"+dup.ID] = "duplicate replica"
		}
		c := cs[0]
		cause := ""
		switch {
		case c.Image != ref:
			cause = fmt.Sprintf("image changed: %s -> %s", c.Image, ref)
		case imageID != "" && c.ImageID != imageID:
			cause = fmt.Sprintf("image %s changed: %s -> %s", ref, shortID(c.ImageID), shortID(imageID))
		case c.ConfigHash != hash:
			cause = "configuration changed"
		case slices.Contains(pl.opts.Replace, name):
			cause = pl.opts.ReplaceCause
		case pl.joinsReplaced(svc) != "":
			cause = fmt.Sprintf("%s gets a new container, whose namespace this one joins", pl.joinsReplaced(svc))
		}
		if cause != "" {
			outdated = true
			ch.replace = append(ch.replace, c)
			ch.keep[c.ID] = c.Revision > 0 && pl.retains(name)
			ch.causes[c.Name+"#"+c.ID] = cause
			ch.create = append(ch.create, n)
			ch.causes[strconv.Itoa(n)] = cause
			continue
		}
		switch {
		case !c.Running() && !completed(c, svc):
			ch.start = append(ch.start, c)
			ch.causes[c.Name+"#"+c.ID] = notRunningCause(c)
		case c.Running() && c.Health == "unhealthy":
			// Same configuration, but broken: a fresh container is the recreate answer.
			ch.replace = append(ch.replace, c)
			ch.causes[c.Name+"#"+c.ID] = "container unhealthy"
			ch.create = append(ch.create, n)
			ch.causes[strconv.Itoa(n)] = "container unhealthy"
		case c.Running() && c.Health == "starting":
			// E.g. a deploy killed during its health wait: finish the wait it could not.
			ch.pending = append(ch.pending, c)
			ch.causes[c.Name+"#"+c.ID] = "health check still starting"
		}
	}
	for n, cs := range byNumber {
		if n >= 1 && n <= replicas {
			continue
		}
		for _, c := range cs {
			ch.replace = append(ch.replace, c)
			ch.causes[c.Name+"#"+c.ID] = fmt.Sprintf("scale down to %d", replicas)
		}
	}
	sort.Slice(ch.replace, func(i, j int) bool { return ch.replace[i].Name+ch.replace[i].ID < ch.replace[j].Name+ch.replace[j].ID })
	sort.Ints(ch.create)
	ch.revision = max(current, 1)
	if outdated {
		ch.revision = max(current, highestRetained) + 1
	} else if len(ch.create) > 0 && highestRetained >= ch.revision {
		// No container runs the current revision (e.g. a rollout killed between the
		// rename and the create): a new number, never a retained one's.
		ch.revision = highestRetained + 1
	}
	if len(ch.create) > 0 && imageID == "" {
		return nil, imageMissingError(p, name, ref)
	}
	return ch, nil
}

// completed reports whether a one-shot container finished successfully and should not be
// started again (restart policy never brings it back either).
func completed(c ObservedContainer, svc types.ServiceConfig) bool {
	if c.State != "exited" || c.ExitCode != 0 {
		return false
	}
	restart := svc.Restart
	if restart == "" && svc.Deploy != nil && svc.Deploy.RestartPolicy != nil {
		restart = svc.Deploy.RestartPolicy.Condition
	}
	return restart == "" || restart == "no" || restart == "none" || strings.HasPrefix(restart, "on-failure")
}

func notRunningCause(c ObservedContainer) string {
	if c.State == "exited" {
		return fmt.Sprintf("container not running (exited with code %d)", c.ExitCode)
	}
	return fmt.Sprintf("container not running (%s)", c.State)
}

func (pl *planner) planStops(ch *serviceChange) {
	var after []int
	for _, dep := range pl.dependents(ch.name) {
		after = append(after, pl.stops[dep]...)
		after = append(after, pl.removes[dep]...)
	}
	for _, c := range ch.replace {
		cause := ch.causes[c.Name+"#"+c.ID]
		removeAfter := slices.Clone(after)
		if c.Running() {
			id := pl.add(Step{Action: Stop, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: after})
			pl.stops[ch.name] = append(pl.stops[ch.name], id)
			removeAfter = []int{id}
		}
		if ch.keep[c.ID] {
			// Kept for a rollback; the rename frees the service's name (the removes are
			// what a new container waits for).
			if to := retainedName(pl.project.Name, c); to != c.Name {
				id := pl.add(Step{Action: Rename, Service: ch.name, Target: c.Name, RenameTo: to, ContainerID: c.ID, Revision: c.Revision, Cause: "kept for a rollback (x-lifecycle.history)", After: removeAfter})
				pl.removes[ch.name] = append(pl.removes[ch.name], id)
			} else {
				pl.removes[ch.name] = append(pl.removes[ch.name], removeAfter...)
			}
			continue
		}
		id := pl.add(Step{Action: Remove, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: removeAfter})
		pl.removes[ch.name] = append(pl.removes[ch.name], id)
	}
}

func (pl *planner) planStarts(ch *serviceChange) {
	if len(ch.create) == 0 && len(ch.start) == 0 && len(ch.pending) == 0 {
		return
	}
	wait := WaitHealthy
	if pl.needsCompletion(ch.name) {
		wait = WaitCompleted
	}
	gates := pl.gates(ch.name)
	for _, c := range ch.pending {
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: ch.causes[c.Name+"#"+c.ID]}))
	}
	for _, c := range ch.start {
		cause := ch.causes[c.Name+"#"+c.ID]
		after := append(slices.Clone(gates), pl.setup...)
		target := c.Name
		if ch.rollback > 0 {
			// The retained container takes the service's name back, once the
			// revision it replaces has left it.
			target = compose.ReplicaName(pl.project, ch.name, c.Revision, c.Number)
			if target != c.Name {
				after = []int{pl.add(Step{Action: Rename, Service: ch.name, Target: c.Name, RenameTo: target, ContainerID: c.ID, Revision: c.Revision, Cause: cause,
					After: slices.Clone(pl.removes[ch.name])})}
				after = append(after, gates...)
				after = append(after, pl.setup...)
			}
		}
		id := pl.add(Step{Action: Start, Service: ch.name, Target: target, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: after})
		pl.starts[ch.name] = append(pl.starts[ch.name], id)
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: target, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: []int{id}}))
	}
	for _, n := range ch.create {
		name := compose.ReplicaName(pl.project, ch.name, ch.revision, n)
		cause := ch.causes[strconv.Itoa(n)]
		after := append(append(slices.Clone(gates), pl.setup...), pl.removes[ch.name]...)
		createCause := cause
		if note := keepsAnonymousVolumes(pl.project.Project.Services[ch.name], ch.replace, n); note != "" {
			createCause += "; " + note
		}
		created := pl.add(Step{Action: Create, Service: ch.name, Target: name, Number: n, Revision: ch.revision, ConfigHash: ch.hash, Cause: createCause, After: after})
		started := pl.add(Step{Action: Start, Service: ch.name, Target: name, Number: n, Revision: ch.revision, Cause: cause, After: []int{created}})
		pl.starts[ch.name] = append(pl.starts[ch.name], started)
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: name, Number: n, Revision: ch.revision, Cause: cause, After: []int{started}}))
	}
}

// joinsReplaced names a service whose container this service's joins (network_mode,
// ipc or pid service:NAME) and that gets a new container in this plan, or "": like
// Compose, the joining container is replaced too, or it would keep a dead namespace.
func (pl *planner) joinsReplaced(svc types.ServiceConfig) string {
	for _, name := range compose.SharedNamespaceServices(svc) {
		if pl.replaced[name] {
			return name
		}
	}
	return ""
}

// diffRecreateRollback plans a recreate service's rollback to revision to: its running
// containers stop and are kept under their revision's names, and the retained
// containers of revision to get the service's names back and start, one copy at a time
// as the strategy says.
func (pl *planner) diffRecreateRollback(name string, to int) (*serviceChange, error) {
	ch := &serviceChange{name: name, causes: map[string]string{}, keep: map[string]bool{}, rollback: to, revision: to}
	cause := fmt.Sprintf("rollback to revision %d", to)
	var live []ObservedContainer
	var revisions []int
	for _, c := range pl.observed.Containers {
		if c.Service != name {
			continue
		}
		revisions = append(revisions, c.Revision)
		switch {
		case pl.isRetained(c) && c.Revision == to:
			ch.start = append(ch.start, c)
			ch.causes[c.Name+"#"+c.ID] = cause
		case pl.isRetained(c):
			ch.retained = append(ch.retained, c)
		case c.Revision == to && c.State != "dead" && c.State != "removing":
			// Under the service's name already: a rollback that failed its gate is
			// finished by starting it again, or waiting for it.
			ch.causes[c.Name+"#"+c.ID] = cause
			switch {
			case !c.Running():
				ch.start = append(ch.start, c)
			case c.Health == "starting" || c.Health == "unhealthy":
				ch.pending = append(ch.pending, c)
			}
		default:
			live = append(live, c)
		}
	}
	if len(ch.start) == 0 && len(ch.pending) == 0 {
		if slices.ContainsFunc(pl.observed.Containers, func(c ObservedContainer) bool { return c.Service == name && c.Revision == to && c.Running() }) {
			return ch, nil // it runs that revision already: nothing to do
		}
		slices.Sort(revisions)
		return nil, fmt.Errorf("service %q: %w %d: revisions with containers: %s", name, ErrUnknownRevision, to, joinInts(slices.Compact(revisions)))
	}
	for _, c := range live {
		// Every container of the service leaves: the rolled-back revision's replicas
		// take the numbers it had. Kept, to roll the rollback back.
		ch.replace = append(ch.replace, c)
		ch.keep[c.ID] = true
		ch.causes[c.Name+"#"+c.ID] = cause
	}
	sort.Slice(ch.replace, func(i, j int) bool { return ch.replace[i].Name < ch.replace[j].Name })
	sort.Slice(ch.start, func(i, j int) bool { return ch.start[i].Number < ch.start[j].Number })
	return ch, nil
}

// planRetention removes the kept revisions beyond x-lifecycle.history once the
// service's new containers passed their gates (a failed rollout removes none).
func (pl *planner) planRetention(ch *serviceChange) {
	if len(ch.create) == 0 && len(ch.start) == 0 && len(ch.replace) == 0 {
		return
	}
	keep := 0
	if pl.retains(ch.name) {
		keep = *pl.project.ServiceSpecs[ch.name].History
	}
	leaving := slices.Clone(ch.retained)
	for _, c := range ch.replace {
		if ch.keep[c.ID] {
			leaving = append(leaving, c)
		}
	}
	drop := revisionsBeyondHistory(leaving, ch.revision, keep)
	for _, c := range leaving {
		if !drop[c.Revision] {
			continue
		}
		after := slices.Clone(pl.waits[ch.name])
		target := c.Name
		for _, s := range pl.plan.Steps {
			if s.Action == Rename && s.ContainerID == c.ID {
				after, target = append(after, s.ID), s.RenameTo
			}
		}
		pl.add(Step{Action: Remove, Service: ch.name, Target: target, ContainerID: c.ID, Revision: c.Revision,
			Cause: fmt.Sprintf("history: keep %d previous revisions", keep), After: after})
	}
}
