package main

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// envOf turns a map into a getenv function.
func envOf(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(envOf(nil))
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	want := config{version: "v1", port: 8080}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parseConfig() = %+v, want %+v", cfg, want)
	}
}

func TestParseConfigValues(t *testing.T) {
	cfg, err := parseConfig(envOf(map[string]string{
		"VERSION":          "v2",
		"PORT":             "18080",
		"READY_AFTER":      "3s",
		"NEVER_HEALTHY":    "1",
		"IGNORE_SIGTERM":   "true",
		"DRAIN":            "500ms",
		"SLOW":             "1m",
		"ERROR_RATE":       "0.2",
		"MEMORY_HOG":       "1",
		"QUIET":            "0",
		"UNHEALTHY_AFTER":  "4s",
		"COUNT_DIR":        "/count",
		"FAULT_FREE_FIRST": "2",
	}))
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	want := config{
		version:        "v2",
		port:           18080,
		readyAfter:     3 * time.Second,
		neverHealthy:   true,
		ignoreSIGTERM:  true,
		drain:          500 * time.Millisecond,
		slow:           time.Minute,
		errorRate:      0.2,
		memoryHog:      true,
		unhealthyAfter: 4 * time.Second,
		countDir:       "/count",
		faultFreeFirst: 2,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("parseConfig() = %+v, want %+v", cfg, want)
	}
}

func TestParseConfigScheduledExits(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []scheduledExit // message not compared
	}{
		{"none", nil, nil},
		{"crash", map[string]string{"CRASH_AFTER": "10s"}, []scheduledExit{{after: 10 * time.Second, code: 3}}},
		{"crash at once", map[string]string{"CRASH_AFTER": "0s"}, []scheduledExit{{after: 0, code: 3}}},
		{"one-shot job", map[string]string{"EXIT_AFTER": "0s", "EXIT_CODE": "0"}, []scheduledExit{{after: 0, code: 0}}},
		{"exit after, code defaults to 0", map[string]string{"EXIT_AFTER": "2s"}, []scheduledExit{{after: 2 * time.Second, code: 0}}},
		{"exit code alone exits at once", map[string]string{"EXIT_CODE": "7"}, []scheduledExit{{after: 0, code: 7}}},
		{"both", map[string]string{"CRASH_AFTER": "5s", "EXIT_AFTER": "1s", "EXIT_CODE": "1"},
			[]scheduledExit{{after: 5 * time.Second, code: 3}, {after: time.Second, code: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(envOf(tt.env))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			var got []scheduledExit
			for _, exit := range cfg.scheduledExits {
				if exit.message == "" {
					t.Errorf("scheduled exit %+v has no message to log", exit)
				}
				got = append(got, scheduledExit{after: exit.after, code: exit.code})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("scheduledExits = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseConfigInvalid(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"PORT", "http"},
		{"PORT", "0"},
		{"PORT", "65536"},
		{"READY_AFTER", "5"}, // no unit
		{"READY_AFTER", "-1s"},
		{"DRAIN", "soon"},
		{"SLOW", "1 s"},
		{"CRASH_AFTER", "abc"},
		{"EXIT_AFTER", "1x"},
		{"EXIT_CODE", "256"},
		{"EXIT_CODE", "-1"},
		{"EXIT_CODE", "one"},
		{"ERROR_RATE", "1.5"},
		{"ERROR_RATE", "-0.1"},
		{"ERROR_RATE", "NaN"},
		{"ERROR_RATE", "20%"},
		{"NEVER_HEALTHY", "yes"},
		{"IGNORE_SIGTERM", "2"},
		{"MEMORY_HOG", "on"},
		{"QUIET", "y"},
		{"UNHEALTHY_AFTER", "-1s"},
		{"FAULT_FREE_FIRST", "-1"},
		{"FAULT_FREE_FIRST", "2"}, // without COUNT_DIR
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := parseConfig(envOf(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("parseConfig(%s=%q) succeeded, want an error", tt.name, tt.value)
			}
			if !strings.Contains(err.Error(), tt.name+"=") {
				t.Errorf("error %q does not name %s", err, tt.name)
			}
		})
	}
}

func TestParseConfigReportsEveryInvalidVariable(t *testing.T) {
	_, err := parseConfig(envOf(map[string]string{"DRAIN": "x", "CRASH_AFTER": "y", "PORT": "z"}))
	if err == nil {
		t.Fatal("parseConfig succeeded, want an error")
	}
	for _, name := range []string{"DRAIN", "CRASH_AFTER", "PORT"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not mention %s", err, name)
		}
	}
}

func TestEarliestExit(t *testing.T) {
	if _, due := earliestExit(nil); due != nil {
		t.Error("earliestExit(nil) returned a channel, want nil (never fires)")
	}
	exits := []scheduledExit{{after: time.Hour, code: 3}, {after: 0, code: 5}, {after: time.Minute, code: 7}}
	exit, due := earliestExit(exits)
	if exit.code != 5 {
		t.Errorf("earliestExit chose code %d, want 5", exit.code)
	}
	select {
	case <-due:
	case <-time.After(time.Second):
		t.Error("a 0s exit did not fire")
	}
}

func TestWithoutFaults(t *testing.T) {
	cfg, err := parseConfig(envOf(map[string]string{
		"NEVER_HEALTHY": "1", "UNHEALTHY_AFTER": "1s", "CRASH_AFTER": "2s", "EXIT_AFTER": "3s",
		"SLOW": "10ms", "COUNT_DIR": "/count", "FAULT_FREE_FIRST": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.withoutFaults()
	if got.neverHealthy || got.unhealthyAfter != 0 {
		t.Errorf("health faults kept: %+v", got)
	}
	if len(got.scheduledExits) != 1 || got.scheduledExits[0].code != 0 || got.scheduledExits[0].after != 3*time.Second {
		t.Errorf("scheduled exits = %+v, want only the EXIT_AFTER job", got.scheduledExits)
	}
	if got.slow != 10*time.Millisecond || got.countDir != "/count" {
		t.Errorf("other settings changed: %+v", got)
	}
}

// Containers claiming at once (goroutines standing for containers sharing the
// directory) get distinct numbers 1..n; a container claiming again (a restart)
// keeps its number.
func TestClaimNumberNumbersEveryContainerOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "count") // created by the first claim
	const n = 20
	got := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := claimNumber(dir, fmt.Sprintf("host%d", i))
			if err != nil {
				t.Error(err)
			}
			got <- k
		}()
	}
	wg.Wait()
	close(got)
	seen := map[int]bool{}
	for k := range got {
		if k < 1 || k > n || seen[k] {
			t.Errorf("claim %d out of range or repeated", k)
		}
		seen[k] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct claims, want %d", len(seen), n)
	}
	first, _ := claimNumber(dir, "host7")
	again, err := claimNumber(dir, "host7")
	if err != nil || again != first {
		t.Errorf("a restarted container got %d (%v), want its number %d", again, err, first)
	}
	if k, _ := claimNumber(dir, "newcomer"); k != n+1 {
		t.Errorf("a new container got %d, want %d", k, n+1)
	}
	if _, err := claimNumber(filepath.Join(dir, "container-1", "x"), "h"); err == nil || !strings.Contains(err.Error(), "COUNT_DIR=") {
		t.Errorf("a directory that cannot be made: err = %v, want one naming COUNT_DIR", err)
	}
}

// The first FAULT_FREE_FIRST containers run without faults, the later ones with them.
func TestCountContainer(t *testing.T) {
	cfg, err := parseConfig(envOf(map[string]string{
		"NEVER_HEALTHY": "1", "COUNT_DIR": t.TempDir(), "FAULT_FREE_FIRST": "2",
	}))
	if err != nil {
		t.Fatal(err)
	}
	for i, faulty := range []bool{false, false, true, true} {
		got, n, err := countContainer(cfg, fmt.Sprintf("host%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if n != i+1 || got.neverHealthy != faulty {
			t.Errorf("container %d (want %d): NEVER_HEALTHY %v, want %v", n, i+1, got.neverHealthy, faulty)
		}
	}
}
