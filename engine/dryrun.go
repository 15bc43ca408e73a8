package engine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
)

// DryRun passes reads through to the wrapped engine and records writes instead of
// performing them, so `deploy --dry-run` can walk the same code path as a real deploy.
type DryRun struct {
	Engine
	// ReadOnlyExec tells which exec commands only read (e.g. the router's config): those
	// run; every other exec is recorded as a write.
	ReadOnlyExec func(cmd []string) bool
	mu           sync.Mutex
	writes       []string
}

// NewDryRun wraps e.
func NewDryRun(e Engine) *DryRun { return &DryRun{Engine: e} }

// Writes returns the writes that were recorded, in order.
func (d *DryRun) Writes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.writes...)
}

func (d *DryRun) record(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes = append(d.writes, fmt.Sprintf(format, args...))
}

func (d *DryRun) CreateContainer(_ context.Context, spec ContainerSpec) (string, error) {
	d.record("create container %s", spec.Name)
	return "dry-run-" + spec.Name, nil
}

func (d *DryRun) StartContainer(_ context.Context, id string) error {
	d.record("start container %s", id)
	return nil
}

func (d *DryRun) StopContainer(_ context.Context, id, _ string, _ *time.Duration) error {
	d.record("stop container %s", id)
	return nil
}

func (d *DryRun) RemoveContainer(_ context.Context, id string, _ bool) error {
	d.record("remove container %s", id)
	return nil
}

func (d *DryRun) RenameContainer(_ context.Context, id, name string) error {
	d.record("rename container %s to %s", id, name)
	return nil
}

func (d *DryRun) CreateNetwork(_ context.Context, spec NetworkSpec) error {
	d.record("create network %s", spec.Name)
	return nil
}

func (d *DryRun) RemoveNetwork(_ context.Context, name string) error {
	d.record("remove network %s", name)
	return nil
}

func (d *DryRun) CreateVolume(_ context.Context, spec VolumeSpec) (Volume, error) {
	d.record("create volume %s", spec.Name)
	return Volume{Name: spec.Name, Driver: spec.Driver, Labels: spec.Labels}, nil
}

func (d *DryRun) RemoveVolume(_ context.Context, name string) error {
	d.record("remove volume %s", name)
	return nil
}

func (d *DryRun) BuildImage(_ context.Context, _ io.Reader, tag string, _ map[string]string) error {
	d.record("build image %s", tag)
	return nil
}

func (d *DryRun) ImageBuild(_ context.Context, spec BuildSpec, _ func(string)) error {
	d.record("build image %s", strings.Join(spec.Tags, ", "))
	return nil
}

func (d *DryRun) ImagePull(_ context.Context, ref, _ string, _ func(string)) error {
	d.record("pull image %s", ref)
	return nil
}

func (d *DryRun) RemoveImage(_ context.Context, ref string) error {
	d.record("remove image %s", ref)
	return nil
}

func (d *DryRun) Exec(ctx context.Context, containerID string, cmd []string, stdin []byte) ([]byte, error) {
	if d.ReadOnlyExec != nil && d.ReadOnlyExec(cmd) {
		return d.Engine.Exec(ctx, containerID, cmd, stdin)
	}
	d.record("exec %v in %s", cmd, containerID)
	return nil, nil
}

func (d *DryRun) RunHook(_ context.Context, containerID string, hook Hook) error {
	d.record("run hook %v in %s", hook.Cmd, containerID)
	return nil
}

func (d *DryRun) CopyToContainer(_ context.Context, containerID, dir string, _ io.Reader) error {
	d.record("copy files to %s:%s", containerID, dir)
	return nil
}

// ReadFile only reads: it passes through.
func (d *DryRun) ReadFile(ctx context.Context, containerID, path string, limit int64) ([]byte, error) {
	return d.Engine.ReadFile(ctx, containerID, path, limit)
}

// SaveImage only reads: it passes through (stated here so the dry-run surface is explicit).
func (d *DryRun) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	return d.Engine.SaveImage(ctx, ref)
}

// ExecSession is refused: a session may write, and callers fall back to Exec, which
// the dry run filters call by call.
func (d *DryRun) ExecSession(_ context.Context, containerID string, cmd []string) (*Session, error) {
	return nil, fmt.Errorf("dry run: no exec session in %s", containerID)
}

// StreamStats, DiskUsage and ContainerLogs only read: they pass through.
func (d *DryRun) StreamStats(ctx context.Context, containerID string) (<-chan container.StatsResponse, error) {
	return d.Engine.StreamStats(ctx, containerID)
}

func (d *DryRun) DiskUsage(ctx context.Context) (DiskUsage, error) { return d.Engine.DiskUsage(ctx) }

func (d *DryRun) ContainerLogs(ctx context.Context, containerID string, opts LogOptions, emit func(LogLine) error) error {
	return d.Engine.ContainerLogs(ctx, containerID, opts, emit)
}

func (d *DryRun) PauseContainer(_ context.Context, id string) error {
	d.record("pause container %s", id)
	return nil
}

func (d *DryRun) UnpauseContainer(_ context.Context, id string) error {
	d.record("unpause container %s", id)
	return nil
}

// CopyFromContainer only reads: it passes through.
func (d *DryRun) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	return d.Engine.CopyFromContainer(ctx, id, path)
}

// Events is a read: the wrapped engine's stream.
func (d *DryRun) Events(ctx context.Context, labels map[string]string, actions []string) (<-chan Event, <-chan error) {
	return d.Engine.Events(ctx, labels, actions)
}

func (d *DryRun) CreateService(_ context.Context, spec swarm.ServiceSpec) (string, error) {
	d.record("create service %s", spec.Name)
	return "dry-run-" + spec.Name, nil
}

func (d *DryRun) UpdateService(_ context.Context, id string, _ uint64, spec swarm.ServiceSpec) error {
	d.record("update service %s", spec.Name)
	return nil
}

func (d *DryRun) RollbackService(_ context.Context, id string, _ uint64, _ swarm.ServiceSpec) error {
	d.record("roll back service %s", id)
	return nil
}

// CreateSwarmObject records the creation, never the data.
func (d *DryRun) CreateSwarmObject(_ context.Context, kind, name string, _ map[string]string, _ []byte) (string, error) {
	d.record("create %s %s", kind, name)
	return "dry-run-" + name, nil
}

func (d *DryRun) RemoveSwarmObject(_ context.Context, kind, id string) error {
	d.record("remove %s %s", kind, id)
	return nil
}

func (d *DryRun) RemoveService(_ context.Context, id string) error {
	d.record("remove service %s", id)
	return nil
}
