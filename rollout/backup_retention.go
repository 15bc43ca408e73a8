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

// PruneResult is what a prune kept and removed (or, in a dry run, would remove):
// `backup prune --format json` (docs/backup.md).
type PruneResult struct {
	DryRun bool          `json:"dry_run"`
	Kept   []PrunedEntry `json:"kept"`
	// Pruned are the backups removed (in a dry run: that would be), newest first; a
	// backup whose removal failed is not among them (the error names it).
	Pruned []PrunedEntry `json:"pruned"`
	// Unreadable are the locations of backups whose manifest could not be read: left alone.
	Unreadable []string `json:"unreadable"`
}

// PrunedEntry is a backup of the project that retention kept or pruned.
type PrunedEntry struct {
	Name     string    `json:"name"`
	Location string    `json:"location"`
	Created  time.Time `json:"created"`
}

// Prune removes the project's backups in target that r does not keep. Only a backup
// whose manifest says project == project is ever considered: another project's
// backups and directories without a readable manifest are left alone, whatever their
// names. keepName (the backup just written) is always kept.
func Prune(ctx context.Context, target BackupTarget, project, keepName string, r Retention, events progress.Writer) ([]string, error) {
	if !r.Enabled() {
		return nil, nil
	}
	res, err := pruneBackups(ctx, target, project, keepName, r, false, events)
	pruned := []string{}
	for _, p := range res.Pruned {
		pruned = append(pruned, p.Location)
	}
	return pruned, err
}

// PruneBackups applies r to the project's backups in target on its own (`backup
// prune`): as Prune, without a backup to spare; with dryRun it removes nothing and
// reports what would go. It reads and removes in the target only. r must have a rule:
// without one every backup would go.
func PruneBackups(ctx context.Context, target BackupTarget, project string, r Retention, dryRun bool, events progress.Writer) (PruneResult, error) {
	if !r.Enabled() {
		return PruneResult{}, errors.New("no retention rule: give --keep-last, --keep-daily, --keep-weekly or --keep-monthly")
	}
	return pruneBackups(ctx, target, project, "", r, dryRun, events)
}

func pruneBackups(ctx context.Context, target BackupTarget, project, keepName string, r Retention, dryRun bool, events progress.Writer) (PruneResult, error) {
	res := PruneResult{DryRun: dryRun, Kept: []PrunedEntry{}, Pruned: []PrunedEntry{}, Unreadable: []string{}}
	names, err := target.List(ctx)
	if err != nil {
		return res, err
	}
	var mine []BackupInfo
	for _, name := range names {
		m, err := ReadManifest(ctx, target, name)
		if err != nil {
			res.Unreadable = append(res.Unreadable, target.Location(name))
			continue
		}
		if m.Project == project {
			mine = append(mine, BackupInfo{Name: name, Created: m.Created})
		}
	}
	keep, prune := SelectRetained(mine, r)
	entry := func(b BackupInfo) PrunedEntry {
		return PrunedEntry{Name: b.Name, Location: target.Location(b.Name), Created: b.Created}
	}
	for _, b := range keep {
		res.Kept = append(res.Kept, entry(b))
	}
	var errs []error
	for _, b := range prune {
		if b.Name == keepName {
			res.Kept = append(res.Kept, entry(b))
			continue
		}
		id := "Backup " + target.Location(b.Name)
		if dryRun {
			progress.Emit(events, id, progress.Done, "Would prune", b.Created.Format(time.RFC3339))
			res.Pruned = append(res.Pruned, entry(b))
			continue
		}
		progress.Emit(events, id, progress.Working, "Pruning", b.Created.Format(time.RFC3339))
		if err := target.Remove(ctx, b.Name); err != nil {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			// The others are still pruned: every failure is reported at once.
			errs = append(errs, fmt.Errorf("prune %s: %w", target.Location(b.Name), err))
			continue
		}
		progress.Emit(events, id, progress.Done, "Pruned", "")
		res.Pruned = append(res.Pruned, entry(b))
	}
	return res, errors.Join(errs...)
}
