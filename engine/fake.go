package engine

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"
)

// Fake implements Engine with function fields, so a unit test sets only the calls it
// expects; any other call fails the operation with an "unexpected call" error.
type Fake struct {
	PingFn             func(ctx context.Context) (ServerInfo, error)
	ListContainersFn   func(ctx context.Context, labels map[string]string) ([]Container, error)
	InspectContainerFn func(ctx context.Context, id string) (ContainerDetails, error)
	CreateContainerFn  func(ctx context.Context, spec ContainerSpec) (string, error)
	StartContainerFn   func(ctx context.Context, id string) error
	StopContainerFn    func(ctx context.Context, id, signal string, timeout *time.Duration) error
	RemoveContainerFn  func(ctx context.Context, id string, removeAnonymousVolumes bool) error
	RenameContainerFn  func(ctx context.Context, id, name string) error
	ContainerLogTailFn func(ctx context.Context, id string, lines int) (string, error)
	ReadFileFn         func(ctx context.Context, containerID, path string, limit int64) ([]byte, error)
	ListNetworksFn     func(ctx context.Context, labels map[string]string) ([]Network, error)
	InspectNetworkFn   func(ctx context.Context, name string) (Network, error)
	CreateNetworkFn    func(ctx context.Context, spec NetworkSpec) error
	RemoveNetworkFn    func(ctx context.Context, name string) error
	ListVolumesFn      func(ctx context.Context, labels map[string]string) ([]Volume, error)
	InspectVolumeFn    func(ctx context.Context, name string) (Volume, error)
	CreateVolumeFn     func(ctx context.Context, spec VolumeSpec) (Volume, error)
	RemoveVolumeFn     func(ctx context.Context, name string) error
	InspectImageFn     func(ctx context.Context, ref string) (Image, error)
	BuildImageFn       func(ctx context.Context, buildContext io.Reader, tag string, labels map[string]string) error
	ImageBuildFn       func(ctx context.Context, spec BuildSpec, output func(line string)) error
	RemoveImageFn      func(ctx context.Context, ref string) error
	ImagePullFn        func(ctx context.Context, ref, registryAuth string, output func(line string)) error
	SaveImageFn        func(ctx context.Context, ref string) (io.ReadCloser, error)
	ExecFn             func(ctx context.Context, containerID string, cmd []string, stdin []byte) ([]byte, error)
	ArchFn             func(ctx context.Context) (string, error)
	RunHookFn          func(ctx context.Context, containerID string, hook Hook) error
	CopyToContainerFn  func(ctx context.Context, containerID, dir string, archive io.Reader) error
	ExecSessionFn      func(ctx context.Context, containerID string, cmd []string) (*Session, error)
	NetworkCountersFn  func(ctx context.Context, containerID string) (NetworkCounters, error)
	StreamStatsFn      func(ctx context.Context, containerID string) (<-chan container.StatsResponse, error)
	DiskUsageFn        func(ctx context.Context) (DiskUsage, error)
	ContainerLogsFn    func(ctx context.Context, containerID string, opts LogOptions, emit func(LogLine) error) error
	PauseContainerFn   func(ctx context.Context, id string) error
	UnpauseContainerFn func(ctx context.Context, id string) error
	CopyFromFn         func(ctx context.Context, id, path string) (io.ReadCloser, error)
	EventsFn           func(ctx context.Context, labels map[string]string, actions []string) (<-chan Event, <-chan error)
	SwarmFn            func(ctx context.Context) (SwarmInfo, error)
	ListServicesFn     func(ctx context.Context, labels map[string]string) ([]Service, error)
	CreateServiceFn    func(ctx context.Context, spec swarm.ServiceSpec) (string, error)
	UpdateServiceFn    func(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) error
	RollbackServiceFn  func(ctx context.Context, id string, version uint64, current swarm.ServiceSpec) error
	ServiceLogsFn      func(ctx context.Context, serviceID string, tty bool, opts LogOptions, emit func(ServiceLogLine) error) error
	ListSwarmObjectsFn func(ctx context.Context, kind string, labels map[string]string) ([]SwarmObject, error)
	CreateSwarmObjFn   func(ctx context.Context, kind, name string, labels map[string]string, data []byte) (string, error)
	RemoveSwarmObjFn   func(ctx context.Context, kind, id string) error
	RemoveServiceFn    func(ctx context.Context, id string) error
	ListTasksFn        func(ctx context.Context, labels map[string]string) ([]Task, error)
}

// Events without EventsFn ends at once with an "unexpected call" error.
func (f *Fake) Events(ctx context.Context, labels map[string]string, actions []string) (<-chan Event, <-chan error) {
	if f.EventsFn == nil {
		out, errs := make(chan Event), make(chan error, 1)
		close(out)
		errs <- unexpected("Events")
		close(errs)
		return out, errs
	}
	return f.EventsFn(ctx, labels, actions)
}

func (f *Fake) PauseContainer(ctx context.Context, id string) error {
	if f.PauseContainerFn == nil {
		return unexpected("PauseContainer")
	}
	return f.PauseContainerFn(ctx, id)
}

func (f *Fake) UnpauseContainer(ctx context.Context, id string) error {
	if f.UnpauseContainerFn == nil {
		return unexpected("UnpauseContainer")
	}
	return f.UnpauseContainerFn(ctx, id)
}

func (f *Fake) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	if f.CopyFromFn == nil {
		return nil, unexpected("CopyFromContainer")
	}
	return f.CopyFromFn(ctx, id, path)
}

func (f *Fake) StreamStats(ctx context.Context, containerID string) (<-chan container.StatsResponse, error) {
	if f.StreamStatsFn == nil {
		return nil, unexpected("StreamStats")
	}
	return f.StreamStatsFn(ctx, containerID)
}

func (f *Fake) DiskUsage(ctx context.Context) (DiskUsage, error) {
	if f.DiskUsageFn == nil {
		return DiskUsage{}, unexpected("DiskUsage")
	}
	return f.DiskUsageFn(ctx)
}

func (f *Fake) ContainerLogs(ctx context.Context, containerID string, opts LogOptions, emit func(LogLine) error) error {
	if f.ContainerLogsFn == nil {
		return unexpected("ContainerLogs")
	}
	return f.ContainerLogsFn(ctx, containerID, opts, emit)
}

func (f *Fake) NetworkCounters(ctx context.Context, containerID string) (NetworkCounters, error) {
	if f.NetworkCountersFn == nil {
		return NetworkCounters{}, unexpected("NetworkCounters")
	}
	return f.NetworkCountersFn(ctx, containerID)
}

func (f *Fake) ExecSession(ctx context.Context, containerID string, cmd []string) (*Session, error) {
	if f.ExecSessionFn == nil {
		return nil, unexpected("ExecSession")
	}
	return f.ExecSessionFn(ctx, containerID, cmd)
}

func (f *Fake) Exec(ctx context.Context, containerID string, cmd []string, stdin []byte) ([]byte, error) {
	if f.ExecFn == nil {
		return nil, unexpected("Exec")
	}
	return f.ExecFn(ctx, containerID, cmd, stdin)
}

func (f *Fake) RunHook(ctx context.Context, containerID string, hook Hook) error {
	if f.RunHookFn == nil {
		return unexpected("RunHook")
	}
	return f.RunHookFn(ctx, containerID, hook)
}

func (f *Fake) CopyToContainer(ctx context.Context, containerID, dir string, archive io.Reader) error {
	if f.CopyToContainerFn == nil {
		return unexpected("CopyToContainer")
	}
	return f.CopyToContainerFn(ctx, containerID, dir, archive)
}

func (f *Fake) Arch(ctx context.Context) (string, error) {
	if f.ArchFn == nil {
		return "x86_64", nil
	}
	return f.ArchFn(ctx)
}

func unexpected(call string) error {
	return fmt.Errorf("fake engine: unexpected call to %s", call)
}

func (f *Fake) Ping(ctx context.Context) (ServerInfo, error) {
	if f.PingFn == nil {
		return ServerInfo{APIVersion: "1.41", OSType: "linux", Host: "fake://"}, nil
	}
	return f.PingFn(ctx)
}

func (f *Fake) ListContainers(ctx context.Context, labels map[string]string) ([]Container, error) {
	if f.ListContainersFn == nil {
		return nil, unexpected("ListContainers")
	}
	return f.ListContainersFn(ctx, labels)
}

func (f *Fake) InspectContainer(ctx context.Context, id string) (ContainerDetails, error) {
	if f.InspectContainerFn == nil {
		return ContainerDetails{}, unexpected("InspectContainer")
	}
	return f.InspectContainerFn(ctx, id)
}

func (f *Fake) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	if f.CreateContainerFn == nil {
		return "", unexpected("CreateContainer")
	}
	return f.CreateContainerFn(ctx, spec)
}

func (f *Fake) StartContainer(ctx context.Context, id string) error {
	if f.StartContainerFn == nil {
		return unexpected("StartContainer")
	}
	return f.StartContainerFn(ctx, id)
}

func (f *Fake) StopContainer(ctx context.Context, id, signal string, timeout *time.Duration) error {
	if f.StopContainerFn == nil {
		return unexpected("StopContainer")
	}
	return f.StopContainerFn(ctx, id, signal, timeout)
}

func (f *Fake) RemoveContainer(ctx context.Context, id string, removeAnonymousVolumes bool) error {
	if f.RemoveContainerFn == nil {
		return unexpected("RemoveContainer")
	}
	return f.RemoveContainerFn(ctx, id, removeAnonymousVolumes)
}

func (f *Fake) RenameContainer(ctx context.Context, id, name string) error {
	if f.RenameContainerFn == nil {
		return unexpected("RenameContainer")
	}
	return f.RenameContainerFn(ctx, id, name)
}

func (f *Fake) ContainerLogTail(ctx context.Context, id string, lines int) (string, error) {
	if f.ContainerLogTailFn == nil {
		return "", unexpected("ContainerLogTail")
	}
	return f.ContainerLogTailFn(ctx, id, lines)
}

func (f *Fake) ReadFile(ctx context.Context, containerID, path string, limit int64) ([]byte, error) {
	if f.ReadFileFn == nil {
		return nil, unexpected("ReadFile")
	}
	return f.ReadFileFn(ctx, containerID, path, limit)
}

func (f *Fake) ListNetworks(ctx context.Context, labels map[string]string) ([]Network, error) {
	if f.ListNetworksFn == nil {
		return nil, unexpected("ListNetworks")
	}
	return f.ListNetworksFn(ctx, labels)
}

func (f *Fake) InspectNetwork(ctx context.Context, name string) (Network, error) {
	if f.InspectNetworkFn == nil {
		return Network{}, unexpected("InspectNetwork")
	}
	return f.InspectNetworkFn(ctx, name)
}

func (f *Fake) CreateNetwork(ctx context.Context, spec NetworkSpec) error {
	if f.CreateNetworkFn == nil {
		return unexpected("CreateNetwork")
	}
	return f.CreateNetworkFn(ctx, spec)
}

func (f *Fake) RemoveNetwork(ctx context.Context, name string) error {
	if f.RemoveNetworkFn == nil {
		return unexpected("RemoveNetwork")
	}
	return f.RemoveNetworkFn(ctx, name)
}

func (f *Fake) ListVolumes(ctx context.Context, labels map[string]string) ([]Volume, error) {
	if f.ListVolumesFn == nil {
		return nil, unexpected("ListVolumes")
	}
	return f.ListVolumesFn(ctx, labels)
}

func (f *Fake) InspectVolume(ctx context.Context, name string) (Volume, error) {
	if f.InspectVolumeFn == nil {
		return Volume{}, unexpected("InspectVolume")
	}
	return f.InspectVolumeFn(ctx, name)
}

func (f *Fake) CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error) {
	if f.CreateVolumeFn == nil {
		return Volume{}, unexpected("CreateVolume")
	}
	return f.CreateVolumeFn(ctx, spec)
}

func (f *Fake) RemoveVolume(ctx context.Context, name string) error {
	if f.RemoveVolumeFn == nil {
		return unexpected("RemoveVolume")
	}
	return f.RemoveVolumeFn(ctx, name)
}

func (f *Fake) InspectImage(ctx context.Context, ref string) (Image, error) {
	if f.InspectImageFn == nil {
		return Image{}, unexpected("InspectImage")
	}
	return f.InspectImageFn(ctx, ref)
}

func (f *Fake) BuildImage(ctx context.Context, buildContext io.Reader, tag string, labels map[string]string) error {
	if f.BuildImageFn == nil {
		return unexpected("BuildImage")
	}
	return f.BuildImageFn(ctx, buildContext, tag, labels)
}

func (f *Fake) ImageBuild(ctx context.Context, spec BuildSpec, output func(line string)) error {
	if f.ImageBuildFn == nil {
		return unexpected("ImageBuild")
	}
	return f.ImageBuildFn(ctx, spec, output)
}

func (f *Fake) ImagePull(ctx context.Context, ref, registryAuth string, output func(line string)) error {
	if f.ImagePullFn == nil {
		return unexpected("ImagePull")
	}
	return f.ImagePullFn(ctx, ref, registryAuth, output)
}

func (f *Fake) RemoveImage(ctx context.Context, ref string) error {
	if f.RemoveImageFn == nil {
		return unexpected("RemoveImage")
	}
	return f.RemoveImageFn(ctx, ref)
}

func (f *Fake) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	if f.SaveImageFn == nil {
		return nil, unexpected("SaveImage")
	}
	return f.SaveImageFn(ctx, ref)
}

func (f *Fake) Swarm(ctx context.Context) (SwarmInfo, error) {
	if f.SwarmFn == nil {
		return SwarmInfo{}, unexpected("Swarm")
	}
	return f.SwarmFn(ctx)
}

func (f *Fake) ListServices(ctx context.Context, labels map[string]string) ([]Service, error) {
	if f.ListServicesFn == nil {
		return nil, unexpected("ListServices")
	}
	return f.ListServicesFn(ctx, labels)
}

func (f *Fake) CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	if f.CreateServiceFn == nil {
		return "", unexpected("CreateService")
	}
	return f.CreateServiceFn(ctx, spec)
}

func (f *Fake) UpdateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) error {
	if f.UpdateServiceFn == nil {
		return unexpected("UpdateService")
	}
	return f.UpdateServiceFn(ctx, id, version, spec)
}

func (f *Fake) RollbackService(ctx context.Context, id string, version uint64, current swarm.ServiceSpec) error {
	if f.RollbackServiceFn == nil {
		return unexpected("RollbackService")
	}
	return f.RollbackServiceFn(ctx, id, version, current)
}

func (f *Fake) ServiceLogs(ctx context.Context, serviceID string, tty bool, opts LogOptions, emit func(ServiceLogLine) error) error {
	if f.ServiceLogsFn == nil {
		return unexpected("ServiceLogs")
	}
	return f.ServiceLogsFn(ctx, serviceID, tty, opts, emit)
}

func (f *Fake) ListSwarmObjects(ctx context.Context, kind string, labels map[string]string) ([]SwarmObject, error) {
	if f.ListSwarmObjectsFn == nil {
		return nil, unexpected("ListSwarmObjects")
	}
	return f.ListSwarmObjectsFn(ctx, kind, labels)
}

func (f *Fake) CreateSwarmObject(ctx context.Context, kind, name string, labels map[string]string, data []byte) (string, error) {
	if f.CreateSwarmObjFn == nil {
		return "", unexpected("CreateSwarmObject")
	}
	return f.CreateSwarmObjFn(ctx, kind, name, labels, data)
}

func (f *Fake) RemoveSwarmObject(ctx context.Context, kind, id string) error {
	if f.RemoveSwarmObjFn == nil {
		return unexpected("RemoveSwarmObject")
	}
	return f.RemoveSwarmObjFn(ctx, kind, id)
}

func (f *Fake) RemoveService(ctx context.Context, id string) error {
	if f.RemoveServiceFn == nil {
		return unexpected("RemoveService")
	}
	return f.RemoveServiceFn(ctx, id)
}

func (f *Fake) ListTasks(ctx context.Context, labels map[string]string) ([]Task, error) {
	if f.ListTasksFn == nil {
		return nil, unexpected("ListTasks")
	}
	return f.ListTasksFn(ctx, labels)
}
