package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// BackupTarget is where backups are stored: a local directory or an S3 bucket prefix.
// A backup is a named group of files (its archives and manifest.json); backup and
// restore stream through this interface, and retention lists and removes whole backups.
type BackupTarget interface {
	// Location names a backup (or the target itself for ""), for messages and results:
	// a path, or an s3:// URL that restore accepts.
	Location(backup string) string
	// Begin prepares the place of a new backup; it fails when that backup exists.
	Begin(ctx context.Context, backup string) error
	// Create starts writing a file of a backup; nothing is visible as complete before Commit.
	Create(ctx context.Context, backup, file string) (TargetWriter, error)
	// Put writes a small file into an existing backup, replacing one of that name
	// whole (the drill's record, drill.json); a reader sees the old file or the new.
	Put(ctx context.Context, backup, file string, data []byte) error
	// Open reads a file of a backup.
	Open(ctx context.Context, backup, file string) (io.ReadCloser, error)
	// List names the backups (directories or prefixes) the target holds, sorted.
	List(ctx context.Context) ([]string, error)
	// Remove deletes a backup and every file in it.
	Remove(ctx context.Context, backup string) error
}

// TargetWriter is a file being written to a target: Commit makes it durable (and
// returns the upload's error), Abort discards it.
type TargetWriter interface {
	io.Writer
	Commit() error
	Abort()
}

// ErrBackupNotFound marks a backup or a file of one that the target does not hold.
var ErrBackupNotFound = errors.New("backup not found")

// ErrBackupExists marks a backup name the target already holds (Begin).
var ErrBackupExists = errors.New("backup already exists")

// OpenTarget returns the target a --to value names: s3://BUCKET/PREFIX or a directory.
func OpenTarget(to string) (BackupTarget, error) {
	if strings.HasPrefix(to, "s3://") {
		return newS3Target(to, os.Getenv)
	}
	return LocalTarget{Dir: to}, nil
}

// SplitBackupLocation splits what restore is given — a backup directory, or
// s3://BUCKET/PREFIX/NAME — into the target that holds it and the backup's name.
func SplitBackupLocation(location string) (target, backup string, err error) {
	if strings.HasPrefix(location, "s3://") {
		trimmed := strings.TrimRight(location, "/")
		i := strings.LastIndex(trimmed, "/")
		if i < len("s3://") || !strings.Contains(trimmed[len("s3://"):], "/") {
			return "", "", fmt.Errorf("%q names no backup: restore s3://BUCKET/PREFIX/BACKUP_NAME (or …/latest)", location)
		}
		return trimmed[:i], trimmed[i+1:], nil
	}
	clean := filepath.Clean(location)
	return filepath.Dir(clean), filepath.Base(clean), nil
}

// validBackupName keeps backup and file names inside the target.
func validBackupName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("bad backup or file name %q", name)
	}
	return nil
}

// LocalTarget stores each backup as a directory (mode 0700) under Dir.
type LocalTarget struct{ Dir string }

func (l LocalTarget) Location(backup string) string {
	if backup == "" {
		return l.Dir
	}
	return filepath.Join(l.Dir, backup)
}

func (l LocalTarget) Begin(_ context.Context, backup string) error {
	if err := validBackupName(backup); err != nil {
		return err
	}
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	if err := os.Mkdir(filepath.Join(l.Dir, backup), 0o700); errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: %w", l.Location(backup), ErrBackupExists)
	} else if err != nil {
		return fmt.Errorf("backup directory: %w", err)
	}
	return nil
}

func (l LocalTarget) Create(_ context.Context, backup, file string) (TargetWriter, error) {
	if err := errors.Join(validBackupName(backup), validBackupName(file)); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(l.Dir, backup, file), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	return localWriter{f}, nil
}

type localWriter struct{ *os.File }

func (w localWriter) Commit() error {
	if err := w.Sync(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (w localWriter) Abort() {
	w.Close()
	_ = os.Remove(w.Name())
}

func (l LocalTarget) Put(_ context.Context, backup, file string, data []byte) error {
	if err := errors.Join(validBackupName(backup), validBackupName(file)); err != nil {
		return err
	}
	dir := filepath.Join(l.Dir, backup)
	tmp, err := os.CreateTemp(dir, "."+file+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: gone already
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, file))
}

func (l LocalTarget) Open(_ context.Context, backup, file string) (io.ReadCloser, error) {
	if err := errors.Join(validBackupName(backup), validBackupName(file)); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(l.Dir, backup, file))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrBackupNotFound, err)
	}
	return f, err
}

func (l LocalTarget) List(context.Context) ([]string, error) {
	entries, err := os.ReadDir(l.Dir)
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", l.Dir, err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func (l LocalTarget) Remove(_ context.Context, backup string) error {
	if err := validBackupName(backup); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(l.Dir, backup))
}
