package strategies

import (
	"fmt"

	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// Action is what a step does.
type Action string

const (
	CreateNetwork Action = "create-network"
	CreateVolume  Action = "create-volume"
	Stop          Action = "stop"
	Remove        Action = "remove"
	// Rename gives a container the name RenameTo: a recreate service's previous revision
	// is kept, stopped, under its revision's name, and gets the service's name back
	// when a rollback starts it again (recreate.go).
	Rename Action = "rename"
	Create Action = "create"
	Start  Action = "start"
	// WaitHealthy waits until the container is healthy, or running when it has no healthcheck.
	WaitHealthy Action = "wait-healthy"
	// WaitCompleted waits until the container exited with code 0.
	WaitCompleted Action = "wait-completed"
	// EnsureRouter creates (or recreates) the project's traffic router.
	EnsureRouter Action = "ensure-router"
	// Route sets a service's backends in the router; backends it no longer lists are
	// drained (in-flight requests finish) before the step ends.
	Route Action = "route"
	// Delay pauses between rolling batches (update_config.delay) or before the old
	// colour stops (blue-green scale-down-delay).
	Delay Action = "delay"
	// Analyze waits for a canary step's pause and then judges the new revision on the
	// router's counters of that window.
	Analyze Action = "analyze"
)

// Step is one engine-level change (or wait) with its cause.
type Step struct {
	ID      int    `json:"id"`
	Action  Action `json:"action"`
	Service string `json:"service,omitempty"`
	Target  string `json:"target"` // container, network or volume name
	// RenameTo is a rename step's new name for the container Target.
	RenameTo    string `json:"rename_to,omitempty"`
	ContainerID string `json:"container_id,omitempty"`
	Number      int    `json:"number,omitempty"`
	Revision    int    `json:"revision,omitempty"`
	ConfigHash  string `json:"config_hash,omitempty"` // of the container a create step makes
	// Backends are a route step's backends for the service once the step is done.
	Backends []RouteBackend `json:"backends,omitempty"`
	// Preview marks a route step of a blue-green service's preview port.
	Preview bool `json:"preview,omitempty"`
	// Replaces is, on a rolling batch's wait step, the old container the new one takes
	// the place of (kept when a tolerated failure leaves the slot to it).
	Replaces string `json:"replaces,omitempty"`
	// Duration is how long a delay or analyze step waits.
	Duration compose.Duration `json:"duration,omitempty"`
	Cause    string           `json:"cause"`
	After    []int            `json:"after,omitempty"` // IDs of steps that must finish first
}

// RouteBackend is a container in a service's route, with its share of new traffic.
type RouteBackend struct {
	Container string `json:"container"`
	Revision  int    `json:"revision"`
	Weight    int    `json:"weight"`
}

// Plan is the ordered list of steps that converges a project.
type Plan struct {
	Project string `json:"project"`
	Steps   []Step `json:"steps"`
	// Strategies say, for each service the plan changes, its strategy and why.
	Strategies []ServiceStrategy `json:"strategies,omitempty"`
	Warnings   []string          `json:"warnings,omitempty"`
}

// ServiceStrategy is a service's strategy and why it got it.
type ServiceStrategy struct {
	Service  string `json:"service"`
	Strategy string `json:"strategy"`
	Reason   string `json:"reason"`
}

// Empty reports whether the project is already converged.
func (p Plan) Empty() bool { return len(p.Steps) == 0 }

// Services lists the services that the plan changes, in first-step order.
func (p Plan) Services() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range p.Steps {
		if s.Service != "" && !seen[s.Service] {
			seen[s.Service] = true
			out = append(out, s.Service)
		}
	}
	return out
}

// WriteText prints the plan as a table, one step per line; this text is what the golden
// tests compare and what users read before a deploy.
func (p Plan) WriteText(w io.Writer) error {
	for _, warn := range p.Warnings {
		if _, err := fmt.Fprintf(w, "warning: %s\n", warn); err != nil {
			return err
		}
	}
	if p.Empty() {
		_, err := fmt.Fprintf(w, "Project %s is up to date: nothing to do.\n", p.Project)
		return err
	}
	if _, err := fmt.Fprintf(w, "Plan for project %s: %d steps\n", p.Project, len(p.Steps)); err != nil {
		return err
	}
	for _, s := range p.Strategies {
		if _, err := fmt.Fprintf(w, "strategy: %s %s: %s\n", s.Service, s.Strategy, s.Reason); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tACTION\tTARGET\tREVISION\tCAUSE\tAFTER")
	for _, s := range p.Steps {
		rev := ""
		if s.Revision > 0 {
			rev = strconv.Itoa(s.Revision)
		}
		after := make([]string, len(s.After))
		for i, a := range s.After {
			after[i] = strconv.Itoa(a)
		}
		target := s.Target
		if s.RenameTo != "" {
			target += " -> " + s.RenameTo
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Action, target, rev, s.Cause, strings.Join(after, ","))
	}
	return tw.Flush()
}
