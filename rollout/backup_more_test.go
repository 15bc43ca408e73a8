package rollout

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

func TestSelectRetained(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		assert.NilError(t, err)
		return tm
	}
	// newest first: two on Dec 2, one on Dec 1, one on Nov 30 (another ISO week:
	// Mon Nov 30 is week 49 as Dec 1–2; Nov 29 is week 48), Nov 29, Oct 15.
	backups := []BackupInfo{
		{"a", at("2026-10-15T10:00:00Z")},
		{"b", at("2026-11-29T10:00:00Z")},
		{"c", at("2026-11-30T10:00:00Z")},
		{"d", at("2026-12-01T10:00:00Z")},
		{"e", at("2026-12-02T08:00:00Z")},
		{"f", at("2026-12-02T20:00:00Z")},
	}
	names := func(bs []BackupInfo) string {
		var out []string
		for _, b := range bs {
			out = append(out, b.Name)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name        string
		r           Retention
		keep, prune string
	}{
		{"no rule keeps everything", Retention{}, "", "f,e,d,c,b,a"},
		{"last 1", Retention{Last: 1}, "f", "e,d,c,b,a"},
		{"last 3", Retention{Last: 3}, "f,e,d", "c,b,a"},
		{"last more than there are", Retention{Last: 10}, "f,e,d,c,b,a", ""},
		{"daily 2: newest of Dec 2 and of Dec 1", Retention{Daily: 2}, "f,d", "e,c,b,a"},
		{"daily 4", Retention{Daily: 4}, "f,d,c,b", "e,a"},
		{"weekly 2: week 49 and week 48", Retention{Weekly: 2}, "f,b", "e,d,c,a"},
		{"monthly 3: Dec, Nov, Oct", Retention{Monthly: 3}, "f,c,a", "e,d,b"},
		{"rules add up", Retention{Last: 2, Monthly: 2}, "f,e,c", "d,b,a"},
		{"daily 1 weekly 2 monthly 1", Retention{Daily: 1, Weekly: 2, Monthly: 1}, "f,b", "e,d,c,a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.r.Enabled() {
				assert.Check(t, tc.r == Retention{})
				return
			}
			keep, prune := SelectRetained(backups, tc.r)
			assert.Check(t, is.Equal(names(keep), tc.keep))
			assert.Check(t, is.Equal(names(prune), tc.prune))
		})
	}
}

func TestParseRecipients(t *testing.T) {
	id1, err := age.GenerateX25519Identity()
	assert.NilError(t, err)
	id2, err := age.GenerateX25519Identity()
	assert.NilError(t, err)
	r1, r2 := id1.Recipient().String(), id2.Recipient().String()

	got, err := ParseRecipients([]string{r1}, []RecipientsFile{{Name: "team.txt", Content: "# team\n\n" + r2 + "\n  " + r1 + "  \n"}})
	assert.NilError(t, err)
	assert.Check(t, is.Len(got, 3))

	_, err = ParseRecipients([]string{"nope", r1}, []RecipientsFile{
		{Name: "keys.txt", Content: r2 + "\n" + id1.String() + "\n"},
		{Name: "empty.txt", Content: "# nothing\n"},
	})
	assert.ErrorContains(t, err, `--encrypt-to: "nope" is not an age recipient`)
	assert.ErrorContains(t, err, "--encrypt-to-file keys.txt line 2: this is an age identity (a secret key)")
	assert.ErrorContains(t, err, "--encrypt-to-file empty.txt: no recipient in the file")
	assert.Check(t, !strings.Contains(err.Error(), id1.String()), "a secret key is never echoed: %v", err)
}

func TestSplitBackupLocation(t *testing.T) {
	for _, tc := range []struct{ in, target, backup, err string }{
		{in: "/backups/shop-20261202T113000Z", target: "/backups", backup: "shop-20261202T113000Z"},
		{in: "/backups/shop-20261202T113000Z/", target: "/backups", backup: "shop-20261202T113000Z"},
		{in: "s3://bucket/pre/fix/shop-1", target: "s3://bucket/pre/fix", backup: "shop-1"},
		{in: "s3://bucket/shop-1/", target: "s3://bucket", backup: "shop-1"},
		{in: "s3://bucket/latest", target: "s3://bucket", backup: "latest"},
		{in: "s3://bucket", err: "names no backup"},
	} {
		target, backup, err := SplitBackupLocation(tc.in)
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err), tc.in)
			continue
		}
		assert.Check(t, err, tc.in)
		assert.Check(t, is.Equal(target, tc.target), tc.in)
		assert.Check(t, is.Equal(backup, tc.backup), tc.in)
	}
}

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct{ in, bucket, prefix, err string }{
		{in: "s3://b", bucket: "b"},
		{in: "s3://b/", bucket: "b"},
		{in: "s3://b/nightly/shop/", bucket: "b", prefix: "nightly/shop"},
		{in: "s3:///x", err: "names no bucket"},
		{in: "s3://b/a//c", err: "bad prefix"},
		{in: "s3://b/../c", err: "bad prefix"},
	} {
		bucket, prefix, err := parseS3URL(tc.in)
		if tc.err != "" {
			assert.Check(t, is.ErrorContains(err, tc.err), tc.in)
			continue
		}
		assert.Check(t, err, tc.in)
		assert.Check(t, is.Equal(bucket, tc.bucket), tc.in)
		assert.Check(t, is.Equal(prefix, tc.prefix), tc.in)
	}
	s := &S3Target{bucket: "b", prefix: "p/q"}
	assert.Check(t, is.Equal(s.Location("shop-1"), "s3://b/p/q/shop-1"))
	assert.Check(t, is.Equal((&S3Target{bucket: "b"}).Location("shop-1"), "s3://b/shop-1"))
}

func TestS3ConfigFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	c, err := s3ConfigFromEnv(env("AWS_ACCESS_KEY_ID", "k", "AWS_SECRET_ACCESS_KEY", "s", "AWS_DEFAULT_REGION", "eu-west-1"))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(c, s3Config{Endpoint: "s3.amazonaws.com", Secure: true, AccessKey: "k", SecretKey: "s", Region: "eu-west-1"}))

	c, err = s3ConfigFromEnv(env("AWS_ACCESS_KEY_ID", "k", "AWS_SECRET_ACCESS_KEY", "s",
		"AWS_ENDPOINT_URL", "https://ignored", "LIFECYCLE_S3_ENDPOINT", "http://127.0.0.1:9000", "AWS_REGION", "r"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.Endpoint, "127.0.0.1:9000"))
	assert.Check(t, !c.Secure)
	assert.Check(t, is.Equal(c.Region, "r"))

	none := filepath.Join(t.TempDir(), "no-credentials")
	_, err = s3ConfigFromEnv(env("AWS_ENDPOINT_URL", "127.0.0.1:9000", "AWS_SHARED_CREDENTIALS_FILE", none))
	assert.ErrorContains(t, err, `AWS_ENDPOINT_URL="127.0.0.1:9000": want http://HOST[:PORT]`)
	assert.ErrorContains(t, err, `S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile "default" keys in ~/.aws/credentials`)

	// Without keys in the environment, the AWS CLI's credentials file, by profile.
	file := filepath.Join(t.TempDir(), "credentials")
	assert.NilError(t, os.WriteFile(file, []byte("[default]\naws_access_key_id = dk\naws_secret_access_key = ds\n\n[ci]\naws_access_key_id = ck\naws_secret_access_key = cs\naws_session_token = ct\n"), 0o600))
	c, err = s3ConfigFromEnv(env("AWS_SHARED_CREDENTIALS_FILE", file))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.AccessKey, "dk"))
	assert.Check(t, is.Equal(c.SecretKey, "ds"))
	c, err = s3ConfigFromEnv(env("AWS_SHARED_CREDENTIALS_FILE", file, "AWS_PROFILE", "ci"))
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual([]string{c.AccessKey, c.SecretKey, c.SessionToken}, []string{"ck", "cs", "ct"}))
	// The environment's keys win over the file's.
	c, err = s3ConfigFromEnv(env("AWS_SHARED_CREDENTIALS_FILE", file, "AWS_ACCESS_KEY_ID", "k", "AWS_SECRET_ACCESS_KEY", "s"))
	assert.NilError(t, err)
	assert.Check(t, is.Equal(c.AccessKey, "k"))
	_, err = s3ConfigFromEnv(env("AWS_SHARED_CREDENTIALS_FILE", file, "AWS_PROFILE", "prod"))
	assert.ErrorContains(t, err, `give profile "prod" keys`)
}

// TestBackupEncryptedWithAge: the manifest says age, the archive name ends with .age,
// the checksum is the stored file's (verified without a key), the identity decrypts
// it to the engine's stream, and a restore without the identity or with a wrong one
// stops before any engine call.
func TestBackupEncryptedWithAge(t *testing.T) {
	content := volumeTar(t, map[string]string{"a": "hello"})
	f := newBackupFake(t, content, nil)
	id, err := age.GenerateX25519Identity()
	assert.NilError(t, err)
	out := t.TempDir()
	target := LocalTarget{Dir: out}
	res, err := Backup(context.Background(), f, "shop", progress.Nop, BackupOptions{Targets: []string{"data"}, Target: target, Recipients: []age.Recipient{id.Recipient()}})
	assert.NilError(t, err)
	m := res.Manifest
	assert.Check(t, is.Equal(m.Encryption, EncryptionAge))
	assert.Assert(t, is.Len(m.Volumes, 1))
	assert.Check(t, is.Equal(m.Volumes[0].Archive, "data.tar.zst.age"))
	name := filepath.Base(res.Location)
	read, err := ReadManifest(context.Background(), target, name)
	assert.NilError(t, err)
	assert.Check(t, is.Equal(read.Encryption, EncryptionAge))
	assert.NilError(t, VerifyBackup(context.Background(), target, name, read))

	stored, err := os.ReadFile(filepath.Join(res.Location, m.Volumes[0].Archive))
	assert.NilError(t, err)
	assert.Check(t, !bytes.Contains(stored, []byte("hello")))
	plain, err := age.Decrypt(bytes.NewReader(stored), id)
	assert.NilError(t, err)
	zr, err := zstd.NewReader(plain)
	assert.NilError(t, err)
	got, err := io.ReadAll(zr)
	assert.NilError(t, err)
	assert.Check(t, bytes.Equal(got, content))

	other, err := age.GenerateX25519Identity()
	assert.NilError(t, err)
	for _, ids := range [][]age.Identity{nil, {other}} {
		_, err = Restore(context.Background(), &engine.Fake{}, target, name, progress.Nop, RestoreOptions{Project: "copy", Identities: ids})
		assert.Check(t, errors.Is(err, ErrIdentityNeeded), "%v", err)
		assert.Check(t, is.ErrorContains(err, "nothing restored"))
		assert.Check(t, is.ErrorContains(err, "--identity"))
	}
}

// TestPruneOnlyTouchesTheProjectsBackups: retention considers only directories whose
// manifest says this project, whatever their names.
func TestPruneOnlyTouchesTheProjectsBackups(t *testing.T) {
	ctx := context.Background()
	target := LocalTarget{Dir: t.TempDir()}
	put := func(name, project string, created time.Time) {
		assert.NilError(t, target.Begin(ctx, name))
		assert.NilError(t, writeManifest(ctx, target, name, Manifest{Format: ManifestFormat, Project: project, Created: created}))
	}
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	put("shop-1", "shop", base)
	put("shop-2", "shop", base.Add(time.Hour))
	put("shop-3", "shop", base.Add(2*time.Hour))
	put("shop-old-other", "shop-old", base)         // a prefix match, another project
	put("shop-misleading", "bakery", base)          // a misleading name
	assert.NilError(t, target.Begin(ctx, "shop-0")) // no manifest
	assert.NilError(t, target.Begin(ctx, "shop-garbled"))
	w, err := target.Create(ctx, "shop-garbled", ManifestFile)
	assert.NilError(t, err)
	_, _ = w.Write([]byte("{not json"))
	assert.NilError(t, w.Commit())

	pruned, err := Prune(ctx, target, "shop", "shop-3", Retention{Last: 1}, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(pruned, []string{target.Location("shop-2"), target.Location("shop-1")}))
	left, err := target.List(ctx)
	assert.NilError(t, err)
	assert.Check(t, is.DeepEqual(left, []string{"shop-0", "shop-3", "shop-garbled", "shop-misleading", "shop-old-other"}))
}

// BenchmarkWriteArchive measures the compression (and age encryption) of a 64 MiB tar
// stream of random bytes: what encryption adds to a backup's CPU work.
func BenchmarkWriteArchive(b *testing.B) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// random bytes: zstd cannot shrink them, so age encrypts all 64 MiB (the worst case)
	body := make([]byte, 64<<20)
	_, _ = rand.Read(body)
	_ = tw.WriteHeader(&tar.Header{Name: "volume/big", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
	_, _ = tw.Write(body)
	_ = tw.Close()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name       string
		recipients []age.Recipient
	}{{"plain", nil}, {"age", []age.Recipient{id.Recipient()}}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(buf.Len()))
			for b.Loop() {
				var mv ManifestVolume
				if err := writeArchive(bytes.NewReader(buf.Bytes()), io.Discard, bc.recipients, &mv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Two backups within one second: the second gets a suffix instead of failing.
func TestBeginBackupWithinTheSameSecond(t *testing.T) {
	ctx := context.Background()
	target := LocalTarget{Dir: t.TempDir()}
	var names []string
	for range 3 {
		name, err := beginBackup(ctx, target, "shop-20261203T074000Z")
		assert.NilError(t, err)
		names = append(names, name)
	}
	assert.Check(t, is.DeepEqual(names, []string{"shop-20261203T074000Z", "shop-20261203T074000Z-2", "shop-20261203T074000Z-3"}))
	err := target.Begin(ctx, "shop-20261203T074000Z")
	assert.Check(t, errors.Is(err, ErrBackupExists), "got %v", err)
}
