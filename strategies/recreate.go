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
}

// diffService compares the desired service with its containers.
func (pl *planner) diffService(name string) (*serviceChange, error) {
	p := pl.project
	svc := p.Project.Services[name]
	hash, ref := pl.desired.Services[name].ConfigHash, pl.desired.Services[name].Image
	imageID := pl.observed.ImageIDs[ref]

	ch := &serviceChange{name: name, hash: hash, causes: map[string]string{}}
	byNumber := map[int][]ObservedContainer{}
	current := 0
	for _, c := range pl.observed.Containers {
		if c.Service != name {
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
		ch.revision = current + 1
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
		id := pl.add(Step{Action: Start, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: after})
		pl.starts[ch.name] = append(pl.starts[ch.name], id)
		pl.waits[ch.name] = append(pl.waits[ch.name], pl.add(Step{Action: wait, Service: ch.name, Target: c.Name, ContainerID: c.ID, Revision: c.Revision, Cause: cause, After: []int{id}}))
	}
	for _, n := range ch.create {
		name := compose.ReplicaName(pl.project, ch.name, ch.revision, n)
		cause := ch.causes[strconv.Itoa(n)]
		after := append(append(slices.Clone(gates), pl.setup...), pl.removes[ch.name]...)
		created := pl.add(Step{Action: Create, Service: ch.name, Target: name, Number: n, Revision: ch.revision, ConfigHash: ch.hash, Cause: cause, After: after})
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
