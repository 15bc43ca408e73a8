package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock makes elapsed times in rendered output deterministic.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lockedBuffer lets a test read output while a ticker goroutine writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestNew(t *testing.T) {
	tests := []struct {
		mode       string
		isTerminal bool
		want       string
	}{
		{ModeAuto, true, "tty"},
		{ModeAuto, false, "plain"},
		{"", true, "tty"},
		{"", false, "plain"},
		{ModeTTY, false, "tty"},
		{ModePlain, true, "plain"},
		{ModeJSON, true, "json"},
		{ModeQuiet, true, "quiet"},
	}
	for _, tt := range tests {
		w, err := New(tt.mode, &bytes.Buffer{}, tt.isTerminal)
		if err != nil {
			t.Fatalf("New(%q, %v): %v", tt.mode, tt.isTerminal, err)
		}
		var got string
		switch w.(type) {
		case *ttyWriter:
			got = "tty"
		case *plainWriter:
			got = "plain"
		case *jsonWriter:
			got = "json"
		case nopWriter:
			got = "quiet"
		}
		if got != tt.want {
			t.Errorf("New(%q, isTerminal=%v) = %T, want %s renderer", tt.mode, tt.isTerminal, w, tt.want)
		}
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

func TestNewUnknownMode(t *testing.T) {
	_, err := New("bogus", &bytes.Buffer{}, true)
	if err == nil {
		t.Fatal("New(bogus) returned no error")
	}
	for _, mode := range append(Modes(), "bogus") {
		if !strings.Contains(err.Error(), mode) {
			t.Errorf("error %q does not mention %q", err, mode)
		}
	}
}

func TestModesReturnsFreshSlice(t *testing.T) {
	Modes()[0] = "changed"
	if Modes()[0] != ModeAuto {
		t.Fatal("Modes shares its slice with callers")
	}
}

func TestQuietWritesNothing(t *testing.T) {
	var out bytes.Buffer
	w, err := New(ModeQuiet, &out, true)
	if err != nil {
		t.Fatal(err)
	}
	Emit(w, "Container demo-web-1", Working, "Creating", "")
	Emit(w, "Container demo-web-1", Error, "Error", "exit code 3")
	Emit(w, "", Info, "hello", "")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Fatalf("quiet wrote %q", out.String())
	}
}

func TestEmit(t *testing.T) {
	var got []Event
	w := recorder(func(e Event) { got = append(got, e) })
	before := time.Now()
	Emit(w, "Container demo-web-1", Done, "Started", "image changed")
	if len(got) != 1 {
		t.Fatalf("got %d events, want 1", len(got))
	}
	e := got[0]
	if e.Time.Before(before) || e.Time.After(time.Now()) {
		t.Errorf("Time = %v, want about now", e.Time)
	}
	e.Time = time.Time{}
	want := Event{ID: "Container demo-web-1", Status: Done, Text: "Started", Detail: "image changed"}
	if e != want {
		t.Errorf("got %+v, want %+v", e, want)
	}
}

type recorder func(Event)

func (r recorder) Event(e Event) { r(e) }
func (r recorder) Close() error  { return nil }

// TestConcurrentEvents is for -race: the executor emits from one goroutine
// per service.
func TestConcurrentEvents(t *testing.T) {
	for _, mode := range Modes() {
		t.Run(mode, func(t *testing.T) {
			w, err := New(mode, &lockedBuffer{}, true)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					id := "Container demo-web-" + string(rune('1'+i))
					for range 50 {
						Emit(w, id, Working, "Creating", "")
						Emit(w, id, Done, "Started", "")
						Emit(w, "", Info, "note", "")
					}
				})
			}
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
