package rollout

import (
	"context"
	"debug/elf"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func testMonitorTarget() MonitorTarget {
	above, resolve, retries := compose.Threshold(80), compose.Threshold(60.5), 2
	return MonitorTarget{Project: "demo", Alerts: &MonitorAlerts{
		Interval: compose.Duration(5 * time.Second),
		Rules: map[string][]compose.AlertRule{"web": {
			{Name: "hot", Metric: compose.AlertCPU, Above: &above, ResolveBelow: &resolve, For: compose.Duration(30 * time.Second), Severity: "critical"},
			{Metric: compose.AlertUnhealthy},
		}},
		Targets: []compose.AlertTarget{{Webhook: &compose.WebhookTarget{URL: "http://127.0.0.1:9/hook", Retries: &retries}}, {Stderr: true}},
	}}
}

func TestMonitorContainerSpecIsHardenedAndPublished(t *testing.T) {
	a, err := MonitorAgent(testMonitorTarget(), PublishedPort{HostIP: "127.0.0.1", Port: 9464})
	assert.NilError(t, err)
	spec := DetachedContainerSpec(a, "docker-lifecycle-detached:abc")
	assert.Check(t, is.Equal(spec.Name, "demo-monitor"))
	c, h := spec.Config, spec.HostConfig
	assert.Check(t, is.DeepEqual(c.Labels, map[string]string{
		compose.LabelProject: "demo", compose.LabelManagedBy: compose.ManagedByValue,
		compose.LabelRole: compose.RoleMonitor, compose.LabelOneoff: "True",
	}))
	assert.Check(t, compose.IsDetachedAgent("demo", "/"+spec.Name, c.Labels), "lint and the guard recognise it")
	assert.Check(t, is.DeepEqual(h.CapDrop, []string{"ALL"}))
	assert.Check(t, is.Len(h.CapAdd, 0))
	assert.Check(t, !h.Privileged)
	assert.Check(t, h.ReadonlyRootfs)
	assert.Check(t, is.DeepEqual(h.SecurityOpt, []string{"no-new-privileges:true"}))
	assert.Check(t, is.Equal(string(h.RestartPolicy.Name), "unless-stopped"))
	assert.Check(t, h.Resources.Memory > 0 && h.Resources.Memory <= 128<<20)
	assert.Check(t, is.Equal(h.Resources.MemorySwap, h.Resources.Memory))
	assert.Check(t, h.Resources.PidsLimit != nil && *h.Resources.PidsLimit <= 64)
	assert.Check(t, is.DeepEqual(h.Mounts, []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}))
	assert.Check(t, is.Len(h.Binds, 0))
	// A network to serve and to reach webhooks: the default bridge, one published port
	// on the host address asked for, nothing else.
	assert.Check(t, is.Equal(string(h.NetworkMode), "bridge"))
	port := network.MustParsePort("9464/tcp")
	assert.Check(t, is.DeepEqual(c.ExposedPorts, network.PortSet{port: {}}))
	assert.Assert(t, is.Len(h.PortBindings, 1))
	assert.Assert(t, is.Len(h.PortBindings[port], 1))
	assert.Check(t, is.Equal(h.PortBindings[port][0].HostIP, netip.MustParseAddr("127.0.0.1")))
	assert.Check(t, is.Equal(h.PortBindings[port][0].HostPort, "9464"))
	assert.Check(t, !h.PublishAllPorts)
	// The monitor command, listening in its own namespace, and the target reading back
	// the same (thresholds, durations, targets).
	assert.Assert(t, is.Len(c.Cmd, 5))
	assert.Check(t, is.DeepEqual(c.Cmd[:4], []string{"monitor", "--listen", "0.0.0.0:9464", "--target"}))
	back, err := DecodeMonitorTarget([]byte(c.Cmd[4]))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(back, testMonitorTarget()))
	assert.Check(t, is.Equal(back.AlertOptions().Interval, 5*time.Second))
}

func TestGuardAndMonitorShareTheImage(t *testing.T) {
	g := GuardContainerSpec(testTarget(), "img")
	a, err := MonitorAgent(MonitorTarget{Project: "demo"}, PublishedPort{HostIP: "::1", Port: 9000})
	assert.NilError(t, err)
	m := DetachedContainerSpec(a, "img")
	assert.Check(t, is.Equal(g.Config.Image, m.Config.Image))
	assert.Check(t, is.Equal(g.Config.Cmd[0], "guard"))
	assert.Check(t, is.Equal(m.Config.Cmd[0], "monitor"))
	assert.Check(t, is.Equal(string(g.HostConfig.NetworkMode), "none"), "the guard keeps no network")
	assert.Check(t, is.Len(g.HostConfig.PortBindings, 0))
	assert.Check(t, is.Equal(m.HostConfig.PortBindings[network.MustParsePort("9000/tcp")][0].HostIP.String(), "::1"))
}

func TestMonitorPublish(t *testing.T) {
	for _, tc := range []struct {
		listen   string
		want     PublishedPort
		loopback bool
		err      string
	}{
		{listen: "127.0.0.1:9464", want: PublishedPort{"127.0.0.1", 9464}, loopback: true},
		{listen: "localhost:9100", want: PublishedPort{"127.0.0.1", 9100}, loopback: true},
		{listen: "[::1]:9464", want: PublishedPort{"::1", 9464}, loopback: true},
		{listen: "0.0.0.0:9464", want: PublishedPort{"0.0.0.0", 9464}},
		{listen: "192.168.1.5:9464", want: PublishedPort{"192.168.1.5", 9464}},
		{listen: ":9464", err: "would publish the metrics (no authentication) on every interface"},
		{listen: "127.0.0.1:0", err: "the port must be a number from 1 to 65535"},
		{listen: "127.0.0.1:http", err: "the port must be a number"},
		{listen: "metrics.example:9464", err: "the host must be an IP address"},
		{listen: "9464", err: "expected IP:PORT"},
	} {
		got, loopback, err := MonitorPublish(tc.listen)
		if tc.err != "" {
			assert.Check(t, errors.Is(err, ErrDetachedMonitor), tc.listen)
			assert.Check(t, is.ErrorContains(err, tc.err), tc.listen)
			continue
		}
		assert.Check(t, err, tc.listen)
		assert.Check(t, is.Equal(got, tc.want), tc.listen)
		assert.Check(t, is.Equal(loopback, tc.loopback), tc.listen)
	}
}

func TestMonitorAgentRefusesExecTargets(t *testing.T) {
	target := testMonitorTarget()
	target.Alerts.Targets = append(target.Alerts.Targets, compose.AlertTarget{Exec: &compose.ExecTarget{Command: []string{"/usr/local/bin/page"}}})
	_, err := MonitorAgent(target, PublishedPort{HostIP: "127.0.0.1", Port: 9464})
	assert.Check(t, errors.Is(err, ErrDetachedMonitor))
	assert.Check(t, is.ErrorContains(err, "targets[2] is an exec target"))
}

// TestDetachMonitorWithoutOptInTouchesNothing: every engine call of the fake fails the
// test; the opt-in is checked first.
func TestDetachMonitorWithoutOptInTouchesNothing(t *testing.T) {
	_, err := DetachMonitor(context.Background(), &engine.Fake{}, testMonitorTarget(), PublishedPort{HostIP: "127.0.0.1", Port: 9464}, DetachOptions{Executable: []byte("x")})
	assert.Check(t, errors.Is(err, ErrSocketOptIn))
	assert.Check(t, is.ErrorContains(err, "--mount-docker-socket"))
	assert.Check(t, is.ErrorContains(err, "`docker lifecycle monitor` in the foreground"))
}

func TestDetachMonitorReusesImageAndReplacesOnlyTheMonitor(t *testing.T) {
	var calls []string
	eng := &engine.Fake{
		ArchFn:         func(context.Context) (string, error) { return "amd64", nil },
		InspectImageFn: func(context.Context, string) (engine.Image, error) { return engine.Image{}, nil },
		BuildImageFn: func(context.Context, io.Reader, string, map[string]string) error {
			t.Error("the image exists: no build")
			return nil
		},
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.Check(t, is.DeepEqual(labels, map[string]string{compose.LabelProject: "demo", compose.LabelRole: compose.RoleMonitor}))
			return []engine.Container{{ID: "old", Name: "demo-monitor", Labels: map[string]string{compose.LabelManagedBy: compose.ManagedByValue}}}, nil
		},
		StopContainerFn: func(_ context.Context, id, _ string, _ *time.Duration) error {
			calls = append(calls, "stop "+id)
			return nil
		},
		RemoveContainerFn: func(_ context.Context, id string, _ bool) error { calls = append(calls, "remove "+id); return nil },
		CreateContainerFn: func(_ context.Context, spec engine.ContainerSpec) (string, error) {
			calls = append(calls, "create "+spec.Name)
			return "new", nil
		},
		StartContainerFn: func(_ context.Context, id string) error { calls = append(calls, "start "+id); return nil },
	}
	res, err := DetachMonitor(context.Background(), eng, testMonitorTarget(), PublishedPort{HostIP: "127.0.0.1", Port: 9464}, DetachOptions{MountDockerSocket: true, Executable: fakeELF(elf.EM_M32, false)})
	assert.Check(t, errors.Is(err, ErrDetachedExecutable), "EM_M32 is not the engine's machine")
	assert.Check(t, is.Len(calls, 0))

	res, err = DetachMonitor(context.Background(), eng, testMonitorTarget(), PublishedPort{HostIP: "127.0.0.1", Port: 9464}, DetachOptions{MountDockerSocket: true, Executable: fakeELF(elf.EM_X86_64, false)})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(calls, []string{"stop old", "remove old", "create demo-monitor", "start new"}))
	assert.Check(t, is.DeepEqual(res.Replaced, []string{"demo-monitor"}))
	assert.Check(t, !res.ImageNew)
	assert.Check(t, is.DeepEqual(res.Published, &PublishedPort{HostIP: "127.0.0.1", Port: 9464}))
}

// TestRemoveDetachedEveryRole: down removes the guard and the monitor, nothing else.
func TestRemoveDetachedEveryRole(t *testing.T) {
	ours := map[string]string{compose.LabelManagedBy: compose.ManagedByValue}
	var removed []string
	eng := &engine.Fake{
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			switch labels[compose.LabelRole] {
			case compose.RoleGuard:
				return []engine.Container{{ID: "g", Name: "demo-guard", Labels: ours}}, nil
			case compose.RoleMonitor:
				return []engine.Container{{ID: "m", Name: "demo-monitor", Labels: ours}, {ID: "x", Name: "demo-monitor-2", Labels: map[string]string{}}}, nil
			}
			t.Errorf("unexpected listing %v", labels)
			return nil, nil
		},
		StopContainerFn:   func(context.Context, string, string, *time.Duration) error { return nil },
		RemoveContainerFn: func(_ context.Context, id string, _ bool) error { removed = append(removed, id); return nil },
	}
	names, err := RemoveDetached(context.Background(), eng, "demo")
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(names, []string{"demo-guard", "demo-monitor"}))
	assert.Check(t, is.DeepEqual(removed, []string{"g", "m"}))
}

func TestMonitorStatus(t *testing.T) {
	eng := &engine.Fake{ListContainersFn: func(context.Context, map[string]string) ([]engine.Container, error) { return nil, nil }}
	_, err := MonitorStatus(context.Background(), eng, "demo")
	assert.Check(t, errors.Is(err, ErrNoMonitor))
	assert.Check(t, is.ErrorContains(err, "no detached monitor runs for project demo"))

	a, err := MonitorAgent(testMonitorTarget(), PublishedPort{HostIP: "127.0.0.1", Port: 9464})
	assert.NilError(t, err)
	spec := DetachedContainerSpec(a, "docker-lifecycle-detached:abc")
	started := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	eng = &engine.Fake{
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.Check(t, is.Equal(labels[compose.LabelRole], compose.RoleMonitor))
			return []engine.Container{{ID: "m", Name: "demo-monitor", Labels: spec.Config.Labels}}, nil
		},
		InspectContainerFn: func(context.Context, string) (engine.ContainerDetails, error) {
			return engine.ContainerDetails{ID: "m", Name: "demo-monitor", State: "running", StartedAt: started, RestartCount: 2, Config: spec.Config, HostConfig: spec.HostConfig}, nil
		},
	}
	r, err := MonitorStatus(context.Background(), eng, "demo")
	assert.NilError(t, err)
	assert.Check(t, r.Running)
	assert.Check(t, is.DeepEqual(r.Container, DetachedContainerStatus{Name: "demo-monitor", ID: "m", Image: "docker-lifecycle-detached:abc", State: "running", Since: started, Restarts: 2}))
	assert.Check(t, is.Equal(r.URL, "http://127.0.0.1:9464/metrics"))
	assert.Assert(t, r.Alerts != nil)
	assert.Check(t, is.DeepEqual(r.Alerts.Rules, map[string]int{"web": 2}))
	// The webhook by its host only: its path may hold a secret.
	assert.Check(t, is.DeepEqual(r.Alerts.Targets, []string{"webhook http://127.0.0.1:9/…", "stderr"}))
}

// A detached monitor reads a directory backup target's drill records through a
// read-only bind at the same path; an s3:// target or a directory not there yet gets none.
func TestMonitorAgentMountsTheBackupDirectoryReadOnly(t *testing.T) {
	dir := t.TempDir()
	a, err := MonitorAgent(MonitorTarget{Project: "demo", BackupTo: dir}, PublishedPort{HostIP: "127.0.0.1", Port: 9464})
	assert.NilError(t, err)
	mounts := DetachedContainerSpec(a, "img").HostConfig.Mounts
	assert.Assert(t, is.Len(mounts, 2), "the socket and the backup directory")
	assert.Check(t, is.Equal(mounts[1].Source, dir))
	assert.Check(t, is.Equal(mounts[1].Target, dir))
	assert.Check(t, mounts[1].ReadOnly)

	for _, to := range []string{"s3://bucket/prefix", dir + "/not-yet"} {
		a, err := MonitorAgent(MonitorTarget{Project: "demo", BackupTo: to}, PublishedPort{HostIP: "127.0.0.1", Port: 9464})
		assert.NilError(t, err)
		assert.Check(t, is.Len(DetachedContainerSpec(a, "img").HostConfig.Mounts, 1), to)
	}
}
