package rollout

import (
	"context"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// RecoveryPlan is `dr plan`: how to bring a project's data back from its newest backup
// (docs/backup.md: dr plan). It is planning only: reading it changes nothing.
type RecoveryPlan struct {
	Project string `json:"project"`
	// From is the target searched; Backup the newest backup of the project in it.
	From          string   `json:"from"`
	Backup        string   `json:"backup"`
	BackupCreated string   `json:"backup_created"`
	Encrypted     bool     `json:"encrypted"`
	ComposeFiles  []string `json:"compose_files"`
	// Volumes are the backup's volumes, each with the services that mount it.
	Volumes []RecoveryVolume `json:"volumes"`
	// Stop are the services to stop before the restore (those mounting a restored
	// volume), dependents first; Deploy is the deploy order afterwards.
	Stop   []string `json:"stop"`
	Deploy []string `json:"deploy"`
	// Verify are x-lifecycle.backup.verify's checks, run by hand after the deploy.
	Verify []compose.VerifyCheck `json:"verify"`
	// Steps are the runbook: what to do, and the exact commands.
	Steps []RecoveryStep `json:"steps"`
	// LastDrill is the newest drill of the project's backups in the target;
	// LastGoodDrill the newest that passed. Nil when none is recorded.
	LastDrill     *DrillResult `json:"last_drill"`
	LastGoodDrill *DrillResult `json:"last_good_drill"`
}

// RecoveryVolume is a volume to restore.
type RecoveryVolume struct {
	Name       string   `json:"name"`
	EngineName string   `json:"engine_name"`
	Files      int      `json:"files"`
	Size       int64    `json:"size"`
	MountedBy  []string `json:"mounted_by"`
}

// RecoveryStep is one step of the runbook.
type RecoveryStep struct {
	Title    string   `json:"title"`
	Commands []string `json:"commands"`
	Note     string   `json:"note,omitempty"`
}

// LoadRecovery reads what `dr plan` needs from the target: the project's newest backup
// and the drill records. No engine call.
func LoadRecovery(ctx context.Context, target BackupTarget, project string) (backup string, m Manifest, drills []DrillResult, err error) {
	if backup, err = LatestBackup(ctx, target, project); err != nil {
		return "", m, nil, err
	}
	if m, err = ReadManifest(ctx, target, backup); err != nil {
		return "", m, nil, err
	}
	drills, err = DrillRecords(ctx, target, m.Project)
	return backup, m, drills, err
}

// PlanRecovery writes the runbook for restoring backup (location, its manifest m) into
// the project it came from. p, when the compose file loaded, says which services mount
// which volume and the deploy order; without it, the services come from the manifest.
// drills are the drill records, newest first.
func PlanRecovery(p *compose.Project, from, location string, m Manifest, drills []DrillResult) RecoveryPlan {
	plan := RecoveryPlan{Project: m.Project, From: from, Backup: location, BackupCreated: m.Created.UTC().Format("2006-01-02T15:04:05Z"),
		Encrypted: m.Encryption == EncryptionAge, ComposeFiles: m.ComposeFiles, Volumes: []RecoveryVolume{}, Stop: []string{}, Deploy: []string{},
		Steps: []RecoveryStep{}}
	if plan.ComposeFiles == nil {
		plan.ComposeFiles = []string{}
	}
	plan.Verify = []compose.VerifyCheck{}
	if p != nil {
		plan.ComposeFiles = p.ComposeFiles
		plan.Verify = append(plan.Verify, p.Spec.Backup.Verify...)
	}
	var users map[string][]string
	var order []string
	if p != nil {
		users = volumeUsers(p)
		order, _ = strategies.DeployOrder(p, nil)
	} else {
		for _, s := range m.Services {
			order = append(order, s.Name)
		}
	}
	stopping := map[string]bool{}
	for _, v := range m.Volumes {
		mounted := users[v.Name]
		if mounted == nil {
			mounted = []string{}
		}
		for _, s := range mounted {
			stopping[s] = true
		}
		plan.Volumes = append(plan.Volumes, RecoveryVolume{Name: v.Name, EngineName: v.EngineName, Files: v.Files, Size: v.Size, MountedBy: mounted})
	}
	for i := len(order) - 1; i >= 0; i-- {
		if stopping[order[i]] || p == nil {
			plan.Stop = append(plan.Stop, order[i])
		}
	}
	plan.Deploy = append(plan.Deploy, order...)
	for _, d := range drills {
		d := d
		if plan.LastDrill == nil {
			plan.LastDrill = &d
		}
		if d.Passed && plan.LastGoodDrill == nil {
			plan.LastGoodDrill = &d
		}
	}
	plan.Steps = recoverySteps(plan)
	return plan
}

func recoverySteps(plan RecoveryPlan) []RecoveryStep {
	identity := ""
	if plan.Encrypted {
		identity = " --identity KEY_FILE"
	}
	files := ""
	for _, f := range plan.ComposeFiles {
		files += " -f " + shellQuote(f)
	}
	project := "-p " + shellQuote(plan.Project)
	backup := shellQuote(plan.Backup)
	var steps []RecoveryStep
	rehearse := RecoveryStep{
		Title:    "Rehearse on a scratch project (optional, changes nothing of " + plan.Project + ")",
		Commands: []string{"docker lifecycle " + project + files + " drill " + backup + identity},
	}
	if len(plan.ComposeFiles) == 0 {
		rehearse.Note = "drill deploys the compose file: run it where the project's compose file is"
	}
	steps = append(steps, rehearse)
	stop := RecoveryStep{Title: "Stop and remove the containers that mount the volumes (dependents first)"}
	for _, s := range plan.Stop {
		stop.Commands = append(stop.Commands, "docker rm -f $(docker ps -aq --filter label=com.docker.compose.project="+plan.Project+
			" --filter label=com.docker.compose.service="+s+")")
	}
	if len(plan.Stop) == 0 {
		stop.Note = "no service of the compose file mounts these volumes"
	} else {
		stop.Note = "retained revisions go too; `docker lifecycle " + project + " down` removes every container of the project instead"
	}
	steps = append(steps, stop)
	rm := RecoveryStep{Title: "Remove the damaged volumes", Note: "or keep them and add --force to the restore: files not in the backup then stay"}
	for _, v := range plan.Volumes {
		rm.Commands = append(rm.Commands, "docker volume rm "+shellQuote(v.EngineName))
	}
	steps = append(steps, rm)
	steps = append(steps, RecoveryStep{
		Title:    "Restore (every archive is checked against the manifest first)",
		Commands: []string{"docker lifecycle " + project + " restore " + backup + identity},
	})
	deploy := RecoveryStep{Title: "Deploy: the services start in dependency order, health-gated",
		Commands: []string{"docker lifecycle " + project + files + " deploy", "docker lifecycle " + project + " ps"}}
	if len(plan.ComposeFiles) == 0 {
		deploy.Note = "the backup records no compose file: run it where the project's compose file is"
	}
	steps = append(steps, deploy)
	if len(plan.Verify) > 0 {
		verify := RecoveryStep{Title: "Verify (x-lifecycle.backup.verify; each must exit 0)"}
		for _, c := range plan.Verify {
			words := make([]string, len(c.Command))
			for i, w := range c.Command {
				words[i] = shellQuote(w)
			}
			verify.Commands = append(verify.Commands, "docker exec $(docker ps -q --filter label=com.docker.compose.project="+plan.Project+
				" --filter label=com.docker.compose.service="+c.Service+" | head -n 1) "+strings.Join(words, " "))
		}
		steps = append(steps, verify)
	}
	return steps
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' || r == '/' || r == ':' || r == '=' || r == '@' || r == '+' || r == ',') {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	out := "'"
	for _, r := range s {
		if r == '\'' {
			out += `'\''`
		} else {
			out += string(r)
		}
	}
	return out + "'"
}
