package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/internal/scratchimage"
)

// A detached agent is one of the plugin's long-running commands (`guard`, `monitor`)
// run as a container on the engine (`--detach --mount-docker-socket`). What runs inside
// is the plugin's own executable (static: CGO_ENABLED=0), copied into a FROM scratch
// image built on the engine, started as `docker-lifecycle lifecycle <role> --target
// JSON`: the one implementation of the command, given the project resolved on the
// user's side (the compose files are not in the container). One image serves every
// role; one container per project and role, named <project>-<role>.

// DetachedSocket is the engine's socket on the engine's host, bind-mounted into a
// detached agent (rootful engines; Docker Desktop maps it to its VM's socket).
const DetachedSocket = "/var/run/docker.sock"

// DetachedImageRepository is the repository of the detached agents' image; the tag is
// the executable's content digest, as the agent image's.
const DetachedImageRepository = "docker-lifecycle-detached"

// LabelDetachedImage marks the detached agents' images, so they can be found and pruned.
const LabelDetachedImage = "io.lifecycle.detached-image"

// ErrSocketOptIn: --detach without the explicit opt-in to mount the engine's socket.
var ErrSocketOptIn = errors.New("--detach needs the engine's socket mounted into the container, and a process with that socket is root on the engine's host (it can start a privileged container mounting /)")

// SocketOptInError is ErrSocketOptIn for command role (guard, monitor), saying what to do.
func SocketOptInError(role string) error {
	return fmt.Errorf("%s %w: add --mount-docker-socket to accept that, or run `docker lifecycle %s` in the foreground under a supervisor of your own", role, ErrSocketOptIn, role)
}

// ErrDetachedExecutable: the plugin's executable cannot run in a FROM scratch container.
var ErrDetachedExecutable = errors.New("the plugin's executable cannot run in a detached container")

// CheckDetachedExecutable says whether bin can run in a FROM scratch container on an
// engine of architecture arch (the engine's `uname -m` or Go's name): a Linux ELF of
// that architecture without an interpreter (statically linked).
func CheckDetachedExecutable(bin []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("%w: not a Linux (ELF) executable; the engine runs Linux: run `--detach` with a Linux build of the plugin (`make build` on Linux), or run the command in the foreground: %v", ErrDetachedExecutable, err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "aarch64": elf.EM_AARCH64}[strings.ToLower(arch)]
	if f.Machine != want {
		return fmt.Errorf("%w: it is built for %s, the engine is %s: build the plugin for the engine's architecture (GOARCH)", ErrDetachedExecutable, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: it is dynamically linked (a scratch image has no libc): build it with CGO_ENABLED=0, as `make build` does", ErrDetachedExecutable)
		}
	}
	return nil
}

// detachedDockerfile is part of the image's tag: a change here makes a new image. The
// role is the container's first argument.
const detachedDockerfile = "FROM scratch\nCOPY docker-lifecycle /docker-lifecycle\nENTRYPOINT [\"/docker-lifecycle\", \"lifecycle\"]\n"

// DetachedImageTag is the image reference of an executable: its content digest.
func DetachedImageTag(bin []byte) string {
	sum := sha256.Sum256(append([]byte(detachedDockerfile), bin...))
	return DetachedImageRepository + ":" + hex.EncodeToString(sum[:])[:16]
}

func detachedImageContext(bin []byte) (*bytes.Buffer, error) {
	return scratchimage.Context(detachedDockerfile, scratchimage.File{Name: "docker-lifecycle", Mode: 0o755, Data: bin})
}

// DetachedAgent is what differs between the detached agents.
type DetachedAgent struct {
	// Role is the command run (compose.RoleGuard, compose.RoleMonitor), also the role
	// label and the name's suffix.
	Role    string
	Project string
	// Args follow the role on the command line (the --target among them).
	Args []string
	// Publish, when set, gives the container the default bridge network and publishes
	// Publish.Port on the host's Publish.HostIP; without it the container has no
	// network at all.
	Publish *PublishedPort
	// Memory (bytes) and Pids bound the container.
	Memory, Pids int64
	// ReadOnlyDirs are directories of the engine's host the agent reads (the monitor:
	// the local backup target's drill records), bind-mounted read-only at their path.
	ReadOnlyDirs []string
}

// PublishedPort is a TCP port of a detached agent published on the engine's host.
type PublishedPort struct {
	HostIP string `json:"host_ip"`
	Port   int    `json:"port"`
}

// DetachedContainerSpec is a detached agent's container: the project's labels and the
// agent's role, every capability dropped, a read-only root filesystem, no new
// privileges, small memory and pids limits, restarted unless stopped, the engine's
// socket as its only writable mount, and no network unless it publishes a port. It runs as uid
// 0 because the socket is owned by root (mode 0660, group docker); with no capability
// left, root in the container reads and writes files as their owner would and nothing
// more (no DAC override, no chown, no raw network), but the socket itself gives what
// the engine gives.
func DetachedContainerSpec(a DetachedAgent, image string) engine.ContainerSpec {
	pids := a.Pids
	spec := engine.ContainerSpec{
		Name: compose.DetachedAgentName(a.Project, a.Role),
		Config: &container.Config{
			Image: image,
			Cmd:   append([]string{a.Role}, a.Args...),
			User:  "0:0",
			// The docker CLI's configuration directory: nothing there, and a read-only
			// root needs it to be somewhere that exists.
			Env: []string{"HOME=/", "DOCKER_HOST=unix://" + DetachedSocket},
			Labels: map[string]string{
				compose.LabelProject: a.Project, compose.LabelManagedBy: compose.ManagedByValue,
				compose.LabelRole: a.Role,
				// Not a service's replica: deploy's orphan search and ps skip one-offs.
				compose.LabelOneoff: "True",
			},
		},
		HostConfig: &container.HostConfig{
			NetworkMode:    "none",
			RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			ReadonlyRootfs: true,
			Mounts:         []mount.Mount{{Type: mount.TypeBind, Source: DetachedSocket, Target: DetachedSocket}},
			Resources:      container.Resources{Memory: a.Memory, MemorySwap: a.Memory, PidsLimit: &pids},
			// Its log is what `guard --status` reads: kept, and bounded.
			LogConfig: container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "2"}},
		},
	}
	for _, dir := range a.ReadOnlyDirs {
		spec.HostConfig.Mounts = append(spec.HostConfig.Mounts, mount.Mount{Type: mount.TypeBind, Source: dir, Target: dir, ReadOnly: true})
	}
	if p := a.Publish; p != nil {
		port := network.MustParsePort(strconv.Itoa(p.Port) + "/tcp")
		spec.HostConfig.NetworkMode = "bridge"
		spec.Config.ExposedPorts = network.PortSet{port: struct{}{}}
		spec.HostConfig.PortBindings = network.PortMap{port: {{HostIP: netip.MustParseAddr(p.HostIP), HostPort: strconv.Itoa(p.Port)}}}
	}
	return spec
}

// DetachOptions are `--detach`'s inputs.
type DetachOptions struct {
	// MountDockerSocket is the user's explicit opt-in (--mount-docker-socket).
	MountDockerSocket bool
	// Executable is the plugin's own executable, run in the container.
	Executable []byte
	// Progress receives what happens, as sentences.
	Progress func(string)
}

// DetachResult is what Detach did.
type DetachResult struct {
	Container string        `json:"container"`
	ID        string        `json:"id"`
	Image     string        `json:"image"`
	ImageNew  bool          `json:"image_built"`
	BuildTime time.Duration `json:"-"`
	// Replaced names the project's older containers of the role removed first.
	Replaced []string `json:"replaced,omitempty"`
	// Published is where a monitor's port is published on the engine's host.
	Published *PublishedPort `json:"published,omitempty"`
}

// Detach starts agent a as a container (DetachedContainerSpec), building the image
// first if the engine lacks it and replacing the project's older container of the role.
func Detach(ctx context.Context, eng engine.Engine, a DetachedAgent, opts DetachOptions) (DetachResult, error) {
	if !opts.MountDockerSocket {
		return DetachResult{}, SocketOptInError(a.Role)
	}
	say := opts.Progress
	if say == nil {
		say = func(string) {}
	}
	arch, err := eng.Arch(ctx)
	if err != nil {
		return DetachResult{}, err
	}
	if err := CheckDetachedExecutable(opts.Executable, arch); err != nil {
		return DetachResult{}, err
	}
	res := DetachResult{Container: compose.DetachedAgentName(a.Project, a.Role), Image: DetachedImageTag(opts.Executable), Published: a.Publish}
	if _, err := eng.InspectImage(ctx, res.Image); errors.Is(err, engine.ErrNotFound) {
		say(fmt.Sprintf("building the detached image %s (the plugin's executable, %d MiB, FROM scratch)", res.Image, len(opts.Executable)>>20))
		buildContext, err := detachedImageContext(opts.Executable)
		if err != nil {
			return res, err
		}
		began := time.Now()
		if err := eng.BuildImage(ctx, buildContext, res.Image, map[string]string{LabelDetachedImage: "true"}); err != nil {
			return res, fmt.Errorf("build the detached image %s: %w", res.Image, err)
		}
		res.ImageNew, res.BuildTime = true, time.Since(began)
	} else if err != nil {
		return res, err
	}
	if res.Replaced, err = RemoveDetached(ctx, eng, a.Project, a.Role); err != nil {
		return res, err
	}
	if res.ID, err = eng.CreateContainer(ctx, DetachedContainerSpec(a, res.Image)); err != nil {
		return res, fmt.Errorf("create the %s container %s: %w", a.Role, res.Container, err)
	}
	if err := eng.StartContainer(ctx, res.ID); err != nil {
		_ = eng.RemoveContainer(context.WithoutCancel(ctx), res.ID, true)
		return res, fmt.Errorf("start the %s container %s (removed again): %w", a.Role, res.Container, err)
	}
	return res, nil
}

// detachedContainers are the project's containers of role: normally one; a name taken
// by a container without our labels is not ours and is left alone (create fails).
func detachedContainers(ctx context.Context, eng engine.Engine, project, role string) ([]engine.Container, error) {
	cs, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project, compose.LabelRole: role})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(cs, func(c engine.Container) bool { return c.Labels[compose.LabelManagedBy] != compose.ManagedByValue }), nil
}

// RemoveDetached removes the project's detached containers of the given roles (every
// role when none is given: down), returning their names.
func RemoveDetached(ctx context.Context, eng engine.Engine, project string, roles ...string) ([]string, error) {
	if len(roles) == 0 {
		roles = compose.DetachedRoles
	}
	var names []string
	var errs []error
	for _, role := range roles {
		cs, err := detachedContainers(ctx, eng, project, role)
		if err != nil {
			return names, err
		}
		for _, c := range cs {
			timeout := 5 * time.Second
			if err := eng.StopContainer(ctx, c.ID, "", &timeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
				errs = append(errs, fmt.Errorf("stop the %s container %s: %w", role, c.Name, err))
				continue
			}
			if err := eng.RemoveContainer(ctx, c.ID, true); err != nil && !errors.Is(err, engine.ErrNotFound) {
				errs = append(errs, fmt.Errorf("remove the %s container %s: %w", role, c.Name, err))
				continue
			}
			names = append(names, c.Name)
		}
	}
	return names, errors.Join(errs...)
}

// DetachedContainerStatus is a detached agent's container (guard --status, monitor
// --status).
type DetachedContainerStatus struct {
	Name     string    `json:"name"`
	ID       string    `json:"id"`
	Image    string    `json:"image"`
	State    string    `json:"state"`
	Since    time.Time `json:"since"` // started (running) or stopped (otherwise)
	Restarts int       `json:"restarts"`
	ExitCode int       `json:"exit_code,omitempty"`
}

// detachedStatus inspects project's container of role; nil details when there is none.
func detachedStatus(ctx context.Context, eng engine.Engine, project, role string) (*engine.ContainerDetails, DetachedContainerStatus, error) {
	cs, err := detachedContainers(ctx, eng, project, role)
	if err != nil || len(cs) == 0 {
		return nil, DetachedContainerStatus{}, err
	}
	d, err := eng.InspectContainer(ctx, cs[0].ID)
	if err != nil {
		return nil, DetachedContainerStatus{}, err
	}
	st := DetachedContainerStatus{Name: d.Name, ID: d.ID, State: d.State, Since: d.StartedAt, Restarts: d.RestartCount, ExitCode: d.ExitCode}
	if d.State != "running" {
		st.Since = d.FinishedAt
	}
	if d.Config != nil {
		st.Image = d.Config.Image
	}
	return &d, st, nil
}

// targetArg is the --target argument of a detached agent's command ("" without one).
func targetArg(d engine.ContainerDetails) string {
	if d.Config == nil {
		return ""
	}
	if i := slices.Index(d.Config.Cmd, "--target"); i >= 0 && i+1 < len(d.Config.Cmd) {
		return d.Config.Cmd[i+1]
	}
	return ""
}
