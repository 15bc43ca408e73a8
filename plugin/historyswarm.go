package plugin

import (
	"cmp"
	"io"

	"github.com/docker/cli/cli/command/formatter"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// defaultSwarmHistoryFormat is history on a project deployed to Swarm: Swarm keeps one
// previous spec per service and the last update's status (docs/swarm.md); a service
// without revisions (rolling, the router) shows REVISION "-".
const defaultSwarmHistoryFormat = "table {{.Service}}\t{{if .Revision}}{{.Revision}}{{else}}-{{end}}\t{{.Image}}\t{{.PreviousImage}}\t{{.UpdateState}}\t{{.Time}}\t{{.UpdateMessage}}"

func writeSwarmHistory(w io.Writer, format string, rows []rollout.SwarmRevision) error {
	header := formatter.SubHeaderContext{
		"Service": "SERVICE", "SwarmService": "SWARM SERVICE", "Project": "PROJECT", "Image": "IMAGE", "PreviousImage": "PREVIOUS IMAGE",
		"UpdateState": "UPDATE", "UpdateMessage": "MESSAGE", "Time": "STARTED", "Revision": "REVISION", "Role": "ROLE",
	}
	out := make([]formatter.SubContext, len(rows))
	for i, r := range rows {
		out[i] = &swarmHistoryRow{r: r}
	}
	return writeRows(w, format, defaultSwarmHistoryFormat, &swarmHistoryRow{HeaderContext: formatter.HeaderContext{Header: header}}, out)
}

// swarmHistoryRow is one service of `history` on Swarm; its exported methods are the
// --format fields and the JSON keys (docs/swarm.md). Service, Revision, Image and Time
// mean what they mean on one engine.
type swarmHistoryRow struct {
	formatter.HeaderContext
	r rollout.SwarmRevision
}

func (h *swarmHistoryRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(h) }
func (h *swarmHistoryRow) Service() string              { return h.r.Service }
func (h *swarmHistoryRow) SwarmService() string         { return h.r.SwarmService }

// Revision is a number as in one engine's history; 0 for a Swarm service without
// revisions (rolling, the router).
func (h *swarmHistoryRow) Revision() int   { return h.r.Revision }
func (h *swarmHistoryRow) Role() string    { return swarmRole(h.r.Router) }
func (h *swarmHistoryRow) Project() string { return h.r.Project }
func (h *swarmHistoryRow) Image() string   { return h.r.Image }

// PreviousImage is the image of the spec before the last update, "-" when Swarm keeps
// none (never updated, or rolled back by Swarm).
func (h *swarmHistoryRow) PreviousImage() string { return cmp.Or(h.r.PreviousImage, "-") }
func (h *swarmHistoryRow) UpdateState() string   { return cmp.Or(h.r.UpdateState, "-") }
func (h *swarmHistoryRow) UpdateMessage() string { return h.r.UpdateMessage }

// Time is when the last update started, RFC 3339 in UTC ("" for none).
func (h *swarmHistoryRow) Time() string {
	if h.r.UpdateStarted.IsZero() {
		return ""
	}
	return h.r.UpdateStarted.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
