package benchgen

import (
	"strings"
	"testing"
	"time"
)

func TestDeployRun(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) string { return t0.Add(time.Duration(ms) * time.Millisecond).Format(time.RFC3339Nano) }
	ev := func(ms int, id, status, text string) string {
		return `{"time":"` + at(ms) + `","id":"` + id + `","status":"` + status + `","text":"` + text + `"}`
	}
	lines := []string{
		ev(100, "Network p_default", "working", "Creating"),
		ev(150, "Network p_default", "done", "Created"),
		ev(150, "Container p-a-1", "working", "Creating"),
		ev(170, "Container p-a-1", "done", "Created"),
		ev(170, "Container p-a-1", "working", "Starting"),
		ev(400, "Container p-a-1", "done", "Started"),
		ev(400, "Container p-a-1", "working", "Waiting for health"),
		ev(400, "Container p-w-1", "working", "Waiting for health"), // parallel, off the chain
		ev(1400, "Container p-w-1", "done", "Running"),
		ev(1650, "Container p-a-1", "done", "Healthy"),
		ev(1651, "Container p-b-1", "working", "Waiting for completion"),
		ev(1901, "Container p-b-1", "done", "Completed"),
		"not json",
	}
	events, err := ReadEvents(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	var a, b Inspected
	a.Name = "/p-a-1"
	a.State.Health = &struct {
		Log []struct {
			Start    time.Time
			End      time.Time
			ExitCode int
		}
	}{}
	a.State.Health.Log = append(a.State.Health.Log, struct {
		Start    time.Time
		End      time.Time
		ExitCode int
	}{t0.Add(1400 * time.Millisecond), t0.Add(1450 * time.Millisecond), 0})
	b.Name = "/p-b-1"
	b.State.FinishedAt = t0.Add(1700 * time.Millisecond)

	m, err := DeployRun(events, t0, t0.Add(2000*time.Millisecond), []string{"p-a-1", "p-b-1"}, []Inspected{a, b})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"total": 2000, "wait_critical": 1250 + 250, "overhead": 500,
		"pre_first_event": 100, "setup_before_chain": 50, "chain_create": 20, "chain_start": 230,
		"chain_gaps": 1, "post_last_event": 99, "wait_sum": 1250 + 1000 + 250, "wait_union": 1250 + 250,
		"gate_detect": 200 + 201, "steps": 6,
		"critical_path": 20 + 230 + 1500, "over_critical_path_pct": 100 * 250.0 / 1750,
	}
	for k, v := range want {
		if got := m[k]; got < v-0.01 || got > v+0.01 {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
}

func TestDeployRunNoEvents(t *testing.T) {
	t0 := time.Now()
	m, err := DeployRun(nil, t0, t0.Add(60*time.Millisecond), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m["total"] != 60 || m["overhead"] != 60 || m["pre_first_event"] != 60 || m["wait_critical"] != 0 {
		t.Errorf("got %v", m)
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{5, 1, 4, 2, 3, 10, 6, 7, 8, 9})
	if s.N != 10 || s.Median != 5.5 || s.P90 != 9 || s.Min != 1 || s.Max != 10 {
		t.Errorf("got %+v", s)
	}
}
