package rollout

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// ManifestFile is the name of a backup's manifest inside its directory.
const ManifestFile = "manifest.json"

// ManifestFormat is the version of the backup format this tool writes and reads.
const ManifestFormat = 1

// roleBackup labels the short-lived agent containers that copy a volume.
const roleBackup = "backup"

// volumeMountPath is where the copying container mounts the volume; archive entries
// start with its base name ("volume/…"), so the archive extracts into "/" again.
const volumeMountPath = "/volume"

// ErrArchiveDamaged marks a backup whose archive does not match its manifest's checksum.
var ErrArchiveDamaged = errors.New("backup archive damaged")

// ErrVolumeNotEmpty marks a restore that would write into a volume holding data.
var ErrVolumeNotEmpty = errors.New("volume not empty")

// Manifest describes one backup (docs/backup.md: the manifest schema).
type Manifest struct {
	Format       int      `json:"format"`
	Project      string   `json:"project"`
	ComposeFiles []string `json:"compose_files"`
	Consistency  string   `json:"consistency"`
	// Encryption is "none" or "age" (EncryptionAge); backups older than the field have "".
	Encryption  string            `json:"encryption"`
	ToolVersion string            `json:"tool_version"`
	Created     time.Time         `json:"created"`
	Services    []ManifestService `json:"services"`
	Volumes     []ManifestVolume  `json:"volumes"`
	// Hooks are the x-lifecycle.backup.hooks commands that ran, before and after the
	// copies (backuphooks.go).
	Hooks []ManifestHook `json:"hooks,omitempty"`
}

// ManifestService is a service of the project at backup time.
type ManifestService struct {
	Name     string   `json:"name"`
	Revision string   `json:"revision,omitempty"`
	ImageIDs []string `json:"image_ids"`
}

// ManifestVolume is one archived volume.
type ManifestVolume struct {
	// Name is the compose name of the volume (the key under `volumes:`).
	Name string `json:"name"`
	// EngineName is the engine's name of the volume (usually <project>_<name>).
	EngineName string `json:"engine_name"`
	Archive    string `json:"archive"`
	// Size is the sum of the regular files' sizes; Files counts them.
	Size  int64 `json:"size"`
	Files int   `json:"files"`
	// ArchiveBytes and SHA256 are the stored archive's size and checksum (compressed,
	// and encrypted when the backup is: verifying needs no key).
	ArchiveBytes int64  `json:"archive_bytes"`
	SHA256       string `json:"sha256"`
}

// BackupOptions are the backup command's choices.
type BackupOptions struct {
	// Targets are volume or service names; none means every volume of the project.
	Targets []string
	// Target is where <project>-<timestamp> is written.
	Target BackupTarget
	// Recipients, when any, encrypt every archive with age.
	Recipients []age.Recipient
	// Retention prunes the project's older backups in Target after a successful backup.
	Retention Retention
	// Consistency is pause, stop or none (compose.BackupSpec.Mode).
	Consistency string
	// Hooks run in the services' containers before and after the copies (a database
	// dump, say): x-lifecycle.backup.hooks.
	Hooks        []compose.BackupHook
	ComposeFiles []string
	ToolVersion  string
}

// projectVolume is a volume of the project and the containers that mount it.
type projectVolume struct {
	volume engine.Volume
	users  []engine.ContainerDetails
}

// BackupResult is what a backup wrote and pruned.
type BackupResult struct {
	// Location is the new backup's directory or s3:// URL (what restore takes); Name is
	// its name in the target (what DrillOptions.Backup takes).
	Location string
	Name     string
	Manifest Manifest
	// Pruned lists the locations of the older backups retention removed.
	Pruned []string
}

// Backup archives the project's named volumes (or the ones targets name or that the
// named services mount) into a new backup in opts.Target, then prunes the project's
// older backups by opts.Retention. On an error the partial backup is removed and
// nothing is pruned.
func Backup(ctx context.Context, eng engine.Engine, project string, events progress.Writer, opts BackupOptions) (BackupResult, error) {
	mode := compose.BackupSpec{Consistency: opts.Consistency}.Mode()
	volumes, services, err := backupSelection(ctx, eng, project, opts.Targets)
	if err != nil {
		return BackupResult{}, err
	}
	if len(volumes) == 0 {
		return BackupResult{}, fmt.Errorf("project %s has no named volume to back up", project)
	}
	image, err := agentImage(ctx, eng)
	if err != nil {
		return BackupResult{}, err
	}
	now := time.Now().UTC()
	target := opts.Target
	name, err := beginBackup(ctx, target, project+"-"+now.Format("20060102T150405Z"))
	if err != nil {
		return BackupResult{}, err
	}
	discard := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = target.Remove(ctx, name)
	}
	m := Manifest{Format: ManifestFormat, Project: project, ComposeFiles: opts.ComposeFiles,
		Consistency: mode, Encryption: "none", ToolVersion: opts.ToolVersion, Created: now, Services: services}
	if len(opts.Recipients) > 0 {
		m.Encryption = EncryptionAge
	}
	runs := backupHooks(opts.Hooks, volumes)
	before, err := runHooks(ctx, eng, runs, "before", events)
	m.Hooks = before
	if err != nil {
		// Clean up after the dumps that ran (or began): their after commands run.
		var begun []hookRun
		for _, r := range runs {
			if slices.ContainsFunc(before, func(h ManifestHook) bool { return h.Service == r.hook.Service }) {
				begun = append(begun, r)
			}
		}
		_, afterErr := runHooks(context.WithoutCancel(ctx), eng, begun, "after", events)
		discard()
		return BackupResult{}, errors.Join(fmt.Errorf("%w; nothing was backed up", err), afterErr)
	}
	var copyErr error
	for _, pv := range volumes {
		mv, err := backupVolume(ctx, eng, image, project, pv, target, name, mode, opts.Recipients, events)
		if err != nil {
			copyErr = err
			break
		}
		m.Volumes = append(m.Volumes, mv)
	}
	// After commands run whatever the copies did, also after Ctrl-C (each is bounded by
	// its timeout): they undo what the before commands left, such as a dump file.
	after, afterErr := runHooks(context.WithoutCancel(ctx), eng, runs, "after", events)
	m.Hooks = append(m.Hooks, after...)
	if copyErr != nil {
		discard()
		return BackupResult{}, errors.Join(copyErr, afterErr)
	}
	if err := writeManifest(ctx, target, name, m); err != nil {
		discard()
		return BackupResult{}, err
	}
	res := BackupResult{Location: target.Location(name), Name: name, Manifest: m, Pruned: []string{}}
	if afterErr != nil {
		// The copies are complete: the backup is kept, and the failed cleanup reported.
		return res, fmt.Errorf("backup written to %s (nothing pruned), but a hook after it failed: %w", res.Location, afterErr)
	}
	pruned, err := Prune(ctx, target, project, name, opts.Retention, events)
	res.Pruned = append(res.Pruned, pruned...)
	if err != nil {
		return res, fmt.Errorf("backup written to %s, but pruning failed: %w", res.Location, err)
	}
	return res, nil
}

// beginBackup prepares a new backup named base, or base-2, base-3, … when a backup of
// the same second exists (names have one-second resolution; `latest` and retention go
// by the manifests' times, not by names).
func beginBackup(ctx context.Context, target BackupTarget, base string) (string, error) {
	const tries = 100
	for n := 1; ; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		err := target.Begin(ctx, name)
		if !errors.Is(err, ErrBackupExists) || n == tries {
			return name, err
		}
	}
}

// backupSelection finds the volumes to archive and the project's services.
func backupSelection(ctx context.Context, eng engine.Engine, project string, targets []string) ([]projectVolume, []ManifestService, error) {
	all, err := eng.ListVolumes(ctx, projectFilter(project))
	if err != nil {
		return nil, nil, err
	}
	containers, err := eng.ListContainers(ctx, projectFilter(project))
	if err != nil {
		return nil, nil, err
	}
	byEngineName := map[string]*projectVolume{}
	var volumes []*projectVolume
	for _, v := range all {
		if isLifecycleVolume(v) {
			continue
		}
		pv := &projectVolume{volume: v}
		byEngineName[v.Name] = pv
		volumes = append(volumes, pv)
	}
	sort.Slice(volumes, func(i, j int) bool { return volumes[i].volume.Name < volumes[j].volume.Name })

	svcs := map[string]*ManifestService{}
	mountedBy := map[string][]string{} // service → engine volume names
	for _, c := range containers {
		svc := c.Labels[compose.LabelService]
		if svc == "" || c.Labels[compose.LabelRole] != "" && c.Labels[compose.LabelRole] != compose.RoleApp {
			continue
		}
		ms := svcs[svc]
		if ms == nil {
			ms = &ManifestService{Name: svc}
			svcs[svc] = ms
		}
		if r := c.Labels[compose.LabelRevision]; r > ms.Revision {
			ms.Revision = r
		}
		if !slices.Contains(ms.ImageIDs, c.ImageID) {
			ms.ImageIDs = append(ms.ImageIDs, c.ImageID)
		}
		d, err := eng.InspectContainer(ctx, c.ID)
		if err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				continue
			}
			return nil, nil, err
		}
		for _, name := range mountedVolumes(d) {
			if pv := byEngineName[name]; pv != nil {
				pv.users = append(pv.users, d)
				if !slices.Contains(mountedBy[svc], name) {
					mountedBy[svc] = append(mountedBy[svc], name)
				}
			}
		}
	}
	var services []ManifestService
	for _, ms := range svcs {
		sort.Strings(ms.ImageIDs)
		services = append(services, *ms)
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })

	if len(targets) == 0 {
		out := make([]projectVolume, 0, len(volumes))
		for _, pv := range volumes {
			out = append(out, *pv)
		}
		return out, services, nil
	}
	chosen := map[string]bool{}
	var unknown []string
	for _, t := range targets {
		found := false
		for _, pv := range volumes {
			if t == pv.volume.Name || t == pv.volume.Labels[compose.LabelVolume] {
				chosen[pv.volume.Name], found = true, true
			}
		}
		if names, ok := mountedBy[t]; ok {
			for _, n := range names {
				chosen[n] = true
			}
			found = true
		} else if _, ok := svcs[t]; ok {
			found = true // a service without a volume adds nothing
		}
		if !found {
			unknown = append(unknown, t)
		}
	}
	if len(unknown) > 0 {
		var known []string
		for _, pv := range volumes {
			known = append(known, volumeShortName(pv.volume))
		}
		for s := range svcs {
			known = append(known, s)
		}
		sort.Strings(known)
		return nil, nil, fmt.Errorf("no volume or service %s in project %s (volumes and services: %s)",
			strings.Join(unknown, ", "), project, strings.Join(known, ", "))
	}
	var out []projectVolume
	for _, pv := range volumes {
		if chosen[pv.volume.Name] {
			out = append(out, *pv)
		}
	}
	return out, services, nil
}

// isLifecycleVolume tells docker lifecycle's own volumes (router state, secrets,
// revision records, canary signals) from the project's data.
func isLifecycleVolume(v engine.Volume) bool {
	return v.Labels[compose.LabelRole] == compose.RoleRouter || v.Labels[compose.LabelRole] == compose.RoleSecrets ||
		v.Labels[labelHistory] != "" || v.Labels[labelSignal] != "" || v.Labels[labelRolloutSeq] != ""
}

// volumeShortName is the compose name of a volume, or its engine name without one.
func volumeShortName(v engine.Volume) string {
	if n := v.Labels[compose.LabelVolume]; n != "" {
		return n
	}
	return v.Name
}

// mountedVolumes lists the named volumes a container mounts.
func mountedVolumes(d engine.ContainerDetails) []string {
	var out []string
	if d.HostConfig == nil {
		return nil
	}
	for _, m := range d.HostConfig.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	for _, b := range d.HostConfig.Binds {
		src, _, _ := strings.Cut(b, ":")
		if src != "" && !strings.HasPrefix(src, "/") && !strings.HasPrefix(src, ".") {
			out = append(out, src)
		}
	}
	return out
}

func agentImage(ctx context.Context, eng engine.Engine) (string, error) {
	arch, err := eng.Arch(ctx)
	if err != nil {
		return "", err
	}
	return agentimage.Ensure(ctx, eng, arch)
}

// createCopier creates (never starts) an agent container mounting the volume: the
// engine's archive API reads and writes a created container's mounts.
func createCopier(ctx context.Context, eng engine.Engine, image, project, volume string, readOnly bool) (string, error) {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := fmt.Sprintf("%s-%s-%s", project, roleBackup, hex.EncodeToString(suffix))
	// The project's label (a one-off, as compose labels `run` containers, so deploy and
	// ps pass it by) lets `down` and a test's cleanup find a copier that a killed backup
	// left behind, and the volume it pins.
	labels := map[string]string{
		compose.LabelManagedBy: compose.ManagedByValue, compose.LabelRole: roleBackup,
		compose.LabelProject: project, compose.LabelOneoff: "True",
	}
	id, err := eng.CreateContainer(ctx, engine.ContainerSpec{
		Name:   name,
		Config: &container.Config{Image: image, Cmd: []string{"hold"}, User: "0:0", Labels: labels},
		HostConfig: &container.HostConfig{
			NetworkMode: "none",
			Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: volumeMountPath, ReadOnly: readOnly}},
		},
	})
	if err != nil {
		return "", fmt.Errorf("create the copying container of volume %s: %w", volume, err)
	}
	return id, nil
}

func removeCopier(eng engine.Engine, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = eng.RemoveContainer(ctx, id, false)
}

func backupVolume(ctx context.Context, eng engine.Engine, image, project string, pv projectVolume, target BackupTarget, backup, mode string, recipients []age.Recipient, events progress.Writer) (mv ManifestVolume, err error) {
	short := volumeShortName(pv.volume)
	id := "Volume " + pv.volume.Name
	progress.Emit(events, id, progress.Working, "Backing up", mode)
	defer func() {
		if err != nil {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
		}
	}()
	copier, err := createCopier(ctx, eng, image, project, pv.volume.Name, true)
	if err != nil {
		return mv, err
	}
	defer removeCopier(eng, copier)

	release, err := quiesce(ctx, eng, pv, mode, events)
	defer func() {
		if rerr := release(); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	if err != nil {
		return mv, err
	}
	rc, err := eng.CopyFromContainer(ctx, copier, volumeMountPath)
	if err != nil {
		return mv, fmt.Errorf("read volume %s: %w", pv.volume.Name, err)
	}
	defer rc.Close()
	mv = ManifestVolume{Name: short, EngineName: pv.volume.Name, Archive: short + ".tar.zst"}
	if len(recipients) > 0 {
		mv.Archive += ageSuffix
	}
	w, err := target.Create(ctx, backup, mv.Archive)
	if err != nil {
		return mv, fmt.Errorf("archive volume %s: %w", pv.volume.Name, err)
	}
	// A large buffer keeps the engine's stream flowing while the tar walk reads in small steps.
	if err := writeArchive(bufio.NewReaderSize(rc, 1<<20), w, recipients, &mv); err != nil {
		w.Abort()
		return mv, fmt.Errorf("archive volume %s: %w", pv.volume.Name, err)
	}
	if err := w.Commit(); err != nil {
		return mv, fmt.Errorf("archive volume %s: %w", pv.volume.Name, err)
	}
	progress.Emit(events, id, progress.Done, "Backed up", fmt.Sprintf("%d files, %d bytes", mv.Files, mv.Size))
	return mv, nil
}

// quiesce pauses or stops the running containers that mount the volume (mode), and
// returns what undoes it; the undo runs on every path, errors included.
func quiesce(ctx context.Context, eng engine.Engine, pv projectVolume, mode string, events progress.Writer) (func() error, error) {
	var undo []func(context.Context) error
	release := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i](ctx))
		}
		return errors.Join(errs...)
	}
	if mode == compose.ConsistencyNone {
		return release, nil
	}
	for _, c := range pv.users {
		if c.State != "running" {
			continue
		}
		name := containerID(c.Name)
		switch mode {
		case compose.ConsistencyPause:
			progress.Emit(events, name, progress.Working, "Pausing", "backup of "+pv.volume.Name)
			if err := eng.PauseContainer(ctx, c.ID); err != nil {
				return release, fmt.Errorf("pause container %s for the backup of %s: %w", name, pv.volume.Name, err)
			}
			undo = append(undo, func(ctx context.Context) error {
				if err := eng.UnpauseContainer(ctx, c.ID); err != nil {
					return fmt.Errorf("unpause container %s after the backup (run `docker unpause %s`): %w", name, name, err)
				}
				progress.Emit(events, name, progress.Done, "Unpaused", "")
				return nil
			})
		case compose.ConsistencyStop:
			progress.Emit(events, name, progress.Working, "Stopping", "backup of "+pv.volume.Name)
			if err := eng.StopContainer(ctx, c.ID, "", nil); err != nil {
				return release, fmt.Errorf("stop container %s for the backup of %s: %w", name, pv.volume.Name, err)
			}
			undo = append(undo, func(ctx context.Context) error {
				if err := eng.StartContainer(ctx, c.ID); err != nil {
					return fmt.Errorf("start container %s after the backup (run `docker start %s`): %w", name, name, err)
				}
				progress.Emit(events, name, progress.Done, "Started", "")
				return nil
			})
		}
	}
	return release, nil
}

// writeArchive compresses (and, with recipients, encrypts) the tar stream into w and
// records its counts and the stored bytes' size and checksum.
func writeArchive(tarStream io.Reader, w io.Writer, recipients []age.Recipient, mv *ManifestVolume) error {
	sum := sha256.New()
	counted := &countingWriter{w: io.MultiWriter(w, sum)}
	var stored io.Writer = counted
	var encrypted io.WriteCloser
	if len(recipients) > 0 {
		var err error
		if encrypted, err = age.Encrypt(counted, recipients...); err != nil {
			return err
		}
		stored = encrypted
	}
	zw, err := zstd.NewWriter(stored, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	// The tar reader walks the stream for the counts; everything it reads goes to zw.
	tee := io.TeeReader(tarStream, zw)
	tr := tar.NewReader(tee)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			zw.Close()
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			mv.Files++
			mv.Size += hdr.Size
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			zw.Close()
			return err
		}
	}
	if _, err := io.Copy(io.Discard, tee); err != nil { // the end-of-archive blocks
		zw.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if encrypted != nil {
		if err := encrypted.Close(); err != nil {
			return err
		}
	}
	mv.ArchiveBytes = counted.n
	mv.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeManifest(ctx context.Context, target BackupTarget, backup string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	w, err := target.Create(ctx, backup, ManifestFile)
	if err != nil {
		return fmt.Errorf("write the backup's manifest: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		w.Abort()
		return fmt.Errorf("write the backup's manifest: %w", err)
	}
	if err := w.Commit(); err != nil {
		return fmt.Errorf("write the backup's manifest: %w", err)
	}
	return nil
}

// ReadManifest reads the manifest of a backup.
func ReadManifest(ctx context.Context, target BackupTarget, backup string) (Manifest, error) {
	var m Manifest
	where := target.Location(backup) + "/" + ManifestFile
	rc, err := target.Open(ctx, backup, ManifestFile)
	if err != nil {
		return m, fmt.Errorf("read the backup's manifest: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 16<<20))
	if err != nil {
		return m, fmt.Errorf("read the backup's manifest %s: %w", where, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("backup manifest %s: %w", where, err)
	}
	if m.Format != ManifestFormat {
		return m, fmt.Errorf("backup manifest %s: format %d, this version reads format %d", where, m.Format, ManifestFormat)
	}
	for _, v := range m.Volumes {
		if validBackupName(v.Archive) != nil || v.Name == "" {
			return m, fmt.Errorf("backup manifest %s: volume %q has a bad archive name %q", where, v.Name, v.Archive)
		}
	}
	return m, nil
}

// VerifyBackup checks every archive of the manifest against its checksum and reports
// every damaged or missing one.
func VerifyBackup(ctx context.Context, target BackupTarget, backup string, m Manifest) error {
	var errs []error
	for _, v := range m.Volumes {
		path := target.Location(backup) + "/" + v.Archive
		got, err := archiveSHA256(ctx, target, backup, v.Archive)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%w: %s: %w", ErrArchiveDamaged, path, err))
		case got != v.SHA256:
			errs = append(errs, fmt.Errorf("%w: %s: sha256 %s, the manifest says %s", ErrArchiveDamaged, path, got, v.SHA256))
		}
	}
	return errors.Join(errs...)
}

func archiveSHA256(ctx context.Context, target BackupTarget, backup, file string) (string, error) {
	rc, err := target.Open(ctx, backup, file)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// RestoreOptions are the restore command's choices.
type RestoreOptions struct {
	// Project is the project restored into; empty: the backup's own.
	Project string
	// Force writes into volumes that already hold files.
	Force bool
	// Identities decrypt an encrypted backup.
	Identities []age.Identity
	// LatestOf picks, for the backup name "latest", the newest backup of this project;
	// empty: the target must hold one project's backups only.
	LatestOf string
	// Volumes, when any, restores only these volumes of the backup (compose names);
	// one the backup does not hold is an error before anything is written.
	Volumes []string
}

// RestoreTarget maps a backed-up volume to the engine volume it is restored into: its
// own engine name into the same project, <project>_<name> (as Compose names it) into another.
func RestoreTarget(m Manifest, v ManifestVolume, project string) string {
	if project == "" || project == m.Project {
		return v.EngineName
	}
	return project + "_" + v.Name
}

// Restore verifies every archive of the backup (named backup in target, or "latest"),
// checks that the identities open every encrypted archive and that every target volume
// is empty (unless opts.Force), and only then extracts the archives into the volumes,
// creating the missing ones with Compose's labels. It returns the engine volume names.
func Restore(ctx context.Context, eng engine.Engine, target BackupTarget, backup string, events progress.Writer, opts RestoreOptions) ([]string, error) {
	if backup == "latest" {
		latest, err := LatestBackup(ctx, target, opts.LatestOf)
		if err != nil {
			return nil, err
		}
		backup = latest
		progress.Emit(events, "Backup "+target.Location(backup), progress.Done, "Latest", "")
	}
	m, err := ReadManifest(ctx, target, backup)
	if err != nil {
		return nil, err
	}
	if len(opts.Volumes) > 0 {
		if m, err = selectVolumes(m, opts.Volumes); err != nil {
			return nil, fmt.Errorf("nothing restored: %w", err)
		}
	}
	if err := VerifyBackup(ctx, target, backup, m); err != nil {
		return nil, fmt.Errorf("nothing restored: %w", err)
	}
	if err := checkDecryption(ctx, target, backup, m, opts.Identities); err != nil {
		return nil, fmt.Errorf("nothing restored: %w", err)
	}
	project := opts.Project
	if project == "" {
		project = m.Project
	}
	image, err := agentImage(ctx, eng)
	if err != nil {
		return nil, err
	}
	// Check every target first, so a refusal changes nothing.
	exists := map[string]bool{}
	var errs []error
	for _, v := range m.Volumes {
		target := RestoreTarget(m, v, project)
		if _, err := eng.InspectVolume(ctx, target); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				continue
			}
			return nil, err
		}
		exists[target] = true
		if opts.Force {
			continue
		}
		empty, err := volumeEmpty(ctx, eng, image, project, target)
		if err != nil {
			return nil, err
		}
		if !empty {
			errs = append(errs, fmt.Errorf("%w: %s holds files (restore with --force to write into it, or into a new project with --project)", ErrVolumeNotEmpty, target))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("nothing restored: %w", err)
	}
	var restored []string
	source := target
	for _, v := range m.Volumes {
		target := RestoreTarget(m, v, project)
		if err := restoreVolume(ctx, eng, image, project, source, backup, m, v, target, !exists[target], opts.Identities, events); err != nil {
			return restored, err
		}
		restored = append(restored, target)
	}
	return restored, nil
}

// selectVolumes keeps the manifest's volumes named (compose names); a name it does not
// hold is an error.
func selectVolumes(m Manifest, names []string) (Manifest, error) {
	var kept []ManifestVolume
	var missing []string
	for _, n := range names {
		i := slices.IndexFunc(m.Volumes, func(v ManifestVolume) bool { return v.Name == n })
		if i < 0 {
			missing = append(missing, n)
			continue
		}
		kept = append(kept, m.Volumes[i])
	}
	if len(missing) > 0 {
		var held []string
		for _, v := range m.Volumes {
			held = append(held, v.Name)
		}
		return m, fmt.Errorf("the backup holds no volume %s (it holds: %s)", strings.Join(missing, ", "), strings.Join(held, ", "))
	}
	m.Volumes = kept
	return m, nil
}

// volumeEmpty reports whether a volume holds nothing but its root directory.
func volumeEmpty(ctx context.Context, eng engine.Engine, image, project, volume string) (bool, error) {
	copier, err := createCopier(ctx, eng, image, project, volume, true)
	if err != nil {
		return false, err
	}
	defer removeCopier(eng, copier)
	rc, err := eng.CopyFromContainer(ctx, copier, volumeMountPath)
	if err != nil {
		return false, fmt.Errorf("read volume %s: %w", volume, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read volume %s: %w", volume, err)
		}
		if strings.Trim(hdr.Name, "/") != filepath.Base(volumeMountPath) {
			return false, nil
		}
	}
}

func restoreVolume(ctx context.Context, eng engine.Engine, image, project string, source BackupTarget, backup string, m Manifest, v ManifestVolume, target string, create bool, identities []age.Identity, events progress.Writer) (err error) {
	id := "Volume " + target
	progress.Emit(events, id, progress.Working, "Restoring", v.Archive)
	defer func() {
		if err != nil {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
		}
	}()
	if create {
		labels := map[string]string{compose.LabelProject: project, compose.LabelVolume: v.Name, compose.LabelVersion: compose.ComposeVersionLabelValue}
		if _, err := eng.CreateVolume(ctx, engine.VolumeSpec{Name: target, Driver: "local", Labels: labels}); err != nil {
			return fmt.Errorf("create volume %s: %w", target, err)
		}
	}
	copier, err := createCopier(ctx, eng, image, project, target, false)
	if err != nil {
		return err
	}
	defer removeCopier(eng, copier)
	where := source.Location(backup) + "/" + v.Archive
	rc, err := source.Open(ctx, backup, v.Archive)
	if err != nil {
		return err
	}
	defer rc.Close()
	plain, err := decryptArchive(m, bufio.NewReaderSize(rc, 1<<20), identities)
	if err != nil {
		return fmt.Errorf("read %s: %w", where, err)
	}
	zr, err := zstd.NewReader(plain)
	if err != nil {
		return fmt.Errorf("read %s: %w", where, err)
	}
	defer zr.Close()
	if err := eng.CopyToContainer(ctx, copier, "/", zr); err != nil {
		return fmt.Errorf("restore %s into volume %s: %w", where, target, err)
	}
	progress.Emit(events, id, progress.Done, "Restored", fmt.Sprintf("%d files, %d bytes", v.Files, v.Size))
	return nil
}

// checkDecryption opens the header of every encrypted archive with the identities,
// so a missing or wrong identity is refused before anything is written.
func checkDecryption(ctx context.Context, target BackupTarget, backup string, m Manifest, identities []age.Identity) error {
	if m.Encryption == "" || m.Encryption == "none" {
		return nil
	}
	for _, v := range m.Volumes {
		rc, err := target.Open(ctx, backup, v.Archive)
		if err != nil {
			return err
		}
		_, err = decryptArchive(m, rc, identities)
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", target.Location(backup), err)
		}
	}
	return nil
}

// LatestBackup names the newest backup (by its manifest's time) in target, of project
// when given; without a project, the target must hold one project's backups only.
func LatestBackup(ctx context.Context, target BackupTarget, project string) (string, error) {
	names, err := target.List(ctx)
	if err != nil {
		return "", err
	}
	var best string
	var bestTime time.Time
	projects := map[string]bool{}
	for _, name := range names {
		m, err := ReadManifest(ctx, target, name)
		if err != nil || project != "" && m.Project != project {
			continue
		}
		projects[m.Project] = true
		if best == "" || m.Created.After(bestTime) {
			best, bestTime = name, m.Created
		}
	}
	if len(projects) > 1 {
		var list []string
		for p := range projects {
			list = append(list, p)
		}
		sort.Strings(list)
		return "", fmt.Errorf("%s holds backups of several projects (%s): name the one to restore with -p PROJECT", target.Location(""), strings.Join(list, ", "))
	}
	if best == "" {
		return "", fmt.Errorf("%w: no backup with a readable manifest in %s", ErrBackupNotFound, target.Location(""))
	}
	return best, nil
}
