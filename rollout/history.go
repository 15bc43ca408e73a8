package rollout

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// Revision history is kept on the engine as one small volume per record, because
// labels are the engine's only writable metadata that needs no container, and volumes
// are the only labelled objects that cost nothing to keep. Each record is written once,
// when a service's rollout ends.
const (
	labelHistory      = "io.lifecycle.history" // value: the service
	labelResult       = "io.lifecycle.result"
	labelTime         = "io.lifecycle.time"
	labelReason       = "io.lifecycle.reason"
	labelImageID      = "io.lifecycle.image-id"
	labelTrigger      = "io.lifecycle.trigger"
	recordsPerService = 20
)

// Results of a revision record.
const (
	ResultDeployed   = "deployed"
	ResultRolledBack = "rolled-back" // the revision failed and the previous one was restored
	ResultFailed     = "failed"
	ResultRollback   = "rollback" // `docker lifecycle rollback` made this revision current again
)

// Triggers of a revision record: what started the rollout, when it was not a person's
// command (records written before triggers existed have none).
const (
	// TriggerGuardRollback: the guard rolled the service back, its restart budget spent
	// on a recent revision (guardrollback.go); the record's reason says why.
	TriggerGuardRollback = "guard-rollback"
	// TriggerHostsRollback: a multi-host deploy rolled the service back on this host
	// because another host failed its deploy (multihost.go).
	TriggerHostsRollback = "hosts-rollback"
)

// Record is one entry of a service's revision history.
type Record struct {
	Service    string    `json:"service"`
	Revision   int       `json:"revision"`
	Result     string    `json:"result"`
	Strategy   string    `json:"strategy"`
	Image      string    `json:"image"`
	ImageID    string    `json:"image_id"`
	ConfigHash string    `json:"config_hash"`
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason,omitempty"`
	// Trigger is what started the rollout when it was not a command run by a person
	// (TriggerGuardRollback); empty otherwise.
	Trigger string `json:"trigger,omitempty"`
	// Backup is the location of the backup of the service's volumes taken before this
	// rollout (x-lifecycle.backup.before-deploy); what `rollback --with-data` restores
	// when it leaves this revision. Empty: none was taken.
	Backup   string `json:"backup,omitempty"`
	volume   string
	timeline string // encoded; Timeline decodes it
}

func historyFilter(project string) map[string]string {
	return map[string]string{compose.LabelProject: project, labelHistory: ""}
}

// History returns the project's revision records, oldest first.
func History(ctx context.Context, eng engine.Engine, project string) ([]Record, error) {
	vols, err := eng.ListVolumes(ctx, historyFilter(project))
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(vols))
	for _, v := range vols {
		l := v.Labels
		rev, _ := strconv.Atoi(l[compose.LabelRevision])
		t, _ := time.Parse(time.RFC3339Nano, l[labelTime])
		out = append(out, Record{
			Service: l[labelHistory], Revision: rev, Result: l[labelResult], Strategy: l[compose.LabelStrategy],
			Image: l[compose.LabelImageRef], ImageID: l[labelImageID], ConfigHash: l[compose.LabelConfigHash],
			Time: t, Reason: l[labelReason], Trigger: l[labelTrigger], Backup: l[labelBackup], volume: v.Name, timeline: l[labelTimeline],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

func highestRevisions(ctx context.Context, eng engine.Engine, project string) (map[string]int, error) {
	records, err := History(ctx, eng, project)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range records {
		out[r.Service] = max(out[r.Service], r.Revision)
	}
	return out, nil
}

// writeRecord stores a record and prunes the service's oldest records beyond the limit.
func writeRecord(ctx context.Context, eng engine.Engine, project string, r Record) error {
	reason := r.Reason
	if len(reason) > 500 {
		reason = reason[:500] + "…"
	}
	name := fmt.Sprintf("%s_lifecycle-history-%s-%d", project, r.Service, r.Time.UnixNano())
	labels := map[string]string{
		compose.LabelProject: project, compose.LabelManagedBy: compose.ManagedByValue,
		labelHistory: r.Service, compose.LabelRevision: strconv.Itoa(r.Revision), labelResult: r.Result,
		compose.LabelStrategy: r.Strategy, compose.LabelImageRef: r.Image, labelImageID: r.ImageID,
		compose.LabelConfigHash: r.ConfigHash, labelTime: r.Time.UTC().Format(time.RFC3339Nano), labelReason: reason,
	}
	if r.timeline != "" {
		labels[labelTimeline] = r.timeline
	}
	if r.Trigger != "" {
		labels[labelTrigger] = r.Trigger
	}
	if r.Backup != "" {
		labels[labelBackup] = r.Backup
	}
	_, err := eng.CreateVolume(ctx, engine.VolumeSpec{Name: name, Labels: labels})
	if err != nil {
		return fmt.Errorf("write revision record for service %q: %w", r.Service, err)
	}
	records, err := History(ctx, eng, project)
	if err != nil {
		return err
	}
	var mine []Record
	for _, rec := range records {
		if rec.Service == r.Service {
			mine = append(mine, rec)
		}
	}
	for i := 0; i < len(mine)-recordsPerService; i++ {
		_ = eng.RemoveVolume(ctx, mine[i].volume)
	}
	return nil
}

// recordHistory writes one record per service whose containers this plan changed:
// deployed when all its steps ran, rolled-back or failed otherwise.
func (x *executor) recordHistory(plan strategies.Plan, rolledBack []string, cause error) {
	total := map[string]int{}
	revision := map[string]int{}
	for _, s := range plan.Steps {
		total[s.Service]++
		if s.Action == strategies.Create || s.Action == strategies.Start {
			revision[s.Service] = max(revision[s.Service], s.Revision)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	var wg sync.WaitGroup
	for _, service := range slices.Sorted(maps.Keys(revision)) {
		if _, ok := x.project.Project.Services[service]; !ok {
			continue
		}
		x.mu.Lock()
		done := x.done[service]
		x.mu.Unlock()
		rec := Record{
			Service: service, Revision: revision[service], Strategy: x.project.ServiceSpecs[service].Strategy,
			Image: x.desired.Services[service].Image, ConfigHash: x.desired.Services[service].ConfigHash, Time: now,
			Backup: x.opts.Backups[service],
		}
		rec.ImageID = x.observed.ImageIDs[rec.Image]
		switch {
		case slices.Contains(rolledBack, service):
			rec.Result, rec.Reason = ResultRolledBack, firstLine(cause)
		case done >= total[service]:
			rec.Result = cmp.Or(x.opts.Result, ResultDeployed)
			rec.Trigger, rec.Reason = x.opts.Trigger, x.opts.Reason
		case service == x.failed:
			rec.Result, rec.Reason = ResultFailed, firstLine(cause)
		default:
			continue // interrupted before it began: nothing changed
		}
		if rec.Result == ResultRollback {
			rec.Image, rec.ImageID, rec.ConfigHash = x.revisionFacts(service, rec.Revision)
		}
		if x.timeline != nil {
			if enc, err := encodeTimeline(x.timeline.timeline(service, rec)); err == nil {
				rec.timeline = enc
			}
		}
		// The records are written side by side: the deploy ends when the last one is.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := writeRecord(ctx, x.eng, x.project.Name, rec); err != nil {
				progress.Emit(x.events, "Service "+service, progress.Warning, "History not written", err.Error())
			}
		}()
	}
	wg.Wait()
}

// revisionFacts reads a retained revision's image and hash from its containers.
func (x *executor) revisionFacts(service string, revision int) (image, imageID, hash string) {
	for _, c := range x.observed.Containers {
		if c.Service == service && c.Revision == revision {
			return c.Image, c.ImageID, c.ConfigHash
		}
	}
	return "", "", ""
}

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	return line
}

// ErrNothingToRollBack means a service has no retained revision to go back to.
var ErrNothingToRollBack = errors.New("no previous revision to roll back to")

// RollbackTargets picks the revision each service goes back to: to, when given, else
// the revision that served before the current one (so a rollback of a rollback returns
// to where it started), among the revisions whose containers are retained. Without
// services named, the routed services: a recreate service (a database, typically) is
// rolled back only when named, since its previous revision would run on the current
// revision's data (`rollback SERVICE --with-data` restores that too).
func RollbackTargets(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, to int) (map[string]int, error) {
	if len(services) == 0 {
		for _, name := range p.ServiceNames() {
			if p.ServiceSpecs[name].Routed() {
				services = append(services, name)
			}
		}
		if len(services) == 0 {
			// An empty answer would make the rollback a deploy of every service.
			return nil, fmt.Errorf("project %s has no routed service: %w; a recreate service is rolled back only when named (`docker lifecycle rollback SERVICE`)", p.Name, ErrNothingToRollBack)
		}
	}
	containers, err := eng.ListContainers(ctx, projectFilter(p.Name))
	if err != nil {
		return nil, err
	}
	records, err := History(ctx, eng, p.Name)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, service := range services {
		if _, ok := p.Project.Services[service]; !ok {
			return nil, fmt.Errorf("%w: %q in project %s", strategies.ErrUnknownService, service, p.Name)
		}
		current, target := previousRevision(service, containers, records)
		if to > 0 {
			out[service] = to // the planner says whether it exists
			continue
		}
		if target == 0 {
			if !p.ServiceSpecs[service].Routed() {
				return nil, fmt.Errorf("service %q (revision %d, recreate strategy): %w; a recreate service keeps its previous revisions (x-lifecycle.history) from this version on, unless it has secrets or joins another service's namespaces: the first deploy that changes it keeps one", service, current, ErrNothingToRollBack)
			}
			return nil, fmt.Errorf("service %q (revision %d): %w; retained revisions are kept by x-lifecycle.history", service, current, ErrNothingToRollBack)
		}
		out[service] = target
	}
	return out, nil
}

// previousRevision is the service's current revision (the newest one with running
// containers) and the revision a rollback goes back to: the newest record of another
// revision that served (deployed, or made current by a rollback) and whose containers
// are retained, else the newest retained revision below the current one (0: none).
func previousRevision(service string, containers []engine.Container, records []Record) (current, target int) {
	retained := map[int]bool{}
	for _, c := range containers {
		if c.Labels[compose.LabelService] != service {
			continue
		}
		rev, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
		if c.State == "running" || c.State == "restarting" {
			current = max(current, rev)
		} else {
			retained[rev] = true
		}
	}
	for i := len(records) - 1; i >= 0 && target == 0; i-- {
		r := records[i]
		if r.Service == service && r.Revision != current && retained[r.Revision] && (r.Result == ResultDeployed || r.Result == ResultRollback) {
			target = r.Revision
		}
	}
	if target == 0 {
		for rev := range retained {
			if rev < current {
				target = max(target, rev)
			}
		}
	}
	return current, target
}
