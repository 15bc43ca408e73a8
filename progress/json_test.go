package progress

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJSONRoundTrip(t *testing.T) {
	clock := newFakeClock()
	var out bytes.Buffer
	w := newJSONWriter(&out, clock.now)

	at := time.Date(2025, 6, 7, 8, 9, 10, 123456789, time.FixedZone("CEST", 2*60*60))
	events := []Event{
		{Time: at, ID: "Network demo_default", Status: Working, Text: "Creating"},
		{Time: at, ID: "Container demo-web-1", Status: Done, Text: "Recreated", Detail: "image changed"},
		{Time: at, ID: "Container demo-web-1", Status: Error, Text: "Error", Detail: `health check "curl -f localhost" > 3 failures`},
		{Time: at, Status: Info, Text: "Draining old containers"},
		{ID: "Container demo-web-2", Status: Warning, Text: "Unhealthy"}, // no Time: the writer's clock fills it
	}
	for _, e := range events {
		w.Event(e)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(events) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(events), out.String())
	}
	for i, line := range lines {
		var got Event
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		want := events[i]
		if want.Time.IsZero() {
			want.Time = clock.now()
		}
		if !got.Time.Equal(want.Time) {
			t.Errorf("line %d: time %v, want %v", i, got.Time, want.Time)
		}
		got.Time, want.Time = time.Time{}, time.Time{}
		if got != want {
			t.Errorf("line %d: got %+v, want %+v", i, got, want)
		}
	}

	wantFirst := `{"time":"2025-06-07T08:09:10.123456789+02:00","id":"Network demo_default","status":"working","text":"Creating"}`
	if lines[0] != wantFirst {
		t.Errorf("first line:\n%s\nwant:\n%s", lines[0], wantFirst)
	}
	if !strings.Contains(lines[2], `> 3 failures`) {
		t.Errorf("detail is HTML-escaped: %s", lines[2])
	}
}
