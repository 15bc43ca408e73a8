package progress

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// jsonWriter prints each event as one JSON object per line: the encoding of
// Event, with time in RFC 3339 with nanoseconds. The format is stable because
// other programs parse it.
type jsonWriter struct {
	now func() time.Time

	mu  sync.Mutex
	enc *json.Encoder
	err error
}

func newJSONWriter(out io.Writer, now func() time.Time) *jsonWriter {
	enc := json.NewEncoder(out)
	// Details quote commands and errors; "\u003e" instead of ">" helps no one.
	enc.SetEscapeHTML(false)
	return &jsonWriter{now: now, enc: enc}
}

func (w *jsonWriter) Event(e Event) {
	if e.Time.IsZero() {
		// Consumers sort and correlate by time; an event built without one
		// happened now, not in year 1.
		e.Time = w.now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.err = w.enc.Encode(e)
}

func (w *jsonWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
