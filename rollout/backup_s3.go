package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3PartSize bounds the memory of an upload: the archive is streamed in multipart
// parts of this size, one buffered at a time, whatever the volume's size (a part
// count limit of 10,000 puts the largest archive at 160 GiB).
const s3PartSize = 16 << 20

// s3Config is what the environment says about the S3 endpoint (docs/backup.md).
type s3Config struct {
	Endpoint     string // host[:port]
	Secure       bool
	AccessKey    string
	SecretKey    string
	SessionToken string
	Region       string
}

// s3ConfigFromEnv reads LIFECYCLE_S3_ENDPOINT (first) or AWS_ENDPOINT_URL, the
// AWS_* credentials and AWS_REGION (or AWS_DEFAULT_REGION). Without an endpoint, AWS S3.
func s3ConfigFromEnv(getenv func(string) string) (s3Config, error) {
	c := s3Config{Endpoint: "s3.amazonaws.com", Secure: true,
		AccessKey: getenv("AWS_ACCESS_KEY_ID"), SecretKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken: getenv("AWS_SESSION_TOKEN"), Region: getenv("AWS_REGION")}
	if c.Region == "" {
		c.Region = getenv("AWS_DEFAULT_REGION")
	}
	endpoint, from := getenv("LIFECYCLE_S3_ENDPOINT"), "LIFECYCLE_S3_ENDPOINT"
	if endpoint == "" {
		endpoint, from = getenv("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"
	}
	var errs []error
	if endpoint != "" {
		u, err := url.Parse(endpoint)
		switch {
		case err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "":
			errs = append(errs, fmt.Errorf("%s=%q: want http://HOST[:PORT] or https://HOST[:PORT]", from, endpoint))
		default:
			c.Endpoint, c.Secure = u.Host, u.Scheme == "https"
		}
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		if err := sharedCredentials(getenv, &c); err != nil {
			errs = append(errs, err)
		}
	}
	return c, errors.Join(errs...)
}

// sharedCredentials reads the AWS CLI's files when the environment holds no keys, as the
// AWS CLI and SDKs do: AWS_SHARED_CREDENTIALS_FILE alone when set, else ~/.aws/config
// and ~/.aws/credentials merged (SSO profiles included), profile AWS_PROFILE or default.
func sharedCredentials(getenv func(string) string, c *s3Config) error {
	profile := getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	files := &credentials.FileAWSCredentials{Filename: getenv("AWS_SHARED_CREDENTIALS_FILE"), Profile: profile}
	v, err := files.Retrieve()
	if err != nil || v.AccessKeyID == "" || v.SecretAccessKey == "" {
		why := "no keys for it"
		if err != nil {
			why = err.Error()
		}
		return fmt.Errorf("S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile %q keys in ~/.aws/credentials (or the file AWS_SHARED_CREDENTIALS_FILE names; `aws configure` writes it): %s", profile, why)
	}
	c.AccessKey, c.SecretKey, c.SessionToken = v.AccessKeyID, v.SecretAccessKey, v.SessionToken
	return nil
}

// parseS3URL splits s3://BUCKET/PREFIX; the prefix may be empty.
func parseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3://BUCKET/PREFIX URL", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket: want s3://BUCKET/PREFIX", s)
	}
	for _, part := range strings.Split(prefix, "/") {
		if prefix != "" && (part == "" || part == "." || part == "..") {
			return "", "", fmt.Errorf("%q: bad prefix %q", s, prefix)
		}
	}
	return bucket, prefix, nil
}

// S3Target stores each backup as objects under PREFIX/<backup>/ in a bucket.
type S3Target struct {
	client *minio.Client
	bucket string
	prefix string
}

func newS3Target(to string, getenv func(string) string) (*S3Target, error) {
	bucket, prefix, err := parseS3URL(to)
	if err != nil {
		return nil, err
	}
	c, err := s3ConfigFromEnv(getenv)
	if err != nil {
		return nil, fmt.Errorf("S3 target %s: %w", to, err)
	}
	client, err := minio.New(c.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(c.AccessKey, c.SecretKey, c.SessionToken),
		Secure: c.Secure, Region: c.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("S3 target %s: %w", to, err)
	}
	return &S3Target{client: client, bucket: bucket, prefix: prefix}, nil
}

// dir is the key prefix of a backup ("" for the target), ending with "/" unless empty.
func (s *S3Target) dir(backup string) string {
	parts := []string{}
	if s.prefix != "" {
		parts = append(parts, s.prefix)
	}
	if backup != "" {
		parts = append(parts, backup)
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "/") + "/"
}

func (s *S3Target) Location(backup string) string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.dir(backup), "/")
}

func (s *S3Target) Begin(ctx context.Context, backup string) error {
	if err := validBackupName(backup); err != nil {
		return err
	}
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.dir(backup), MaxKeys: 1}) {
		if obj.Err != nil {
			return fmt.Errorf("S3 target %s: %w", s.Location(""), obj.Err)
		}
		return fmt.Errorf("S3 target: %s: %w", s.Location(backup), ErrBackupExists)
	}
	return nil
}

// s3Writer streams what is written into a multipart upload through a pipe.
type s3Writer struct {
	pw   *io.PipeWriter
	done chan error
}

var errUploadAborted = errors.New("upload aborted")

func (s *S3Target) Create(ctx context.Context, backup, file string) (TargetWriter, error) {
	if err := errors.Join(validBackupName(backup), validBackupName(file)); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	w := &s3Writer{pw: pw, done: make(chan error, 1)}
	key := s.dir(backup) + file
	go func() {
		// DisableContentSha256: over plain http minio-go would sign every chunk
		// (aws-chunked), which some S3-compatible servers store as is in multipart
		// parts; unsigned payloads are what it sends over https anyway, and the
		// manifest's sha256 checks every archive end to end.
		_, err := s.client.PutObject(ctx, s.bucket, key, pr, -1, minio.PutObjectOptions{
			PartSize: s3PartSize, ContentType: "application/octet-stream", DisableContentSha256: true})
		if err != nil {
			err = fmt.Errorf("upload %s/%s: %w", s.Location(backup), file, err)
		}
		pr.CloseWithError(err) // unblocks a writer when the upload failed early
		w.done <- err
	}()
	return w, nil
}

func (w *s3Writer) Write(p []byte) (int, error) { return w.pw.Write(p) }

func (w *s3Writer) Commit() error {
	_ = w.pw.Close()
	return <-w.done
}

func (w *s3Writer) Abort() {
	w.pw.CloseWithError(errUploadAborted)
	<-w.done
}

func (s *S3Target) Put(ctx context.Context, backup, file string, data []byte) error {
	if err := errors.Join(validBackupName(backup), validBackupName(file)); err != nil {
		return err
	}
	_, err := s.client.PutObject(ctx, s.bucket, s.dir(backup)+file, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/json", DisableContentSha256: true})
	if err != nil {
		return fmt.Errorf("upload %s/%s: %w", s.Location(backup), file, err)
	}
	return nil
}

func (s *S3Target) Open(ctx context.Context, backup, file string) (io.ReadCloser, error) {
	if err := errors.Join(validBackupName(backup), validBackupName(file)); err != nil {
		return nil, err
	}
	key := s.dir(backup) + file
	// Stat first: GetObject reports a missing object only on the first read.
	if _, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).StatusCode == 404 {
			return nil, fmt.Errorf("%w: %s/%s", ErrBackupNotFound, s.Location(backup), file)
		}
		return nil, fmt.Errorf("read %s/%s: %w", s.Location(backup), file, err)
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("read %s/%s: %w", s.Location(backup), file, err)
	}
	return obj, nil
}

func (s *S3Target) List(ctx context.Context) ([]string, error) {
	var out []string
	base := s.dir("")
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list backups in %s: %w", s.Location(""), obj.Err)
		}
		// Without Recursive, each backup is a common prefix "PREFIX/NAME/".
		if name, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, base), "/"); ok && name != "" && !strings.Contains(name, "/") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *S3Target) Remove(ctx context.Context, backup string) error {
	if err := validBackupName(backup); err != nil {
		return err
	}
	objects := make(chan minio.ObjectInfo)
	var listErr error
	go func() {
		defer close(objects)
		for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.dir(backup), Recursive: true}) {
			if obj.Err != nil {
				listErr = obj.Err
				return
			}
			objects <- obj
		}
	}()
	var errs []error
	for r := range s.client.RemoveObjects(ctx, s.bucket, objects, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("remove %s: %w", r.ObjectName, r.Err))
	}
	errs = append(errs, listErr)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove %s: %w", s.Location(backup), err)
	}
	return nil
}
