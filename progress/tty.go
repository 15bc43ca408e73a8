package progress

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	// ttyInterval caps the redraw rate: faster only burns CPU and flickers.
	ttyInterval = 100 * time.Millisecond
	// ttyWidth is the assumed terminal width used to align the elapsed
	// column; lines that do not fit are left uncut rather than truncated.
	ttyWidth = 80
	spinner  = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

	ansiCursorUp = "\x1b[%dA"
	ansiClearRow = "\r\x1b[2K"
	ansiGreen    = "\x1b[32m"
	ansiRed      = "\x1b[31m"
	ansiYellow   = "\x1b[33m"
	ansiReset    = "\x1b[0m"
)

// ttyWriter keeps one line per resource, in the order resources were first
// seen, and redraws that block in place from a ticker goroutine, like the
// docker compose live view. Info events are printed once, above the block.
type ttyWriter struct {
	out     io.Writer
	now     func() time.Time
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once

	mu      sync.Mutex
	lines   []*ttyLine
	byID    map[string]*ttyLine
	pending []string   // info lines not yet printed
	footer  []string   // lines kept below the events (SetFooter)
	rows    func() int // the terminal's height, for the footer; nil: unknown
	drawn   int        // block lines on screen, to move back over on redraw
	blank   int        // of which the last ones blanked (a footer shrank)
	frame   int
	dirty   bool
	closed  bool
	err     error
}

type ttyLine struct {
	event Event
	start time.Time
	end   time.Time // zero while the action is still running
}

func newTTYWriter(out io.Writer, now func() time.Time, interval time.Duration) *ttyWriter {
	w := &ttyWriter{
		out:     out,
		now:     now,
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
		byID:    map[string]*ttyLine{},
	}
	go w.run(interval)
	return w
}

func (w *ttyWriter) run(interval time.Duration) {
	defer close(w.stopped)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-ticker.C:
			w.mu.Lock()
			w.frame++
			// Running lines need a redraw anyway: their spinner and
			// elapsed time move.
			if w.dirty || w.running() {
				w.draw()
			}
			w.mu.Unlock()
		}
	}
}

func (w *ttyWriter) Event(e Event) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	// After the final redraw the block is no longer ours to rewrite.
	if w.closed {
		return
	}
	w.dirty = true
	if e.Status == Info {
		w.pending = append(w.pending, label(e))
		return
	}
	line := w.byID[e.ID]
	if line == nil {
		line = &ttyLine{start: now}
		w.byID[e.ID] = line
		w.lines = append(w.lines, line)
	}
	line.event = e
	switch e.Status {
	case Done, Warning, Error:
		line.end = now
	default:
		line.end = time.Time{}
	}
}

// FooterWriter is a Writer that also keeps a block of lines below its events, redrawn
// with them (the rollout view of deploy and watch).
type FooterWriter interface {
	Writer
	// SetFooter replaces the footer; lines should fit the terminal's width.
	SetFooter(lines []string)
}

// NewTTY is the tty renderer with a footer, whatever the mode says: for callers that
// checked the terminal themselves. rows gives the terminal's height (0: unknown): the
// footer is cut to what fits below the events, because the cursor cannot move back up
// past the top of the screen to redraw rows that scrolled away.
func NewTTY(out io.Writer, rows func() int) FooterWriter {
	w := newTTYWriter(out, time.Now, ttyInterval)
	w.rows = rows
	return w
}

func (w *ttyWriter) SetFooter(lines []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.footer = slices.Clone(lines)
	w.dirty = true
}

func (w *ttyWriter) Close() error {
	w.once.Do(func() {
		close(w.stop)
		<-w.stopped
		w.mu.Lock()
		defer w.mu.Unlock()
		w.draw()
		// What follows (the command's result) goes right below the last row drawn,
		// over the blanked ones.
		if w.blank > 0 && w.err == nil {
			_, w.err = fmt.Fprintf(w.out, ansiCursorUp, w.blank)
		}
		w.closed = true
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *ttyWriter) running() bool {
	for _, line := range w.lines {
		if line.end.IsZero() {
			return true
		}
	}
	return false
}

// draw moves the cursor back to the top of the block, prints pending info
// lines there and reprints the block below them. The block never shrinks, so
// every row it occupied before is overwritten. Callers hold w.mu.
func (w *ttyWriter) draw() {
	w.dirty = false
	var b strings.Builder
	if w.drawn > 0 {
		fmt.Fprintf(&b, ansiCursorUp, w.drawn)
	}
	for _, text := range w.pending {
		b.WriteString(ansiClearRow)
		b.WriteString(text)
		b.WriteByte('\n')
	}
	w.pending = nil

	now := w.now()
	width := w.labelWidth()
	for _, line := range w.lines {
		b.WriteString(ansiClearRow)
		w.writeLine(&b, line, now, width)
		b.WriteByte('\n')
	}
	footer := w.fittedFooter()
	for _, text := range footer {
		b.WriteString(ansiClearRow)
		b.WriteString(text)
		b.WriteByte('\n')
	}
	// A shorter footer than last time: its old rows are blanked, so the block keeps
	// its height and no stale row stays on screen.
	rows := len(w.lines) + len(footer)
	for i := rows; i < w.drawn; i++ {
		b.WriteString(ansiClearRow)
		b.WriteByte('\n')
	}
	w.blank = max(w.drawn-rows, 0)
	w.drawn = max(rows, w.drawn)

	if b.Len() == 0 || w.err != nil {
		return
	}
	_, w.err = io.WriteString(w.out, b.String())
}

// fittedFooter is the footer cut to the rows left below the events (one row is the
// cursor's), its last line saying how many were left out.
func (w *ttyWriter) fittedFooter() []string {
	if w.rows == nil {
		return w.footer
	}
	height := w.rows()
	room := height - 1 - len(w.lines)
	if height <= 0 || len(w.footer) <= room {
		return w.footer
	}
	if room <= 0 {
		return nil
	}
	out := slices.Clone(w.footer[:room-1])
	return append(out, fmt.Sprintf("… %d more lines: a taller terminal shows them", len(w.footer)-room+1))
}

// labelWidth aligns the elapsed column on the longest label that still lets
// the line fit ttyWidth.
func (w *ttyWriter) labelWidth() int {
	const reserved = len(" * ") + len("  000.0s") // marker and elapsed columns, in runes
	width := 0
	for _, line := range w.lines {
		width = max(width, utf8.RuneCountInString(label(line.event)))
	}
	return min(width, ttyWidth-reserved)
}

func (w *ttyWriter) writeLine(b *strings.Builder, line *ttyLine, now time.Time, width int) {
	b.WriteByte(' ')
	switch line.event.Status {
	case Done:
		b.WriteString(ansiGreen + "✔" + ansiReset)
	case Error:
		b.WriteString(ansiRed + "✘" + ansiReset)
	case Warning:
		b.WriteString(ansiYellow + "!" + ansiReset)
	default:
		frames := []rune(spinner)
		b.WriteRune(frames[w.frame%len(frames)])
	}
	b.WriteByte(' ')

	text := label(line.event)
	b.WriteString(text)
	if pad := width - utf8.RuneCountInString(text); pad > 0 {
		b.WriteString(strings.Repeat(" ", pad))
	}

	end := line.end
	if end.IsZero() {
		end = now
	}
	// Right-aligned so a 10.0s line does not push its column out of line.
	fmt.Fprintf(b, "  %6s", formatElapsed(end.Sub(line.start)))
}
