package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// `rollback SERVICE --with-data`: the service goes back to its previous revision and its
// volumes to the backup recorded with the revision being left — the one
// x-lifecycle.backup.before-deploy took just before that revision was deployed — in an
// order where neither revision ever runs on the other's data:
//
//  1. before anything changes: the record, the backup's manifest and the sha256 of
//     every archive to restore are checked (PlanDataRestore); any problem changes nothing;
//  2. under the deploy's lock, after planning the rollback (and, with before-deploy on,
//     backing up the data being left): every running container of the project that
//     mounts one of the volumes is stopped (the revision being left, and any other
//     service's container sharing the volume);
//  3. the archives are extracted into the same volumes (restore --force: nothing runs on
//     them now; files that are not in the archive stay);
//  4. the rollback's rollout: the previous revision starts on the restored data, passes
//     its health gate and takes the traffic; the revision left stays stopped (retained);
//  5. the other containers stopped in 2 are started again and waited for (health gate).
//
// The service is down from 2 to 4 (a routed service's requests fail then): a data
// rollback has no revision that may serve meanwhile. If the restore fails, nothing is
// started (it would run on partly restored data); if the rollout fails, the data stays
// restored; each error says how to finish.

// ErrNoBackupRecorded means the revision being left has no pre-deploy backup recorded.
var ErrNoBackupRecorded = errors.New("no pre-deploy backup recorded")

// DataRestore is what `rollback --with-data` restores for one service.
type DataRestore struct {
	Service string `json:"service"`
	// Leaving is the revision rolled back from; Backup was taken before it was deployed.
	Leaving int    `json:"leaving"`
	Backup  string `json:"backup"`
	// Created is the backup's manifest time.
	Created time.Time `json:"created"`
	// Volumes are the compose names restored, EngineVolumes the engine's.
	Volumes       []string `json:"volumes"`
	EngineVolumes []string `json:"engine_volumes"`
}

// recordedBackup picks the record of the revision being left (current) that names its
// pre-deploy backup: the newest record of that revision that made it serve (deployed,
// or made current by a rollback).
func recordedBackup(service string, current int, records []Record) (Record, error) {
	if current == 0 {
		return Record{}, fmt.Errorf("service %q has no running revision to roll back from; nothing changed: `docker lifecycle ps %s` shows its containers, `docker lifecycle deploy` starts it, and `docker lifecycle restore BACKUP --force` restores a volume of a stopped service", service, service)
	}
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if r.Service != service || r.Revision != current || (r.Result != ResultDeployed && r.Result != ResultRollback) {
			continue
		}
		if r.Backup == "" {
			break
		}
		return r, nil
	}
	return Record{}, fmt.Errorf("service %q revision %d: %w (x-lifecycle.backup.before-deploy was off, or its volumes did not exist yet, when it was deployed); nothing changed: roll back without --with-data, or stop the service and `docker lifecycle restore BACKUP --force` a backup of your choice",
		service, current, ErrNoBackupRecorded)
}

// PlanDataRestore finds, for each service rolled back (targets), the backup to restore
// and checks it — the record, the manifest, the volumes it holds, the checksum of every
// archive — without any engine write. Every service's problem is reported at once.
func PlanDataRestore(ctx context.Context, eng engine.Engine, p *compose.Project, targets map[string]int) ([]DataRestore, error) {
	containers, err := eng.ListContainers(ctx, projectFilter(p.Name))
	if err != nil {
		return nil, err
	}
	records, err := History(ctx, eng, p.Name)
	if err != nil {
		return nil, err
	}
	services := make([]string, 0, len(targets))
	for s := range targets {
		services = append(services, s)
	}
	sort.Strings(services)
	var out []DataRestore
	var errs []error
	for _, service := range services {
		r, err := dataRestoreFor(ctx, p, service, containers, records)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func dataRestoreFor(ctx context.Context, p *compose.Project, service string, containers []engine.Container, records []Record) (DataRestore, error) {
	mounted := serviceVolumes(p, service)
	if len(mounted) == 0 {
		return DataRestore{}, fmt.Errorf("service %q mounts no named volume of the project: --with-data has nothing to restore; roll back without it", service)
	}
	current, _ := previousRevision(service, containers, records)
	rec, err := recordedBackup(service, current, records)
	if err != nil {
		return DataRestore{}, err
	}
	where, name, err := SplitBackupLocation(rec.Backup)
	if err != nil {
		return DataRestore{}, err
	}
	target, err := OpenTarget(where)
	if err != nil {
		return DataRestore{}, err
	}
	m, err := ReadManifest(ctx, target, name)
	if err != nil {
		return DataRestore{}, fmt.Errorf("service %q revision %d: the recorded backup %s: %w; nothing changed", service, current, rec.Backup, err)
	}
	r := DataRestore{Service: service, Leaving: current, Backup: rec.Backup, Created: m.Created}
	for _, v := range m.Volumes {
		if slices.Contains(mounted, v.Name) {
			r.Volumes = append(r.Volumes, v.Name)
			r.EngineVolumes = append(r.EngineVolumes, v.EngineName)
		}
	}
	if len(r.Volumes) == 0 {
		return DataRestore{}, fmt.Errorf("service %q revision %d: the recorded backup %s holds none of its volumes (%s); nothing changed",
			service, current, rec.Backup, strings.Join(mounted, ", "))
	}
	sel, err := selectVolumes(m, r.Volumes)
	if err != nil {
		return DataRestore{}, err
	}
	if err := VerifyBackup(ctx, target, name, sel); err != nil {
		return DataRestore{}, fmt.Errorf("service %q: nothing changed: %w", service, err)
	}
	return r, nil
}

// RollbackWithData rolls the services back (opts.Rollback) with their volumes restored
// as restores says, inside the deploy's lock (see the top of this file).
func RollbackWithData(ctx context.Context, eng engine.Engine, p *compose.Project, events progress.Writer, opts DeployOptions, restores []DataRestore) (strategies.Plan, error) {
	if opts.DryRun {
		return Deploy(ctx, eng, p, events, opts)
	}
	wait := opts.WaitTimeout
	if wait <= 0 {
		wait = time.Duration(p.Spec.WaitTimeout)
	}
	var stopped []engine.ContainerDetails
	restored := false
	opts.beforeRollout = func(ctx context.Context) error {
		for _, r := range restores {
			s, err := stopAndRestore(ctx, eng, p.Name, events, r, stopped)
			stopped = append(stopped, s...)
			if err != nil {
				return err
			}
		}
		restored = true
		return nil
	}
	opts.rolloutFailed = func(err error) error {
		if !restored {
			return err
		}
		var backups, services, finish []string
		for _, r := range restores {
			backups, services = append(backups, r.Backup), append(services, r.Service)
			finish = append(finish, fmt.Sprintf("`docker lifecycle rollback %s --to %d`", r.Service, opts.Rollback[r.Service]))
		}
		return fmt.Errorf("the volumes were restored from %s, then the rollback of %s failed: %w; fix the cause and run %s (without --with-data: the data is restored already)",
			strings.Join(backups, ", "), strings.Join(services, ", "), err, strings.Join(finish, ", "))
	}
	opts.afterRollout = func(ctx context.Context) error {
		return restartOthers(ctx, eng, events, stopped, restores, wait)
	}
	return Deploy(ctx, eng, p, events, opts)
}

// stopAndRestore stops the running containers that mount the volumes (but those in
// already, stopped for an earlier service's restore) and restores the volumes from the
// backup (force: they hold the data being replaced). It returns what it stopped, also
// on an error.
func stopAndRestore(ctx context.Context, eng engine.Engine, project string, events progress.Writer, r DataRestore, already []engine.ContainerDetails) ([]engine.ContainerDetails, error) {
	vols, _, err := backupSelection(ctx, eng, project, r.Volumes)
	if err != nil {
		return nil, err
	}
	var users []engine.ContainerDetails
	for _, pv := range vols {
		for _, c := range pv.users {
			seen := func(u engine.ContainerDetails) bool { return u.ID == c.ID }
			if c.State == "running" && !slices.ContainsFunc(users, seen) && !slices.ContainsFunc(already, seen) {
				users = append(users, c)
			}
		}
	}
	var stopped []engine.ContainerDetails
	for _, c := range users {
		progress.Emit(events, containerID(c.Name), progress.Working, "Stopping", "restore of "+strings.Join(r.EngineVolumes, ", "))
		if err := eng.StopContainer(ctx, c.ID, "", nil); err != nil {
			return stopped, fmt.Errorf("stop container %s for the restore of %s: %w; nothing restored, the rollback did not start: `docker start` what the progress shows stopped, or run the rollback again",
				c.Name, strings.Join(r.EngineVolumes, ", "), err)
		}
		stopped = append(stopped, c)
		progress.Emit(events, containerID(c.Name), progress.Done, "Stopped", "")
	}
	where, name, err := SplitBackupLocation(r.Backup)
	if err != nil {
		return stopped, err
	}
	target, err := OpenTarget(where)
	if err != nil {
		return stopped, err
	}
	if _, err := Restore(ctx, eng, target, name, events, RestoreOptions{Force: true, Volumes: r.Volumes}); err != nil {
		var names []string
		for _, c := range stopped {
			names = append(names, strings.TrimPrefix(c.Name, "/"))
		}
		return stopped, fmt.Errorf("the restore of %s from %s failed, so %q was not rolled back and its containers are left stopped (%s): run `docker lifecycle restore %s --force`, then `docker lifecycle rollback %s`: %w",
			strings.Join(r.EngineVolumes, ", "), r.Backup, r.Service, strings.Join(names, ", "), r.Backup, r.Service, err)
	}
	return stopped, nil
}

// restartOthers starts again the stopped containers the rollout did not take over —
// those of other services that share a restored volume — and waits for their health.
// The rolled-back services' containers of the revision left stay stopped: the rollout
// retired them.
func restartOthers(ctx context.Context, eng engine.Engine, events progress.Writer, stopped []engine.ContainerDetails, restores []DataRestore, wait time.Duration) error {
	leaving := map[string]string{}
	for _, r := range restores {
		leaving[r.Service] = strconv.Itoa(r.Leaving)
	}
	var again []engine.ContainerDetails
	var errs []error
	for _, c := range stopped {
		var labels map[string]string
		if c.Config != nil {
			labels = c.Config.Labels
		}
		if rev, ok := leaving[labels[compose.LabelService]]; ok && labels[compose.LabelRevision] == rev {
			continue
		}
		d, err := eng.InspectContainer(ctx, c.ID)
		if errors.Is(err, engine.ErrNotFound) || err == nil && d.State == "running" {
			continue
		}
		progress.Emit(events, containerID(c.Name), progress.Working, "Starting", "after the restore")
		if err := eng.StartContainer(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("start container %s after the restore (run `docker start %s`): %w", c.Name, strings.TrimPrefix(c.Name, "/"), err))
			continue
		}
		again = append(again, c)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return waitStarted(ctx, eng, events, again, wait)
}

// waitStarted waits for each restarted container's health gate, up to wait.
func waitStarted(ctx context.Context, eng engine.Engine, events progress.Writer, containers []engine.ContainerDetails, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for _, c := range containers {
		for {
			d, err := eng.InspectContainer(ctx, c.ID)
			if err != nil {
				return fmt.Errorf("inspect container %s after the restore: %w", c.Name, err)
			}
			ok, failure := gate(strategies.Start, d)
			if ok {
				progress.Emit(events, containerID(c.Name), progress.Done, "Started", "after the restore"+healthSuffix(d))
				break
			}
			if failure != "" {
				return fmt.Errorf("container %s after the restore: %s", c.Name, failure)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("container %s not healthy %s after the restore (health %q)", c.Name, wait, d.Health)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
