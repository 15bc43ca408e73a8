package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// ManifestHook is one backup hook command that ran (x-lifecycle.backup.hooks), as the
// manifest records it: never the command itself, which may carry credentials.
type ManifestHook struct {
	Service   string `json:"service"`
	Container string `json:"container"`
	// Phase is before or after.
	Phase      string `json:"phase"`
	DurationMS int64  `json:"duration_ms"`
	// Error is empty when the command exited 0; with on-failure: continue the backup
	// went on after it.
	Error string `json:"error,omitempty"`
}

// hookRun is a hook that applies to this backup: its service mounts a volume being
// backed up, and container is where its commands run.
type hookRun struct {
	hook      compose.BackupHook
	container engine.ContainerDetails // zero when the service has no running container
}

// backupHooks picks the hooks whose service has a container mounting one of the volumes,
// in the order of x-lifecycle.backup.hooks, each with the first running container of its
// service (by name): a dump is taken once per service, not once per replica.
func backupHooks(hooks []compose.BackupHook, volumes []projectVolume) []hookRun {
	var runs []hookRun
	for _, h := range hooks {
		var candidates []engine.ContainerDetails
		for _, pv := range volumes {
			for _, c := range pv.users {
				if c.Config != nil && c.Config.Labels[compose.LabelService] == h.Service &&
					!slices.ContainsFunc(candidates, func(d engine.ContainerDetails) bool { return d.ID == c.ID }) {
					candidates = append(candidates, c)
				}
			}
		}
		if len(candidates) == 0 {
			continue
		}
		slices.SortFunc(candidates, func(a, b engine.ContainerDetails) int { return strings.Compare(a.Name, b.Name) })
		run := hookRun{hook: h}
		for _, c := range candidates {
			if c.State == "running" {
				run.container = c
				break
			}
		}
		runs = append(runs, run)
	}
	return runs
}

// runHooks runs the phase's command of each hook, in order. A failure with on-failure:
// fail stops there and is returned (the hooks before it ran); with continue it is
// recorded and the next hook runs. Every command that ran is in the returned records.
func runHooks(ctx context.Context, eng engine.Engine, runs []hookRun, phase string, events progress.Writer) ([]ManifestHook, error) {
	var records []ManifestHook
	var errs []error
	for _, r := range runs {
		cmd := r.hook.Before
		if phase == "after" {
			cmd = r.hook.After
		}
		if len(cmd) == 0 {
			continue
		}
		rec, err := runHook(ctx, eng, r, phase, cmd, events)
		records = append(records, rec)
		if err == nil {
			continue
		}
		if r.hook.OnFailure == compose.HookContinue {
			progress.Emit(events, "Hook "+r.hook.Service, progress.Warning, "Failed, going on", err.Error()+" (on-failure: continue)")
			continue
		}
		errs = append(errs, err)
		if phase == "before" {
			break // the next dumps would be for a backup that will not happen
		}
	}
	return records, errors.Join(errs...)
}

func runHook(ctx context.Context, eng engine.Engine, r hookRun, phase string, cmd []string, events progress.Writer) (ManifestHook, error) {
	h := r.hook
	id := "Hook " + h.Service
	rec := ManifestHook{Service: h.Service, Phase: phase}
	if r.container.ID == "" {
		err := fmt.Errorf("backup hook %s of service %s: no running container of %s to run it in: start it (docker lifecycle deploy), or set on-failure: continue in x-lifecycle.backup.hooks",
			phase, h.Service, h.Service)
		rec.Error = "no running container"
		return rec, err
	}
	name := strings.TrimPrefix(r.container.Name, "/")
	rec.Container = name
	where := "in " + name
	if h.User != "" {
		where += " as " + h.User
	}
	progress.Emit(events, id, progress.Working, "Running "+phase+" hook", where)
	hookCtx, cancel := context.WithTimeout(ctx, time.Duration(h.Timeout))
	defer cancel()
	start := time.Now()
	// RunHook is the exec compose's post_start hooks use: it takes the hook's user.
	err := eng.RunHook(hookCtx, r.container.ID, engine.Hook{Cmd: cmd, User: h.User})
	rec.DurationMS = time.Since(start).Milliseconds()
	var exitErr *engine.ExecError
	switch {
	case err == nil:
		progress.Emit(events, id, progress.Done, "Ran "+phase+" hook", fmt.Sprintf("%s (%d ms)", where, rec.DurationMS))
		return rec, nil
	case errors.Is(hookCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		rec.Error = fmt.Sprintf("timed out after %s", time.Duration(h.Timeout))
		return rec, fmt.Errorf("backup hook %s of service %s in container %s: no answer within its timeout %s (the command may still run there: check it with docker top %s); raise timeout in x-lifecycle.backup.hooks",
			phase, h.Service, name, time.Duration(h.Timeout), name)
	case errors.As(err, &exitErr):
		rec.Error = fmt.Sprintf("exit code %d", exitErr.ExitCode)
		named := *exitErr // the engine names the container by ID
		named.Container = name
		return rec, fmt.Errorf("backup hook %s of service %s: %w: fix the command in x-lifecycle.backup.hooks (try it with docker exec %s …), or set on-failure: continue",
			phase, h.Service, &named, name)
	default:
		rec.Error = err.Error()
		return rec, fmt.Errorf("backup hook %s of service %s in container %s: %w", phase, h.Service, name, err)
	}
}
