package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// `rollback SERVICE --with-data`: the service goes back to its previous revision (the
// ordinary rollback, Deploy with Rollback), then, inside the same project lock, its
// volumes are restored from the backup recorded with the revision being left — the
// one x-lifecycle.backup.before-deploy took just before that revision was deployed:
//
//  1. before anything changes: the record, the backup's manifest and the sha256 of
//     every archive to restore are checked (PlanDataRestore); any problem changes nothing;
//  2. the rollback itself (with before-deploy on, it first backs up the data being left);
//  3. every running container of the project that mounts one of the volumes is stopped
//     (the rolled-back service's, and any other service's sharing the volume);
//  4. the archives are extracted into the same volumes (restore --force: nothing runs on
//     them now; files that are not in the archive stay);
//  5. the stopped containers are started again and waited for (health gate).
//
// If the rollout fails, nothing is restored. If the restore fails, the containers stay
// stopped (they would run on partly restored data) and the error says how to finish.

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

// RollbackWithData rolls the services back (opts.Rollback) and then restores their
// volumes as restores says, inside the deploy's lock (see the top of this file).
func RollbackWithData(ctx context.Context, eng engine.Engine, p *compose.Project, events progress.Writer, opts DeployOptions, restores []DataRestore) (strategies.Plan, error) {
	if !opts.DryRun {
		wait := opts.WaitTimeout
		if wait <= 0 {
			wait = time.Duration(p.Spec.WaitTimeout)
		}
		opts.afterRollout = func(ctx context.Context) error {
			for _, r := range restores {
				if err := restoreData(ctx, eng, p.Name, events, r, wait); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return Deploy(ctx, eng, p, events, opts)
}

// restoreData stops the running containers that mount the volumes, restores the
// volumes from the backup (force: they hold the data being replaced), and starts the
// containers again.
func restoreData(ctx context.Context, eng engine.Engine, project string, events progress.Writer, r DataRestore, wait time.Duration) error {
	vols, _, err := backupSelection(ctx, eng, project, r.Volumes)
	if err != nil {
		return err
	}
	var users []engine.ContainerDetails
	for _, pv := range vols {
		for _, c := range pv.users {
			if c.State == "running" && !slices.ContainsFunc(users, func(u engine.ContainerDetails) bool { return u.ID == c.ID }) {
				users = append(users, c)
			}
		}
	}
	var stopped []engine.ContainerDetails
	start := func(ctx context.Context) error {
		var errs []error
		for _, c := range stopped {
			name := containerID(c.Name)
			progress.Emit(events, name, progress.Working, "Starting", "after the restore")
			if err := eng.StartContainer(ctx, c.ID); err != nil {
				errs = append(errs, fmt.Errorf("start container %s after the restore (run `docker start %s`): %w", c.Name, c.Name, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return waitStarted(ctx, eng, events, stopped, wait)
	}
	for _, c := range users {
		progress.Emit(events, containerID(c.Name), progress.Working, "Stopping", "restore of "+strings.Join(r.EngineVolumes, ", "))
		if err := eng.StopContainer(ctx, c.ID, "", nil); err != nil {
			serr := start(context.WithoutCancel(ctx))
			return errors.Join(fmt.Errorf("stop container %s for the restore of %s: %w; nothing restored", c.Name, strings.Join(r.EngineVolumes, ", "), err), serr)
		}
		stopped = append(stopped, c)
		progress.Emit(events, containerID(c.Name), progress.Done, "Stopped", "")
	}
	where, name, err := SplitBackupLocation(r.Backup)
	if err != nil {
		return err
	}
	target, err := OpenTarget(where)
	if err != nil {
		return err
	}
	if _, err := Restore(ctx, eng, target, name, events, RestoreOptions{Force: true, Volumes: r.Volumes}); err != nil {
		var names []string
		for _, c := range stopped {
			names = append(names, c.Name)
		}
		return fmt.Errorf("service %q rolled back, but the restore of %s from %s failed; its containers are left stopped (%s): run `docker lifecycle restore %s --force`, then `docker start %s`: %w",
			r.Service, strings.Join(r.EngineVolumes, ", "), r.Backup, strings.Join(names, ", "), r.Backup, strings.Join(names, " "), err)
	}
	return start(ctx)
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
