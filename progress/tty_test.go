package progress

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// screen replays output on a minimal terminal that knows only the sequences
// the tty renderer emits, and returns the visible rows without colours.
func screen(t *testing.T, out string) []string {
	t.Helper()
	var rows []string
	row := 0
	for i := 0; i < len(out); {
		switch {
		case strings.HasPrefix(out[i:], "\x1b["):
			j := i + 2
			for j < len(out) && (out[j] >= '0' && out[j] <= '9' || out[j] == ';') {
				j++
			}
			if j == len(out) {
				t.Fatalf("unterminated escape sequence at %d", i)
			}
			arg, cmd := out[i+2:j], out[j]
			i = j + 1
			switch cmd {
			case 'A':
				n, err := strconv.Atoi(arg)
				if err != nil || n > row {
					t.Fatalf("bad cursor up %q from row %d", arg, row)
				}
				row -= n
			case 'K':
				if row < len(rows) {
					rows[row] = ""
				}
			case 'm':
			default:
				t.Fatalf("unexpected escape sequence %q", out[i-1-len(arg)-2:i])
			}
		case out[i] == '\r':
			i++
		case out[i] == '\n':
			row++
			i++
		default:
			for len(rows) <= row {
				rows = append(rows, "")
			}
			rows[row] += out[i : i+1]
			i++
		}
	}
	return rows
}

func TestTTYFinalScreen(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	// The hour-long interval keeps the ticker out of the way: only Close draws.
	w := newTTYWriter(&out, clock.now, time.Hour)

	Emit(w, "Network demo_default", Working, "Creating", "")
	Emit(w, "Container demo-web-1", Working, "Recreating", "image changed")
	clock.advance(100 * time.Millisecond)
	Emit(w, "Network demo_default", Done, "Created", "")
	Emit(w, "Container demo-worker-1", Working, "Starting", "")
	clock.advance(300 * time.Millisecond)
	Emit(w, "Container demo-web-1", Done, "Healthy", "")
	Emit(w, "", Info, "Draining old containers", "")
	clock.advance(2 * time.Second)
	Emit(w, "Container demo-worker-1", Error, "Error", "exit code 3")
	Emit(w, "Container demo-db-1", Warning, "Unhealthy", "")
	Emit(w, "Container demo-cache-1", Working, "Waiting for health", "")
	clock.advance(500 * time.Millisecond)

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(screen(t, out.String()), "\n")
	want := strings.Join([]string{
		"Draining old containers",
		" ✔ Network demo_default  Created                  0.1s",
		" ✔ Container demo-web-1  Healthy                  0.4s",
		" ✘ Container demo-worker-1  Error: exit code 3    2.3s",
		" ! Container demo-db-1  Unhealthy                 0.0s",
		" ⠋ Container demo-cache-1  Waiting for health     0.5s",
	}, "\n")
	if got != want {
		t.Errorf("screen:\n%s\nwant:\n%s", got, want)
	}
}

func TestTTYRedrawsInPlace(t *testing.T) {
	clock := newFakeClock()
	var out lockedBuffer
	w := newTTYWriter(&out, clock.now, time.Millisecond)

	Emit(w, "Container demo-web-1", Working, "Creating", "")
	waitFor(t, &out, "Creating")
	Emit(w, "", Info, "first note", "")
	Emit(w, "Container demo-web-1", Working, "Starting", "")
	waitFor(t, &out, "Starting")
	Emit(w, "Container demo-web-2", Working, "Creating", "")
	Emit(w, "Container demo-web-1", Done, "Started", "")
	Emit(w, "", Info, "second note", "")
	waitFor(t, &out, "second note")
	Emit(w, "Container demo-web-2", Done, "Started", "")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	rows := screen(t, out.String())
	if len(rows) != 4 ||
		rows[0] != "first note" ||
		rows[1] != "second note" ||
		!strings.HasPrefix(rows[2], " ✔ Container demo-web-1  Started") ||
		!strings.HasPrefix(rows[3], " ✔ Container demo-web-2  Started") {
		t.Errorf("screen after redraws:\n%s", strings.Join(rows, "\n"))
	}
}

func waitFor(t *testing.T, out *lockedBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("ticker never drew %q; output so far %q", text, out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTTYCloseStopsTicker(t *testing.T) {
	tests := map[string][]Event{
		"no events":   nil,
		"with events": {{ID: "Container demo-web-1", Status: Working, Text: "Creating"}},
	}
	for name, events := range tests {
		t.Run(name, func(t *testing.T) {
			var out lockedBuffer
			w := newTTYWriter(&out, time.Now, time.Millisecond)
			for _, e := range events {
				w.Event(e)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-w.stopped:
			default:
				t.Fatal("ticker goroutine still running after Close")
			}
			if len(events) == 0 && out.String() != "" {
				t.Errorf("Close without events wrote %q", out.String())
			}

			// Late events and a second Close must neither panic nor scribble
			// over a block the caller has moved past.
			written := out.String()
			Emit(w, "Container demo-web-9", Working, "Creating", "")
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if out.String() != written {
				t.Errorf("output changed after Close: %q", strings.TrimPrefix(out.String(), written))
			}
		})
	}
}

// TestTTYFooterShrinks: the footer is drawn below the events, redrawn in place, and a
// shorter footer blanks the rows the longer one used.
func TestTTYFooterShrinks(t *testing.T) {
	clock := newFakeClock()
	var out lockedBuffer
	w := newTTYWriter(&out, clock.now, time.Millisecond)
	Emit(w, "Container demo-web-1", Done, "Started", "")
	w.SetFooter([]string{"web  canary step 1/2", "  r1  90%", "  r2  10%"})
	waitFor(t, &out, "r2  10%")
	w.SetFooter([]string{"web  deployed revision 2"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = out.Write([]byte("Deployed\n")) // the command's result, after Close
	rows := screen(t, out.String())
	want := []string{"web  deployed revision 2", "Deployed", ""}
	if len(rows) != 4 || !strings.HasPrefix(rows[0], " ✔ Container demo-web-1  Started") || strings.Join(rows[1:], "|") != strings.Join(want, "|") {
		t.Errorf("screen:\n%s", strings.Join(rows, "\n"))
	}
}

// TestTTYFooterFitsTheTerminal: a footer taller than the rows left below the events is
// cut, saying how much, so the redraw never needs rows that scrolled off the screen.
func TestTTYFooterFitsTheTerminal(t *testing.T) {
	var out bytes.Buffer
	w := newTTYWriter(&out, newFakeClock().now, time.Hour)
	w.rows = func() int { return 6 }
	Emit(w, "Container demo-web-1", Done, "Started", "")
	w.SetFooter([]string{"a", "b", "c", "d", "e", "f"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rows := screen(t, out.String())
	if len(rows) != 5 || strings.Join(rows[1:], "|") != "a|b|c|… 3 more lines: a taller terminal shows them" {
		t.Errorf("screen:\n%s", strings.Join(rows, "\n"))
	}
}
