package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// Retention says which of a project's backups to keep; a zero field keeps nothing by
// that rule, and a backup is kept when any rule keeps it (restic's semantics).
type Retention struct {
	// Last keeps the Last newest backups.
	Last int
	// Daily, Weekly and Monthly keep the newest backup of each of the Daily (Weekly,
	// Monthly) most recent UTC days (ISO weeks, months) that have a backup.
	Daily, Weekly, Monthly int
}

// Enabled tells whether any rule is set: without one, nothing is pruned.
func (r Retention) Enabled() bool { return r.Last > 0 || r.Daily > 0 || r.Weekly > 0 || r.Monthly > 0 }

// BackupInfo is a backup of the project as retention sees it.
type BackupInfo struct {
	Name    string
	Created time.Time
}

// SelectRetained splits backups into the ones the rules keep and the ones to prune,
// both newest first.
func SelectRetained(backups []BackupInfo, r Retention) (keep, prune []BackupInfo) {
	sorted := append([]BackupInfo(nil), backups...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Created.Equal(sorted[j].Created) {
			return sorted[i].Created.After(sorted[j].Created)
		}
		return sorted[i].Name > sorted[j].Name
	})
	type rule struct {
		n      int
		bucket func(i int, t time.Time) string // the i-th newest backup, made at t
		last   string
	}
	rules := []*rule{
		{n: r.Last, bucket: func(i int, _ time.Time) string { return fmt.Sprint(i) }}, // every backup its own bucket
		{n: r.Daily, bucket: func(_ int, t time.Time) string { return t.UTC().Format("2006-01-02") }},
		{n: r.Weekly, bucket: func(_ int, t time.Time) string { y, w := t.UTC().ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{n: r.Monthly, bucket: func(_ int, t time.Time) string { return t.UTC().Format("2006-01") }},
	}
	for i, b := range sorted {
		kept := false
		for _, ru := range rules {
			if ru.n <= 0 {
				continue
			}
			if key := ru.bucket(i, b.Created); key != ru.last {
				ru.last = key
				ru.n--
				kept = true
			}
		}
		if kept {
			keep = append(keep, b)
		} else {
			prune = append(prune, b)
		}
	}
	return keep, prune
}

// Prune removes the project's backups in target that r does not keep. Only a backup
// whose manifest says project == project is ever considered: another project's
// backups and directories without a readable manifest are left alone, whatever their
// names. keepName (the backup just written) is always kept.
func Prune(ctx context.Context, target BackupTarget, project, keepName string, r Retention, events progress.Writer) ([]string, error) {
	if !r.Enabled() {
		return nil, nil
	}
	names, err := target.List(ctx)
	if err != nil {
		return nil, err
	}
	var mine []BackupInfo
	for _, name := range names {
		m, err := ReadManifest(ctx, target, name)
		if err != nil || m.Project != project {
			continue
		}
		mine = append(mine, BackupInfo{Name: name, Created: m.Created})
	}
	_, prune := SelectRetained(mine, r)
	pruned := []string{}
	var errs []error
	for _, b := range prune {
		if b.Name == keepName {
			continue
		}
		id := "Backup " + target.Location(b.Name)
		progress.Emit(events, id, progress.Working, "Pruning", b.Created.Format(time.RFC3339))
		if err := target.Remove(ctx, b.Name); err != nil {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			// The others are still pruned: every failure is reported at once.
			errs = append(errs, fmt.Errorf("prune %s: %w", target.Location(b.Name), err))
			continue
		}
		progress.Emit(events, id, progress.Done, "Pruned", "")
		pruned = append(pruned, target.Location(b.Name))
	}
	return pruned, errors.Join(errs...)
}
