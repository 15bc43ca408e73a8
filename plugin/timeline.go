package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// runTimeline prints `history SERVICE --timeline`: one revision record's timeline.
func runTimeline(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts historyOptions, service string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	rec, tl, err := rollout.RevisionTimeline(ctx, eng, name, service, opts.revision)
	if err != nil {
		return err
	}
	if opts.format == formatter.JSONFormatKey {
		return writeTimelineJSON(dockerCli.Out(), rec, tl)
	}
	return writeTimelineTable(dockerCli.Out(), rec, tl)
}

// timelineJSON is the stable `history --timeline --format json` document
// (docs/observability.md): offsets are from the rollout's start, in milliseconds.
type timelineJSON struct {
	Service        string         `json:"service"`
	Revision       int            `json:"revision"`
	Result         string         `json:"result"`
	Reason         string         `json:"reason,omitempty"`
	Start          time.Time      `json:"start"`
	End            time.Time      `json:"end"`
	Events         []eventJSON    `json:"events"`
	Samples        []sampleJSON   `json:"samples"`
	Verdicts       []string       `json:"verdicts,omitempty"`
	Bounds         timelineBounds `json:"bounds"`
	DroppedEvents  int            `json:"dropped_events"`
	DroppedSamples int            `json:"dropped_samples"`
}

type eventJSON struct {
	OffsetMs int64 `json:"offset_ms"`
	rollout.TimelineEvent
}

type sampleJSON struct {
	OffsetMs int64 `json:"offset_ms"`
	rollout.TimelineSample
}

type timelineBounds struct {
	MaxEvents             int `json:"max_events"`
	MaxSamplesPerRevision int `json:"max_samples_per_revision"`
}

func writeTimelineJSON(out io.Writer, rec rollout.Record, tl rollout.Timeline) error {
	doc := timelineJSON{Service: rec.Service, Revision: rec.Revision, Result: rec.Result, Reason: rec.Reason,
		Start: tl.Start.UTC(), End: tl.End.UTC(), Events: []eventJSON{}, Samples: []sampleJSON{},
		Bounds:        timelineBounds{MaxEvents: rollout.MaxTimelineEvents, MaxSamplesPerRevision: rollout.MaxTimelineSamples},
		DroppedEvents: tl.DroppedEvents, DroppedSamples: tl.DroppedSamples, Verdicts: tl.Verdicts}
	for _, e := range tl.Events {
		e.Time = e.Time.UTC()
		doc.Events = append(doc.Events, eventJSON{OffsetMs: e.Time.Sub(tl.Start).Milliseconds(), TimelineEvent: e})
	}
	for _, s := range tl.Samples {
		s.Time = s.Time.UTC()
		doc.Samples = append(doc.Samples, sampleJSON{OffsetMs: s.Time.Sub(tl.Start).Milliseconds(), TimelineSample: s})
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false) // details quote commands and errors
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// writeTimelineTable prints the events, then the counters: two sections, because an
// event line and a counter line have nothing in common but their time.
func writeTimelineTable(out io.Writer, rec rollout.Record, tl rollout.Timeline) error {
	offset := func(t time.Time) string { return fmt.Sprintf("+%.3fs", t.Sub(tl.Start).Seconds()) }
	fmt.Fprintf(out, "Service %s, revision %d: %s", rec.Service, rec.Revision, rec.Result)
	if rec.Reason != "" {
		fmt.Fprintf(out, " (%s)", rec.Reason)
	}
	fmt.Fprintf(out, "\nStarted %s, lasted %s\n", tl.Start.UTC().Format("2006-01-02T15:04:05.000Z07:00"), tl.End.Sub(tl.Start).Round(time.Millisecond))
	if tl.DroppedEvents > 0 || tl.DroppedSamples > 0 {
		fmt.Fprintf(out, "Left out (oldest first): %d events, %d samples\n", tl.DroppedEvents, tl.DroppedSamples)
	}
	for _, v := range tl.Verdicts {
		fmt.Fprintf(out, "Canary %s\n", v)
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tKIND\tRESOURCE\tEVENT")
	for _, e := range tl.Events {
		text := e.Text
		if e.Detail != "" {
			text += ": " + e.Detail
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", offset(e.Time), e.Kind, e.Resource, oneLine(text))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if len(tl.Samples) == 0 {
		fmt.Fprintln(out, "No router counters (the service is not routed, or the rollout lasted less than two seconds).")
		return nil
	}
	fmt.Fprintln(out, "Router counters, per revision and interval:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TIME\tREVISION\tWEIGHT\tREQUESTS\t5XX\tERRORS\tP99")
	for _, s := range tl.Samples {
		p99 := "-"
		if s.Requests > 0 {
			p99 = fmt.Sprintf("%.1fms", s.P99Ms)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", offset(s.Time), s.Revision, s.Weight, s.Requests, s.Errors5xx, s.Errors, p99)
	}
	return w.Flush()
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
