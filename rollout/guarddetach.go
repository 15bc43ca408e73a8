package rollout

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/internal/scratchimage"
)

// `guard --detach` runs the guard as a container on the engine. What runs inside is the
// plugin's own executable (static: CGO_ENABLED=0), copied into a FROM scratch image
// built on the engine, started as `docker-lifecycle lifecycle guard --target JSON`: the
// one implementation of the guard, given the project resolved on the user's side (the
// compose files are not in the container). The agent image stays small: it does not
// carry the engine client and the compose loader for the guard's sake.

// GuardSocket is the engine's socket on the engine's host, bind-mounted into the
// detached guard (rootful engines; Docker Desktop maps it to its VM's socket).
const GuardSocket = "/var/run/docker.sock"

// GuardImageRepository is the repository of the detached guard's image; the tag is the
// executable's content digest, as the agent image's.
const GuardImageRepository = "docker-lifecycle-guard"

// LabelGuardImage marks the guard images, so they can be found and pruned.
const LabelGuardImage = "io.lifecycle.guard-image"

// ErrSocketOptIn: --detach without the explicit opt-in to mount the engine's socket.
var ErrSocketOptIn = errors.New("guard --detach needs the engine's socket mounted into the guard container, and a process with that socket is root on the engine's host (it can start a privileged container mounting /): add --mount-docker-socket to accept that, or run `docker lifecycle guard` in the foreground under a supervisor of your own")

// ErrGuardExecutable: the plugin's executable cannot run in a FROM scratch container.
var ErrGuardExecutable = errors.New("the plugin's executable cannot run in the guard container")

// ErrNoGuard: no detached guard container exists for the project.
var ErrNoGuard = errors.New("no detached guard")

// Resource limits of the guard container: the guard is an event loop; a leak or a
// runaway is stopped by the engine before it hurts the host.
const (
	guardMemory = 64 << 20
	guardPids   = 64
)

// CheckGuardExecutable says whether bin can run in a FROM scratch container on an
// engine of architecture arch (the engine's `uname -m` or Go's name): a Linux ELF of
// that architecture without an interpreter (statically linked).
func CheckGuardExecutable(bin []byte, arch string) error {
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("%w: not a Linux (ELF) executable; the engine runs Linux: run `guard --detach` with a Linux build of the plugin (`make build` on Linux), or run the guard in the foreground: %v", ErrGuardExecutable, err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "x86_64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "aarch64": elf.EM_AARCH64}[strings.ToLower(arch)]
	if f.Machine != want {
		return fmt.Errorf("%w: it is built for %s, the engine is %s: build the plugin for the engine's architecture (GOARCH)", ErrGuardExecutable, f.Machine, arch)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: it is dynamically linked (a scratch image has no libc): build it with CGO_ENABLED=0, as `make build` does", ErrGuardExecutable)
		}
	}
	return nil
}

// guardDockerfile is part of the image's tag: a change here makes a new image.
const guardDockerfile = "FROM scratch\nCOPY docker-lifecycle /docker-lifecycle\nENTRYPOINT [\"/docker-lifecycle\", \"lifecycle\", \"guard\"]\n"

// GuardImageTag is the image reference of an executable: its content digest.
func GuardImageTag(bin []byte) string {
	sum := sha256.Sum256(append([]byte(guardDockerfile), bin...))
	return GuardImageRepository + ":" + hex.EncodeToString(sum[:])[:16]
}

func guardImageContext(bin []byte) (*bytes.Buffer, error) {
	return scratchimage.Context(guardDockerfile, scratchimage.File{Name: "docker-lifecycle", Mode: 0o755, Data: bin})
}

// GuardContainerSpec is the detached guard's container: the project's labels and the
// guard's role, no network, every capability dropped, a read-only root filesystem, no
// new privileges, small memory and pids limits, restarted unless stopped, and the
// engine's socket as its only mount. It runs as uid 0 because the socket is owned by
// root (mode 0660, group docker); with no capability left, root in the container reads
// and writes files as their owner would and nothing more (no DAC override, no chown, no
// raw network), but the socket itself gives what the engine gives.
func GuardContainerSpec(t GuardTarget, image string) engine.ContainerSpec {
	pids := int64(guardPids)
	return engine.ContainerSpec{
		Name: compose.GuardContainerName(t.Project),
		Config: &container.Config{
			Image: image,
			Cmd:   []string{"--format", "json", "--target", t.Encode()},
			User:  "0:0",
			// The docker CLI's configuration directory: nothing there, and a read-only
			// root needs it to be somewhere that exists.
			Env: []string{"HOME=/", "DOCKER_HOST=unix://" + GuardSocket},
			Labels: map[string]string{
				compose.LabelProject: t.Project, compose.LabelManagedBy: compose.ManagedByValue,
				compose.LabelRole: compose.RoleGuard,
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
			Mounts:         []mount.Mount{{Type: mount.TypeBind, Source: GuardSocket, Target: GuardSocket}},
			Resources:      container.Resources{Memory: guardMemory, MemorySwap: guardMemory, PidsLimit: &pids},
			// Its alerts are what `guard --status` reads: kept, and bounded.
			LogConfig: container.LogConfig{Type: "local", Config: map[string]string{"max-size": "1m", "max-file": "2"}},
		},
	}
}

// DetachOptions are `guard --detach`'s inputs.
type DetachOptions struct {
	// MountDockerSocket is the user's explicit opt-in (--mount-docker-socket).
	MountDockerSocket bool
	// Executable is the plugin's own executable, run in the container.
	Executable []byte
	// Progress receives what happens, as sentences.
	Progress func(string)
}

// DetachResult is what DetachGuard did.
type DetachResult struct {
	Container string        `json:"container"`
	ID        string        `json:"id"`
	Image     string        `json:"image"`
	ImageNew  bool          `json:"image_built"`
	BuildTime time.Duration `json:"-"`
	// Replaced names the project's older guard containers removed first.
	Replaced []string `json:"replaced,omitempty"`
}

// DetachGuard starts project t's guard as a container (GuardContainerSpec), building
// its image first if the engine lacks it and replacing an older guard of the project.
func DetachGuard(ctx context.Context, eng engine.Engine, t GuardTarget, opts DetachOptions) (DetachResult, error) {
	if !opts.MountDockerSocket {
		return DetachResult{}, ErrSocketOptIn
	}
	say := opts.Progress
	if say == nil {
		say = func(string) {}
	}
	arch, err := eng.Arch(ctx)
	if err != nil {
		return DetachResult{}, err
	}
	if err := CheckGuardExecutable(opts.Executable, arch); err != nil {
		return DetachResult{}, err
	}
	res := DetachResult{Container: compose.GuardContainerName(t.Project), Image: GuardImageTag(opts.Executable)}
	if _, err := eng.InspectImage(ctx, res.Image); errors.Is(err, engine.ErrNotFound) {
		say(fmt.Sprintf("building the guard image %s (the plugin's executable, %d MiB, FROM scratch)", res.Image, len(opts.Executable)>>20))
		buildContext, err := guardImageContext(opts.Executable)
		if err != nil {
			return res, err
		}
		began := time.Now()
		if err := eng.BuildImage(ctx, buildContext, res.Image, map[string]string{LabelGuardImage: "true"}); err != nil {
			return res, fmt.Errorf("build the guard image %s: %w", res.Image, err)
		}
		res.ImageNew, res.BuildTime = true, time.Since(began)
	} else if err != nil {
		return res, err
	}
	if res.Replaced, err = RemoveGuard(ctx, eng, t.Project); err != nil {
		return res, err
	}
	if res.ID, err = eng.CreateContainer(ctx, GuardContainerSpec(t, res.Image)); err != nil {
		return res, fmt.Errorf("create the guard container %s: %w", res.Container, err)
	}
	if err := eng.StartContainer(ctx, res.ID); err != nil {
		_ = eng.RemoveContainer(context.WithoutCancel(ctx), res.ID, true)
		return res, fmt.Errorf("start the guard container %s (removed again): %w", res.Container, err)
	}
	return res, nil
}

// guardContainers are the project's guard containers: normally one; a name taken by a
// container without the guard's labels is not ours and is left alone (create fails).
func guardContainers(ctx context.Context, eng engine.Engine, project string) ([]engine.Container, error) {
	cs, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project, compose.LabelRole: compose.RoleGuard})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(cs, func(c engine.Container) bool { return c.Labels[compose.LabelManagedBy] != compose.ManagedByValue }), nil
}

// RemoveGuard removes the project's detached guard containers (down, and a new
// --detach), returning their names.
func RemoveGuard(ctx context.Context, eng engine.Engine, project string) ([]string, error) {
	cs, err := guardContainers(ctx, eng, project)
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, c := range cs {
		timeout := 5 * time.Second
		if err := eng.StopContainer(ctx, c.ID, "", &timeout); err != nil && !errors.Is(err, engine.ErrNotFound) {
			errs = append(errs, fmt.Errorf("stop the guard container %s: %w", c.Name, err))
			continue
		}
		if err := eng.RemoveContainer(ctx, c.ID, true); err != nil && !errors.Is(err, engine.ErrNotFound) {
			errs = append(errs, fmt.Errorf("remove the guard container %s: %w", c.Name, err))
			continue
		}
		names = append(names, c.Name)
	}
	return names, errors.Join(errs...)
}
