package rollout

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

func testTarget() GuardTarget {
	return GuardTarget{Project: "demo", Services: map[string]GuardTargetService{
		"web": {Policy: compose.GuardSpec{Budget: 3, Window: compose.Duration(10 * time.Minute)}, Routed: true, Hooks: []string{"/bin/warm cache"}},
	}}
}

func TestGuardContainerSpecIsHardened(t *testing.T) {
	spec := GuardContainerSpec(testTarget(), "docker-lifecycle-guard:abc")
	assert.Check(t, is.Equal(spec.Name, "demo-guard"))
	c, h := spec.Config, spec.HostConfig
	assert.Check(t, is.DeepEqual(c.Labels, map[string]string{
		compose.LabelProject: "demo", compose.LabelManagedBy: compose.ManagedByValue,
		compose.LabelRole: compose.RoleGuard, compose.LabelOneoff: "True",
	}))
	assert.Check(t, is.DeepEqual(h.CapDrop, []string{"ALL"}))
	assert.Check(t, is.Len(h.CapAdd, 0))
	assert.Check(t, !h.Privileged)
	assert.Check(t, h.ReadonlyRootfs)
	assert.Check(t, is.DeepEqual(h.SecurityOpt, []string{"no-new-privileges:true"}))
	assert.Check(t, is.Equal(string(h.NetworkMode), "none"))
	assert.Check(t, is.Len(h.PortBindings, 0))
	assert.Check(t, is.Len(c.ExposedPorts, 0))
	assert.Check(t, is.Equal(string(h.RestartPolicy.Name), "unless-stopped"))
	assert.Check(t, h.Resources.Memory > 0 && h.Resources.Memory <= 64<<20)
	assert.Check(t, h.Resources.PidsLimit != nil && *h.Resources.PidsLimit <= 64)
	// The socket is the only mount, and nothing else of the host.
	assert.Check(t, is.DeepEqual(h.Mounts, []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"}}))
	assert.Check(t, is.Len(h.Binds, 0))
	// The target travels as an argument and reads back the same.
	assert.Assert(t, is.Len(c.Cmd, 5))
	assert.Check(t, is.DeepEqual(c.Cmd[:4], []string{"guard", "--format", "json", "--target"}))
	back, err := DecodeGuardTarget([]byte(c.Cmd[4]))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(back, testTarget()))
}

// TestDetachGuardWithoutOptInTouchesNothing: every engine call of the fake fails the
// test; the opt-in is checked first.
func TestDetachGuardWithoutOptInTouchesNothing(t *testing.T) {
	_, err := DetachGuard(context.Background(), &engine.Fake{}, testTarget(), DetachOptions{Executable: []byte("x")})
	assert.Check(t, errors.Is(err, ErrSocketOptIn))
	assert.Check(t, is.ErrorContains(err, "--mount-docker-socket"))
	assert.Check(t, is.ErrorContains(err, "root on the engine's host"))
	assert.Check(t, is.ErrorContains(err, "`docker lifecycle guard` in the foreground"))
}

func TestDetachGuardBuildsImageAndReplacesOlderGuard(t *testing.T) {
	bin := fakeELF(elf.EM_X86_64, false)
	var calls []string
	old := engine.Container{ID: "old", Name: "demo-guard", Labels: map[string]string{compose.LabelManagedBy: compose.ManagedByValue}}
	stranger := engine.Container{ID: "other", Name: "x", Labels: map[string]string{}} // the role label without ours: left alone
	eng := &engine.Fake{
		ArchFn:         func(context.Context) (string, error) { return "x86_64", nil },
		InspectImageFn: func(context.Context, string) (engine.Image, error) { return engine.Image{}, engine.ErrNotFound },
		BuildImageFn: func(_ context.Context, _ io.Reader, tag string, labels map[string]string) error {
			calls = append(calls, "build "+tag)
			assert.Check(t, is.Equal(labels[LabelDetachedImage], "true"))
			return nil
		},
		ListContainersFn: func(_ context.Context, labels map[string]string) ([]engine.Container, error) {
			assert.Check(t, is.DeepEqual(labels, map[string]string{compose.LabelProject: "demo", compose.LabelRole: compose.RoleGuard}))
			return []engine.Container{old, stranger}, nil
		},
		StopContainerFn: func(_ context.Context, id, _ string, _ *time.Duration) error {
			calls = append(calls, "stop "+id)
			return nil
		},
		RemoveContainerFn: func(_ context.Context, id string, _ bool) error { calls = append(calls, "remove "+id); return nil },
		CreateContainerFn: func(_ context.Context, spec engine.ContainerSpec) (string, error) {
			calls = append(calls, "create "+spec.Name+" "+spec.Config.Image)
			return "new", nil
		},
		StartContainerFn: func(_ context.Context, id string) error { calls = append(calls, "start "+id); return nil },
	}
	res, err := DetachGuard(context.Background(), eng, testTarget(), DetachOptions{MountDockerSocket: true, Executable: bin})
	assert.NilError(t, err)
	tag := DetachedImageTag(bin)
	assert.Check(t, is.DeepEqual(calls, []string{"build " + tag, "stop old", "remove old", "create demo-guard " + tag, "start new"}))
	assert.Check(t, is.DeepEqual(res.Replaced, []string{"demo-guard"}))
	assert.Check(t, res.ImageNew)
}

func TestCheckDetachedExecutable(t *testing.T) {
	err := CheckDetachedExecutable([]byte("#!/bin/sh\necho hi\n"), "amd64")
	assert.Check(t, errors.Is(err, ErrDetachedExecutable))
	assert.Check(t, is.ErrorContains(err, "not a Linux (ELF) executable"))

	assert.Check(t, CheckDetachedExecutable(fakeELF(elf.EM_X86_64, false), "x86_64"))
	assert.Check(t, CheckDetachedExecutable(fakeELF(elf.EM_AARCH64, false), "arm64"))
	assert.Check(t, is.ErrorContains(CheckDetachedExecutable(fakeELF(elf.EM_X86_64, false), "aarch64"), "the engine is aarch64"))
	assert.Check(t, is.ErrorContains(CheckDetachedExecutable(fakeELF(elf.EM_X86_64, true), "amd64"), "dynamically linked"))
}

// fakeELF is the header of a Linux executable for machine, with an interpreter
// (dynamically linked) or not: all CheckDetachedExecutable reads.
func fakeELF(machine elf.Machine, dynamic bool) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	b.Write(make([]byte, 9))
	phoff, phnum := uint64(0), uint16(0)
	if dynamic {
		phoff, phnum = 64, 1
	}
	_ = binary.Write(&b, binary.LittleEndian, struct {
		Type, Machine                                      uint16
		Version                                            uint32
		Entry, Phoff, Shoff                                uint64
		Flags                                              uint32
		Ehsize, Phentsize, Phnum, Shentsize, Shnum, Shstrx uint16
	}{uint16(elf.ET_EXEC), uint16(machine), uint32(elf.EV_CURRENT), 0, phoff, 0, 0, 64, 56, phnum, 64, 0, 0})
	if dynamic {
		_ = binary.Write(&b, binary.LittleEndian, elf.Prog64{Type: uint32(elf.PT_INTERP)})
	}
	return b.Bytes()
}

func TestDetachedImageTagIsContentDigest(t *testing.T) {
	a, b := DetachedImageTag([]byte("v1")), DetachedImageTag([]byte("v2"))
	assert.Check(t, a != b)
	assert.Check(t, is.Regexp(`^docker-lifecycle-detached:[0-9a-f]{16}$`, a))
}

func TestGuardStatusNoGuard(t *testing.T) {
	eng := &engine.Fake{ListContainersFn: func(context.Context, map[string]string) ([]engine.Container, error) { return nil, nil }}
	_, err := GuardStatus(context.Background(), eng, "demo", 5)
	assert.Check(t, errors.Is(err, ErrNoGuard))
	assert.Check(t, is.ErrorContains(err, "no detached guard runs for project demo"))
}

func TestLastActionsKeepsTheLastJSONAlerts(t *testing.T) {
	lines := []string{
		"guarding project demo: 1 running containers (Ctrl-C stops)",
		`{"time":"2026-12-02T10:00:00Z","project":"demo","kind":"exec","action":"reported","reason":"a"}`,
		`{"time":"2026-12-02T10:00:01Z","project":"demo","kind":"unhealthy","action":"restarted","reason":"b"}`,
		`not json {`,
		`{"time":"2026-12-02T10:00:02Z","project":"demo","kind":"oom","action":"reported","reason":"c"}`,
	}
	got := lastActions(lines, 2)
	assert.Assert(t, is.Len(got, 2))
	assert.Check(t, is.Equal(got[0].Reason, "b"))
	assert.Check(t, is.Equal(got[1].Reason, "c"))
	assert.Check(t, is.Len(lastActions(nil, 3), 0))
}
