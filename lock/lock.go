// Package lock keeps two deploys of one project from interleaving, with a lock that
// lives in the engine: any machine using the same Docker context sees it.
//
// The lock is a volume with a fixed name. Creating a volume that exists already returns
// the existing one with its labels, atomically on the engine, so the creator whose token
// comes back holds the lock; everyone else learns who does.
package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

const (
	labelLock    = "io.lifecycle.lock"
	labelHost    = "io.lifecycle.lock.host"
	labelPID     = "io.lifecycle.lock.pid"
	labelSince   = "io.lifecycle.lock.since"
	labelCommand = "io.lifecycle.lock.command"
	labelToken   = "io.lifecycle.lock.token"
)

// Holder describes who holds a project lock.
type Holder struct {
	Host    string
	PID     int
	Since   time.Time
	Command string
	token   string
}

func (h Holder) String() string {
	return fmt.Sprintf("%s (pid %d on host %s, since %s, %s ago)", h.Command, h.PID, h.Host,
		h.Since.Format(time.RFC3339), time.Since(h.Since).Round(time.Second))
}

// LockedError says that someone else holds the lock, and who.
type LockedError struct {
	Project string
	Holder  Holder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("project %s is locked by %s; wait for it to finish, or if that process is gone run `docker lifecycle -p %s unlock`",
		e.Project, e.Holder, e.Project)
}

func (e *LockedError) Unwrap() error { return engine.ErrLocked }

// Lock is a held project lock.
type Lock struct {
	eng     engine.Engine
	project string
	holder  Holder
}

// VolumeName is the engine name of a project's lock volume.
func VolumeName(project string) string { return "lifecycle-lock-" + project }

// Acquire takes the project lock for command, or returns a *LockedError naming the
// holder. A lock left by a dead process on this same host is taken over, and reported
// through staleTakenOver (may be nil).
func Acquire(ctx context.Context, eng engine.Engine, project, command string, staleTakenOver func(Holder)) (*Lock, error) {
	me := Holder{Host: hostname(), PID: os.Getpid(), Since: time.Now().UTC().Truncate(time.Second), Command: command, token: newToken()}
	for attempt := 0; attempt < 2; attempt++ {
		vol, err := eng.CreateVolume(ctx, engine.VolumeSpec{Name: VolumeName(project), Labels: map[string]string{
			labelLock: project, labelHost: me.Host, labelPID: strconv.Itoa(me.PID),
			labelSince: me.Since.Format(time.RFC3339), labelCommand: me.Command, labelToken: me.token,
		}})
		if err != nil {
			return nil, fmt.Errorf("acquire lock of project %s: %w", project, err)
		}
		holder := holderFrom(vol.Labels)
		if holder.token == me.token {
			return &Lock{eng: eng, project: project, holder: me}, nil
		}
		if attempt == 0 && holder.Host == me.Host && !processAlive(holder.PID) {
			if err := eng.RemoveVolume(ctx, VolumeName(project)); err != nil && !errors.Is(err, engine.ErrNotFound) {
				return nil, fmt.Errorf("remove stale lock of project %s: %w", project, err)
			}
			if staleTakenOver != nil {
				staleTakenOver(holder)
			}
			continue
		}
		return nil, &LockedError{Project: project, Holder: holder}
	}
	return nil, fmt.Errorf("acquire lock of project %s: another process took it over at the same time", project)
}

// Holder is who holds the lock: this process.
func (l *Lock) Holder() Holder { return l.holder }

// Same reports whether h and o are the same holding of a lock (a lock released and
// taken again by the same process is another holding).
func (h Holder) Same(o Holder) bool {
	if h.token != "" && o.token != "" {
		return h.token == o.token
	}
	return h.Host == o.Host && h.PID == o.PID && h.Since.Equal(o.Since) && h.Command == o.Command
}

// Release gives the lock back; it never removes a lock that someone else took over.
func (l *Lock) Release(ctx context.Context) error {
	vol, err := l.eng.InspectVolume(ctx, VolumeName(l.project))
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release lock of project %s: %w", l.project, err)
	}
	if holderFrom(vol.Labels).token != l.holder.token {
		return nil
	}
	if err := l.eng.RemoveVolume(ctx, VolumeName(l.project)); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("release lock of project %s: %w", l.project, err)
	}
	return nil
}

// Inspect returns the current holder, if any.
func Inspect(ctx context.Context, eng engine.Engine, project string) (Holder, bool, error) {
	vol, err := eng.InspectVolume(ctx, VolumeName(project))
	if errors.Is(err, engine.ErrNotFound) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, err
	}
	return holderFrom(vol.Labels), true, nil
}

// Break removes the lock whoever holds it (for `unlock` after a crash on another host).
func Break(ctx context.Context, eng engine.Engine, project string) (Holder, bool, error) {
	h, held, err := Inspect(ctx, eng, project)
	if err != nil || !held {
		return h, held, err
	}
	if err := eng.RemoveVolume(ctx, VolumeName(project)); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return h, true, fmt.Errorf("remove lock of project %s: %w", project, err)
	}
	return h, true, nil
}

func holderFrom(labels map[string]string) Holder {
	pid, _ := strconv.Atoi(labels[labelPID])
	since, _ := time.Parse(time.RFC3339, labels[labelSince])
	return Holder{Host: labels[labelHost], PID: pid, Since: since, Command: labels[labelCommand], token: labels[labelToken]}
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// processAlive reports whether pid runs on this host; on doubt it answers true, so a
// lock is never taken from a live process.
func processAlive(pid int) bool {
	if pid <= 0 {
		return true
	}
	err := syscall.Kill(pid, 0)
	return !errors.Is(err, syscall.ESRCH)
}
