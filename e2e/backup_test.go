package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

const backupProject = `
x-lifecycle: {strategy: recreate, backup: {consistency: pause}}
services:
  db:
    image: {{image:v1}}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 500ms, retries: 60}
    volumes: [data:/data]
volumes:
  data:
`

// backupManifest is the part of the manifest (docs/backup.md) the test checks.
type backupManifest struct {
	Project  string `json:"project"`
	Services []struct {
		Name     string   `json:"name"`
		ImageIDs []string `json:"image_ids"`
	} `json:"services"`
	Volumes []struct {
		Name       string `json:"name"`
		EngineName string `json:"engine_name"`
		Archive    string `json:"archive"`
		SHA256     string `json:"sha256"`
		Files      int    `json:"files"`
		Size       int64  `json:"size"`
	} `json:"volumes"`
}

// TestBackupRestore fills a project's volume (files with owners and modes, a directory,
// a symlink), backs it up, restores it into a new project and compares every entry;
// then a restore into that non-empty volume without --force and a restore of a damaged
// archive (even with --force) are refused and change nothing.
func TestBackupRestore(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, backupProject)
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	p.mustLifecycle("deploy")
	step("deploy")
	db := p.name + "-db-1"

	// fill the volume through the engine's archive API (the test image has no shell)
	fill := exec.Command("docker", "cp", "-", db+":/data")
	fill.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
	fill.Stdin = bytes.NewReader(sampleTar(t))
	out, err := fill.CombinedOutput()
	assert.NilError(t, err, string(out))
	source := volumeEntries(t, p, p.name+"_data")
	assert.Check(t, is.Equal(source["big.bin"].UID, 1234), "the fill keeps owners: %v", source["big.bin"])

	step("fill")
	backups := t.TempDir()
	r := p.mustLifecycle("backup", "--to", backups, "--format", "json")
	var m backupManifest
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &m), r.stdout)
	assert.Check(t, is.Equal(m.Project, p.name))
	assert.Assert(t, is.Len(m.Volumes, 1))
	v := m.Volumes[0]
	assert.Check(t, is.Equal(v.Name, "data"))
	assert.Check(t, is.Equal(v.EngineName, p.name+"_data"))
	assert.Check(t, is.Equal(v.Files, 3))
	assert.Check(t, is.Equal(v.Size, int64(1<<20+len("hello\n")+len("secret-free\n"))))
	assert.Check(t, is.Len(m.Services, 1))
	assert.Check(t, is.Equal(p.inspect("{{.State.Status}}", db), "running"), "unpaused after the backup")
	step("backup")
	dirs, err := filepath.Glob(filepath.Join(backups, p.name+"-*"))
	assert.NilError(t, err)
	assert.Assert(t, is.Len(dirs, 1))
	dir := dirs[0]
	assert.Check(t, is.Equal(fileSum(t, filepath.Join(dir, v.Archive)), v.SHA256))

	// into a new project: every entry identical
	target := p.name + "-copy"
	t.Cleanup(func() { _ = s.plainDocker("volume", "rm", "-f", target+"_data") })
	r = p.mustLifecycle("restore", dir, "--project", target)
	assert.Check(t, is.Contains(r.stdout, "Restored volume "+target+"_data"))
	assert.Check(t, is.DeepEqual(volumeEntries(t, p, target+"_data"), source))
	assert.Check(t, is.Equal(p.inspect(`{{index .Labels "com.docker.compose.project"}}`, target+"_data"), target))

	step("restore")
	// a non-empty volume without --force: refused
	r = p.lifecycle("restore", dir, "--project", target)
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, target+"_data holds files"))

	step("refused non-empty")
	// a damaged archive: refused before anything is written, even with --force
	damaged := filepath.Join(t.TempDir(), "damaged")
	assert.NilError(t, os.CopyFS(damaged, os.DirFS(dir)))
	archive := filepath.Join(damaged, v.Archive)
	b, err := os.ReadFile(archive)
	assert.NilError(t, err)
	b[len(b)/2] ^= 0x01
	assert.NilError(t, os.WriteFile(archive, b, 0o600))
	r = p.lifecycle("restore", damaged, "--project", target, "--force")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, is.Contains(r.stderr, archive))
	assert.Check(t, is.Contains(r.stderr, "nothing restored"))
	assert.Check(t, is.DeepEqual(volumeEntries(t, p, target+"_data"), source))
	r = p.lifecycle("restore", damaged, "--project", target+"2")
	assert.Check(t, r.code != 0, r.String())
	assert.Check(t, s.plainDocker("volume", "inspect", target+"2_data") != nil, "no volume created for a damaged backup")
	step("refused damaged")
}

// sampleTar is the volume's content: files of several modes and owners, a private
// directory, a symlink and a 1 MiB file of varied bytes.
func sampleTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251)
	}
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		assert.NilError(t, tw.WriteHeader(h))
		_, err := tw.Write(body)
		assert.NilError(t, err)
	}
	add(&tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("hello\n"))
	add(&tar.Header{Name: "private/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 999, Gid: 999}, nil)
	add(&tar.Header{Name: "private/notes", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 999, Gid: 999}, []byte("secret-free\n"))
	add(&tar.Header{Name: "big.bin", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1234, Gid: 5678}, big)
	add(&tar.Header{Name: "latest", Typeflag: tar.TypeSymlink, Linkname: "big.bin"}, nil)
	assert.NilError(t, tw.Close())
	return buf.Bytes()
}

type volumeEntry struct {
	Mode     int64
	UID, GID int
	Link     string
	SHA256   string
}

// volumeEntries reads a volume through a created (never started) container of the test
// image labelled with the project, and returns every entry below its root.
func volumeEntries(t *testing.T, p *project, volume string) map[string]volumeEntry {
	t.Helper()
	r := p.s.docker(t, p.dir, nil, "create", "--label", "com.docker.compose.project="+p.name, "-v", volume+":/probe", imageRef("v1"))
	assert.Assert(t, r.code == 0, r.String())
	id := strings.TrimSpace(r.stdout)
	defer func() { _ = p.s.plainDocker("rm", "-f", id) }()
	cmd := exec.Command("docker", "cp", id+":/probe", "-")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+p.s.configDir)
	out, err := cmd.Output()
	assert.NilError(t, err)
	entries := map[string]volumeEntry{}
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		assert.NilError(t, err)
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "probe"), "/")
		if name == "" {
			continue
		}
		sum := sha256.New()
		_, err = io.Copy(sum, tr)
		assert.NilError(t, err)
		entries[strings.TrimSuffix(name, "/")] = volumeEntry{Mode: h.Mode, UID: h.Uid, GID: h.Gid, Link: h.Linkname, SHA256: hex.EncodeToString(sum.Sum(nil))}
	}
	assert.Check(t, len(entries) == 5, "volume %s: %v", volume, fmt.Sprint(entries))
	return entries
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	assert.NilError(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
