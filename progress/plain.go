package progress

import (
	"io"
	"strings"
	"sync"
	"time"
)

// plainWriter prints one line per event, for logs and CI where cursor
// movement would garble the output. The line format is stable:
//
//	[WARN |ERROR ]<ID>  <Text>[: <Detail>][  <elapsed>]
//
// WARN and ERROR mark warnings and errors. Elapsed (e.g. "0.4s") is the time
// since the writer was created and is appended to Done events only. An event
// without an ID prints just its text.
type plainWriter struct {
	now   func() time.Time
	start time.Time

	mu  sync.Mutex
	out io.Writer
	err error
}

func newPlainWriter(out io.Writer, now func() time.Time) *plainWriter {
	return &plainWriter{now: now, start: now(), out: out}
}

func (w *plainWriter) Event(e Event) {
	var b strings.Builder
	switch e.Status {
	case Warning:
		b.WriteString("WARN ")
	case Error:
		b.WriteString("ERROR ")
	}
	b.WriteString(label(e))
	if e.Status == Done {
		b.WriteString("  ")
		b.WriteString(formatElapsed(w.now().Sub(w.start)))
	}
	b.WriteByte('\n')

	w.mu.Lock()
	defer w.mu.Unlock()
	// Once the output has failed, later writes would only fail again; the
	// first error is the useful one and Close reports it.
	if w.err != nil {
		return
	}
	_, w.err = io.WriteString(w.out, b.String())
}

func (w *plainWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
