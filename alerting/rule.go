package alerting

import (
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// Subject is what a rule judges: a container of a service, or a service (Container
// empty) for the router's and the history's rules.
type Subject struct {
	Service   string
	Container string
}

// Observation is a rule's value for one subject at one evaluation. For the yes/no
// metrics (unhealthy, deploy) the value is 1 or 0.
type Observation struct {
	Rule compose.AlertRule
	Subject
	Value float64
}

type key struct {
	rule    string
	subject Subject
}

// phase of a (rule, subject): absent from the map is inactive.
type phase int

const (
	pending phase = iota // above the threshold, for less than `for`
	firing               // notified firing; resolving while clearSince is set
)

type state struct {
	phase      phase
	rule       compose.AlertRule
	since      time.Time // the condition began
	clearSince time.Time // firing: the resolve condition began (zero: it does not hold)
	value      float64
}

// Evaluator holds the state of every (rule, subject) of a project. The semantics
// (docs/observability.md#alerts):
//
//   - a value above the rule's threshold (Above) makes the pair pending; pending for
//     `for` it fires (one firing notification); dropping to the threshold or below
//     while pending returns it to inactive, silently;
//   - a firing pair resolves (one resolved notification) once its value stayed at or
//     below ResolveBelow (default: Above) for `for` again; a value above ResolveBelow
//     meanwhile restarts that count. Between the two thresholds nothing changes, so a
//     value hovering around one threshold cannot flap;
//   - a firing pair whose subject is gone (the container was removed or stopped)
//     resolves at once; a pending one is forgotten.
//
// It is pure: the caller gives each evaluation's time.
type Evaluator struct {
	Project string
	states  map[key]*state
}

// NewEvaluator returns an evaluator with nothing pending or firing.
func NewEvaluator(project string) *Evaluator {
	return &Evaluator{Project: project, states: map[key]*state{}}
}

// Observe takes one evaluation at now: the observations of the metrics listed in
// metrics (a source that could not be read is left out of both, so its pairs keep
// their state). A pair of those metrics without an observation is gone. It returns
// the notifications to send, in order.
func (e *Evaluator) Observe(now time.Time, metrics []string, obs []Observation) []Alert {
	var out []Alert
	seen := map[key]bool{}
	for _, o := range obs {
		k := key{o.Rule.Name, o.Subject}
		seen[k] = true
		above, resolve := thresholds(o.Rule)
		breach, clear := o.Value > above, o.Value <= resolve
		st := e.states[k]
		if st == nil {
			if !breach {
				continue
			}
			st = &state{phase: pending, rule: o.Rule, since: now}
			e.states[k] = st
		}
		st.rule, st.value = o.Rule, o.Value
		forD := time.Duration(o.Rule.For)
		switch st.phase {
		case pending:
			if !breach {
				delete(e.states, k)
				continue
			}
			if now.Sub(st.since) >= forD {
				st.phase = firing
				out = append(out, e.alert(StatusFiring, k, st, now))
			}
		case firing:
			if !clear {
				st.clearSince = time.Time{}
				continue
			}
			if st.clearSince.IsZero() {
				st.clearSince = now
			}
			if now.Sub(st.clearSince) >= forD {
				delete(e.states, k)
				out = append(out, e.alert(StatusResolved, k, st, now))
			}
		}
	}
	for k, st := range e.states {
		if seen[k] || !contains(metrics, st.rule.Metric) {
			continue
		}
		delete(e.states, k)
		if st.phase == firing {
			a := e.alert(StatusResolved, k, st, now)
			a.Summary += " (gone)"
			out = append(out, a)
		}
	}
	return out
}

// Firing counts the pairs firing now.
func (e *Evaluator) Firing() int {
	n := 0
	for _, st := range e.states {
		if st.phase == firing {
			n++
		}
	}
	return n
}

func thresholds(r compose.AlertRule) (above, resolve float64) {
	if r.Above != nil {
		above = float64(*r.Above)
	}
	resolve = above
	if r.ResolveBelow != nil {
		resolve = float64(*r.ResolveBelow)
	}
	return above, resolve
}

func (e *Evaluator) alert(status string, k key, st *state, now time.Time) Alert {
	above, resolve := thresholds(st.rule)
	a := Alert{
		Status: status, Source: SourceMonitor, Project: e.Project,
		Service: k.subject.Service, Container: k.subject.Container,
		Rule: st.rule.Name, Metric: st.rule.Metric, Severity: st.rule.Severity,
		Value: round(st.value), Threshold: above, ResolveBelow: resolve, Unit: units[st.rule.Metric],
		For: st.rule.For.String(), StartsAt: st.since.UTC(), Time: now.UTC(),
	}
	if st.rule.Window != 0 {
		a.Window = st.rule.Window.String()
	}
	if status == StatusResolved {
		end := now.UTC()
		a.EndsAt = &end
	}
	a.summarize()
	return a
}

func round(v float64) float64 {
	return float64(int64(v*100+0.5)) / 100
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
