package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// backupResult is the part of `backup --format json` (docs/backup.md) this test checks.
type backupResult struct {
	backupManifest
	Encryption string `json:"encryption"`
	Location   string `json:"location"`
	Pruned     []string
	Volumes    []struct {
		Archive string `json:"archive"`
		SHA256  string `json:"sha256"`
	} `json:"volumes"`
}

// TestBackupEncryptedRetentionS3: a backup encrypted with age restores only with the
// identity (without one, or with a wrong one, nothing is written) and gives identical
// data; --keep-last prunes this project's older backups and leaves alone another
// project's, a misleadingly named one and directories without a readable manifest;
// then the same round trip, and retention, through an S3 server on 127.0.0.1
// (gofakes3, in this test binary). backup list shows the project's backups (by
// manifest, the unreadable ones too) and backup prune, dry run then real, removes
// what --keep-last does not keep. Logs the backup times with and without encryption
// and the restore times.
func TestBackupEncryptedRetentionS3(t *testing.T) {
	t.Parallel() // no load and no timing bound: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	p := s.newProject(t, backupProject)
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	timed := func(what string, args ...string) result {
		t.Helper()
		begin := time.Now()
		r := p.mustLifecycle(args...)
		t.Logf("%s: %.2fs", what, time.Since(begin).Seconds())
		return r
	}
	p.mustLifecycle("deploy")
	fill := exec.Command("docker", "cp", "-", p.name+"-db-1:/data")
	fill.Env = append(os.Environ(), "DOCKER_CONFIG="+s.configDir)
	fill.Stdin = bytes.NewReader(sampleTar(t))
	out, err := fill.CombinedOutput()
	assert.NilError(t, err, string(out))
	source := volumeEntries(t, p, p.name+"_data")
	step("deploy, fill")

	id, err := age.GenerateX25519Identity()
	assert.NilError(t, err)
	keys := t.TempDir()
	identity := filepath.Join(keys, "key.txt")
	assert.NilError(t, os.WriteFile(identity, []byte("# test key\n"+id.String()+"\n"), 0o600))
	recipients := filepath.Join(keys, "recipients.txt")
	assert.NilError(t, os.WriteFile(recipients, []byte("# team\n"+id.Recipient().String()+"\n"), 0o644))
	wrong, err := age.GenerateX25519Identity()
	assert.NilError(t, err)
	wrongIdentity := filepath.Join(keys, "wrong.txt")
	assert.NilError(t, os.WriteFile(wrongIdentity, []byte(wrong.String()+"\n"), 0o600))

	backups := t.TempDir()
	copies := map[string]bool{}
	restored := func(project string) string {
		copies[project+"_data"] = true
		return project + "_data"
	}
	t.Cleanup(func() {
		for v := range copies {
			_ = s.plainDocker("volume", "rm", "-f", v)
		}
	})

	// without encryption: a backup for retention to prune, and its time for comparison
	var plain backupResult
	r := timed("backup (plain)", "backup", "--consistency", "none", "--to", backups, "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &plain), r.stdout)
	assert.Check(t, is.Equal(plain.Encryption, "none"))
	step("plain backup") // its restore is TestBackupRestore's (2.4–3.8 s measured, docs/backup.md)

	// encrypted
	var enc backupResult
	r = timed("backup (age)", "backup", "--consistency", "none", "--to", backups, "--encrypt-to", id.Recipient().String(), "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &enc), r.stdout)
	assert.Check(t, is.Equal(enc.Encryption, "age"))
	assert.Assert(t, is.Len(enc.Volumes, 1))
	assert.Check(t, is.Equal(enc.Volumes[0].Archive, "data.tar.zst.age"))
	assert.Check(t, is.Equal(fileSum(t, filepath.Join(enc.Location, enc.Volumes[0].Archive)), enc.Volumes[0].SHA256), "the sha256 is the stored file's")
	manifest, err := os.ReadFile(filepath.Join(enc.Location, "manifest.json"))
	assert.NilError(t, err)
	assert.Check(t, is.Contains(string(manifest), `"encryption": "age"`), "the manifest stays readable")

	target := p.name + "-age"
	for _, args := range [][]string{{}, {"--identity", wrongIdentity}} {
		r = p.lifecycle(append([]string{"restore", enc.Location, "--project", target}, args...)...)
		assert.Check(t, r.code != 0, r.String())
		assert.Check(t, is.Contains(r.stderr, "nothing restored"))
		assert.Check(t, is.Contains(r.stderr, "--identity FILE"))
		assert.Check(t, s.plainDocker("volume", "inspect", target+"_data") != nil, "nothing created without the right identity")
	}
	timed("restore (age)", "restore", enc.Location, "--project", target, "--identity", identity)
	assert.Check(t, is.DeepEqual(volumeEntries(t, p, restored(target)), source))
	step("age round trip")

	// retention: an old backup of this project (a copy with an older time), another
	// project whose name starts with this one's, a misleading name with another
	// project's manifest, a directory without a manifest and one with a garbled one
	fabricate := func(dir, project string, created time.Time) {
		assert.NilError(t, os.CopyFS(filepath.Join(backups, dir), os.DirFS(enc.Location)))
		var m map[string]any
		assert.NilError(t, json.Unmarshal(manifest, &m))
		m["project"], m["created"] = project, created
		b, err := json.Marshal(m)
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(filepath.Join(backups, dir, "manifest.json"), b, 0o600))
	}
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	fabricate(p.name+"-20200101T000000Z", p.name, old)
	fabricate(p.name+"-old-20200101T000000Z", p.name+"-old", old)
	fabricate(p.name+"-20190101T000000Z", "someone-else", old)
	assert.NilError(t, os.Mkdir(filepath.Join(backups, p.name+"-nomanifest"), 0o700))
	assert.NilError(t, os.Mkdir(filepath.Join(backups, p.name+"-garbled"), 0o700))
	assert.NilError(t, os.WriteFile(filepath.Join(backups, p.name+"-garbled", "manifest.json"), []byte(`{"project":`), 0o600))

	// backup list: this project's backups by manifest, newest first, then the
	// unreadable ones; other projects' are left out
	var listed []backupListEntry
	r = p.mustLifecycle("backup", "list", "--from", backups, "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &listed), r.stdout)
	var names []string
	for _, e := range listed {
		names = append(names, e.Location)
	}
	oldBackup := filepath.Join(backups, p.name+"-20200101T000000Z")
	assert.Check(t, is.DeepEqual(names, []string{enc.Location, plain.Location, oldBackup,
		filepath.Join(backups, p.name+"-garbled"), filepath.Join(backups, p.name+"-nomanifest")}))
	if len(listed) == 5 {
		assert.Check(t, listed[0].Encrypted && !listed[1].Encrypted)
		assert.Check(t, listed[0].Error == "" && listed[2].Error == "" && listed[3].Error != "" && listed[4].Error != "")
	}
	assert.Check(t, is.Contains(r.stderr, "2 backups of other projects"))
	// backup prune on its own: a dry run removes nothing, then the real one
	prune := func(args ...string) (res struct{ Pruned []struct{ Location string } }) {
		r := p.mustLifecycle(append([]string{"backup", "prune", "--from", backups, "--keep-last", "2", "--format", "json"}, args...)...)
		assert.NilError(t, json.Unmarshal([]byte(r.stdout), &res), r.stdout)
		assert.Check(t, is.Len(res.Pruned, 1), r.stdout)
		if len(res.Pruned) == 1 {
			assert.Check(t, is.Equal(res.Pruned[0].Location, oldBackup))
		}
		return res
	}
	prune("--dry-run")
	_, err = os.Stat(oldBackup)
	assert.Check(t, err == nil, "a dry run removes nothing: %v", err)
	prune()
	_, err = os.Stat(oldBackup)
	assert.Check(t, os.IsNotExist(err), "pruned: %v", err)
	step("backup list, backup prune")

	var kept backupResult
	r = p.mustLifecycle("backup", "--consistency", "none", "--to", backups, "--encrypt-to-file", recipients, "--keep-last", "1", "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &kept), r.stdout)
	assert.Check(t, is.DeepEqual(sorted(kept.Pruned), sorted([]string{plain.Location, enc.Location})))
	assert.Check(t, is.Contains(r.stderr, "Pruned"))
	left, err := filepath.Glob(filepath.Join(backups, "*"))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(sorted(left), sorted([]string{kept.Location,
		filepath.Join(backups, p.name+"-old-20200101T000000Z"), filepath.Join(backups, p.name+"-20190101T000000Z"),
		filepath.Join(backups, p.name+"-nomanifest"), filepath.Join(backups, p.name+"-garbled")})))
	step("retention")

	// S3 on 127.0.0.1: gofakes3 with its memory backend, in this process
	mem := s3mem.New()
	assert.NilError(t, mem.CreateBucket("backups"))
	srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(srv.Close)
	p.env = []string{"AWS_ENDPOINT_URL=" + srv.URL, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test-secret", "AWS_REGION=us-east-1"}
	client, err := minio.New(strings.TrimPrefix(srv.URL, "http://"), &minio.Options{Creds: credentials.NewStaticV4("test", "test-secret", "")})
	assert.NilError(t, err)
	other := []byte(`{"format":1,"project":"someone-else","created":"2020-01-01T00:00:00Z","volumes":[]}`)
	_, err = client.PutObject(context.Background(), "backups", "nightly/"+p.name+"-20200101T000000Z/manifest.json", bytes.NewReader(other), int64(len(other)), minio.PutObjectOptions{})
	assert.NilError(t, err)

	var first backupResult
	r = timed("backup (age, S3)", "backup", "--consistency", "none", "--to", "s3://backups/nightly", "--encrypt-to", id.Recipient().String(), "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &first), r.stdout)
	assert.Check(t, strings.HasPrefix(first.Location, "s3://backups/nightly/"+p.name+"-"), first.Location)
	target = p.name + "-s3"
	timed("restore (age, S3, latest)", "restore", "s3://backups/nightly/latest", "--project", target, "--identity", identity)
	assert.Check(t, is.DeepEqual(volumeEntries(t, p, restored(target)), source))
	r = p.mustLifecycle("backup", "--consistency", "none", "--to", "s3://backups/nightly", "--keep-last", "1", "--format", "json")
	var second backupResult
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &second), r.stdout)
	assert.Check(t, is.DeepEqual(second.Pruned, []string{first.Location}))
	var objects []string
	for obj := range client.ListObjects(context.Background(), "backups", minio.ListObjectsOptions{Prefix: "nightly/", Recursive: true}) {
		assert.NilError(t, obj.Err)
		objects = append(objects, obj.Key)
	}
	listed = nil
	r = p.mustLifecycle("backup", "list", "--from", "s3://backups/nightly", "--format", "json")
	assert.NilError(t, json.Unmarshal([]byte(r.stdout), &listed), r.stdout)
	assert.Check(t, is.Len(listed, 1), r.stdout)
	if len(listed) == 1 {
		assert.Check(t, is.Equal(listed[0].Location, second.Location))
		assert.Check(t, is.DeepEqual(listed[0].Volumes, []string{"data"}))
		assert.Check(t, listed[0].StoredBytes > 0)
	}
	name := strings.TrimPrefix(second.Location, "s3://backups/")
	assert.Check(t, is.DeepEqual(sorted(objects), sorted([]string{name + "/data.tar.zst", name + "/manifest.json", "nightly/" + p.name + "-20200101T000000Z/manifest.json"})))
	step("S3 round trip, retention")
}

// backupListEntry is the part of `backup list --format json` (docs/backup.md) this test checks.
type backupListEntry struct {
	Location    string   `json:"location"`
	Volumes     []string `json:"volumes"`
	StoredBytes int64    `json:"stored_bytes"`
	Encrypted   bool     `json:"encrypted"`
	Error       string   `json:"error"`
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}
