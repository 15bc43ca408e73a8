package rollout

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// The guard's dependents: when it restarts a container X of service S, it restarts
// after it, under the same project lock,
//   - the running containers that join X's namespaces (network_mode, ipc or pid
//     `service:S`, which a deploy resolves to `container:<X's ID>`, or
//     `container:<X's name>`), read from the engine: a container sharing a dead network
//     namespace has no network until it is started again; of a service of several
//     replicas only the containers that joined X are restarted;
//   - the running containers of the services that declare `depends_on: {S: {restart:
//     true}}` (the target, from the compose file), as Compose restarts them when S is.
// Transitively (a dependent's own dependents follow it), each container once: no loop.
// A dependent's restart is not counted against its own budget and does not start its
// backoff.

// Dependent reasons (GuardDependent.Reason).
const (
	DependentNetworkMode = "network_mode"       // joins the network namespace of the service's container
	DependentIPC         = "ipc"                // joins its IPC namespace
	DependentPID         = "pid"                // joins its PID namespace
	DependentRestart     = "depends_on.restart" // depends_on: {SERVICE: {restart: true}}
)

// GuardDependent is a service restarted after a container of the service that lists it
// (GuardTargetService.Dependents).
type GuardDependent struct {
	Service string `json:"service"`
	Reason  string `json:"reason"`
}

// guardDependents lists the services of p that depend on service, sorted by service
// then reason.
func guardDependents(p *compose.Project, service string) []GuardDependent {
	var out []GuardDependent
	for name, svc := range p.Services {
		joins := false
		for _, m := range []struct{ mode, reason string }{{svc.NetworkMode, DependentNetworkMode}, {svc.Ipc, DependentIPC}, {svc.Pid, DependentPID}} {
			if ref, ok := strings.CutPrefix(m.mode, types.ServicePrefix); ok && ref == service {
				out = append(out, GuardDependent{Service: name, Reason: m.reason})
				joins = true
			}
		}
		// compose-go adds depends_on {service, restart: true} for a service:NAME
		// namespace: that one is the namespace's, whose containers are told apart at
		// runtime (only those joined to the restarted container follow it).
		if d, ok := svc.DependsOn[service]; ok && d.Restart && !joins {
			out = append(out, GuardDependent{Service: name, Reason: DependentRestart})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Service != out[j].Service {
			return out[i].Service < out[j].Service
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// joinedNamespaces are the container:REF namespace modes of d, by reason.
func joinedNamespaces(d engine.ContainerDetails) map[string]string {
	if d.HostConfig == nil {
		return nil
	}
	out := map[string]string{}
	for _, m := range []struct{ mode, reason string }{{string(d.HostConfig.NetworkMode), DependentNetworkMode}, {string(d.HostConfig.IpcMode), DependentIPC}, {string(d.HostConfig.PidMode), DependentPID}} {
		if ref, ok := strings.CutPrefix(m.mode, types.ContainerPrefix); ok && ref != "" {
			out[m.reason] = strings.TrimPrefix(ref, "/")
		}
	}
	return out
}

// refersTo: ref (of container:REF) names w, by ID, ID prefix or name.
func (w *watchedContainer) refersTo(ref string) bool {
	return ref == w.id || ref == w.name || (len(ref) >= 12 && strings.HasPrefix(w.id, ref))
}

// dependentRestart is one dependent container restarted after its parent.
type dependentRestart struct {
	id, name, service string
	parent            string // the container it follows (its parent's, or a dependent's)
	reason            string // a Dependent* constant
	began, at         time.Time
	err               error
	note              string
}

// dependentsOf lists the watched running containers to restart after w, parents before
// their dependents, each once, none busy (a restart of their own is in flight), and
// marks them busy.
func (g *guard) dependentsOf(w *watchedContainer) []*dependentRestart {
	var out []*dependentRestart
	queued := map[string]bool{w.id: true}
	ids := make([]string, 0, len(g.watched))
	for id := range g.watched {
		ids = append(ids, id)
	}
	sort.Strings(ids) // a stable order among siblings
	for i := -1; i < len(out); i++ {
		parent := w
		if i >= 0 {
			parent = g.watched[out[i].id]
		}
		restartOf := map[string]bool{} // the services with depends_on.restart on parent's
		for _, d := range g.project.Services[parent.service].Dependents {
			if d.Reason == DependentRestart {
				restartOf[d.Service] = true
			}
		}
		for _, id := range ids {
			c := g.watched[id]
			if queued[id] || c.busy {
				continue
			}
			reason := ""
			for _, r := range []string{DependentNetworkMode, DependentIPC, DependentPID} {
				if ref, ok := c.joins[r]; ok && parent.refersTo(ref) {
					reason = r
					break
				}
			}
			if reason == "" && restartOf[c.service] {
				reason = DependentRestart
			}
			if reason == "" {
				continue
			}
			queued[id] = true
			out = append(out, &dependentRestart{id: id, name: c.name, service: c.service, parent: parent.name, reason: reason})
		}
	}
	for _, d := range out {
		g.watched[d.id].busy = true
	}
	return out
}

// restartDependents stops and starts each dependent in order (the caller holds the
// project lock, and its parent is healthy again or its wait-timeout passed).
func (g *guard) restartDependents(ctx context.Context, deps []*dependentRestart) {
	for _, d := range deps {
		d.began = time.Now()
		d.at, d.note, d.err = g.restartContainer(ctx, d.id, d.name, g.project.Services[d.service])
	}
}

// dependentsFinished alerts each dependent's restart and reads the container again;
// its tracker's budget and backoff are left as they were. skipped: the parent's restart
// failed or was postponed, the dependents were not touched (no alert).
func (g *guard) dependentsFinished(ctx context.Context, deps []*dependentRestart, skipped bool) {
	for _, d := range deps {
		w := g.watched[d.id]
		if w == nil {
			continue
		}
		w.busy = false
		if skipped {
			continue
		}
		why := dependentWhy(d.reason, d.parent)
		a := GuardAlert{Time: d.at, Kind: AlertUnhealthy, Service: d.service, Container: d.name, Parent: d.parent, Dependency: d.reason, RestartBegan: &d.began}
		if d.err != nil {
			a.Action = ActionDependentFailed
			a.Reason = fmt.Sprintf("restart as a dependent failed: %v; it %s%s", d.err, why, d.note)
		} else {
			a.Action = ActionRestartedDependent
			a.Reason = fmt.Sprintf("restarted after %s: it %s; took %s (not counted against its own budget)%s", d.parent, why, d.at.Sub(d.began).Round(time.Millisecond), d.note)
		}
		g.alert(a)
		if err := g.inspect(ctx, d.id, time.Now()); err != nil && errors.Is(err, engine.ErrNotFound) {
			delete(g.watched, d.id)
		}
	}
}

// dependentNames lists deps' containers for an alert's reason.
func dependentNames(deps []*dependentRestart) string {
	names := make([]string, len(deps))
	for i, d := range deps {
		names[i] = d.name
	}
	return strings.Join(names, ", ")
}

func dependentWhy(reason, parent string) string {
	switch reason {
	case DependentNetworkMode:
		return "shares the network namespace of " + parent
	case DependentIPC:
		return "shares the IPC namespace of " + parent
	case DependentPID:
		return "shares the PID namespace of " + parent
	}
	return "declares depends_on.restart on the service of " + parent
}
