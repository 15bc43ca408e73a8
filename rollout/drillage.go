package rollout

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// How long ago a project's data was last shown restorable: the newest restore drill that
// passed among the project's backups in its target (x-lifecycle.backup.to). `history`
// prints it under the revisions, `monitor` exports it and evaluates the drill-age alert
// rule on it (docs/backup.md#the-drill-record). The records live in the target, not on
// the engine, so reading them is a list and a read per backup: the monitor reads them
// again at most every drillRefresh.

// drillRefresh bounds how often the monitor reads the target (an S3 target is a
// request per backup): a drill's age moves in hours, not seconds.
const drillRefresh = time.Minute

// DrillStatus is what a target holds of a project's drills.
type DrillStatus struct {
	// Target is where it was read (x-lifecycle.backup.to).
	Target string `json:"target"`
	// Backups counts the project's backups in the target; Oldest is the oldest one's time.
	Backups int       `json:"backups"`
	Oldest  time.Time `json:"oldest_backup,omitzero"`
	// LastGood is the newest drill that passed (nil: none did), Backup the backup it drilled.
	LastGood *BackupDrill `json:"last_good_drill"`
	Backup   string       `json:"last_good_drill_backup,omitempty"`
}

// ReadDrillStatus reads the project's backups and their drill records from target.
func ReadDrillStatus(ctx context.Context, target BackupTarget, to, project string) (DrillStatus, error) {
	entries, _, err := ListBackups(ctx, target, project)
	if err != nil {
		return DrillStatus{}, err
	}
	st := DrillStatus{Target: to}
	for _, e := range entries {
		if e.Error != "" {
			continue // not known to be the project's
		}
		st.Backups++
		if st.Oldest.IsZero() || e.Created.Before(st.Oldest) {
			st.Oldest = e.Created
		}
		if d := e.LastPassedDrill; d != nil && (st.LastGood == nil || d.Started.After(st.LastGood.Started)) {
			st.LastGood, st.Backup = d, e.Location
		}
	}
	return st, nil
}

// ProjectDrillStatus reads the drill status of p's x-lifecycle.backup.to; ok is false
// when p sets none.
func ProjectDrillStatus(ctx context.Context, p *compose.Project) (st DrillStatus, ok bool, err error) {
	to := BackupTo(p)
	if to == "" {
		return DrillStatus{}, false, nil
	}
	target, err := OpenTarget(to)
	if err == nil {
		st, err = ReadDrillStatus(ctx, target, to, p.Name)
	}
	if err != nil {
		return DrillStatus{}, true, fmt.Errorf("read the drill records in x-lifecycle.backup.to %s: %w", to, err)
	}
	return st, true, nil
}

// AgeHours is the drill-age rule's value: hours since the last good drill; a project
// whose backups were never drilled successfully counts from its oldest backup (it has
// gone unproven that long). ok is false without any backup: there is nothing to age.
func (s DrillStatus) AgeHours(now time.Time) (hours float64, ok bool) {
	switch {
	case s.LastGood != nil:
		return now.Sub(s.LastGood.Started).Hours(), true
	case s.Backups > 0:
		return now.Sub(s.Oldest).Hours(), true
	}
	return 0, false
}

// drillWatch is the monitor's cached reading of a project's drill status.
type drillWatch struct {
	to      string
	target  BackupTarget
	project string

	mu   sync.Mutex
	at   time.Time
	last DrillStatus
	err  error
}

// newDrillWatch opens the target of x-lifecycle.backup.to; nil when to is empty.
func newDrillWatch(to, project string) (*drillWatch, error) {
	if to == "" {
		return nil, nil
	}
	target, err := OpenTarget(to)
	if err != nil {
		return nil, err
	}
	return &drillWatch{to: to, target: target, project: project}, nil
}

// status reads the target when the last reading is older than drillRefresh.
func (d *drillWatch) status(ctx context.Context, now time.Time) (DrillStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.at.IsZero() || now.Sub(d.at) >= drillRefresh {
		d.last, d.err = ReadDrillStatus(ctx, d.target, d.to, d.project)
		d.at = now
	}
	return d.last, d.err
}
