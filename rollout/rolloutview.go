package rollout

import (
	"slices"
	"strconv"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/lock"
)

// RolloutView is the model of the rollout view that `deploy`, `rollback` and `promote`
// draw on a terminal and `watch` draws from elsewhere: per service of the rollout, each
// revision's containers, its share of the router's traffic and what the router counted
// for it; a canary's step, time left and verdicts; at the end, each service's result.
// It is built from engine-side state only (buildRolloutView), so both draw the same.
// Its JSON form is what `watch --progress json` prints (docs/observability.md).
type RolloutView struct {
	Project string    `json:"project"`
	Time    time.Time `json:"time"`
	// Command, Host, PID and Since are the lock holder's: who runs the rollout.
	Command string    `json:"command"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Since   time.Time `json:"since"`
	// Rollback: the rollout takes services back to a retained revision (`rollback`):
	// each service's Revision is the one it goes back to.
	Rollback bool `json:"rollback,omitempty"`
	// Ended: the rollout is over; each service's Result is set from its record.
	Ended    bool          `json:"ended"`
	Services []ServiceView `json:"services"`
	Warnings []string      `json:"warnings,omitempty"`
}

// ServiceView is one service of the rollout.
type ServiceView struct {
	Service  string `json:"service"`
	Strategy string `json:"strategy"`
	// Revision is the revision being rolled out, or rolled back to (0: none, e.g. a
	// scale).
	Revision  int            `json:"revision,omitempty"`
	Canary    *CanaryView    `json:"canary,omitempty"`
	Revisions []RevisionView `json:"revisions"`
	// Result and Reason come from the service's revision record once the rollout ended
	// (ResultDeployed, ResultRolledBack, ResultFailed, ResultRollback); "" before.
	Result string `json:"result,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// CanaryView is a canary's progress.
type CanaryView struct {
	Step     int      `json:"step"` // 1-based; 0 before the first analysis
	Steps    int      `json:"steps"`
	Weight   int      `json:"weight"` // the step's weight of the new revision, percent
	LeftMs   int64    `json:"left_ms"`
	Paused   bool     `json:"paused,omitempty"`
	Promoted bool     `json:"promoted,omitempty"`
	Verdicts []string `json:"verdicts,omitempty"`
}

// RevisionView is one revision of a service during the rollout.
type RevisionView struct {
	Revision int  `json:"revision"`
	New      bool `json:"new"` // the revision the rollout brings up (or back)
	// Routed: the router has backends of this revision; Weight is then its share of
	// new requests in percent (0 while draining).
	Routed     bool            `json:"routed"`
	Weight     int             `json:"weight"`
	Traffic    *TrafficView    `json:"traffic,omitempty"`
	Containers []ContainerView `json:"containers"`
}

// TrafficView is what the router counted for a revision over the last interval.
type TrafficView struct {
	RequestsPerSecond float64 `json:"requests_per_second"`
	// ErrorRate is 5xx answers and transport errors over requests (0 without requests).
	ErrorRate float64 `json:"error_rate"`
	P99Ms     float64 `json:"p99_ms"`
}

// ContainerView is one container of a revision.
type ContainerView struct {
	Name   string `json:"name"`
	State  string `json:"state"`
	Health string `json:"health,omitempty"`
}

// routerReading is one router's two last snapshots (Prev zero on the first reading).
type routerReading struct {
	Prev, Cur router.Snapshot
}

// viewInputs are what a view is built from, all read from the engine.
type viewInputs struct {
	Project    string
	Holder     lock.Holder
	State      RolloutState
	Containers []engine.Container // the project's containers, all states
	Routers    []routerReading
	// Records are the revision records written since the rollout began (when Ended).
	Records []Record
	Ended   bool
	Now     time.Time
	// Services limits the view to these services (watch SERVICE…); empty: all.
	Services []string
}

// buildRolloutView is the pure step from engine-side state to the view.
func buildRolloutView(in viewInputs) RolloutView {
	v := RolloutView{
		Project: in.Project, Time: in.Now.UTC(), Command: in.Holder.Command, Host: in.Holder.Host, PID: in.Holder.PID,
		Since: in.Holder.Since, Rollback: in.State.Rollback, Ended: in.Ended, Services: []ServiceView{},
	}
	for _, sr := range in.State.Services {
		if len(in.Services) > 0 && !slices.Contains(in.Services, sr.Service) {
			continue
		}
		sv := ServiceView{Service: sr.Service, Strategy: sr.Strategy, Revision: sr.Revision, Revisions: []RevisionView{}}
		if c := sr.Canary; c != nil {
			cv := &CanaryView{Step: c.Step, Steps: c.Steps, Weight: c.Weight, Paused: c.Paused, Promoted: c.Promoted, Verdicts: c.Verdicts}
			switch {
			case c.Paused:
				cv.LeftMs = c.PausedLeft
			case !c.StepEnds.IsZero() && !in.Ended:
				cv.LeftMs = max(c.StepEnds.Sub(in.Now).Milliseconds(), 0)
			}
			sv.Canary = cv
		}
		revs := map[int]*RevisionView{}
		rev := func(n int) *RevisionView {
			if revs[n] == nil {
				revs[n] = &RevisionView{Revision: n, New: n == sr.Revision && n > 0, Containers: []ContainerView{}}
			}
			return revs[n]
		}
		for _, c := range in.Containers {
			if c.Labels[compose.LabelService] != sr.Service || c.Labels[compose.LabelRole] == compose.RoleRouter ||
				c.Labels[compose.LabelOneoff] == "True" || !liveState(c.State) {
				continue
			}
			n, err := strconv.Atoi(c.Labels[compose.LabelRevision])
			if err != nil {
				continue
			}
			r := rev(n)
			r.Containers = append(r.Containers, ContainerView{Name: c.Name, State: c.State, Health: c.Health})
		}
		routeTraffic(sr.Service, in.Routers, rev)
		for _, r := range revs {
			slices.SortFunc(r.Containers, func(a, b ContainerView) int { return compareNames(a.Name, b.Name) })
			sv.Revisions = append(sv.Revisions, *r)
		}
		slices.SortFunc(sv.Revisions, func(a, b RevisionView) int { return a.Revision - b.Revision })
		if in.Ended {
			for i := len(in.Records) - 1; i >= 0; i-- {
				if r := in.Records[i]; r.Service == sr.Service {
					sv.Result, sv.Reason = r.Result, r.Reason
					// The record's verdicts are complete; the last state read may
					// predate the last of them.
					if t, err := r.Timeline(); err == nil && len(t.Verdicts) > 0 && sv.Canary != nil {
						sv.Canary.Verdicts = t.Verdicts
					}
					break
				}
			}
		}
		v.Services = append(v.Services, sv)
	}
	return v
}

// liveState: the containers a rollout view shows (retained, stopped ones are history).
func liveState(state string) bool {
	switch state {
	case "created", "running", "restarting", "paused", "removing":
		return true
	}
	return false
}

// compareNames orders container names with their numbers as numbers (web-r2-10 after
// web-r2-9).
func compareNames(a, b string) int {
	na, nb := trailingNumber(a), trailingNumber(b)
	if na >= 0 && nb >= 0 && a[:len(a)-len(strconv.Itoa(na))] == b[:len(b)-len(strconv.Itoa(nb))] {
		return na - nb
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func trailingNumber(s string) int {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) || len(s)-i > 9 {
		return -1
	}
	n, _ := strconv.Atoi(s[i:])
	return n
}

// routeTraffic sets the weights and traffic of the service's revisions from the routers
// that route it: the weights of its first route (its routes share their backends), the
// counters of all of them over the readings' interval.
func routeTraffic(service string, readings []routerReading, rev func(int) *RevisionView) {
	for _, rd := range readings {
		if !routesService(rd.Cur, service) {
			continue
		}
		prev := rd.Prev
		first := prev.Time.IsZero()
		if first {
			prev = rd.Cur // weights only: no interval to count over yet
		}
		samples := samplesOf(service, prev, rd.Cur)
		total := 0
		for _, s := range samples {
			total += s.Weight
		}
		for _, s := range samples {
			r := rev(s.Revision)
			r.Routed = true
			if total > 0 {
				r.Weight = (s.Weight*100 + total/2) / total
			}
			if first || s.IntervalMs <= 0 {
				continue
			}
			t := &TrafficView{RequestsPerSecond: float64(s.Requests) * 1000 / float64(s.IntervalMs), P99Ms: s.P99Ms}
			if s.Requests > 0 {
				t.ErrorRate = float64(s.Errors5xx+s.Errors) / float64(s.Requests)
			}
			r.Traffic = t
		}
		return
	}
}

func routesService(s router.Snapshot, service string) bool {
	for _, r := range s.Routes {
		if compose.ServiceOfRoute(r.Name) == service {
			return true
		}
	}
	return false
}
