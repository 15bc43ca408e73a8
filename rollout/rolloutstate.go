package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// The rollout state is what a running rollout publishes on the engine for `watch`, beyond
// what the engine shows by itself (the containers with their revision and health; the
// router's weights and counters): which services it rolls, to which revision, and a
// canary's step, time left, pause and analysis verdicts. It is the smallest state that lets
// another process draw the same rollout view, and it lives only while the rollout runs:
// the verdicts go on in the revision records' timelines, where a watcher that missed the
// last state finds them.
//
// Volume labels cannot change, so each change is a new volume (the sequence number in its
// name and a label) and the one before is removed after it: a reader always finds at least
// one, and takes the highest number. A canary writes a few per step; nothing is written
// on a timer.
const (
	labelRolloutState = "io.lifecycle.rollout-state" // value: the JSON RolloutState
	labelRolloutSeq   = "io.lifecycle.rollout-seq"
)

// RolloutState is the published state of a running rollout.
type RolloutState struct {
	Started time.Time `json:"started"`
	// Rollback: the rollout takes services back to a retained revision (`rollback`).
	Rollback bool             `json:"rollback,omitempty"`
	Services []ServiceRollout `json:"services"`
}

// ServiceRollout is one service of a running rollout.
type ServiceRollout struct {
	Service  string `json:"service"`
	Strategy string `json:"strategy"`
	// Revision is the revision the rollout brings up (0 when it changes no container's
	// revision, e.g. a scale).
	Revision int          `json:"revision,omitempty"`
	Canary   *CanaryState `json:"canary,omitempty"`
}

// CanaryState is where a canary is: its step (1-based; 0 before the first), the weight of
// that step, when the step's pause ends (while not paused), what was left when it was
// paused, and the analysis verdicts so far.
type CanaryState struct {
	Step       int       `json:"step"`
	Steps      int       `json:"steps"`
	Weight     int       `json:"weight"`
	StepEnds   time.Time `json:"step_ends,omitzero"`
	Paused     bool      `json:"paused,omitempty"`
	PausedLeft int64     `json:"paused_left_ms,omitempty"`
	Promoted   bool      `json:"promoted,omitempty"`
	Verdicts   []string  `json:"verdicts,omitempty"`
}

func rolloutStateFilter(project string) map[string]string {
	return map[string]string{compose.LabelProject: project, labelRolloutSeq: ""}
}

// maxVerdicts bounds the verdicts a state keeps (a label stays small).
const maxVerdicts = 10

// statePublisher writes the rollout state of one Execute; writes are serialised and
// their failures reported once (the view is a help: the rollout goes on without it).
type statePublisher struct {
	eng     engine.Engine
	project string
	events  progress.Writer

	// timeline keeps the verdicts with the records (the state goes with the rollout).
	timeline *timelineRecorder
	// steps gives each analyze step of the plan its place and weight (canaryPosition).
	steps map[int][2]int

	mu     sync.Mutex
	seq    int
	volume string
	state  RolloutState
	warned bool
}

// newStatePublisher removes what the previous rollout left and publishes the plan's
// services.
func newStatePublisher(ctx context.Context, eng engine.Engine, d *compose.Desired, plan strategies.Plan, rollback bool, events progress.Writer, now time.Time) *statePublisher {
	sp := &statePublisher{eng: eng, project: d.Project.Name, events: events, state: RolloutState{Started: now.UTC(), Rollback: rollback}, steps: map[int][2]int{}}
	clearRolloutState(ctx, eng, sp.project)
	byService := map[string]*ServiceRollout{}
	for _, service := range plan.Services() {
		sr := ServiceRollout{Service: service, Strategy: string(d.Project.ServiceSpecs[service].Strategy)}
		if sr.Strategy == "" {
			sr.Strategy = string(compose.StrategyRecreate)
		}
		sp.state.Services = append(sp.state.Services, sr)
	}
	for i := range sp.state.Services {
		byService[sp.state.Services[i].Service] = &sp.state.Services[i]
	}
	for _, s := range plan.Steps {
		sr := byService[s.Service]
		if sr == nil {
			continue
		}
		if s.Action == strategies.Create || s.Action == strategies.Start {
			sr.Revision = max(sr.Revision, s.Revision)
		}
		if s.Action == strategies.Analyze {
			if sr.Canary == nil {
				sr.Canary = &CanaryState{}
			}
			sr.Canary.Steps++
			step, weight := canaryPosition(plan, s, d.Project.ServiceSpecs[s.Service])
			sp.steps[s.ID] = [2]int{step, weight}
		}
	}
	for _, st := range plan.Strategies {
		if sr := byService[st.Service]; sr != nil && st.Strategy != "" {
			sr.Strategy = st.Strategy
		}
	}
	sp.mu.Lock()
	sp.writeLocked(ctx)
	sp.mu.Unlock()
	return sp
}

// update changes the service's state and publishes it.
func (sp *statePublisher) update(ctx context.Context, service string, change func(*ServiceRollout)) {
	if sp == nil {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for i := range sp.state.Services {
		if sp.state.Services[i].Service == service {
			change(&sp.state.Services[i])
			sp.writeLocked(ctx)
			return
		}
	}
}

// stepStarted publishes that the canary's analysis step s began, its pause lasting d.
func (sp *statePublisher) stepStarted(ctx context.Context, s strategies.Step, d time.Duration) {
	if sp == nil {
		return
	}
	pos := sp.steps[s.ID]
	sp.canary(ctx, s.Service, func(c *CanaryState) {
		c.Step, c.Weight, c.StepEnds, c.Paused, c.PausedLeft = pos[0], pos[1], time.Now().Add(d).UTC(), false, 0
	})
}

// verdict adds an analysis verdict of the step s.
func (sp *statePublisher) verdict(ctx context.Context, s strategies.Step, text string) {
	if sp == nil {
		return
	}
	pos := sp.steps[s.ID]
	sp.canary(ctx, s.Service, func(c *CanaryState) {
		c.Verdicts = append(c.Verdicts, fmt.Sprintf("step %d/%d (%d%%) %s", pos[0], c.Steps, pos[1], text))
		if sp.timeline != nil {
			sp.timeline.addVerdict(s.Service, c.Verdicts[len(c.Verdicts)-1])
		}
	})
}

// canary is update for a canary's part of the state.
func (sp *statePublisher) canary(ctx context.Context, service string, change func(*CanaryState)) {
	sp.update(ctx, service, func(sr *ServiceRollout) {
		if sr.Canary == nil {
			sr.Canary = &CanaryState{}
		}
		change(sr.Canary)
		if n := len(sr.Canary.Verdicts); n > maxVerdicts {
			sr.Canary.Verdicts = slices.Clone(sr.Canary.Verdicts[n-maxVerdicts:])
		}
	})
}

// writeStateTimeout bounds one write: the rollout must not wait on its view.
const writeStateTimeout = 5 * time.Second

func (sp *statePublisher) writeLocked(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeStateTimeout)
	defer cancel()
	raw, err := json.Marshal(sp.state)
	if err == nil {
		sp.seq++
		name := fmt.Sprintf("%s_lifecycle-rollout-%d", sp.project, sp.seq)
		_, err = sp.eng.CreateVolume(ctx, engine.VolumeSpec{Name: name, Labels: map[string]string{
			compose.LabelProject: sp.project, compose.LabelManagedBy: compose.ManagedByValue,
			labelRolloutSeq: strconv.Itoa(sp.seq), labelRolloutState: string(raw),
		}})
		if err == nil {
			if sp.volume != "" {
				_ = sp.eng.RemoveVolume(ctx, sp.volume)
			}
			sp.volume = name
			return
		}
	}
	if !sp.warned {
		sp.warned = true
		progress.Emit(sp.events, "Project "+sp.project, progress.Warning, "Rollout state not published",
			fmt.Sprintf("`docker lifecycle watch` elsewhere cannot follow this rollout: %v", err))
	}
}

// close removes the published state once the records are written (they hold the result).
func (sp *statePublisher) close() {
	ctx, cancel := context.WithTimeout(context.Background(), writeStateTimeout)
	defer cancel()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	clearRolloutState(ctx, sp.eng, sp.project)
	sp.volume = ""
}

// clearRolloutState removes every published state of the project.
func clearRolloutState(ctx context.Context, eng engine.Engine, project string) {
	vols, err := eng.ListVolumes(ctx, rolloutStateFilter(project))
	if err != nil {
		return
	}
	for _, v := range vols {
		_ = eng.RemoveVolume(ctx, v.Name)
	}
}

// readRolloutState returns the newest published state of the project, and whether there
// is one.
func readRolloutState(ctx context.Context, eng engine.Engine, project string) (RolloutState, bool, error) {
	vols, err := eng.ListVolumes(ctx, rolloutStateFilter(project))
	if err != nil {
		return RolloutState{}, false, fmt.Errorf("read the rollout state of project %s: %w", project, err)
	}
	best, found := -1, false
	var state RolloutState
	for _, v := range vols {
		seq, err := strconv.Atoi(v.Labels[labelRolloutSeq])
		if err != nil || seq <= best {
			continue
		}
		var s RolloutState
		if json.Unmarshal([]byte(v.Labels[labelRolloutState]), &s) != nil {
			continue
		}
		best, state, found = seq, s, true
	}
	return state, found, nil
}

// canaryPosition is the step's place among the plan's analysis steps of its service
// (1-based), and the weight the step judges.
func canaryPosition(plan strategies.Plan, s strategies.Step, spec compose.ServiceSpec) (step, weight int) {
	for _, other := range plan.Steps {
		if other.Action == strategies.Analyze && other.Service == s.Service {
			step++
			if other.ID == s.ID {
				break
			}
		}
	}
	var weights []int
	for _, st := range spec.Canary.Steps {
		if st.Weight < 100 {
			weights = append(weights, st.Weight)
		}
	}
	if step >= 1 && step <= len(weights) {
		weight = weights[step-1]
	}
	return step, weight
}
