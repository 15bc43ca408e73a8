package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// The rollout view: what deploy, rollback and promote draw below their progress on a
// terminal, and what `watch` draws from elsewhere. renderRolloutView is a pure function
// of the view model (rollout.RolloutView), golden-tested (testdata/rolloutview-*.golden).

// renderRolloutView returns the view's lines, each cut to width runes when width > 0
// (a wrapped line would break the in-place redraw).
func renderRolloutView(v rollout.RolloutView, width int) []string {
	var lines []string
	lines = append(lines, viewHeader(v))
	for _, w := range v.Warnings {
		lines = append(lines, "! "+w)
	}
	if len(v.Services) == 0 && !v.Ended {
		lines = append(lines, "  waiting for the rollout's plan")
	}
	for _, s := range v.Services {
		lines = append(lines, serviceLine(s, v.Ended, v.Rollback))
		revWidth := len("REVISION")
		for _, r := range s.Revisions {
			revWidth = max(revWidth, len(revisionLabel(r, v.Rollback)))
		}
		row := func(rev, weight, reqs, errs, p99, container string) {
			lines = append(lines, strings.TrimRight(fmt.Sprintf("  %-*s  %6s  %8s  %7s  %7s  %s", revWidth, rev, weight, reqs, errs, p99, container), " "))
		}
		if len(s.Revisions) == 0 {
			lines = append(lines, "  no container running")
		} else {
			row("REVISION", "WEIGHT", "REQ/S", "ERRORS", "P99", "CONTAINERS")
		}
		for _, r := range s.Revisions {
			containers := r.Containers
			if len(containers) == 0 {
				containers = []rollout.ContainerView{{Name: "-"}}
			}
			reqs, errs, p99 := trafficCells(r.Traffic)
			for i, c := range containers {
				if i == 0 {
					row(revisionLabel(r, v.Rollback), weightText(r), reqs, errs, p99, containerText(c))
				} else {
					row("", "", "", "", "", containerText(c))
				}
			}
		}
		if s.Canary != nil {
			for _, verdict := range s.Canary.Verdicts {
				lines = append(lines, "  "+verdictMark(verdict)+" "+verdict)
			}
		}
	}
	if width > 0 {
		for i, l := range lines {
			lines[i] = cut(l, width)
		}
	}
	return lines
}

func viewHeader(v rollout.RolloutView) string {
	who := v.Command
	if who == "" {
		who = "a rollout"
	}
	elapsed := v.Time.Sub(v.Since).Truncate(time.Second)
	if v.Since.IsZero() || elapsed < 0 {
		elapsed = 0
	}
	if v.Ended {
		return fmt.Sprintf("Rollout of %s ended after %s: %s (pid %d on %s)", v.Project, elapsed, who, v.PID, v.Host)
	}
	return fmt.Sprintf("Rollout of %s: %s (pid %d on %s), %s", v.Project, who, v.PID, v.Host, elapsed)
}

func serviceLine(s rollout.ServiceView, ended, rollback bool) string {
	parts := []string{s.Strategy}
	switch {
	case s.Revision > 0 && rollback:
		parts = append(parts, fmt.Sprintf("back to revision %d", s.Revision))
	case s.Revision > 0:
		parts = append(parts, fmt.Sprintf("to revision %d", s.Revision))
	}
	if c := s.Canary; c != nil && !ended {
		switch {
		case c.Promoted:
			parts = append(parts, "promoted: 100% to the new revision")
		case c.Step == 0:
			parts = append(parts, fmt.Sprintf("%d steps, the new revision coming up", c.Steps))
		default:
			step := fmt.Sprintf("step %d/%d at %d%%", c.Step, c.Steps, c.Weight)
			left := time.Duration(c.LeftMs) * time.Millisecond
			judged := len(c.Verdicts) >= c.Step && strings.Contains(c.Verdicts[len(c.Verdicts)-1], " passed")
			switch {
			case c.Paused:
				step += fmt.Sprintf(", paused with %s left (`docker lifecycle resume %s`)", roundUp(left), s.Service)
			case left > 0:
				step += fmt.Sprintf(", %s left", roundUp(left))
			case judged && c.Step == c.Steps:
				step = fmt.Sprintf("all %d steps passed: promoting", c.Steps)
			case judged:
				step += ": passed, routing the next step"
			default:
				step += ", judging"
			}
			parts = append(parts, step)
		}
	}
	if ended {
		switch s.Result {
		case "":
			parts = append(parts, "ended without a result recorded (see `docker lifecycle history`)")
		case rollout.ResultRolledBack, rollout.ResultFailed:
			result := "✘ " + s.Result
			if s.Reason != "" {
				result += ": " + s.Reason
			}
			parts = append(parts, result)
		default:
			parts = append(parts, "✔ "+s.Result)
		}
	}
	return s.Service + "  " + strings.Join(parts, " · ")
}

// roundUp shows time left in whole seconds, never "0s" while some is left.
func roundUp(d time.Duration) time.Duration {
	return ((d + time.Second - 1) / time.Second) * time.Second
}

func revisionLabel(r rollout.RevisionView, rollback bool) string {
	label := fmt.Sprintf("r%d", r.Revision)
	switch {
	case r.New && rollback:
		label += " (back)"
	case r.New:
		label += " (new)"
	}
	return label
}

func weightText(r rollout.RevisionView) string {
	if !r.Routed {
		return "-"
	}
	return fmt.Sprintf("%d%%", r.Weight)
}

// trafficCells are the REQ/S, ERRORS and P99 cells.
func trafficCells(t *rollout.TrafficView) (reqs, errs, p99 string) {
	switch {
	case t == nil:
		return "-", "-", "-"
	case t.RequestsPerSecond == 0:
		return "0.0", "-", "-" // no request: no error rate, no latency
	}
	return fmt.Sprintf("%.1f", t.RequestsPerSecond), fmt.Sprintf("%.2f%%", 100*t.ErrorRate), msText(t.P99Ms)
}

func msText(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.2fs", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0fms", ms)
	}
	return fmt.Sprintf("%.1fms", ms)
}

func containerText(c rollout.ContainerView) string {
	text := c.Name
	if c.State != "" {
		text += " " + c.State
	}
	if c.Health != "" {
		text += " " + c.Health
	}
	return text
}

func verdictMark(v string) string {
	if strings.Contains(v, " passed") {
		return "✔"
	}
	return "✘"
}

// cut shortens s to width runes, marking the cut with "…".
func cut(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:max(width-1, 0)]) + "…"
}

// rolloutViewKey is the view without what moves every second (rates, time left, the
// clock): `watch` in plain mode prints a view again only when this changes.
func rolloutViewKey(v rollout.RolloutView) string {
	v.Time, v.Since = time.Time{}, time.Time{}
	v.Services = append([]rollout.ServiceView(nil), v.Services...)
	for i := range v.Services {
		s := &v.Services[i]
		if s.Canary != nil {
			c := *s.Canary
			c.LeftMs = 0
			s.Canary = &c
		}
		s.Revisions = append([]rollout.RevisionView(nil), s.Revisions...)
		for j := range s.Revisions {
			s.Revisions[j].Traffic = nil
		}
	}
	return strings.Join(renderRolloutView(v, 0), "\n")
}

// rolloutScreen shows rollout views the way the progress mode says: redrawn in place
// below the progress on a terminal (tty), printed when they change (plain), one JSON
// object each (json), or not at all (quiet; and for deploy, anything but tty).
type rolloutScreen struct {
	mode   string
	out    io.Writer
	width  func() int
	footer progress.FooterWriter // tty only

	mu      sync.Mutex
	lastKey string
}

// terminalWidth and terminalHeight are the size of the terminal on the stream, 0 when
// unknown.
func terminalWidth(s interface{ GetTtySize() (uint, uint) }) func() int {
	return func() int {
		_, w := s.GetTtySize()
		return int(w)
	}
}

func terminalHeight(s interface{ GetTtySize() (uint, uint) }) func() int {
	return func() int {
		h, _ := s.GetTtySize()
		return int(h)
	}
}

// newDeployProgress is newProgress for the commands that roll services (deploy,
// rollback, promote): on a terminal (--progress auto or tty) the progress block with
// the rollout view below it, and the function the rollout gives its views to; in every
// other mode the usual writer and no view.
func newDeployProgress(dockerCli command.Cli, mode string) (progress.Writer, func(rollout.RolloutView), error) {
	isTTY := mode == progress.ModeTTY || ((mode == progress.ModeAuto || mode == "") && dockerCli.Err().IsTerminal())
	if !isTTY {
		events, err := newProgress(dockerCli, mode)
		return events, nil, err
	}
	screen := &rolloutScreen{mode: progress.ModeTTY, out: dockerCli.Err(), width: terminalWidth(dockerCli.Err()), footer: progress.NewTTY(dockerCli.Err(), terminalHeight(dockerCli.Err()))}
	return screen.footer, screen.show, nil
}

// show draws one view.
func (s *rolloutScreen) show(v rollout.RolloutView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.mode {
	case progress.ModeTTY:
		s.footer.SetFooter(append([]string{""}, renderRolloutView(v, s.width())...))
	case progress.ModeJSON:
		raw, _ := json.Marshal(v)
		fmt.Fprintf(s.out, "%s\n", raw)
	case progress.ModePlain:
		key := rolloutViewKey(v)
		if key == s.lastKey {
			return
		}
		s.lastKey = key
		fmt.Fprintf(s.out, "%s\n%s\n", v.Time.Format("15:04:05"), strings.Join(renderRolloutView(v, 0), "\n"))
	}
}

func (s *rolloutScreen) close() {
	if s.footer != nil {
		_ = s.footer.Close()
	}
}
