package rollout

import (
	"context"
	"encoding/json"
	"io"
	"sort"
	"time"
)

// BackupEntry is one backup of a target as `backup list` shows it (docs/backup.md:
// backup list's JSON). A backup whose manifest cannot be read has only Name, Location
// and Error: it is listed, never skipped, and retention leaves it alone.
type BackupEntry struct {
	Name     string    `json:"name"`
	Location string    `json:"location"`
	Project  string    `json:"project"`
	Created  time.Time `json:"created"`
	// Volumes are the compose names of the archived volumes.
	Volumes []string `json:"volumes"`
	// Size sums the volumes' file sizes; StoredBytes the archives' bytes in the target
	// (compressed, and encrypted when the backup is).
	Size        int64 `json:"size"`
	StoredBytes int64 `json:"stored_bytes"`
	Encrypted   bool  `json:"encrypted"`
	// Drill is the backup's last drill (its drill.json), LastPassedDrill its last drill
	// that passed (drill-passed.json); nil without one.
	Drill           *BackupDrill `json:"drill"`
	LastPassedDrill *BackupDrill `json:"last_passed_drill"`
	// Error says why the manifest could not be read.
	Error string `json:"error,omitempty"`
}

// BackupDrill is a drill record in short.
type BackupDrill struct {
	Started    time.Time `json:"started"`
	Passed     bool      `json:"passed"`
	RTOSeconds float64   `json:"rto_seconds"`
	Error      string    `json:"error,omitempty"`
}

// ListBackups reads every backup of target: project's (by manifest; every project's
// when project is ""), and every one whose manifest cannot be read. Newest first; the
// unreadable ones last, by name. others counts the readable backups of other projects
// left out. It reads the target only.
func ListBackups(ctx context.Context, target BackupTarget, project string) (entries []BackupEntry, others int, err error) {
	names, err := target.List(ctx)
	if err != nil {
		return nil, 0, err
	}
	entries = []BackupEntry{}
	for _, name := range names {
		e := BackupEntry{Name: name, Location: target.Location(name), Volumes: []string{}}
		m, err := ReadManifest(ctx, target, name)
		if err != nil {
			e.Error = err.Error()
			entries = append(entries, e)
			continue
		}
		if project != "" && m.Project != project {
			others++
			continue
		}
		e.Project, e.Created, e.Encrypted = m.Project, m.Created, m.Encryption == EncryptionAge
		for _, v := range m.Volumes {
			e.Volumes = append(e.Volumes, v.Name)
			e.Size += v.Size
			e.StoredBytes += v.ArchiveBytes
		}
		e.Drill = readDrillSummary(ctx, target, name, DrillRecordFile)
		e.LastPassedDrill = readDrillSummary(ctx, target, name, DrillPassedFile)
		entries = append(entries, e)
	}
	sortBackupEntries(entries)
	return entries, others, nil
}

// sortBackupEntries orders readable backups newest first (by the manifest's time, then
// name, as retention does), then the unreadable ones by name.
func sortBackupEntries(entries []BackupEntry) {
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i], entries[j]
		if (a.Error == "") != (b.Error == "") {
			return a.Error == ""
		}
		if a.Error == "" && !a.Created.Equal(b.Created) {
			return a.Created.After(b.Created)
		}
		if a.Error == "" {
			return a.Name > b.Name
		}
		return a.Name < b.Name
	})
}

// readDrillSummary reads a drill record of the backup; nil when there is none or it
// does not parse (a record is informative: the backup is listed all the same).
func readDrillSummary(ctx context.Context, target BackupTarget, backup, file string) *BackupDrill {
	rc, err := target.Open(ctx, backup, file)
	if err != nil {
		return nil
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	var r DrillResult
	if err != nil || json.Unmarshal(b, &r) != nil {
		return nil
	}
	return &BackupDrill{Started: r.Started, Passed: r.Passed, RTOSeconds: r.RTOSeconds, Error: r.Error}
}
