package rollout

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/mount"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// x-lifecycle.backup.before-deploy: before a rollout changes a service that mounts a
// named volume of the project, the volumes of every such service are backed up (one
// backup, through Backup, the `backup` command's code) into x-lifecycle.backup.to, and
// the backup's location is recorded on each such service's revision record
// (Record.Backup), which `rollback --with-data` restores from (rollbackdata.go).
//
// It runs in Deploy after planning and before the rollout's first engine write, inside
// the project lock: planning is what tells which services change, and under the lock
// no other deploy can change the volumes between the backup and the rollout.

// labelBackup is the revision record's label holding the pre-deploy backup's location.
const labelBackup = "io.lifecycle.backup"

// serviceVolumes returns the compose names of the project's own (not external) named
// volumes the service mounts, sorted.
func serviceVolumes(p *compose.Project, service string) []string {
	svc, ok := p.Project.Services[service]
	if !ok {
		return nil
	}
	var out []string
	for _, v := range svc.Volumes {
		if v.Type != string(mount.TypeVolume) || v.Source == "" {
			continue
		}
		cfg, ok := p.Project.Volumes[v.Source]
		if !ok || bool(cfg.External) || slices.Contains(out, v.Source) {
			continue
		}
		out = append(out, v.Source)
	}
	sort.Strings(out)
	return out
}

// preDeployBackup decides what a pre-deploy backup holds: the volumes (compose names)
// that exist on the engine (existing, by compose name) and are mounted by a service
// the plan changes, and the services whose records name the backup. Nothing when
// before-deploy is off, or no changed service mounts an existing volume (a first
// deploy has no data to lose).
func preDeployBackup(p *compose.Project, plan strategies.Plan, existing map[string]bool) (volumes, services []string) {
	if !p.Spec.Backup.BeforeDeploy {
		return nil, nil
	}
	for _, service := range plan.Services() {
		mounted := false
		for _, v := range serviceVolumes(p, service) {
			if !existing[v] {
				continue
			}
			mounted = true
			if !slices.Contains(volumes, v) {
				volumes = append(volumes, v)
			}
		}
		if mounted {
			services = append(services, service)
		}
	}
	sort.Strings(volumes)
	sort.Strings(services)
	return volumes, services
}

// BackupTo is where x-lifecycle.backup.to points: s3://… as written, a relative
// directory under the project's working directory.
func BackupTo(p *compose.Project) string {
	to := p.Spec.Backup.To
	if to == "" || strings.HasPrefix(to, "s3://") || filepath.IsAbs(to) {
		return to
	}
	return filepath.Join(p.Project.WorkingDir, to)
}

// backupBeforeDeploy takes the pre-deploy backup the plan calls for and returns its
// location per service (nil when none was needed). A failed backup stops the deploy
// before anything of the rollout ran.
func backupBeforeDeploy(ctx context.Context, eng engine.Engine, p *compose.Project, plan strategies.Plan, events progress.Writer, toolVersion string) (map[string]string, error) {
	if !p.Spec.Backup.BeforeDeploy {
		return nil, nil
	}
	vols, err := eng.ListVolumes(ctx, projectFilter(p.Name))
	if err != nil {
		return nil, err
	}
	existing := map[string]bool{}
	for _, v := range vols {
		if n := v.Labels[compose.LabelVolume]; n != "" && !isLifecycleVolume(v) {
			existing[n] = true
		}
	}
	volumes, services := preDeployBackup(p, plan, existing)
	if len(volumes) == 0 {
		return nil, nil
	}
	to := BackupTo(p)
	target, err := OpenTarget(to)
	if err != nil {
		return nil, fmt.Errorf("pre-deploy backup (x-lifecycle.backup.to %q): %w", p.Spec.Backup.To, err)
	}
	id := "Project " + p.Name
	progress.Emit(events, id, progress.Working, "Backing up before deploy", strings.Join(volumes, ", "))
	started := time.Now()
	res, err := Backup(ctx, eng, p.Name, events, BackupOptions{
		Targets: volumes, Target: target, Consistency: p.Spec.Backup.Mode(), Hooks: p.Spec.Backup.Hooks,
		ComposeFiles: p.ComposeFiles, ToolVersion: toolVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("pre-deploy backup of %s into %s failed, nothing deployed (fix the target, or set x-lifecycle.backup.before-deploy: false): %w",
			strings.Join(volumes, ", "), to, err)
	}
	progress.Emit(events, id, progress.Done, "Backed up before deploy", fmt.Sprintf("%s in %s", res.Location, time.Since(started).Round(10*time.Millisecond)))
	out := make(map[string]string, len(services))
	for _, s := range services {
		out[s] = res.Location
	}
	return out, nil
}
