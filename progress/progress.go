// Package progress reports what a deploy is doing, resource by resource, and
// renders those reports for people (tty, plain) or programs (json), like the
// --progress flag of docker compose and buildx.
package progress

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is the state of the action an Event reports.
type Status string

const (
	Working Status = "working" // an action started (e.g. "Creating")
	Done    Status = "done"    // finished OK (e.g. "Started", "Healthy")
	Warning Status = "warning"
	Error   Status = "error"
	Info    Status = "info" // a one-off message not tied to a long action
)

// Event is one progress update about one resource.
type Event struct {
	Time   time.Time `json:"time"`
	ID     string    `json:"id"` // resource, e.g. "Container demo-web-1", "Network demo_default"
	Status Status    `json:"status"`
	Text   string    `json:"text"`             // short verb phrase: "Creating", "Started", "Waiting for health", "Healthy"
	Detail string    `json:"detail,omitempty"` // cause or error detail: "image changed", "exit code 3"
}

// Writer consumes events. Implementations must be safe for concurrent use
// (the executor runs services in parallel).
type Writer interface {
	Event(e Event)
	// Close flushes and stops any background redraw; it is called once at the end.
	Close() error
}

// Values of the --progress flag.
const (
	ModeAuto  = "auto"
	ModeTTY   = "tty"
	ModePlain = "plain"
	ModeJSON  = "json"
	ModeQuiet = "quiet"
)

// Modes returns the valid mode names (for flag help and completion).
func Modes() []string {
	return []string{ModeAuto, ModeTTY, ModePlain, ModeJSON, ModeQuiet}
}

// New returns the renderer for mode writing to out; auto means tty when
// isTerminal, else plain. An empty mode is treated as auto so library callers
// need not know the flag's default.
func New(mode string, out io.Writer, isTerminal bool) (Writer, error) {
	switch mode {
	case ModeAuto, "":
		if isTerminal {
			return newTTYWriter(out, time.Now, ttyInterval), nil
		}
		return newPlainWriter(out, time.Now), nil
	case ModeTTY:
		return newTTYWriter(out, time.Now, ttyInterval), nil
	case ModePlain:
		return newPlainWriter(out, time.Now), nil
	case ModeJSON:
		return newJSONWriter(out, time.Now), nil
	case ModeQuiet:
		return Nop, nil
	}
	return nil, fmt.Errorf("invalid progress mode %q: must be one of %s", mode, strings.Join(Modes(), ", "))
}

// Nop is a Writer that discards everything (for library callers and tests).
var Nop Writer = nopWriter{}

type nopWriter struct{}

func (nopWriter) Event(Event) {}

func (nopWriter) Close() error { return nil }

// Emit is a convenience for w.Event(Event{Time: time.Now(), ID: id, Status: s, Text: text, Detail: detail}).
func Emit(w Writer, id string, s Status, text, detail string) {
	w.Event(Event{Time: time.Now(), ID: id, Status: s, Text: text, Detail: detail})
}

// describe joins text and detail the same way in every human-readable renderer.
func describe(e Event) string {
	switch {
	case e.Detail == "":
		return e.Text
	case e.Text == "":
		return e.Detail
	}
	return e.Text + ": " + e.Detail
}

// label is the event without its status; two spaces separate the ID from the
// text because IDs themselves contain spaces ("Container demo-web-1").
func label(e Event) string {
	if e.ID == "" {
		return describe(e)
	}
	return e.ID + "  " + describe(e)
}

func formatElapsed(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
