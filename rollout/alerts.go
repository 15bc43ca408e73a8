package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// AlertOptions are x-lifecycle.alerts as `monitor` evaluates them
// (docs/observability.md#alerts).
type AlertOptions struct {
	// Interval between two evaluations.
	Interval time.Duration
	// Rules are each service's rules (compose.ServiceSpec.Alerts, resolved).
	Rules map[string][]compose.AlertRule
	// Notify receives every notification (firing, resolved), in order.
	Notify func(alerting.Alert)
	// Log receives what could not be read at an evaluation (once per source and cause).
	Log func(string)
}

// NewAlertOptions gathers a loaded project's rules; nil when no service has any.
func NewAlertOptions(p *compose.Project) *AlertOptions {
	rules := map[string][]compose.AlertRule{}
	for name, spec := range p.ServiceSpecs {
		if len(spec.Alerts.Rules) > 0 {
			rules[name] = spec.Alerts.Rules
		}
	}
	if len(rules) == 0 {
		return nil
	}
	return &AlertOptions{Interval: p.Spec.Alerts.AlertInterval(), Rules: rules}
}

// alertWatcher turns what `monitor` reads (the stats streams' latest samples, the
// container list and its health, the routers' counters, the history, the engine's
// oom events) into observations for the evaluator, every interval.
type alertWatcher struct {
	eng     engine.Engine
	project string
	opts    AlertOptions
	eval    *alerting.Evaluator

	// counter windows by (rule, subject): restarts and oom by container, the
	// routers' counters by service.
	counts map[windowKey]*alerting.Window[uint64]
	routes map[windowKey]*alerting.Window[router.Counters]

	// ooms are the monitor's OOM kill counts (its one event stream).
	ooms *oomKills
	// drills reads the drill records for the drill-age rules; nil without a backup target.
	drills *drillWatch

	logged map[string]bool
}

type windowKey struct {
	rule, subject string
}

func newAlertWatcher(eng engine.Engine, project string, opts AlertOptions, ooms *oomKills, drills *drillWatch) *alertWatcher {
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	return &alertWatcher{
		eng: eng, project: project, opts: opts, eval: alerting.NewEvaluator(project),
		counts: map[windowKey]*alerting.Window[uint64]{}, routes: map[windowKey]*alerting.Window[router.Counters]{},
		ooms: ooms, drills: drills, logged: map[string]bool{},
	}
}

func (w *alertWatcher) warn(source, msg string) {
	if !w.logged[source+msg] {
		w.logged[source+msg] = true
		w.opts.Log(msg)
	}
}

func (w *alertWatcher) window(k windowKey, span compose.Duration) *alerting.Window[uint64] {
	win := w.counts[k]
	if win == nil {
		win = &alerting.Window[uint64]{Span: time.Duration(span)}
		w.counts[k] = win
	}
	return win
}

// evaluate reads the sources once and feeds the evaluator; the notifications go to
// opts.Notify.
func (w *alertWatcher) evaluate(ctx context.Context, m *metricsCollector, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	var read []string
	var obs []alerting.Observation
	observe := func(r compose.AlertRule, service, container string, v float64) {
		obs = append(obs, alerting.Observation{Rule: r, Subject: alerting.Subject{Service: service, Container: container}, Value: v})
	}

	all, err := ProjectContainers(ctx, w.eng, w.project, nil, true)
	if err != nil {
		w.warn("containers", fmt.Sprintf("alerts: list the containers of project %s: %v (container rules not evaluated)", w.project, err))
	} else {
		read = append(read, compose.AlertCPU, compose.AlertMemory, compose.AlertUnhealthy, compose.AlertRestarts, compose.AlertOOM)
		type sample struct {
			usage    Usage
			restarts int
			known    bool // the restart count was read
		}
		samples := map[string]sample{}
		m.mu.Lock()
		m.c.mu.Lock()
		for id, s := range m.c.samplers {
			samples[id] = sample{usage: s.usage, restarts: s.restarts, known: s.restartsRead}
		}
		m.c.mu.Unlock()
		m.mu.Unlock()
		ooms := w.ooms.eventCounts() // kills since the monitor started, not at first sight
		for _, ct := range all {
			service := ct.Labels[compose.LabelService]
			if ct.Labels[compose.LabelRole] != compose.RoleApp {
				continue // the router, the guard: not the project's services
			}
			running := ct.State == "running"
			s, sampled := samples[ct.ID]
			for _, r := range w.opts.Rules[service] {
				k := windowKey{r.Name, ct.ID}
				switch r.Metric {
				case compose.AlertCPU:
					if running && sampled && s.usage.Sampled {
						observe(r, service, ct.Name, s.usage.CPUPercent)
					}
				case compose.AlertMemory:
					if running && sampled && s.usage.MemoryLimitBytes > 0 {
						observe(r, service, ct.Name, s.usage.MemoryPercent)
					}
				case compose.AlertUnhealthy:
					if running {
						observe(r, service, ct.Name, boolFloat(ct.Health == "unhealthy"))
					}
				case compose.AlertRestarts:
					if running && sampled && s.known {
						win := w.window(k, r.Window)
						win.Add(now, uint64(s.restarts))
						base, latest, _ := win.Ends()
						observe(r, service, ct.Name, float64(alerting.Increase(base, latest)))
					}
				case compose.AlertOOM:
					if w.counts[k] == nil {
						// The kills are counted from the monitor's start (its event
						// stream): from zero, even a kill before this first evaluation.
						w.window(k, r.Window).Add(now, 0)
					}
					win := w.window(k, r.Window)
					win.Add(now, ooms[ct.ID])
					base, latest, _ := win.Ends()
					observe(r, service, ct.Name, float64(alerting.Increase(base, latest)))
				}
			}
		}
		w.forget(all)
	}

	if routed := w.rulesOf(compose.AlertErrorRate, compose.AlertP99); len(routed) > 0 {
		perService, ok := w.readRoutes(ctx, m)
		if ok {
			read = append(read, compose.AlertErrorRate, compose.AlertP99)
			for service, rules := range routed {
				c, ok := perService[service]
				if !ok {
					continue
				}
				for _, r := range rules {
					k := windowKey{r.Name, service}
					win := w.routes[k]
					if win == nil {
						win = &alerting.Window[router.Counters]{Span: time.Duration(r.Window)}
						w.routes[k] = win
					}
					win.Add(now, c)
					base, latest, _ := win.Ends()
					d := latest
					if latest.Requests >= base.Requests && latest.Latency.Count >= base.Latency.Count {
						d = latest.Sub(base)
					}
					switch r.Metric {
					case compose.AlertErrorRate:
						v := 0.0
						if d.Requests > 0 {
							v = 100 * float64(d.Responses5xx) / float64(d.Requests)
						}
						observe(r, service, "", v)
					case compose.AlertP99:
						observe(r, service, "", msOf(d.Latency.Quantile(0.99)))
					}
				}
			}
		}
	}

	if deploys := w.rulesOf(compose.AlertDeploy); len(deploys) > 0 {
		records, err := History(ctx, w.eng, w.project)
		if err != nil {
			w.warn("history", fmt.Sprintf("alerts: read the history of project %s: %v (deploy rules not evaluated)", w.project, err))
		} else {
			read = append(read, compose.AlertDeploy)
			last := map[string]Record{}
			for _, r := range records { // oldest first
				last[r.Service] = r
			}
			for service, rules := range deploys {
				rec, ok := last[service]
				if !ok {
					continue
				}
				for _, r := range rules {
					observe(r, service, "", boolFloat(rec.Result == ResultFailed || rec.Result == ResultRolledBack))
				}
			}
		}
	}

	if rules := w.projectRules(compose.AlertDrillAge); len(rules) > 0 {
		if w.drills == nil {
			w.warn("backups", "alerts: drill-age rules need x-lifecycle.backup.to (not evaluated)")
		} else if st, err := w.drills.status(ctx, now); err != nil {
			w.warn("backups", fmt.Sprintf("alerts: read the backups of project %s in %s: %v (drill-age not evaluated)", w.project, w.drills.to, err))
		} else if hours, ok := st.AgeHours(now); !ok {
			w.warn("backups", fmt.Sprintf("alerts: project %s has no backup in %s yet: drill-age is evaluated from the first one", w.project, w.drills.to))
		} else {
			read = append(read, compose.AlertDrillAge)
			for _, r := range rules {
				observe(r, "", "", hours)
			}
		}
	}

	for _, a := range w.eval.Observe(now, read, obs) {
		w.opts.Notify(a)
	}
}

// rulesOf returns the rules of the given metrics, by service.
func (w *alertWatcher) rulesOf(metrics ...string) map[string][]compose.AlertRule {
	out := map[string][]compose.AlertRule{}
	for service, rules := range w.opts.Rules {
		for _, r := range rules {
			for _, m := range metrics {
				if r.Metric == m {
					out[service] = append(out[service], r)
				}
			}
		}
	}
	return out
}

// projectRules returns the project's rules of metric, each once: a project rule is
// resolved into every service's rules, but it judges the project (one subject).
func (w *alertWatcher) projectRules(metric string) []compose.AlertRule {
	seen := map[string]bool{}
	var out []compose.AlertRule
	for _, service := range slices.Sorted(maps.Keys(w.opts.Rules)) {
		for _, r := range w.opts.Rules[service] {
			if r.Metric == metric && !seen[r.Name] {
				seen[r.Name] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// readRoutes reads every router's counters and sums them by service; ok is false when
// a router could not be read (the router rules then keep their state).
func (w *alertWatcher) readRoutes(ctx context.Context, m *metricsCollector) (map[string]router.Counters, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]router.Counters{}
	for _, id := range m.c.routerIDs {
		snap, err := m.c.readRouter(ctx, id)
		if err != nil {
			w.warn("router", fmt.Sprintf("alerts: read the router %s: %v (error-rate and p99 not evaluated)", id[:min(12, len(id))], err))
			return nil, false
		}
		for _, route := range snap.Routes {
			service := compose.ServiceOfRoute(route.Name)
			out[service] = addCounters(out[service], route.Counters)
		}
	}
	return out, true
}

// forget drops the windows of containers that no longer exist.
func (w *alertWatcher) forget(all []engine.Container) {
	exists := map[string]bool{}
	for _, ct := range all {
		exists[ct.ID] = true
	}
	for k := range w.counts {
		if !exists[k.subject] {
			delete(w.counts, k)
		}
	}
}

// GuardNotification is a guard's alert as a notification for the alert targets
// (status event, source guard, the guard's JSON under "guard").
func GuardNotification(a GuardAlert) alerting.Alert {
	raw, _ := json.Marshal(a)
	severity := compose.DefaultAlertSeverity
	// A container breaking the security rules (privileged, the socket, …) is urgent too.
	if a.Action == ActionQuarantined || a.Action == ActionRestartFailed || a.Action == ActionDependentFailed || a.Kind == AlertPolicy {
		severity = "critical"
	}
	return alerting.Alert{
		Status: alerting.StatusEvent, Source: alerting.SourceGuard, Project: a.Project,
		Service: a.Service, Container: a.Container, Rule: "guard", Metric: a.Kind, Severity: severity,
		For: "0s", StartsAt: a.Time.UTC(), Time: a.Time.UTC(), Summary: a.String(), Guard: raw,
	}
}
