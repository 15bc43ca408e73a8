package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// DeployOptions are the deploy command's choices.
type DeployOptions struct {
	Services      []string
	RemoveOrphans bool
	// DryRun plans only: the engine is wrapped so no write can reach it.
	DryRun      bool
	WaitTimeout time.Duration
	// LocalEngine enables the host port probe: the engine's ports are this host's ports.
	LocalEngine bool
	Command     string
	Checkpoint  func(strategies.Step)
	// Rollback names the revision each service goes back to (see RollbackTargets).
	Rollback map[string]int
	// Trigger and Reason are recorded with each service's successful rollout (the
	// guard's automatic rollback: TriggerGuardRollback and why).
	Trigger, Reason string
	// Promote switches blue-green services with manual promotion to the new colour.
	Promote bool
	// Replace gives these services new containers although nothing changed, with
	// ReplaceCause as the cause (secrets rotate).
	Replace      []string
	ReplaceCause string
	// Scan runs the image scan gate first (not on a dry run); ScanDockerHost is the
	// engine address trivy may read images from ("" sends archives, see ScanProject).
	Scan           bool
	ScanDockerHost string
	// Build builds every selected service that has a build: section first (deploy
	// --build); without it only those with pull_policy: build or a missing image.
	Build bool
	// Pull is deploy --pull (PullModes; "" is PullPolicy: each service's pull_policy);
	// RegistryAuth gives the credentials for a pull (nil: none).
	Pull         string
	RegistryAuth RegistryAuth
	// ToolVersion goes into the manifest of a pre-deploy backup (predeploy.go).
	ToolVersion string
	// View, if set, is given the rollout view while the plan runs (ExecOptions.View).
	View func(RolloutView)
	// beforeRollout runs inside the lock after planning and the pre-deploy backup,
	// before the rollout's first write; afterRollout once the rollout succeeded (rollback
	// --with-data: stop and restore, then start what it stopped; rollbackdata.go). A
	// rollout error goes through rolloutFailed, which may add what was already done.
	beforeRollout func(context.Context) error
	afterRollout  func(context.Context) error
	rolloutFailed func(error) error
	// lockHeld: the caller holds the project's lock on this engine already (a
	// multi-host run holds every host's for its whole length, multihost.go).
	lockHeld bool
}

// releaseLock releases a deploy lock with a bound of its own (the deploy's context may
// be cancelled), warning when it cannot.
func releaseLock(l *lock.Lock, project string, events progress.Writer) {
	releaseCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Release(releaseCtx); err != nil {
		progress.Emit(events, "Project "+project, progress.Warning, "Lock not released", err.Error())
	}
}

// Deploy converges the project: build, scan gate, policy gate, lock, observe, plan, check,
// execute, verify, unlock. It returns the plan it ran (or would run, with DryRun).
func Deploy(ctx context.Context, eng engine.Engine, p *compose.Project, events progress.Writer, opts DeployOptions) (strategies.Plan, error) {
	// Each image is inspected once: Pull and Build decide from this, and only what they
	// pulled or built is inspected again.
	images, err := InspectImages(ctx, eng, p)
	if err != nil {
		return strategies.Plan{}, err
	}
	if !opts.DryRun {
		// Pulled and built first, so the scan and policy gates judge the images that will run.
		pulled, err := Pull(ctx, eng, p, images, opts.Services, opts.Pull, opts.RegistryAuth, events)
		if err != nil {
			return strategies.Plan{}, err
		}
		built, err := Build(ctx, eng, p, images, opts.Services, opts.Build, events)
		if err != nil {
			return strategies.Plan{}, err
		}
		if err := images.Refresh(ctx, eng, p, append(pulled, built...)); err != nil {
			return strategies.Plan{}, err
		}
	}
	if opts.Scan && !opts.DryRun {
		if err := ScanGate(ctx, eng, p, opts.Services, opts.ScanDockerHost, events); err != nil {
			return strategies.Plan{}, err
		}
	}
	if err := gatePolicy(p, images, events); err != nil {
		return strategies.Plan{}, err
	}
	if opts.DryRun {
		dry := engine.NewDryRun(eng)
		dry.ReadOnlyExec = readOnlyExec
		plan, _, _, err := planDeploy(ctx, dry, p, images, opts)
		if w := dry.Writes(); err == nil && len(w) > 0 {
			return plan, fmt.Errorf("internal error: planning tried to write to the engine: %s", strings.Join(w, "; "))
		}
		return plan, err
	}

	// Secret sources are read before any engine write: one that fails changes nothing.
	secretValues, err := readSecrets(ctx, p, opts.Services)
	if err != nil {
		return strategies.Plan{}, err
	}
	// So are the owners of the secret files: a user name the image lacks changes nothing.
	accounts, err := resolveSecretOwners(ctx, eng, p, images, opts.Services)
	if err != nil {
		return strategies.Plan{}, err
	}
	var holder lock.Holder // the rollout view names the rollout by its lock's holding
	if !opts.lockHeld {
		l, err := lock.Acquire(ctx, eng, p.Name, opts.Command, func(h lock.Holder) {
			progress.Emit(events, "Project "+p.Name, progress.Warning, "Stale lock taken over", h.String())
		})
		if err != nil {
			return strategies.Plan{}, err
		}
		defer releaseLock(l, p.Name, events)
		holder = l.Holder()
	} else if h, held, err := lock.Inspect(ctx, eng, p.Name); err == nil && held {
		holder = h
	}

	clearCanarySignals(ctx, eng, p.Name)
	defer clearCanarySignals(context.WithoutCancel(ctx), eng, p.Name)
	plan, desired, observed, err := planDeploy(ctx, eng, p, images, opts)
	if err != nil {
		return plan, err
	}
	for _, w := range plan.Warnings {
		progress.Emit(events, "", progress.Warning, w, "")
	}
	if plan.Empty() {
		return plan, nil
	}
	if opts.LocalEngine {
		if err := probeHostPorts(p, plan, observed); err != nil {
			return plan, err
		}
	}
	result := ResultDeployed
	if len(opts.Rollback) > 0 {
		result = ResultRollback
	}
	// The pre-deploy backup: after planning (which tells the services that change),
	// before the rollout's first engine write, under the lock.
	backups, err := backupBeforeDeploy(ctx, eng, p, plan, events, opts.ToolVersion)
	if err != nil {
		return plan, err
	}
	if opts.beforeRollout != nil {
		if err := opts.beforeRollout(ctx); err != nil {
			return plan, err
		}
	}
	created := newCreatedInspections(ctx, eng)
	if err := Execute(ctx, eng, desired, observed, plan, events, ExecOptions{WaitTimeout: opts.WaitTimeout, Checkpoint: opts.Checkpoint, Result: result, SecretValues: secretValues, Images: images, Accounts: accounts, Rollback: opts.Rollback, Trigger: opts.Trigger, Reason: opts.Reason, Created: created.add, Backups: backups, View: opts.View, Holder: holder}); err != nil {
		created.wait()
		if opts.rolloutFailed != nil {
			err = opts.rolloutFailed(err)
		}
		if len(opts.Rollback) > 0 {
			err = explainRecreateRollback(ctx, eng, p, plan, opts.Rollback, backups, err)
		}
		return plan, err
	}
	if err := verifyCreated(p, images, created, events); err != nil {
		return plan, err
	}
	if opts.afterRollout != nil {
		return plan, opts.afterRollout(ctx)
	}
	return plan, nil
}

// planDeploy observes the engine, derives the desired state once, and plans.
func planDeploy(ctx context.Context, eng engine.Engine, p *compose.Project, images Images, opts DeployOptions) (strategies.Plan, *compose.Desired, strategies.Observed, error) {
	observed, err := Observe(ctx, eng, p, images)
	if err != nil {
		return strategies.Plan{}, nil, observed, err
	}
	desired, err := compose.Desire(p)
	if err != nil {
		return strategies.Plan{}, nil, observed, err
	}
	plan, err := strategies.MakePlan(desired, observed, strategies.Options{
		Services: opts.Services, RemoveOrphans: opts.RemoveOrphans, Rollback: opts.Rollback, Promote: opts.Promote,
		Replace: opts.Replace, ReplaceCause: opts.ReplaceCause,
	})
	return plan, desired, observed, err
}

// Plan observes and plans without any engine write.
func Plan(ctx context.Context, eng engine.Engine, p *compose.Project, opts DeployOptions) (strategies.Plan, error) {
	opts.DryRun = true
	return Deploy(ctx, eng, p, progress.Nop, opts)
}

// probeHostPorts finds host ports held by processes outside Docker before anything is
// stopped: when the engine runs on this host, a port we cannot bind, the engine cannot
// either. Ports that the plan's own containers hold now are skipped.
func probeHostPorts(p *compose.Project, plan strategies.Plan, observed strategies.Observed) error {
	creating := map[string]bool{}
	replacing := map[string]bool{}
	routerCreated := false
	for _, s := range plan.Steps {
		switch s.Action {
		case strategies.Create:
			creating[s.Service] = true
		case strategies.Stop, strategies.Remove:
			replacing[s.Service] = true
		case strategies.EnsureRouter:
			routerCreated = true
		}
	}
	for service := range creating {
		if replacing[service] || compose.BehindRouter(p, service) {
			continue // its own old container, or the router, holds the port
		}
		for _, port := range p.Project.Services[service].Ports {
			if port.Published == "" || strings.Contains(port.Published, "-") {
				continue
			}
			if err := probePort(service, port.HostIP, port.Published, port.Protocol); err != nil {
				return err
			}
		}
	}
	if !routerCreated {
		return nil
	}
	// A router being created binds the routed ports; one being recreated holds them
	// now, as do the containers moving behind it: those ports are theirs to free.
	ports, err := compose.RoutedPorts(p)
	if err != nil {
		return err
	}
	for _, rp := range ports {
		if replacing[rp.Service] || observed.Router != nil {
			continue
		}
		if err := probePort(rp.Service, rp.HostIP, strconv.Itoa(rp.Published), "tcp"); err != nil {
			return err
		}
	}
	return nil
}

func probePort(service, hostIP, port, protocol string) error {
	host := hostIP
	if host == "" {
		host = "0.0.0.0"
	}
	addr := net.JoinHostPort(host, port)
	if protocol == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return portTaken(service, addr, "udp", err)
		}
		return c.Close()
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return portTaken(service, addr, "tcp", err)
	}
	return l.Close()
}

func portTaken(service, addr, proto string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("service %q publishes %s/%s: %w by another process on this host; free it or change the published port",
			service, addr, proto, strategies.ErrPortTaken)
	}
	return nil // e.g. a host IP not on this machine: let the engine decide
}

// gatePolicy refuses a project with blocking policy findings before any engine write,
// and mentions the warnings once.
func gatePolicy(p *compose.Project, images Images, events progress.Writer) error {
	findings, err := CheckPolicy(p, images)
	if err != nil {
		return err
	}
	if blocking := policy.Blocking(findings); len(blocking) > 0 {
		return policyError(blocking)
	}
	warnings := 0
	for _, f := range findings {
		if f.Level == policy.Warning && f.Allowed == "" {
			warnings++
		}
	}
	if warnings > 0 {
		progress.Emit(events, "Project "+p.Name, progress.Info, fmt.Sprintf("Policy: %d warnings; `docker lifecycle lint` lists them", warnings), "")
	}
	return nil
}
