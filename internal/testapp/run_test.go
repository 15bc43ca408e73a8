package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startRun runs the app on a random 127.0.0.1 port and returns its base URL,
// the channel standing for process signals, the exit code channel and the log.
func startRun(t *testing.T, cfg config) (string, chan<- os.Signal, <-chan int, *syncBuffer) {
	t.Helper()
	if cfg.version == "" {
		cfg.version = "v1"
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	signals := make(chan os.Signal, 1)
	exitCode := make(chan int, 1)
	logs := &syncBuffer{}
	go func() { exitCode <- run(cfg, listener, signals, log.New(logs, "", 0)) }()
	return "http://" + listener.Addr().String(), signals, exitCode, logs
}

func waitExit(t *testing.T, exitCode <-chan int, within time.Duration) int {
	t.Helper()
	select {
	case code := <-exitCode:
		return code
	case <-time.After(within):
		t.Fatalf("run did not return within %s", within)
		return -1
	}
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestRunDrainsOnSIGTERM(t *testing.T) {
	const drain = 300 * time.Millisecond
	base, signals, exitCode, logs := startRun(t, config{drain: drain})
	if got := statusOf(t, base+"/healthz"); got != http.StatusOK {
		t.Fatalf("GET /healthz before SIGTERM = %d, want 200", got)
	}

	// A request in flight when the signal comes must still get its answer.
	inFlight := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow?d=600ms")
		if err != nil {
			inFlight <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		inFlight <- string(body)
	}()
	time.Sleep(100 * time.Millisecond) // let the slow request arrive

	signals <- syscall.SIGTERM
	time.Sleep(50 * time.Millisecond)
	// While draining the app still serves but reports unhealthy.
	if got := statusOf(t, base+"/healthz"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /healthz while draining = %d, want 503", got)
	}
	if got := statusOf(t, base+"/"); got != http.StatusOK {
		t.Errorf("GET / while draining = %d, want 200", got)
	}

	if code := waitExit(t, exitCode, 5*time.Second); code != 0 {
		t.Errorf("exit code = %d, want 0", code)
	}
	if body := <-inFlight; body != "slept 600ms\n" {
		t.Errorf("in-flight request got %q, want %q", body, "slept 600ms\n")
	}
	for _, want := range []string{"received SIGTERM", "shutting down", "shutdown complete"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestRunIgnoresSIGTERMWhenAsked(t *testing.T) {
	base, signals, exitCode, logs := startRun(t, config{ignoreSIGTERM: true})
	signals <- syscall.SIGTERM
	time.Sleep(100 * time.Millisecond)
	select {
	case code := <-exitCode:
		t.Fatalf("run exited with %d on SIGTERM despite IGNORE_SIGTERM", code)
	default:
	}
	if got := statusOf(t, base+"/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz after an ignored SIGTERM = %d, want 200", got)
	}
	if !strings.Contains(logs.String(), "received SIGTERM: ignoring it") {
		t.Errorf("log lacks the ignored SIGTERM:\n%s", logs)
	}

	// SIGINT still stops it, so a developer can Ctrl-C it.
	signals <- syscall.SIGINT
	if code := waitExit(t, exitCode, 5*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT = %d, want 0", code)
	}
}

func TestRunScheduledExits(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantCode int
		wantLog  string
	}{
		{"one-shot job", map[string]string{"EXIT_AFTER": "0s", "EXIT_CODE": "0"}, 0, "done"},
		{"failing job", map[string]string{"EXIT_AFTER": "50ms", "EXIT_CODE": "4"}, 4, "done"},
		{"crash", map[string]string{"CRASH_AFTER": "50ms"}, 3, "crashing"},
		{"earliest wins", map[string]string{"CRASH_AFTER": "10ms", "EXIT_AFTER": "1h"}, 3, "crashing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			_, _, exitCode, logs := startRun(t, cfg)
			if code := waitExit(t, exitCode, 5*time.Second); code != tt.wantCode {
				t.Errorf("exit code = %d, want %d", code, tt.wantCode)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logs)
			}
		})
	}
}

func TestSubcommands(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{"version default", []string{"version"}, nil, 0, "v1\n", ""},
		{"version from env", []string{"version"}, map[string]string{"VERSION": "v2", "DRAIN": "bad"}, 0, "v2\n", ""},
		{"sleep", []string{"sleep", "10ms"}, nil, 0, "", ""},
		{"sleep without duration", []string{"sleep"}, nil, 2, "", "usage"},
		{"sleep bad duration", []string{"sleep", "soon"}, nil, 2, "", `"soon"`},
		{"cat", []string{"cat", "testdata-cat.txt"}, nil, 0, "cat me\n", ""},
		{"cat a missing file", []string{"cat", "/nonexistent"}, nil, 1, "", "no such file"},
		{"unknown command", []string{"dance"}, nil, 2, "", `unknown command "dance"`},
		{"help", []string{"help"}, nil, 0, "usage", ""},
		{"serve with a bad env", nil, map[string]string{"CRASH_AFTER": "abc"}, 2, "", `invalid environment: CRASH_AFTER="abc"`},
	}
	t.Chdir(t.TempDir())
	if err := os.WriteFile("testdata-cat.txt", []byte("cat me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runCommand(tt.args, envOf(tt.env), &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) || tt.wantStdout == "" && stdout.Len() > 0 {
				t.Errorf("stdout = %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) || tt.wantStderr == "" && stderr.Len() > 0 {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestLogSequenceCountsFromOne(t *testing.T) {
	r, w := io.Pipe()
	go logSequence(w, time.Millisecond)
	br := bufio.NewReader(r)
	for n := 1; n <= 3; n++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("{\"level\":\"info\",\"seq\":%d}\n", n); line != want {
			t.Fatalf("line %d = %q, want %q", n, line, want)
		}
	}
}

func TestIDWritesUIDAndGID(t *testing.T) {
	file := t.TempDir() + "/id"
	var stderr bytes.Buffer
	if code := runCommand([]string{"id", file}, func(string) string { return "" }, io.Discard, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()); string(b) != want {
		t.Fatalf("wrote %q, want %q", b, want)
	}
}

// TestUntil: `until` waits for the body (a server that answers it only after a while)
// and prints how long that took; a body never answered ends in exit 1 at the timeout.
func TestUntil(t *testing.T) {
	ready := time.Now().Add(150 * time.Millisecond)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().Before(ready) {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "v1")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"

	var stdout, stderr bytes.Buffer
	if code := runCommand([]string{"until", url, "v1", "5s"}, envOf(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr.String())
	}
	took, err := time.ParseDuration(strings.TrimSpace(stdout.String()))
	if err != nil || took < 100*time.Millisecond || took > 3*time.Second {
		t.Errorf("printed %q (%v), want the wait of about 150ms", stdout.String(), err)
	}
	stdout.Reset()
	if code := runCommand([]string{"until", url, "v2", "200ms"}, envOf(nil), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), `answered "v1"`) {
		t.Errorf("exit code %d, stderr %q: want 1 naming the last answer", code, stderr.String())
	}
	if code := runCommand([]string{"until", url}, envOf(nil), &stdout, &stderr); code != 2 {
		t.Errorf("without BODY and TIMEOUT: exit code %d, want 2", code)
	}
}
