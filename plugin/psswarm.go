package plugin

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/cli/cli/command/formatter"
	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// defaultSwarmPsFormat is ps on a project deployed to Swarm: one line per task, as
// `docker stack ps` (docs/swarm.md), named by compose service and revision as on one
// engine (REVISION "-" for a service without revisions: rolling, the router).
const defaultSwarmPsFormat = "table {{.Service}}\t{{.Name}}\t{{if .Revision}}{{.Revision}}{{else}}-{{end}}\t{{.Node}}\t{{.DesiredState}}\t{{.State}}\t{{.Image}}\t{{.Error}}\t{{.Ports}}"

func writeSwarmPs(w io.Writer, format string, rows []rollout.SwarmTask) error {
	header := formatter.SubHeaderContext{
		"Service": "SERVICE", "Name": formatter.NameHeader, "Node": "NODE", "DesiredState": "DESIRED", "State": formatter.StateHeader,
		"Image": formatter.ImageHeader, "Error": "ERROR", "Ports": formatter.PortsHeader, "ID": "ID", "Project": "PROJECT",
		"Number": "NUMBER", "SwarmService": "SWARM SERVICE", "Since": "SINCE", "Revision": "REVISION", "Role": "ROLE",
	}
	out := make([]formatter.SubContext, len(rows))
	for i, t := range rows {
		out[i] = &swarmPsRow{t: t}
	}
	return writeRows(w, format, defaultSwarmPsFormat, &swarmPsRow{HeaderContext: formatter.HeaderContext{Header: header}}, out)
}

// swarmPsRow is one task of `ps` on Swarm; its exported methods are the --format fields
// and the keys of the JSON output (docs/swarm.md). Service, Name, Project, Number,
// Revision, Image, State and Ports mean what they mean on one engine.
type swarmPsRow struct {
	formatter.HeaderContext
	t rollout.SwarmTask
}

func (r *swarmPsRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }
func (r *swarmPsRow) ID() string                   { return r.t.ID }

// Name is the task's name as docker stack ps shows it: <swarm service>.<slot>.
func (r *swarmPsRow) Name() string {
	if r.t.Slot == 0 {
		return r.t.SwarmService + "." + r.t.Node
	}
	return fmt.Sprintf("%s.%d", r.t.SwarmService, r.t.Slot)
}
func (r *swarmPsRow) Project() string      { return r.t.Project }
func (r *swarmPsRow) Service() string      { return r.t.Service }
func (r *swarmPsRow) SwarmService() string { return r.t.SwarmService }
func (r *swarmPsRow) Revision() string     { return swarmRevision(r.t.Revision) }
func (r *swarmPsRow) Role() string         { return swarmRole(r.t.Router) }
func (r *swarmPsRow) Number() int          { return r.t.Slot }
func (r *swarmPsRow) Node() string         { return cmp.Or(r.t.Node, "-") }
func (r *swarmPsRow) DesiredState() string { return r.t.DesiredState }
func (r *swarmPsRow) State() string        { return r.t.State }
func (r *swarmPsRow) Image() string        { return r.t.Image }
func (r *swarmPsRow) Error() string        { return r.t.Err }

// Since is when the task reached its state, RFC 3339 in UTC ("" if unknown).
func (r *swarmPsRow) Since() string {
	if r.t.Since.IsZero() {
		return ""
	}
	return r.t.Since.UTC().Format("2006-01-02T15:04:05Z")
}

// Ports are the service's ingress ports (*:published->target, every node) and the
// task's host-mode ports (node's address implied: published->target).
func (r *swarmPsRow) Ports() string {
	var out []string
	for _, p := range r.t.ServicePorts {
		if p.PublishMode == swarm.PortConfigPublishModeHost || p.PublishedPort == 0 {
			continue
		}
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	for _, p := range r.t.Ports {
		out = append(out, fmt.Sprintf("%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	sort.Strings(out)
	return strings.Join(slices.Compact(out), ", ")
}

// swarmRevision is a revision as one engine's ps shows it: the number, "" for a
// Swarm service without revisions (rolling, and the router).
func swarmRevision(rev int) string {
	if rev == 0 {
		return ""
	}
	return strconv.Itoa(rev)
}

// swarmRole is what a Swarm service is for, as the io.lifecycle.role label says it:
// the project's router, or a compose service.
func swarmRole(router bool) string {
	if router {
		return compose.RoleRouter
	}
	return compose.RoleApp
}
