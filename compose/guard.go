package compose

import (
	"fmt"
	"time"
)

// Defaults of x-lifecycle.guard (docs/guard.md): Kubernetes' CrashLoopBackOff numbers
// (10 s doubling to 5 min, reset after 10 min healthy) and a budget of 3 restarts in 10 min.
const (
	DefaultGuardBackoffStart = 10 * time.Second
	DefaultGuardBackoffCap   = 5 * time.Minute
	DefaultGuardResetAfter   = 10 * time.Minute
	DefaultGuardBudget       = 3
	DefaultGuardWindow       = 10 * time.Minute
	// DefaultGuardRollbackWindow: a revision that exhausts a container's restart budget
	// within 30 min of its deploy is most likely the cause, and its predecessor is still
	// retained; later, load or a dependency is as likely, and a rollback would hide it.
	DefaultGuardRollbackWindow = 30 * time.Minute
)

// GuardSpec is x-lifecycle.guard: how `docker lifecycle guard` heals a service's
// containers. The top-level block holds the project's defaults; a service's block
// overrides them key by key.
type GuardSpec struct {
	// After is how long a container may fail its health check, counted from the first
	// failing probe, before the guard restarts it. Zero: the container's own healthcheck
	// interval × retries (the time the engine takes to call it unhealthy), read from the
	// container when the guard watches it.
	After Duration `mapstructure:"after" json:"after,omitempty" yaml:"after,omitempty"`
	// Backoff spaces the restarts of one container.
	Backoff GuardBackoff `mapstructure:"backoff" json:"backoff" yaml:"backoff"`
	// Budget is how many restarts of one container the guard makes within Window; when
	// it is spent, the container is quarantined: no more restarts, an alert.
	Budget int      `mapstructure:"budget" json:"budget,omitempty" yaml:"budget,omitempty"`
	Window Duration `mapstructure:"window" json:"window,omitempty" yaml:"window,omitempty"`
	// RollbackWindow: when the budget of a container is spent and the service's current
	// revision was deployed less than this long ago, the guard rolls the service back to
	// its previous revision instead of quarantining the container. A pointer, because 0s
	// is meaningful (off) and differs from unset (the project's value or the default).
	RollbackWindow *Duration `mapstructure:"rollback-window" json:"rollback-window,omitempty" yaml:"rollback-window,omitempty"`
}

// RollbackWindowOrDefault is the resolved rollback-window (0: off).
func (g GuardSpec) RollbackWindowOrDefault() time.Duration {
	if g.RollbackWindow == nil {
		return DefaultGuardRollbackWindow
	}
	return time.Duration(*g.RollbackWindow)
}

// GuardBackoff is the delay between two restarts of one container: Start, doubling
// after each restart up to Cap, back to Start once the container was healthy for
// ResetAfter.
type GuardBackoff struct {
	Start      Duration `mapstructure:"start" json:"start,omitempty" yaml:"start,omitempty"`
	Cap        Duration `mapstructure:"cap" json:"cap,omitempty" yaml:"cap,omitempty"`
	ResetAfter Duration `mapstructure:"reset-after" json:"reset-after,omitempty" yaml:"reset-after,omitempty"`
}

// overlay returns g with every key that o sets taken from o (a service's block over
// the project's).
func (g GuardSpec) overlay(o GuardSpec) GuardSpec {
	if o.After != 0 {
		g.After = o.After
	}
	if o.Backoff.Start != 0 {
		g.Backoff.Start = o.Backoff.Start
	}
	if o.Backoff.Cap != 0 {
		g.Backoff.Cap = o.Backoff.Cap
	}
	if o.Backoff.ResetAfter != 0 {
		g.Backoff.ResetAfter = o.Backoff.ResetAfter
	}
	if o.Budget != 0 {
		g.Budget = o.Budget
	}
	if o.Window != 0 {
		g.Window = o.Window
	}
	if o.RollbackWindow != nil {
		g.RollbackWindow = o.RollbackWindow
	}
	return g
}

// withDefaults fills what neither block set (After stays zero: it is the container's).
func (g GuardSpec) withDefaults() GuardSpec {
	if g.Backoff.Start == 0 {
		g.Backoff.Start = Duration(DefaultGuardBackoffStart)
	}
	if g.Backoff.Cap == 0 {
		g.Backoff.Cap = Duration(max(DefaultGuardBackoffCap, time.Duration(g.Backoff.Start)))
	}
	if g.Backoff.ResetAfter == 0 {
		g.Backoff.ResetAfter = Duration(DefaultGuardResetAfter)
	}
	if g.Budget == 0 {
		g.Budget = DefaultGuardBudget
	}
	if g.Window == 0 {
		g.Window = Duration(DefaultGuardWindow)
	}
	if g.RollbackWindow == nil {
		w := Duration(DefaultGuardRollbackWindow)
		g.RollbackWindow = &w
	}
	return g
}

// checkGuard validates the keys one block sets (negative durations are refused by the
// decoder already).
func checkGuard(g GuardSpec) error {
	if g.Budget < 0 {
		return fmt.Errorf("key \"guard.budget\" must be a number of restarts of 1 or more, got %d (a budget of 0 would quarantine at the first failure: leave the service unguarded instead)", g.Budget)
	}
	if g.Backoff.Start != 0 && g.Backoff.Cap != 0 && g.Backoff.Cap < g.Backoff.Start {
		return fmt.Errorf("key \"guard.backoff.cap\" (%s) must not be below guard.backoff.start (%s): raise the cap or lower the start", g.Backoff.Cap, g.Backoff.Start)
	}
	return nil
}

// resolveGuard gives a service its guard policy: the project's block, overlaid with
// the service's, then the defaults; and checks the result as a whole.
func resolveGuard(project GuardSpec, spec *ServiceSpec) error {
	g := project.overlay(spec.Guard).withDefaults()
	if g.Backoff.Cap < g.Backoff.Start {
		return fmt.Errorf("key \"guard.backoff.cap\" (%s) must not be below guard.backoff.start (%s), counting the project's x-lifecycle.guard: raise the cap or lower the start", g.Backoff.Cap, g.Backoff.Start)
	}
	if time.Duration(g.Window) < time.Duration(g.Backoff.Start) {
		return fmt.Errorf("key \"guard.window\" (%s) is shorter than guard.backoff.start (%s), so the budget could never be spent: widen the window", g.Window, g.Backoff.Start)
	}
	spec.Guard = g
	return nil
}

// RoleGuard marks the detached guard's container (`guard --detach`): one per project,
// named DetachedAgentName, holding the engine's socket on purpose.
const RoleGuard = "guard"
