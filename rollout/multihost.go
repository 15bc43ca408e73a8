package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// Host is one engine of a multi-host deploy (x-lifecycle.hosts, docs/multihost.md): a
// Docker context's name, its engine and the project as loaded for it (its segment
// subnets chosen around that engine's networks, ObserveNetworks). Each host is
// deployed by the one-engine runtime (Deploy), with its own lock, health gates and
// automatic rollback.
type Host struct {
	Name    string
	Engine  engine.Engine
	Project *compose.Project
}

// HostsPlan is which hosts deploy in which batch: batches run one after the other,
// Wait apart, the hosts of a batch at most Concurrency at a time.
type HostsPlan struct {
	Batches     [][]string    `json:"batches"`
	Concurrency int           `json:"concurrency"`
	Wait        time.Duration `json:"wait"`
}

// PlanHosts splits the hosts, in their order, into batches of spec's size.
func PlanHosts(spec compose.HostsSpec, hosts []string) HostsPlan {
	size := spec.BatchSize(len(hosts))
	plan := HostsPlan{Concurrency: size, Wait: time.Duration(spec.Wait)}
	if spec.Concurrency > 0 {
		plan.Concurrency = min(spec.Concurrency, size)
	}
	for rest := hosts; len(rest) > 0; {
		n := min(size, len(rest))
		plan.Batches = append(plan.Batches, slices.Clone(rest[:n]))
		rest = rest[n:]
	}
	return plan
}

// Text prints the batches, one line each, and the waits between them.
func (p HostsPlan) Text() string {
	var b strings.Builder
	for i, batch := range p.Batches {
		if i > 0 && p.Wait > 0 {
			fmt.Fprintf(&b, "wait %s\n", p.Wait)
		}
		fmt.Fprintf(&b, "batch %d/%d: %s (%d at a time)\n", i+1, len(p.Batches), strings.Join(batch, ", "), min(p.Concurrency, len(batch)))
	}
	return b.String()
}

// Results of one host in a multi-host deploy.
const (
	HostSwitched     = "switched"      // runs the new version (deploy) or the older revision (rollback)
	HostUnchanged    = "unchanged"     // up to date: nothing to do
	HostFailed       = "failed"        // its change failed (rolled back on it when the runtime could)
	HostSkipped      = "skipped"       // not started: a host before it failed
	HostReverted     = "reverted"      // switched, then returned to what it ran because another host failed
	HostRevertFailed = "revert-failed" // switched, and returning it failed: it may run the new version
)

// HostOutcome is what a multi-host deploy did on one host.
type HostOutcome struct {
	Host   string `json:"host"`
	Batch  int    `json:"batch"`
	Result string `json:"result"`
	// Services are the services the deploy changed on the host (tried to change, for
	// HostFailed; rolled back, for HostReverted).
	Services []string `json:"services,omitempty"`
	Error    string   `json:"error,omitempty"`
	// Kept are changed services a rollback cannot return (the recreate strategy keeps
	// no previous revision, or the service is new on the host), with the reason.
	Kept []string `json:"kept,omitempty"`
}

// HostsRolledBackError: a host failed its deploy, and every host already switched
// was rolled back, so each one runs what it ran before. The plugin exits 3, as for
// a one-engine rollback.
type HostsRolledBackError struct {
	// Action is what failed: deploy, or rollback (RollbackHosts).
	Action     string
	Failed     []string
	RolledBack []string
	Cause      error
}

func (e *HostsRolledBackError) Error() string {
	return fmt.Sprintf("%s; the cause: %s", e.Summary(), e.Cause)
}

// Summary says which hosts failed and which went back, without the cause: for an
// interrupted run the plugin says "interrupted" instead of "context canceled".
func (e *HostsRolledBackError) Summary() string {
	back := "no other host had switched"
	if len(e.RolledBack) > 0 {
		back = revertedPhrase(e.RolledBack)
	}
	return fmt.Sprintf("%s failed on %s; %s", e.Action, hostList(e.Failed), back)
}

func (e *HostsRolledBackError) Unwrap() []error { return []error{ErrRolledBack, e.Cause} }

// revertedPhrase says the hosts are back on what they ran: "hosts a, b rolled back to
// the revisions they ran before".
func revertedPhrase(hosts []string) string {
	pronoun := "they"
	if len(hosts) == 1 {
		pronoun = "it"
	}
	return fmt.Sprintf("%s %s to the revisions %s ran before", hostList(hosts), ErrRolledBack, pronoun)
}

func hostList(hosts []string) string {
	if len(hosts) == 1 {
		return "host " + hosts[0]
	}
	return "hosts " + strings.Join(hosts, ", ")
}

// hostSteps are the engine work of a multi-host deploy or rollback, one host at a
// time: runHosts orders them; onHosts gives the real ones, the tests fakes.
type hostSteps struct {
	// action names the change in messages: deploy or rollback.
	action string
	// deploy deploys one host and returns the services it changed.
	deploy func(ctx context.Context, host string) ([]string, error)
	// rollback returns one switched host to what it ran before, given the services
	// the deploy changed there; kept are the ones it could not return, with why.
	rollback func(ctx context.Context, host string, changed []string) (kept []string, err error)
	// wait pauses between batches.
	wait func(ctx context.Context, d time.Duration) error
}

// runHosts runs the plan: batch after batch, at most plan.Concurrency hosts at a
// time; once a host fails, no further host starts (those of its batch already
// running finish), and every host switched so far rolls back (rollbackSet), as many
// at a time. Outcomes come in plan order.
func runHosts(ctx context.Context, plan HostsPlan, steps hostSteps, events progress.Writer) ([]HostOutcome, error) {
	var outcomes []HostOutcome
	index := map[string]int{}
	for b, batch := range plan.Batches {
		for _, h := range batch {
			index[h] = len(outcomes)
			outcomes = append(outcomes, HostOutcome{Host: h, Batch: b + 1, Result: HostSkipped})
		}
	}
	var (
		mu     sync.Mutex
		failed bool
		causes []error
	)
	for b, batch := range plan.Batches {
		if b > 0 && plan.Wait > 0 {
			progress.Emit(events, "Hosts", progress.Working, fmt.Sprintf("Waiting %s before batch %d/%d", plan.Wait, b+1, len(plan.Batches)), "")
			if err := steps.wait(ctx, plan.Wait); err != nil {
				failed, causes = true, append(causes, err)
				break
			}
		}
		progress.Emit(events, "Hosts", progress.Working, fmt.Sprintf("Batch %d/%d", b+1, len(plan.Batches)), strings.Join(batch, ", "))
		forEachLimited(batch, plan.Concurrency, func(h string) {
			mu.Lock()
			stop := failed
			mu.Unlock()
			if stop {
				return // skipped: a host of this batch failed already
			}
			changed, err := steps.deploy(ctx, h)
			mu.Lock()
			defer mu.Unlock()
			o := &outcomes[index[h]]
			o.Services = changed
			switch {
			case err != nil:
				o.Result, o.Error = HostFailed, firstLine(err)
				failed = true
				causes = append(causes, fmt.Errorf("host %s: %w", h, err))
			case len(changed) == 0:
				o.Result = HostUnchanged
			default:
				o.Result = HostSwitched
			}
		})
		if failed {
			break
		}
	}
	if !failed {
		return outcomes, nil
	}
	cause := errors.Join(causes...)
	back := rollbackSet(outcomes)
	if len(back) > 0 {
		progress.Emit(events, "Hosts", progress.Warning, "Rolling back "+hostList(back), "a host failed its "+steps.action+": all or nothing")
	}
	var rollbackErrs []error
	forEachLimited(back, plan.Concurrency, func(h string) {
		o := &outcomes[index[h]]
		kept, err := steps.rollback(context.WithoutCancel(ctx), h, o.Services)
		mu.Lock()
		defer mu.Unlock()
		o.Kept = kept
		if err != nil {
			o.Result, o.Error = HostRevertFailed, firstLine(err)
			rollbackErrs = append(rollbackErrs, fmt.Errorf("host %s: %w", h, err))
			return
		}
		o.Result = HostReverted
	})
	var failedHosts []string
	for _, o := range outcomes {
		if o.Result == HostFailed {
			failedHosts = append(failedHosts, o.Host)
		}
	}
	if len(rollbackErrs) > 0 {
		// The cause is not wrapped: its own hosts' RolledBackError would make this a
		// clean rollback (exit 3), which it is not.
		return outcomes, fmt.Errorf("%s failed on %s: %v; and the rollback failed on %w: those hosts may run the new version; look with `docker --context HOST lifecycle ps`, then `docker --context HOST lifecycle rollback`",
			steps.action, strings.Join(failedHosts, ", "), cause, errors.Join(rollbackErrs...))
	}
	var kept []string
	for _, o := range outcomes {
		for _, k := range o.Kept {
			kept = append(kept, o.Host+": "+k)
		}
	}
	if len(kept) > 0 {
		return outcomes, fmt.Errorf("%s failed on %s: %v; the hosts that had switched were rolled back, but these services keep the new version: %s",
			steps.action, strings.Join(failedHosts, ", "), cause, strings.Join(kept, "; "))
	}
	if len(failedHosts) == 0 { // the wait between batches was interrupted
		reverted := "no host had switched"
		if len(back) > 0 {
			reverted = revertedPhrase(back)
		}
		return outcomes, fmt.Errorf("multi-host %s stopped between batches; %s: %w", steps.action, reverted, cause)
	}
	return outcomes, &HostsRolledBackError{Action: steps.action, Failed: failedHosts, RolledBack: back, Cause: cause}
}

// rollbackSet is the hosts a failed multi-host deploy rolls back: those it switched
// (deployed, with a change), in plan order. A failed host rolled itself back (the
// runtime's automatic rollback); skipped and unchanged ones run what they ran.
func rollbackSet(outcomes []HostOutcome) []string {
	var out []string
	for _, o := range outcomes {
		if o.Result == HostSwitched {
			out = append(out, o.Host)
		}
	}
	return out
}

// forEachLimited runs fn for every item, at most limit at a time, and waits for all.
func forEachLimited(items []string, limit int, fn func(string)) {
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}

// DeployHosts deploys the project to every host of the plan (docs/multihost.md), each
// through Deploy, all or nothing: when a host fails, the hosts already switched go back
// to the revisions they ran before, through the same runtime as `rollback`. With
// opts.DryRun it plans every host and changes nothing: the plans come back per host.
func DeployHosts(ctx context.Context, hosts []Host, events progress.Writer, plan HostsPlan, opts DeployOptions) ([]HostOutcome, map[string]strategies.Plan, error) {
	return onHosts(ctx, hosts, events, plan, opts, "deploy", func(ctx context.Context, h Host, events progress.Writer, opts DeployOptions) (strategies.Plan, error) {
		return Deploy(ctx, h.Engine, h.Project, events, opts)
	})
}

// RollbackHosts is `rollback` on every host of the plan, in its batches, all or
// nothing like DeployHosts: each host's services go back to their previous revision
// (or to; revision numbers are each host's own, RollbackTargets), and when a host
// fails, the hosts already rolled back return to the revisions they ran before.
func RollbackHosts(ctx context.Context, hosts []Host, events progress.Writer, plan HostsPlan, services []string, to int, opts DeployOptions) ([]HostOutcome, map[string]strategies.Plan, error) {
	return onHosts(ctx, hosts, events, plan, opts, "rollback", func(ctx context.Context, h Host, events progress.Writer, opts DeployOptions) (strategies.Plan, error) {
		targets, err := RollbackTargets(ctx, h.Engine, h.Project, services, to)
		if err != nil {
			return strategies.Plan{}, err
		}
		one := opts
		one.Services, one.Rollback = slices.Sorted(maps.Keys(targets)), targets
		return Deploy(ctx, h.Engine, h.Project, events, one)
	})
}

// onHosts runs change (a deploy or a rollback of one host, with the options it is
// given) on every host of the plan through runHosts, or, with opts.DryRun, plans it on
// every host.
func onHosts(ctx context.Context, hosts []Host, events progress.Writer, plan HostsPlan, opts DeployOptions, action string,
	change func(context.Context, Host, progress.Writer, DeployOptions) (strategies.Plan, error)) ([]HostOutcome, map[string]strategies.Plan, error) {
	byName := map[string]Host{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	plans := map[string]strategies.Plan{}
	var mu sync.Mutex
	if opts.DryRun {
		var errs []error
		forEachLimited(flatten(plan.Batches), plan.Concurrency, func(name string) {
			pl, err := change(ctx, byName[name], hostEvents(events, name), opts)
			mu.Lock()
			defer mu.Unlock()
			plans[name] = pl
			if err != nil {
				errs = append(errs, fmt.Errorf("host %s: %w", name, err))
			}
		})
		return nil, plans, errors.Join(errs...)
	}
	// Every host's lock is held from before the first change to after the last
	// rollback, so no other deploy interleaves on any host; a host whose lock is held
	// stops the run before anything changed.
	locks, err := lockHosts(ctx, hosts, opts.Command+" (multi-host)", events)
	if err != nil {
		return nil, plans, err
	}
	defer func() {
		for i, l := range locks {
			releaseLock(l, hosts[i].Project.Name, hostEvents(events, hosts[i].Name))
		}
	}()
	opts.lockHeld = true
	steps := hostSteps{
		action: action,
		deploy: func(ctx context.Context, name string) ([]string, error) {
			pl, err := change(ctx, byName[name], hostEvents(events, name), opts)
			mu.Lock()
			plans[name] = pl
			mu.Unlock()
			return pl.Services(), err // on a failure, the services it was changing
		},
		rollback: func(ctx context.Context, name string, changed []string) ([]string, error) {
			return rollbackHost(ctx, byName[name].Engine, byName[name].Project, hostEvents(events, name), changed, opts)
		},
		wait: func(ctx context.Context, d time.Duration) error {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
				return nil
			}
		},
	}
	outcomes, err := runHosts(ctx, plan, steps, events)
	return outcomes, plans, err
}

// lockHosts takes the project's deploy lock on every host (lock.Acquire), or none:
// when one is held, those taken are released and every holder is named.
func lockHosts(ctx context.Context, hosts []Host, command string, events progress.Writer) ([]*lock.Lock, error) {
	locks := make([]*lock.Lock, len(hosts))
	errs := forEachHost(hosts, func(i int, h Host) error {
		l, err := lock.Acquire(ctx, h.Engine, h.Project.Name, command, func(holder lock.Holder) {
			progress.Emit(hostEvents(events, h.Name), "Project "+h.Project.Name, progress.Warning, "Stale lock taken over", holder.String())
		})
		locks[i] = l
		return err
	})
	if errs == nil {
		return locks, nil
	}
	for i, l := range locks {
		if l != nil {
			releaseLock(l, hosts[i].Project.Name, hostEvents(events, hosts[i].Name))
		}
	}
	return nil, fmt.Errorf("nothing changed on any host: %w", errs)
}

// rollbackHost returns the services a deploy changed on one host to the revisions
// that served before it (RollbackTargets), through Deploy as `rollback` does. Services
// with no previous revision (new on the host, or orphans the deploy removed), and
// recreate services (their previous revision would run on the new one's data), are
// kept and named.
func rollbackHost(ctx context.Context, eng engine.Engine, p *compose.Project, events progress.Writer, changed []string, opts DeployOptions) ([]string, error) {
	targets := map[string]int{}
	var kept []string
	for _, s := range changed {
		if _, inProject := p.Project.Services[s]; !inProject {
			kept = append(kept, s+" (not in the project: its containers were removed as orphans)")
			continue
		}
		if !p.ServiceSpecs[s].Routed() {
			kept = append(kept, s+" (recreate strategy: not rolled back automatically, its previous revision would run on the new one's data; `docker lifecycle rollback "+s+" [--with-data]` on the host does it)")
			continue
		}
		t, err := RollbackTargets(ctx, eng, p, []string{s}, 0)
		if errors.Is(err, ErrNothingToRollBack) {
			kept = append(kept, s+" (no previous revision on this host)")
			continue
		}
		if err != nil {
			return kept, err
		}
		targets[s] = t[s]
	}
	if len(targets) == 0 {
		return kept, nil
	}
	names := make([]string, 0, len(targets))
	for s := range targets {
		names = append(names, s)
	}
	slices.Sort(names)
	_, err := Deploy(ctx, eng, p, events, DeployOptions{
		Services: names, WaitTimeout: opts.WaitTimeout, Command: "docker lifecycle (multi-host: back to the previous revision)",
		Rollback: targets, Trigger: TriggerHostsRollback, Reason: "another host failed", ToolVersion: opts.ToolVersion,
		lockHeld: opts.lockHeld,
	})
	return kept, err
}

func flatten(batches [][]string) []string {
	var out []string
	for _, b := range batches {
		out = append(out, b...)
	}
	return out
}

// hostEvents prefixes every event of one host's deploy with the host's name, so the
// interleaved progress of several hosts reads apart.
func hostEvents(w progress.Writer, host string) progress.Writer {
	return hostWriter{w: w, prefix: "[" + host + "] "}
}

type hostWriter struct {
	w      progress.Writer
	prefix string
}

func (h hostWriter) Event(e progress.Event) {
	e.ID = h.prefix + e.ID
	h.w.Event(e)
}

// Close leaves the shared writer open: the command closes it once.
func (h hostWriter) Close() error { return nil }

// WriteHostsOutcomes prints one line per host: host, batch, result, services, error.
func WriteHostsOutcomes(w io.Writer, outcomes []HostOutcome) {
	for _, o := range outcomes {
		line := fmt.Sprintf("%-20s batch %d  %-15s", o.Host, o.Batch, o.Result)
		if len(o.Services) > 0 {
			line += "  " + strings.Join(o.Services, ", ")
		}
		if o.Error != "" {
			line += "  (" + o.Error + ")"
		}
		for _, k := range o.Kept {
			line += "  kept: " + k
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}
