package progress

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestPlain(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	w := newPlainWriter(&out, clock.now)

	steps := []struct {
		after time.Duration
		event Event
	}{
		{0, Event{ID: "Network demo_default", Status: Working, Text: "Creating"}},
		{100 * time.Millisecond, Event{ID: "Network demo_default", Status: Done, Text: "Created"}},
		{0, Event{ID: "Container demo-web-1", Status: Working, Text: "Recreating", Detail: "image changed"}},
		{300 * time.Millisecond, Event{ID: "Container demo-web-1", Status: Done, Text: "Started"}},
		{0, Event{ID: "Container demo-web-1", Status: Working, Text: "Waiting for health"}},
		{0, Event{Status: Info, Text: "Draining old containers"}},
		{2 * time.Second, Event{ID: "Container demo-worker-1", Status: Warning, Text: "Unhealthy", Detail: "retrying"}},
		{0, Event{ID: "Container demo-worker-1", Status: Error, Text: "Error", Detail: "exit code 3"}},
	}
	for _, s := range steps {
		clock.advance(s.after)
		w.Event(s.event)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	want := `Network demo_default  Creating
Network demo_default  Created  0.1s
Container demo-web-1  Recreating: image changed
Container demo-web-1  Started  0.4s
Container demo-web-1  Waiting for health
Draining old containers
WARN Container demo-worker-1  Unhealthy: retrying
ERROR Container demo-worker-1  Error: exit code 3
`
	if got := out.String(); got != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", got, want)
	}
}

type failingWriter struct{ calls int }

func (f *failingWriter) Write([]byte) (int, error) {
	f.calls++
	return 0, errors.New("broken pipe")
}

func TestWriteErrorReportedByClose(t *testing.T) {
	clock := newFakeClock()
	tests := map[string]func(*failingWriter) Writer{
		"plain": func(f *failingWriter) Writer { return newPlainWriter(f, clock.now) },
		"json":  func(f *failingWriter) Writer { return newJSONWriter(f, clock.now) },
		"tty":   func(f *failingWriter) Writer { return newTTYWriter(f, clock.now, time.Hour) },
	}
	for name, newWriter := range tests {
		t.Run(name, func(t *testing.T) {
			var out failingWriter
			w := newWriter(&out)
			Emit(w, "Container demo-web-1", Working, "Creating", "")
			Emit(w, "Container demo-web-1", Done, "Started", "")
			if err := w.Close(); err == nil {
				t.Fatal("Close returned no error after the output failed")
			}
			if out.calls != 1 {
				t.Errorf("wrote %d times to a failed output, want 1", out.calls)
			}
		})
	}
}
