package rollout

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

const predeployProject = `
x-lifecycle: {backup: {before-deploy: true, to: backups}}
services:
  web:
    image: app
    volumes: [data:/data, shared:/shared, ./conf:/conf, /tmp:/host]
  worker:
    image: app
    volumes: [shared:/shared, outside:/outside]
  cache:
    image: app
    volumes: [/cache]
  api:
    image: app
    volumes: [fresh:/fresh]
volumes:
  data:
  shared:
  fresh:
  outside: {external: true}
`

func changing(services ...string) strategies.Plan {
	var plan strategies.Plan
	for _, s := range services {
		plan.Steps = append(plan.Steps, strategies.Step{Action: strategies.Create, Service: s, Revision: 2})
	}
	return plan
}

func TestPreDeployBackupDecision(t *testing.T) {
	p := loadProject(t, predeployProject)
	existing := map[string]bool{"data": true, "shared": true, "outside": true} // "fresh" not created yet
	for _, tc := range []struct {
		name              string
		plan              strategies.Plan
		volumes, services []string
	}{
		{"a changed service's named volumes, not binds", changing("web"), []string{"data", "shared"}, []string{"web"}},
		{"a shared volume once, every service mounting it recorded", changing("worker", "web"), []string{"data", "shared"}, []string{"web", "worker"}},
		{"external volumes are not the project's", changing("worker"), []string{"shared"}, []string{"worker"}},
		{"anonymous volumes only: nothing", changing("cache"), nil, nil},
		{"a volume not created yet (first deploy): nothing", changing("api"), nil, nil},
		{"unchanged services are not backed up", changing(), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			volumes, services := preDeployBackup(p, tc.plan, existing)
			assert.Check(t, is.DeepEqual(volumes, tc.volumes))
			assert.Check(t, is.DeepEqual(services, tc.services))
		})
	}
	p.Spec.Backup.BeforeDeploy = false
	volumes, services := preDeployBackup(p, changing("web"), existing)
	assert.Check(t, is.Len(volumes, 0), "before-deploy off: no backup")
	assert.Check(t, is.Len(services, 0))
}

func TestBackupTo(t *testing.T) {
	p := loadProject(t, predeployProject)
	assert.Check(t, is.Equal(BackupTo(p), filepath.Join(p.Project.WorkingDir, "backups")), "relative to the project's directory")
	p.Spec.Backup.To = "/srv/backups"
	assert.Check(t, is.Equal(BackupTo(p), "/srv/backups"))
	p.Spec.Backup.To = "s3://bucket/prefix"
	assert.Check(t, is.Equal(BackupTo(p), "s3://bucket/prefix"))
}

// TestBackupBeforeDeployNothingToSave: with no volume on the engine yet, the deploy
// takes no backup and makes no engine write (the fake fails any write).
func TestBackupBeforeDeployNothingToSave(t *testing.T) {
	p := loadProject(t, predeployProject)
	f := &engine.Fake{ListVolumesFn: func(context.Context, map[string]string) ([]engine.Volume, error) { return nil, nil }}
	backups, err := backupBeforeDeploy(context.Background(), f, p, changing("web", "api"), nil, "test")
	assert.NilError(t, err)
	assert.Check(t, is.Len(backups, 0))
}

func TestRecordedBackup(t *testing.T) {
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	records := []Record{
		{Service: "web", Revision: 1, Result: ResultDeployed, Time: at},
		{Service: "web", Revision: 2, Result: ResultDeployed, Time: at.Add(time.Minute), Backup: "/b/p-1"},
		{Service: "web", Revision: 3, Result: ResultFailed, Time: at.Add(2 * time.Minute), Backup: "/b/p-2"},
		{Service: "db", Revision: 2, Result: ResultDeployed, Time: at.Add(3 * time.Minute)},
	}
	r, err := recordedBackup("web", 2, records)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(r.Backup, "/b/p-1"))
	_, err = recordedBackup("web", 1, records)
	assert.Check(t, errors.Is(err, ErrNoBackupRecorded), "%v", err)
	_, err = recordedBackup("db", 2, records)
	assert.Check(t, errors.Is(err, ErrNoBackupRecorded), "%v", err)
	assert.Check(t, is.ErrorContains(err, `service "db" revision 2`))
	assert.Check(t, is.ErrorContains(err, "roll back without --with-data"))
	_, err = recordedBackup("web", 0, records)
	assert.Check(t, is.ErrorContains(err, "no running revision"))
	// the revision made current again by a rollback, recorded without a backup, wins
	// over its older record
	records = append(records, Record{Service: "web", Revision: 2, Result: ResultRollback, Time: at.Add(4 * time.Minute)})
	_, err = recordedBackup("web", 2, records)
	assert.Check(t, errors.Is(err, ErrNoBackupRecorded), "%v", err)
}

// TestRollbackWithDataRefusesWithoutRecord: the revision being left was deployed with
// before-deploy off: PlanDataRestore refuses, naming the service, the revision and what
// to do, and no engine write happens (the fake fails any).
func TestRollbackWithDataRefusesWithoutRecord(t *testing.T) {
	p := loadProject(t, predeployProject)
	containers := []engine.Container{
		{ID: "c1", Labels: map[string]string{compose.LabelService: "web", compose.LabelRevision: "1"}, State: "exited"},
		{ID: "c2", Labels: map[string]string{compose.LabelService: "web", compose.LabelRevision: "2"}, State: "running"},
	}
	record := func(rev int, backup string) engine.Volume {
		l := map[string]string{compose.LabelProject: p.Name, labelHistory: "web", compose.LabelRevision: strconv.Itoa(rev),
			labelResult: ResultDeployed, labelTime: time.Date(2026, 12, 3, 8, rev, 0, 0, time.UTC).Format(time.RFC3339Nano)}
		if backup != "" {
			l[labelBackup] = backup
		}
		return engine.Volume{Name: "rec" + strconv.Itoa(rev), Labels: l}
	}
	f := &engine.Fake{
		ListContainersFn: func(context.Context, map[string]string) ([]engine.Container, error) { return containers, nil },
		ListVolumesFn: func(context.Context, map[string]string) ([]engine.Volume, error) {
			return []engine.Volume{record(1, ""), record(2, "")}, nil
		},
	}
	_, err := PlanDataRestore(context.Background(), f, p, map[string]int{"web": 1})
	assert.Check(t, errors.Is(err, ErrNoBackupRecorded), "%v", err)
	assert.Check(t, is.ErrorContains(err, `service "web" revision 2`))

	// a record naming a backup that is gone: refused too, nothing changed
	gone := filepath.Join(t.TempDir(), p.Name+"-20261203T080000Z")
	f.ListVolumesFn = func(context.Context, map[string]string) ([]engine.Volume, error) {
		return []engine.Volume{record(1, ""), record(2, gone)}, nil
	}
	_, err = PlanDataRestore(context.Background(), f, p, map[string]int{"web": 1})
	assert.Check(t, is.ErrorContains(err, "nothing changed"))
	assert.Check(t, is.ErrorContains(err, gone))

	// a service without named volumes: nothing to restore
	_, err = PlanDataRestore(context.Background(), f, p, map[string]int{"cache": 1})
	assert.Check(t, is.ErrorContains(err, "mounts no named volume"))
}

// TestRecordKeepsBackup: the backup's location goes into the record's labels and comes
// back from History (what `history` shows and --with-data reads).
func TestRecordKeepsBackup(t *testing.T) {
	var stored []engine.Volume
	f := &engine.Fake{
		CreateVolumeFn: func(_ context.Context, spec engine.VolumeSpec) (engine.Volume, error) {
			v := engine.Volume{Name: spec.Name, Labels: spec.Labels}
			stored = append(stored, v)
			return v, nil
		},
		ListVolumesFn: func(context.Context, map[string]string) ([]engine.Volume, error) { return stored, nil },
	}
	at := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	assert.NilError(t, writeRecord(context.Background(), f, "shop", Record{Service: "web", Revision: 2, Result: ResultDeployed, Time: at, Backup: "/b/shop-20261203T080000Z"}))
	assert.NilError(t, writeRecord(context.Background(), f, "shop", Record{Service: "web", Revision: 1, Result: ResultDeployed, Time: at.Add(-time.Hour)}))
	records, err := History(context.Background(), f, "shop")
	assert.NilError(t, err)
	assert.Assert(t, is.Len(records, 2))
	assert.Check(t, is.Equal(records[0].Backup, ""))
	assert.Check(t, is.Equal(records[1].Backup, "/b/shop-20261203T080000Z"))
	_, labelled := stored[1].Labels[labelBackup]
	assert.Check(t, !labelled, "no label without a backup")
}

func TestSelectVolumes(t *testing.T) {
	m := Manifest{Volumes: []ManifestVolume{{Name: "data"}, {Name: "shared"}}}
	got, err := selectVolumes(m, []string{"shared"})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(got.Volumes, []ManifestVolume{{Name: "shared"}}))
	_, err = selectVolumes(m, []string{"data", "gone"})
	assert.Check(t, is.ErrorContains(err, "the backup holds no volume gone (it holds: data, shared)"))
}
