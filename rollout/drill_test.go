package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

func TestScratchName(t *testing.T) {
	assert.Check(t, is.Equal(ScratchName("shop", "a1b2c3"), "shop-drill-a1b2c3"))
	long := strings.Repeat("p", 60) + "-x"
	got := ScratchName(long, "a1b2c3")
	assert.Check(t, is.Len(got, 63))
	assert.Check(t, strings.HasSuffix(got, "p-drill-a1b2c3"), got)
	// a cut that would end in a separator drops it
	assert.Check(t, is.Equal(ScratchName(strings.Repeat("a", 49)+"_b", "a1b2c3"), strings.Repeat("a", 49)+"-drill-a1b2c3"))
	assert.Check(t, randomSuffix() != randomSuffix())
	assert.Check(t, is.Len(randomSuffix(), 6))
}

const drillYAML = `
name: shop
services:
  db:
    image: postgres:17
    container_name: the-db
    ports: ["127.0.0.1:5432:5432"]
    volumes: [data:/var/lib/postgresql/data]
    networks: [back]
  web:
    build: {context: .}
    ports: ["8080:8080"]
    volumes: [cache:/cache]
    networks: [front, back]
    depends_on: [db]
networks:
  front: {external: true, name: the-front}
  back: {}
volumes:
  data: {name: real-data-volume}
  cache:
    driver: local
    driver_opts: {type: none, o: bind, device: /srv/cache}
`

func TestScratchProject(t *testing.T) {
	p := loadProject(t, drillYAML)
	s, err := ScratchProject(p, "shop-drill-abc123")
	assert.NilError(t, err)
	assert.Check(t, is.Equal(s.Name, "shop-drill-abc123"))
	assert.Check(t, is.Equal(p.Name, "shop"), "the project itself is unchanged")
	assert.Check(t, is.Equal(p.Project.Services["db"].ContainerName, "the-db"))
	assert.Check(t, is.Len(p.Project.Services["db"].Ports, 1))
	assert.Check(t, is.Equal(p.Project.Volumes["data"].Name, "real-data-volume"))
	before := *p
	before.Spec.Backup.BeforeDeploy, before.Spec.Backup.To = true, "backups"
	withBackup, err := ScratchProject(&before, "shop-drill-abc124")
	assert.NilError(t, err)
	assert.Check(t, !withBackup.Spec.Backup.BeforeDeploy, "a drill's deploy takes no pre-deploy backup of its scratch volumes")

	for name, svc := range s.Project.Services {
		assert.Check(t, is.Len(svc.Ports, 0), name)
		assert.Check(t, is.Equal(svc.ContainerName, ""), name)
		assert.Check(t, is.Equal(svc.Labels[LabelDrill], "shop"), name)
	}
	assert.Check(t, is.Equal(s.Project.Services["web"].Image, "shop-web"), "the project's built image, not a new one")
	for key, n := range s.Project.Networks {
		assert.Check(t, n.Internal, key)
		assert.Check(t, !bool(n.External), key)
		assert.Check(t, is.Equal(n.Name, "shop-drill-abc123_"+key))
		assert.Check(t, is.Equal(n.Labels[LabelDrill], "shop"))
	}
	for key, v := range s.Project.Volumes {
		assert.Check(t, is.Equal(v.Name, "shop-drill-abc123_"+key))
		assert.Check(t, is.Equal(v.Driver, ""), key)
		assert.Check(t, is.Len(v.DriverOpts, 0), key)
		assert.Check(t, is.Equal(v.Labels[LabelDrill], "shop"))
	}
	// what the deploy creates follows
	creates, external := compose.Volumes(s)
	assert.Check(t, is.Len(external, 0))
	assert.Check(t, is.Len(creates, 2))
	networks, externalNets := compose.Networks(s)
	assert.Check(t, is.Len(externalNets, 0))
	for _, n := range networks {
		assert.Check(t, n.Internal, n.Name)
	}
	c, err := compose.Container(s, "db", compose.ReplicaLabels{Number: 1, Revision: 1})
	assert.NilError(t, err)
	assert.Check(t, is.Len(c.HostConfig.PortBindings, 0))
	assert.Check(t, is.Equal(c.Name, "shop-drill-abc123-db-1"))
	assert.Check(t, is.Equal(c.Config.Labels[compose.LabelProject], "shop-drill-abc123"))
}

func TestScratchProjectRefusesEveryEscape(t *testing.T) {
	p := loadProject(t, `
name: shop
services:
  a: {image: x, network_mode: host}
  b: {image: x, network_mode: bridge}
  c: {image: x, network_mode: "service:a"}
  d: {image: x, network_mode: none}
`)
	_, err := ScratchProject(p, "shop-drill-1")
	assert.Check(t, is.Error(err, `project shop cannot be drilled in isolation: service a: network_mode "host" leaves the drill's isolated network; service b: network_mode "bridge" leaves the drill's isolated network`))
}

func TestDrillInventory(t *testing.T) {
	p := loadProject(t, drillYAML)
	m := Manifest{Project: "shop", Services: []ManifestService{{Name: "db"}},
		Volumes: []ManifestVolume{{Name: "data", EngineName: "real-data-volume", Files: 3, Size: 10}, {Name: "old", EngineName: "shop_old"}}}
	vols, svcs := drillInventory(p, m, "shop-drill-1")
	assert.Check(t, is.DeepEqual(vols, []DrillVolume{
		{Name: "data", EngineName: "shop-drill-1_data", Files: 3, Size: 10, MountedBy: []string{"db"}},
		{Name: "old", EngineName: "shop-drill-1_old", MountedBy: []string{}},
	}))
	assert.Check(t, is.DeepEqual(svcs, []DrillService{
		{Name: "db", InBackup: true, EmptyVolumes: []string{}},
		{Name: "web", InBackup: false, EmptyVolumes: []string{"cache"}},
	}))
}

// runVerify runs every check, whatever the ones before gave: exit 0 passes, a non-zero
// exit, a timeout and a service without a running container fail, each saying why.
func TestRunVerify(t *testing.T) {
	f := &engine.Fake{}
	f.ListContainersFn = func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
		switch labels[compose.LabelService] {
		case "db":
			return []engine.Container{
				{ID: "old", Name: "/s-db-r1-1", State: "exited"},
				{ID: "db2", Name: "/s-db-2", State: "running"},
				{ID: "db1", Name: "/s-db-1", State: "running"},
				{ID: "router", Name: "/s-db-router", State: "running", Labels: map[string]string{compose.LabelRole: compose.RoleRouter}},
			}, nil
		}
		return nil, nil
	}
	f.ExecFn = func(ctx context.Context, id string, cmd []string, _ []byte) ([]byte, error) {
		assert.Check(t, is.Equal(id, "db1"))
		switch cmd[0] {
		case "ok":
			return []byte("fine\n"), nil
		case "bad":
			return []byte("half"), &engine.ExecError{Container: id, Cmd: cmd, ExitCode: 3, Stderr: "rows missing\n"}
		case "slow":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return nil, errors.New("unexpected")
	}
	checks := []compose.VerifyCheck{
		{Service: "db", Command: []string{"ok"}, Timeout: compose.Duration(time.Second)},
		{Service: "db", Command: []string{"bad", "x"}, Timeout: compose.Duration(time.Second)},
		{Service: "db", Command: []string{"slow"}, Timeout: compose.Duration(20 * time.Millisecond)},
		{Service: "web", Command: []string{"ok"}, Timeout: compose.Duration(time.Second)},
	}
	got := runVerify(context.Background(), f, "s", checks, progress.Nop)
	assert.Assert(t, is.Len(got, 4))
	assert.Check(t, got[0].Passed && got[0].ExitCode == 0 && got[0].Output == "fine" && got[0].Container == "s-db-1", "%+v", got[0])
	assert.Check(t, !got[1].Passed && got[1].ExitCode == 3 && got[1].Output == "half\nrows missing" && got[1].Error == "exit code 3", "%+v", got[1])
	assert.Check(t, !got[2].Passed && got[2].Error == "timed out after 20ms", "%+v", got[2])
	assert.Check(t, !got[3].Passed && got[3].ExitCode == -1 && strings.Contains(got[3].Error, "no running container of service web"), "%+v", got[3])
}

// A failed drill replaces the backup's last record, not its last good one; records of
// another project are skipped; newest first.
func TestDrillRecords(t *testing.T) {
	ctx := context.Background()
	target := LocalTarget{Dir: t.TempDir()}
	for _, b := range []string{"shop-1", "shop-2", "other-1"} {
		assert.NilError(t, target.Begin(ctx, b))
	}
	at := func(h int) time.Time { return time.Date(2026, 12, 2, h, 0, 0, 0, time.UTC) }
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-1", DrillResult{Project: "shop", ScratchProject: "a", Started: at(1), Passed: true}))
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-1", DrillResult{Project: "shop", ScratchProject: "b", Started: at(3)}))
	assert.NilError(t, writeDrillRecord(ctx, target, "shop-2", DrillResult{Project: "shop", ScratchProject: "c", Started: at(2), Passed: true}))
	assert.NilError(t, writeDrillRecord(ctx, target, "other-1", DrillResult{Project: "other", ScratchProject: "d", Started: at(4), Passed: true}))
	got, err := DrillRecords(ctx, target, "shop")
	assert.NilError(t, err)
	var names []string
	for _, r := range got {
		names = append(names, r.ScratchProject)
	}
	assert.Check(t, is.DeepEqual(names, []string{"b", "c", "a"}))
	plan := PlanRecovery(nil, "", "", Manifest{Project: "shop"}, got)
	assert.Check(t, is.Equal(plan.LastDrill.ScratchProject, "b"))
	assert.Check(t, is.Equal(plan.LastGoodDrill.ScratchProject, "c"))
}
