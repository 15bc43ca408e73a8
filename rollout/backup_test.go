package rollout

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// volumeTar is what the engine's archive API returns for /volume: the directory itself,
// then its entries under "volume/".
func volumeTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "volume/", Typeflag: tar.TypeDir, Mode: 0o755}))
	for name, body := range files {
		assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "volume/" + name, Typeflag: tar.TypeReg, Mode: 0o640, Size: int64(len(body)), Uid: 1000}))
		_, err := tw.Write([]byte(body))
		assert.NilError(t, err)
	}
	assert.NilError(t, tw.WriteHeader(&tar.Header{Name: "volume/link", Typeflag: tar.TypeSymlink, Linkname: "a"}))
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

type backupFake struct {
	engine.Fake
	calls []string
}

func newBackupFake(t *testing.T, content []byte, copyErr error) *backupFake {
	f := &backupFake{}
	record := func(s string) { f.calls = append(f.calls, s) }
	f.ArchFn = func(context.Context) (string, error) { return "x86_64", nil }
	f.InspectImageFn = func(_ context.Context, ref string) (engine.Image, error) {
		return engine.Image{ID: "sha256:agent"}, nil
	}
	f.ListVolumesFn = func(context.Context, map[string]string) ([]engine.Volume, error) {
		return []engine.Volume{
			{Name: "shop_data", Labels: map[string]string{compose.LabelProject: "shop", compose.LabelVolume: "data"}},
			{Name: "shop_cache", Labels: map[string]string{compose.LabelProject: "shop", compose.LabelVolume: "cache"}},
			{Name: "shop-router-state", Labels: map[string]string{compose.LabelProject: "shop", compose.LabelRole: compose.RoleRouter}},
		}, nil
	}
	f.ListContainersFn = func(context.Context, map[string]string) ([]engine.Container, error) {
		return []engine.Container{
			{ID: "db1", Name: "/shop-db-1", ImageID: "sha256:db", State: "running", Labels: map[string]string{compose.LabelService: "db", compose.LabelRevision: "3"}},
			{ID: "web1", Name: "/shop-web-1", ImageID: "sha256:web", State: "running", Labels: map[string]string{compose.LabelService: "web", compose.LabelRevision: "7"}},
		}, nil
	}
	f.InspectContainerFn = func(_ context.Context, id string) (engine.ContainerDetails, error) {
		d := engine.ContainerDetails{ID: id, Name: "/shop-" + id[:len(id)-1] + "-1", State: "running", HostConfig: &container.HostConfig{}}
		if id == "db1" {
			d.HostConfig.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "shop_data", Target: "/data"}}
		}
		if id == "web1" {
			d.HostConfig.Binds = []string{"shop_cache:/cache", "/etc/hosts:/h:ro"}
		}
		return d, nil
	}
	f.CreateContainerFn = func(_ context.Context, spec engine.ContainerSpec) (string, error) {
		record("create " + spec.HostConfig.Mounts[0].Source)
		// Labelled with its project as a one-off: down removes one a killed backup left.
		assert.Check(t, is.Equal(spec.Config.Labels[compose.LabelProject], "shop"))
		assert.Check(t, is.Equal(spec.Config.Labels[compose.LabelOneoff], "True"))
		return "copier", nil
	}
	f.RemoveContainerFn = func(_ context.Context, id string, _ bool) error { record("remove " + id); return nil }
	f.PauseContainerFn = func(_ context.Context, id string) error { record("pause " + id); return nil }
	f.UnpauseContainerFn = func(_ context.Context, id string) error { record("unpause " + id); return nil }
	f.CopyFromFn = func(_ context.Context, id, path string) (io.ReadCloser, error) {
		record("copy-from " + path)
		if copyErr != nil {
			return nil, copyErr
		}
		return io.NopCloser(bytes.NewReader(content)), nil
	}
	return f
}

func TestBackupWritesArchivesAndManifest(t *testing.T) {
	content := volumeTar(t, map[string]string{"a": "hello", "b": "world!"})
	f := newBackupFake(t, content, nil)
	out := t.TempDir()
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: out}, ToolVersion: "test"})
	assert.NilError(t, err)
	dir, m := res.Location, res.Manifest
	assert.Check(t, is.Equal(m.Encryption, "none"))
	assert.Check(t, is.DeepEqual(res.Pruned, []string{}))

	assert.Check(t, is.Equal(m.Project, "shop"))
	assert.Check(t, is.Equal(m.Consistency, "pause"))
	assert.Check(t, is.Len(m.Volumes, 1)) // db mounts only data
	v := m.Volumes[0]
	assert.Check(t, is.Equal(v.Name, "data"))
	assert.Check(t, is.Equal(v.EngineName, "shop_data"))
	assert.Check(t, is.Equal(v.Files, 2))
	assert.Check(t, is.Equal(v.Size, int64(11)))
	assert.Check(t, is.DeepEqual(m.Services, []ManifestService{
		{Name: "db", Revision: "3", ImageIDs: []string{"sha256:db"}},
		{Name: "web", Revision: "7", ImageIDs: []string{"sha256:web"}},
	}))
	// the container mounting the volume is paused only around the copy
	assert.Check(t, is.DeepEqual(f.calls, []string{"create shop_data", "pause db1", "copy-from /volume", "unpause db1", "remove copier"}))

	read, err := ReadManifest(context.Background(), LocalTarget{Dir: out}, filepath.Base(dir))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(read.Volumes, m.Volumes))
	assert.NilError(t, VerifyBackup(context.Background(), LocalTarget{Dir: out}, filepath.Base(dir), read))

	// the archive decompresses to the very stream the engine gave
	got := decompressArchive(t, filepath.Join(dir, v.Archive))
	assert.Check(t, bytes.Equal(got, content))
}

func TestBackupEveryVolumeSkipsLifecycleOwn(t *testing.T) {
	f := newBackupFake(t, volumeTar(t, nil), nil)
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Target: LocalTarget{Dir: t.TempDir()}, Consistency: compose.ConsistencyNone})
	assert.NilError(t, err)
	m := res.Manifest
	var names []string
	for _, v := range m.Volumes {
		names = append(names, v.Name)
	}
	assert.Check(t, is.DeepEqual(names, []string{"cache", "data"}))
	for _, c := range f.calls {
		assert.Check(t, c != "pause db1" && c != "pause web1", "consistency none pauses nothing: %v", f.calls)
	}
}

func TestBackupUnknownTargetsNamedAtOnce(t *testing.T) {
	f := newBackupFake(t, nil, nil)
	_, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"nope", "data", "gone"}, Target: LocalTarget{Dir: t.TempDir()}})
	assert.ErrorContains(t, err, "no volume or service nope, gone in project shop (volumes and services: cache, data, db, web)")
}

func TestBackupUnpausesAndCleansUpOnError(t *testing.T) {
	f := newBackupFake(t, nil, errors.New("engine hiccup"))
	out := t.TempDir()
	_, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"data"}, Target: LocalTarget{Dir: out}})
	assert.ErrorContains(t, err, "engine hiccup")
	assert.Check(t, is.DeepEqual(f.calls, []string{"create shop_data", "pause db1", "copy-from /volume", "unpause db1", "remove copier"}))
	entries, _ := os.ReadDir(out)
	assert.Check(t, is.Len(entries, 0), "a failed backup leaves no directory behind")
}

func TestRestoreRefusesDamagedArchiveBeforeAnyEngineCall(t *testing.T) {
	f := newBackupFake(t, volumeTar(t, map[string]string{"a": "hello"}), nil)
	out := t.TempDir()
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Target: LocalTarget{Dir: out}})
	assert.NilError(t, err)
	dir, m := res.Location, res.Manifest
	path := filepath.Join(dir, m.Volumes[1].Archive)
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	b[len(b)/2] ^= 0xff
	assert.NilError(t, os.WriteFile(path, b, 0o600))

	// an engine that fails every call: the restore must stop before touching it
	_, err = Restore(context.Background(), &engine.Fake{}, LocalTarget{Dir: out}, filepath.Base(dir), progress.Nop, RestoreOptions{Project: "copy"})
	assert.Check(t, errors.Is(err, ErrArchiveDamaged), "%v", err)
	assert.ErrorContains(t, err, "nothing restored")
	assert.ErrorContains(t, err, path)
}

func TestRestoreTargetMapsVolumeNames(t *testing.T) {
	m := Manifest{Project: "shop"}
	v := ManifestVolume{Name: "data", EngineName: "custom-name"}
	assert.Check(t, is.Equal(RestoreTarget(m, v, ""), "custom-name"))
	assert.Check(t, is.Equal(RestoreTarget(m, v, "shop"), "custom-name"))
	assert.Check(t, is.Equal(RestoreTarget(m, v, "shop2"), "shop2_data"))
}

func TestReadManifestRejectsPathsOutsideTheBackup(t *testing.T) {
	target := LocalTarget{Dir: t.TempDir()}
	assert.NilError(t, target.Begin(context.Background(), "b"))
	assert.NilError(t, writeManifest(context.Background(), target, "b", Manifest{Format: ManifestFormat, Project: "shop", Volumes: []ManifestVolume{{Name: "data", Archive: "../etc/passwd"}}}))
	_, err := ReadManifest(context.Background(), target, "b")
	assert.ErrorContains(t, err, `volume "data" has a bad archive name "../etc/passwd"`)
}

func decompressArchive(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	assert.NilError(t, err)
	defer f.Close()
	zr, err := zstd.NewReader(f)
	assert.NilError(t, err)
	defer zr.Close()
	b, err := io.ReadAll(zr)
	assert.NilError(t, err)
	return b
}

// hookFake is newBackupFake with the service label on inspected containers (hooks find
// their service's container by it) and an Exec that records and answers by command.
func hookFake(t *testing.T, answer func(cmd []string) error) *backupFake {
	f := newBackupFake(t, volumeTar(t, map[string]string{"dump.sql": "rows"}), nil)
	inspect := f.InspectContainerFn
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		d, err := inspect(ctx, id)
		d.Config = &container.Config{Labels: map[string]string{compose.LabelService: id[:len(id)-1]}}
		return d, err
	}
	f.RunHookFn = func(_ context.Context, id string, hook engine.Hook) error {
		call := "exec " + id + " " + strings.Join(hook.Cmd, " ")
		if hook.User != "" {
			call = "exec --user " + hook.User + " " + id + " " + strings.Join(hook.Cmd, " ")
		}
		f.calls = append(f.calls, call)
		return answer(hook.Cmd)
	}
	return f
}

var dbHook = compose.BackupHook{Service: "db", Before: []string{"dump"}, After: []string{"rm", "dump"},
	Timeout: compose.Duration(time.Minute), OnFailure: compose.HookFail}

func TestBackupHooksRunAroundTheCopies(t *testing.T) {
	f := hookFake(t, func([]string) error { return nil })
	// web's hook does not run: the backup of db's volume does not include web's.
	webHook := compose.BackupHook{Service: "web", Before: []string{"flush"}, Timeout: compose.Duration(time.Minute), OnFailure: compose.HookFail}
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: t.TempDir()},
		Hooks: []compose.BackupHook{dbHook, webHook}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(f.calls, []string{"exec db1 dump", "create shop_data", "pause db1", "copy-from /volume", "unpause db1", "remove copier", "exec db1 rm dump"}))
	assert.Assert(t, is.Len(res.Manifest.Hooks, 2))
	assert.Check(t, is.Equal(res.Manifest.Hooks[0].Phase, "before"))
	assert.Check(t, is.Equal(res.Manifest.Hooks[0].Container, "shop-db-1"))
	assert.Check(t, is.Equal(res.Manifest.Hooks[1].Phase, "after"))
	assert.Check(t, is.Equal(res.Manifest.Hooks[1].Error, ""))
}

func TestBackupHookFailureStopsTheBackupAndCleansUp(t *testing.T) {
	f := hookFake(t, func(cmd []string) error {
		if cmd[0] == "dump" {
			return &engine.ExecError{Container: "shop-db-1", Cmd: cmd, ExitCode: 3, Stderr: "disk full"}
		}
		return nil
	})
	out := t.TempDir()
	_, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: out}, Hooks: []compose.BackupHook{dbHook}})
	assert.ErrorContains(t, err, "backup hook before of service db: dump in container shop-db-1 exited with code 3: disk full")
	assert.ErrorContains(t, err, "or set on-failure: continue; nothing was backed up")
	// nothing copied; the after command cleaned up the half-made dump
	assert.Check(t, is.DeepEqual(f.calls, []string{"exec db1 dump", "exec db1 rm dump"}))
	entries, _ := os.ReadDir(out)
	assert.Check(t, is.Len(entries, 0), "a failed backup leaves no directory behind")
}

func TestBackupHookFailureContinues(t *testing.T) {
	f := hookFake(t, func(cmd []string) error {
		return &engine.ExecError{Container: "shop-db-1", Cmd: cmd, ExitCode: 1}
	})
	hook := dbHook
	hook.OnFailure = compose.HookContinue
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: t.TempDir()}, Hooks: []compose.BackupHook{hook}})
	assert.NilError(t, err)
	assert.Check(t, is.Len(res.Manifest.Volumes, 1))
	assert.Assert(t, is.Len(res.Manifest.Hooks, 2))
	assert.Check(t, is.Equal(res.Manifest.Hooks[0].Error, "exit code 1"))
	assert.Check(t, is.Equal(res.Manifest.Hooks[1].Error, "exit code 1"))
}

// A failed after command with on-failure: fail keeps the complete backup and says so.
func TestBackupAfterHookFailureKeepsTheBackup(t *testing.T) {
	f := hookFake(t, func(cmd []string) error {
		if cmd[0] == "rm" {
			return &engine.ExecError{Container: "shop-db-1", Cmd: cmd, ExitCode: 1, Stderr: "busy"}
		}
		return nil
	})
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: t.TempDir()}, Hooks: []compose.BackupHook{dbHook}})
	assert.ErrorContains(t, err, "backup written to "+res.Location+" (nothing pruned), but a hook after it failed")
	_, statErr := os.Stat(filepath.Join(res.Location, "manifest.json"))
	assert.NilError(t, statErr)
}

func TestBackupHookWithoutRunningContainer(t *testing.T) {
	f := hookFake(t, func([]string) error { return nil })
	inspect := f.InspectContainerFn
	f.InspectContainerFn = func(ctx context.Context, id string) (engine.ContainerDetails, error) {
		d, err := inspect(ctx, id)
		d.State = "exited"
		return d, err
	}
	_, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: t.TempDir()}, Hooks: []compose.BackupHook{dbHook}})
	assert.ErrorContains(t, err, "no running container of db to run it in: start it (docker lifecycle deploy), or set on-failure: continue")
}

// A hook's user goes to the engine's exec; a hook without one runs as the container's.
func TestBackupHookUser(t *testing.T) {
	f := hookFake(t, func([]string) error { return nil })
	hook := dbHook
	hook.User = "999:999"
	_, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"db"}, Target: LocalTarget{Dir: t.TempDir()}, Hooks: []compose.BackupHook{hook}})
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(f.calls, []string{"exec --user 999:999 db1 dump", "create shop_data", "pause db1", "copy-from /volume", "unpause db1", "remove copier", "exec --user 999:999 db1 rm dump"}))
}
