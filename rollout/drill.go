package rollout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// LabelDrill marks what a drill creates from the compose file (containers, networks,
// volumes of the scratch project); its value is the project drilled.
const LabelDrill = "io.lifecycle.drill"

// DrillRecordFile is the record of the last drill of a backup and DrillPassedFile of
// the last one that passed, written into the backup's directory (docs/backup.md: the
// drill record).
const (
	DrillRecordFile = "drill.json"
	DrillPassedFile = "drill-passed.json"
)

// drillOutputLimit bounds the output of a verify command kept in the result.
const drillOutputLimit = 1024

// DrillOptions are the drill command's choices.
type DrillOptions struct {
	// Target holds the backup; Backup is its name there, or "latest" (the project's newest).
	Target BackupTarget
	Backup string
	// Identities decrypt an encrypted backup.
	Identities []age.Identity
	// WaitTimeout overrides each service's health wait when set.
	WaitTimeout time.Duration
	// Suffix makes the scratch project's name (ScratchName); empty: random.
	Suffix string
}

// DrillResult is the outcome of a drill: `drill --format json` and the drill record
// (docs/backup.md: the drill's JSON).
type DrillResult struct {
	Project        string         `json:"project"`
	ScratchProject string         `json:"scratch_project"`
	Backup         string         `json:"backup"`
	BackupCreated  time.Time      `json:"backup_created"`
	Started        time.Time      `json:"started"`
	RestoreSeconds float64        `json:"restore_seconds"`
	HealthySeconds float64        `json:"healthy_seconds"`
	RTOSeconds     float64        `json:"rto_seconds"`
	VerifySeconds  float64        `json:"verify_seconds"`
	Volumes        []DrillVolume  `json:"volumes"`
	Services       []DrillService `json:"services"`
	Networks       []DrillNetwork `json:"networks"`
	// PublishedPorts lists the host ports a scratch container published (always empty:
	// a port there is a failure of the drill's isolation and fails the drill).
	PublishedPorts []string     `json:"published_ports"`
	Checks         []DrillCheck `json:"checks"`
	Passed         bool         `json:"passed"`
	// Error is what stopped the drill before or instead of its checks.
	Error     string `json:"error,omitempty"`
	CleanedUp bool   `json:"cleaned_up"`
	// CleanupError is what removing the scratch project left, with the command to finish.
	CleanupError string `json:"cleanup_error,omitempty"`
}

// DrillVolume is a volume of the backup restored into the scratch project.
type DrillVolume struct {
	Name       string `json:"name"`
	EngineName string `json:"engine_name"`
	Files      int    `json:"files"`
	Size       int64  `json:"size"`
	// MountedBy are the compose file's services that mount it (none: restored only).
	MountedBy []string `json:"mounted_by"`
}

// DrillService is a service of the compose file started in the scratch project.
type DrillService struct {
	Name string `json:"name"`
	// InBackup: the backup's manifest lists the service; EmptyVolumes are the named
	// volumes it mounts that the backup does not hold (they start empty).
	InBackup     bool     `json:"in_backup"`
	EmptyVolumes []string `json:"empty_volumes"`
}

// DrillNetwork is a network of the scratch project as the engine reports it.
type DrillNetwork struct {
	Name     string `json:"name"`
	Internal bool   `json:"internal"`
}

// DrillCheck is one backup.verify command's outcome.
type DrillCheck struct {
	Service   string   `json:"service"`
	Command   []string `json:"command"`
	Container string   `json:"container"`
	ExitCode  int      `json:"exit_code"`
	Seconds   float64  `json:"seconds"`
	Passed    bool     `json:"passed"`
	Output    string   `json:"output"`
	Error     string   `json:"error,omitempty"`
}

// ErrDrillFailed marks a drill that ran but did not pass (a check failed, the restore
// or the deploy failed, or a scratch container published a port).
var ErrDrillFailed = errors.New("drill failed")

// ScratchName is the drill's scratch project: <project>-drill-<suffix>, cut so that the
// name stays within 63 characters (a DNS label, as container host names want).
func ScratchName(project, suffix string) string {
	tail := "-drill-" + suffix
	if len(project)+len(tail) > 63 {
		project = strings.TrimRight(project[:63-len(tail)], "-_")
	}
	return project + tail
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ScratchProject rewrites the project for a drill under the name scratch: every
// network internal (no egress, and nothing can be published on an internal network)
// and the project's own; every named volume the project's own, on the local driver
// (an external volume or a driver option pointing at real data is not used); no
// published ports, no fixed container names, segmentation off (its networks could
// have egress); each service, network and volume labelled LabelDrill. Services whose
// network_mode leaves the project's networks are refused, all of them at once. p is
// not changed.
func ScratchProject(p *compose.Project, scratch string) (*compose.Project, error) {
	tp := *p.Project
	tp.Name = scratch
	drill := map[string]string{LabelDrill: p.Name}
	var problems []string
	tp.Services = types.Services{}
	for name, svc := range p.Project.Services {
		switch mode := svc.NetworkMode; {
		case mode == "" || mode == "none" || strings.HasPrefix(mode, "service:"):
		default:
			problems = append(problems, fmt.Sprintf("service %s: network_mode %q leaves the drill's isolated network", name, mode))
		}
		if svc.Build != nil && svc.Image == "" {
			svc.Image = compose.ImageRef(p, name) // the image the project builds, not a new one
		}
		svc.Ports = nil
		svc.ContainerName = ""
		svc.Labels = mergeLabels(svc.Labels, drill)
		tp.Services[name] = svc
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("project %s cannot be drilled in isolation: %s", p.Name, strings.Join(problems, "; "))
	}
	tp.Networks = types.Networks{}
	for key, n := range p.Project.Networks {
		n.Name = scratch + "_" + key
		n.External = false
		n.Internal = true
		n.Labels = mergeLabels(n.Labels, drill)
		tp.Networks[key] = n
	}
	tp.Volumes = types.Volumes{}
	for key, v := range p.Project.Volumes {
		v.Name = scratch + "_" + key
		v.External = false
		v.Driver = ""
		v.DriverOpts = nil
		v.Labels = mergeLabels(v.Labels, drill)
		tp.Volumes[key] = v
	}
	out := &compose.Project{Project: &tp, Spec: p.Spec, ServiceSpecs: map[string]compose.ServiceSpec{}}
	out.Spec.Network = nil
	// The scratch deploy runs on restored volumes: a pre-deploy backup of them would
	// write the drill's data into the project's backup target.
	out.Spec.Backup.BeforeDeploy = false
	for name, s := range p.ServiceSpecs {
		s.Network = nil
		out.ServiceSpecs[name] = s
	}
	return out, nil
}

func mergeLabels(labels map[string]string, add map[string]string) map[string]string {
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, add)
	return out
}

// volumeUsers maps each named volume (compose key) to the services mounting it.
func volumeUsers(p *compose.Project) map[string][]string {
	users := map[string][]string{}
	for _, name := range p.ServiceNames() {
		for _, v := range p.Project.Services[name].Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				if _, ok := p.Project.Volumes[v.Source]; ok && !contains(users[v.Source], name) {
					users[v.Source] = append(users[v.Source], name)
				}
			}
		}
	}
	return users
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Drill restores a backup into a scratch project (ScratchProject), deploys the
// project's compose file there and waits for health, runs x-lifecycle.backup.verify,
// and removes the scratch project — on every path, errors and cancellation included.
// A drill that ran returns its result with ErrDrillFailed when it did not pass; the
// result is recorded in the backup's directory (DrillRecordFile) when the drill got as
// far as the restore.
func Drill(ctx context.Context, eng engine.Engine, p *compose.Project, events progress.Writer, opts DrillOptions) (res DrillResult, err error) {
	backup := opts.Backup
	if backup == "latest" {
		if backup, err = LatestBackup(ctx, opts.Target, p.Name); err != nil {
			return res, err
		}
	}
	m, err := ReadManifest(ctx, opts.Target, backup)
	if err != nil {
		return res, err
	}
	suffix := opts.Suffix
	if suffix == "" {
		suffix = randomSuffix()
	}
	scratchName := ScratchName(p.Name, suffix)
	scratch, err := ScratchProject(p, scratchName)
	if err != nil {
		return res, err
	}
	res = DrillResult{Project: p.Name, ScratchProject: scratchName, Backup: opts.Target.Location(backup),
		BackupCreated: m.Created, Started: time.Now().UTC(), Volumes: []DrillVolume{}, Services: []DrillService{},
		Networks: []DrillNetwork{}, PublishedPorts: []string{}, Checks: []DrillCheck{}}
	res.Volumes, res.Services = drillInventory(p, m, scratchName)
	progress.Emit(events, "Project "+scratchName, progress.Working, "Drill", "of "+res.Backup)

	defer func() {
		// Cleanup on every path, also after Ctrl-C: the command's context may be done.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if derr := Down(cctx, eng, scratchName, events, DownOptions{RemoveVolumes: true, Command: "drill"}); derr != nil {
			res.CleanupError = fmt.Sprintf("%v (finish with: docker lifecycle -p %s down --volumes)", derr, scratchName)
			err = errors.Join(err, fmt.Errorf("remove the drill's scratch project %s: %w", scratchName, derr))
		} else {
			res.CleanedUp = true
		}
		if ctx.Err() == nil {
			if rerr := writeDrillRecord(cctx, opts.Target, backup, res); rerr != nil {
				progress.Emit(events, "Backup "+res.Backup, progress.Warning, "Drill not recorded", rerr.Error())
			}
		}
	}()
	fail := func(err error) (DrillResult, error) {
		res.Error = err.Error()
		return res, fmt.Errorf("%w: %w", ErrDrillFailed, err)
	}

	restoreStart := time.Now()
	if err := precreateVolumes(ctx, eng, scratch, m, p.Name); err != nil {
		return fail(err)
	}
	if _, err := Restore(ctx, eng, opts.Target, backup, events, RestoreOptions{Project: scratchName, Force: true, Identities: opts.Identities}); err != nil {
		return fail(err)
	}
	res.RestoreSeconds = seconds(time.Since(restoreStart))
	deployStart := time.Now()
	if _, err := Deploy(ctx, eng, scratch, events, DeployOptions{WaitTimeout: opts.WaitTimeout, Command: "drill"}); err != nil {
		return fail(fmt.Errorf("deploy the scratch project: %w", err))
	}
	res.HealthySeconds = seconds(time.Since(deployStart))
	res.RTOSeconds = res.RestoreSeconds + res.HealthySeconds
	progress.Emit(events, "Project "+scratchName, progress.Done, "Healthy", fmt.Sprintf("RTO %.1fs", res.RTOSeconds))

	if err := drillIsolation(ctx, eng, scratchName, &res); err != nil {
		return fail(err)
	}
	var checks []compose.VerifyCheck
	for _, c := range p.Spec.Backup.Verify {
		if _, ok := p.Project.Services[c.Service]; !ok {
			progress.Emit(events, "Verify "+c.Service, progress.Warning, "Skipped", "the service is not in the active profiles: "+strings.Join(c.Command, " "))
			continue
		}
		checks = append(checks, c)
	}
	verifyStart := time.Now()
	res.Checks = runVerify(ctx, eng, scratchName, checks, events)
	res.VerifySeconds = seconds(time.Since(verifyStart))
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var failed []string
	for _, c := range res.Checks {
		if !c.Passed {
			failed = append(failed, fmt.Sprintf("%s: %s", c.Service, strings.Join(c.Command, " ")))
		}
	}
	if len(failed) > 0 {
		return fail(fmt.Errorf("%d of %d verify commands failed: %s", len(failed), len(res.Checks), strings.Join(failed, "; ")))
	}
	res.Passed = true
	return res, nil
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

// drillInventory lists the backup's volumes as the scratch project gets them and the
// compose file's services with what the backup holds of them.
func drillInventory(p *compose.Project, m Manifest, scratch string) ([]DrillVolume, []DrillService) {
	users := volumeUsers(p)
	inBackup := map[string]bool{}
	volumes := []DrillVolume{}
	for _, v := range m.Volumes {
		inBackup[v.Name] = true
		mounted := users[v.Name]
		if mounted == nil {
			mounted = []string{}
		}
		volumes = append(volumes, DrillVolume{Name: v.Name, EngineName: RestoreTarget(m, v, scratch), Files: v.Files, Size: v.Size, MountedBy: mounted})
	}
	backedUp := map[string]bool{}
	for _, s := range m.Services {
		backedUp[s.Name] = true
	}
	services := []DrillService{}
	for _, name := range p.ServiceNames() {
		s := DrillService{Name: name, InBackup: backedUp[name], EmptyVolumes: []string{}}
		for vol, us := range users {
			if contains(us, name) && !inBackup[vol] {
				s.EmptyVolumes = append(s.EmptyVolumes, vol)
			}
		}
		sort.Strings(s.EmptyVolumes)
		services = append(services, s)
	}
	return volumes, services
}

// precreateVolumes creates the scratch volumes the backup restores into, labelled as
// the deploy would create them (compose.Volumes) plus LabelDrill=project, so that the deploy
// uses them and everything the drill made carries the label.
func precreateVolumes(ctx context.Context, eng engine.Engine, scratch *compose.Project, m Manifest, project string) error {
	specs := map[string]compose.VolumeCreate{}
	creates, _ := compose.Volumes(scratch)
	for _, v := range creates {
		specs[v.Name] = v
	}
	for _, v := range m.Volumes {
		name := RestoreTarget(m, v, scratch.Name)
		spec, ok := specs[name]
		if !ok { // in the backup, not in the compose file: restored all the same
			spec = compose.VolumeCreate{Name: name, Driver: "local", Labels: map[string]string{compose.LabelProject: scratch.Name,
				compose.LabelVolume: v.Name, compose.LabelVersion: compose.ComposeVersionLabelValue, compose.LabelManagedBy: compose.ManagedByValue}}
		}
		spec.Labels = mergeLabels(spec.Labels, map[string]string{LabelDrill: project})
		if _, err := eng.CreateVolume(ctx, engine.VolumeSpec(spec)); err != nil {
			return fmt.Errorf("create the drill's volume %s: %w", name, err)
		}
	}
	return nil
}

// drillIsolation reads the scratch project's networks and published ports back from
// the engine: a network with egress or a published port fails the drill.
func drillIsolation(ctx context.Context, eng engine.Engine, scratch string, res *DrillResult) error {
	networks, err := eng.ListNetworks(ctx, projectFilter(scratch))
	if err != nil {
		return err
	}
	var problems []string
	for _, n := range networks {
		res.Networks = append(res.Networks, DrillNetwork{Name: n.Name, Internal: n.Internal})
		if !n.Internal {
			problems = append(problems, "network "+n.Name+" is not internal")
		}
	}
	sort.Slice(res.Networks, func(i, j int) bool { return res.Networks[i].Name < res.Networks[j].Name })
	containers, err := eng.ListContainers(ctx, projectFilter(scratch))
	if err != nil {
		return err
	}
	for _, c := range containers {
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				res.PublishedPorts = append(res.PublishedPorts, fmt.Sprintf("%s %s:%d->%d/%s", strings.TrimPrefix(c.Name, "/"), port.HostIP, port.HostPort, port.ContainerPort, port.Protocol))
			}
		}
	}
	sort.Strings(res.PublishedPorts)
	if len(res.PublishedPorts) > 0 {
		problems = append(problems, "published ports: "+strings.Join(res.PublishedPorts, ", "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the scratch project is not isolated: %s", strings.Join(problems, "; "))
	}
	return nil
}

// runVerify runs each check in a running container of its service, in order, each
// within its timeout; all of them run, whatever the ones before gave.
func runVerify(ctx context.Context, eng engine.Engine, scratch string, checks []compose.VerifyCheck, events progress.Writer) []DrillCheck {
	out := []DrillCheck{}
	for _, c := range checks {
		if ctx.Err() != nil {
			break
		}
		out = append(out, runCheck(ctx, eng, scratch, c, events))
	}
	return out
}

func runCheck(ctx context.Context, eng engine.Engine, scratch string, c compose.VerifyCheck, events progress.Writer) DrillCheck {
	dc := DrillCheck{Service: c.Service, Command: c.Command, ExitCode: -1}
	id := "Verify " + c.Service
	progress.Emit(events, id, progress.Working, "Running", strings.Join(c.Command, " "))
	defer func() {
		if dc.Passed {
			progress.Emit(events, id, progress.Done, "Passed", fmt.Sprintf("%.1fs", dc.Seconds))
		} else {
			progress.Emit(events, id, progress.Error, "Failed", dc.Error)
		}
	}()
	containers, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: scratch, compose.LabelService: c.Service})
	if err != nil {
		dc.Error = err.Error()
		return dc
	}
	var target engine.Container
	for _, ct := range containers {
		role := ct.Labels[compose.LabelRole]
		if ct.State == "running" && (role == "" || role == compose.RoleApp) && (target.ID == "" || ct.Name < target.Name) {
			target = ct
		}
	}
	if target.ID == "" {
		dc.Error = fmt.Sprintf("no running container of service %s in the scratch project", c.Service)
		return dc
	}
	dc.Container = strings.TrimPrefix(target.Name, "/")
	cctx, cancel := context.WithTimeout(ctx, time.Duration(c.Timeout))
	defer cancel()
	start := time.Now()
	stdout, err := eng.Exec(cctx, target.ID, c.Command, nil)
	dc.Seconds = seconds(time.Since(start))
	dc.Output = limitOutput(string(stdout))
	var execErr *engine.ExecError
	switch {
	case err == nil:
		dc.ExitCode, dc.Passed = 0, true
	case errors.As(err, &execErr):
		dc.ExitCode = execErr.ExitCode
		dc.Output = limitOutput(strings.TrimSpace(dc.Output + "\n" + execErr.Stderr))
		dc.Error = fmt.Sprintf("exit code %d", execErr.ExitCode)
	case cctx.Err() != nil && ctx.Err() == nil:
		dc.Error = fmt.Sprintf("timed out after %s", time.Duration(c.Timeout))
	default:
		dc.Error = err.Error()
	}
	return dc
}

func limitOutput(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > drillOutputLimit {
		return s[:drillOutputLimit] + "…"
	}
	return s
}

// writeDrillRecord writes the result into the backup's directory, replacing the
// record of an earlier drill of the same backup (and, when it passed, the record of
// the last drill that passed).
func writeDrillRecord(ctx context.Context, target BackupTarget, backup string, res DrillResult) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := target.Put(ctx, backup, DrillRecordFile, b); err != nil {
		return err
	}
	if res.Passed {
		return target.Put(ctx, backup, DrillPassedFile, b)
	}
	return nil
}

// DrillRecords reads the drill records of project's backups in target, newest drill first.
func DrillRecords(ctx context.Context, target BackupTarget, project string) ([]DrillResult, error) {
	names, err := target.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []DrillResult
	seen := map[string]bool{}
	for _, name := range names {
		for _, file := range []string{DrillRecordFile, DrillPassedFile} {
			rc, err := target.Open(ctx, name, file)
			if err != nil {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
			rc.Close()
			var r DrillResult
			if err != nil || json.Unmarshal(b, &r) != nil || r.Project != project || seen[r.ScratchProject] {
				continue
			}
			seen[r.ScratchProject] = true
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.After(out[j].Started) })
	return out, nil
}
