package benchgen

import (
	"testing"
	"time"
)

func TestFollowCounter(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	ts := t0.Format(time.RFC3339Nano)
	var c FollowCounter
	at := t0.Add(300 * time.Millisecond)
	// docker lifecycle logs --timestamps: the stream is the prefix
	c.Line("", `app-r1-1  | `+ts+` {"level":"info","seq":7}`, at)
	c.Line("", `app-r1-1  | `+ts+` {"level":"info","seq":8}`, at)
	c.Line("", `app-r1-2  | `+ts+` {"level":"info","seq":1}`, at)
	c.Line("", `app-r1-1  | `+ts+` {"level":"info","seq":11}`, at) // 9 and 10 lost
	c.Line("", `app-r1-1  | `+ts+` {"level":"info","seq":11}`, at) // printed twice
	// docker logs -f --timestamps: the stream is the key
	c.Line("app-r1-3", ts+` {"level":"info","seq":3}`, at)
	c.Line("app-r1-3", ts+` {"level":"info","seq":4}`, at)
	c.Line("app-r1-3", ts+` starting`, at)
	if c.Lines != 7 || c.Lost != 2 || c.Duplicated != 1 || c.Unparsed != 1 || c.Streams() != 3 {
		t.Fatalf("got %+v, streams %d", c, c.Streams())
	}
	if p := c.Percentile(0.5); p != 300*time.Millisecond {
		t.Fatalf("p50 %s", p)
	}

	// 100 lines in one second of engine time, on each of two streams: 200 lines/s.
	var r FollowCounter
	for _, key := range []string{"a", "b"} {
		r.Line(key, ts+` {"seq":1}`, at)
		r.Line(key, t0.Add(time.Second).Format(time.RFC3339Nano)+` {"seq":101}`, at)
	}
	if got := r.WrittenRate(); got != 200 {
		t.Fatalf("written rate %v", got)
	}
}
