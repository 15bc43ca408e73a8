//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/poll"
)

// runAsAgentEnv makes the test binary the agent (see TestMain), so a test can run the
// supervisor, which starts its router process from its own executable.
const runAsAgentEnv = "LIFECYCLE_AGENT_TEST_RUN_AGENT"

func TestMain(m *testing.M) {
	if os.Getenv(runAsAgentEnv) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func TestRestartDelay(t *testing.T) {
	var got []time.Duration
	for n := 0; n <= 8; n++ {
		got = append(got, restartDelay(n))
	}
	ms := time.Millisecond
	assert.Check(t, is.DeepEqual(got, []time.Duration{0, 0, 50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 2000 * ms}))
}

// supervisedRouter is `agent router` run from the test binary.
type supervisedRouter struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	mu      sync.Mutex
	pids    []int // of the router processes, from the supervisor's log
	exited  chan struct{}
	logTail []string
}

func startSupervisor(t *testing.T, config string) *supervisedRouter {
	t.Helper()
	dir := t.TempDir()
	if config != "" {
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "router.json"), []byte(config), 0o600))
	}
	exe, err := os.Executable()
	assert.NilError(t, err)
	s := &supervisedRouter{t: t, dir: dir, exited: make(chan struct{})}
	s.cmd = exec.Command(exe, "router", "-config", filepath.Join(dir, "router.json"), "-control", filepath.Join(dir, "control.sock"))
	s.cmd.Env = append(os.Environ(), runAsAgentEnv+"=1")
	stderr, err := s.cmd.StderrPipe()
	assert.NilError(t, err)
	assert.NilError(t, s.cmd.Start())
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var entry struct {
				Msg string `json:"msg"`
				Pid int    `json:"pid"`
			}
			s.mu.Lock()
			s.logTail = append(s.logTail, sc.Text())
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "router process started" {
				s.pids = append(s.pids, entry.Pid)
			}
			s.mu.Unlock()
		}
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-s.exited
		for _, pid := range s.routerPids() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return s
}

func (s *supervisedRouter) routerPids() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.pids...)
}

func (s *supervisedRouter) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.logTail, "\n")
}

// putConfig applies a config through the control socket.
func (s *supervisedRouter) putConfig(cfg string) {
	s.t.Helper()
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(s.dir, "control.sock"))
		},
	}}
	req, err := http.NewRequest(http.MethodPut, "http://router/config", strings.NewReader(cfg))
	assert.NilError(s.t, err)
	resp, err := c.Do(req)
	assert.NilError(s.t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(s.t, resp.StatusCode, http.StatusOK, string(body))
}

// get fetches url with a fresh connection.
func get(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer l.Close()
	return l.Addr().String()
}

func routeConfig(listen, backend string) string {
	return fmt.Sprintf(`{"version":1,"routes":[{"name":"web","listen":%q,"backends":[{"id":"a","address":%q,"weight":1}]}]}`, listen, backend)
}

// TestSupervisorRestartsRouterOnHeldSockets: the router process SIGKILLed, a client
// connecting right after is not refused: its connection waits in the held socket's
// backlog and the restarted process (new pid, the saved config) answers it. The same
// for a control request; a route removed closes its port; SIGTERM stops both
// processes.
func TestSupervisorRestartsRouterOnHeldSockets(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "a") }))
	defer backend.Close()
	listen := freeLoopbackAddr(t)
	url := "http://" + listen + "/"

	s := startSupervisor(t, "")
	poll.WaitOn(t, func(poll.LogT) poll.Result {
		if _, err := os.Stat(filepath.Join(s.dir, "control.sock")); err != nil {
			return poll.Continue("no control socket yet")
		}
		return poll.Success()
	}, poll.WithTimeout(10*time.Second))
	s.putConfig(routeConfig(listen, strings.TrimPrefix(backend.URL, "http://")))
	body, err := get(url)
	assert.NilError(t, err)
	assert.Equal(t, body, "a")

	first := s.routerPids()
	assert.Assert(t, is.Len(first, 1), s.log())
	killed := time.Now()
	assert.NilError(t, syscall.Kill(first[0], syscall.SIGKILL))
	// Once it is dead (a signal is delivered asynchronously: a connection made before
	// that could still be accepted by the dying process, and be lost with it), connect
	// at once: the new process is starting or not even started yet.
	for !deadProcess(first[0]) {
		time.Sleep(100 * time.Microsecond)
	}
	body, err = get(url)
	served := time.Since(killed)
	assert.NilError(t, err, "a connection right after the router process died failed\n%s", s.log())
	assert.Check(t, is.Equal(body, "a"))
	assert.Check(t, served < 2*time.Second, "served %s after the kill", served)
	t.Logf("first request after the kill served in %s", served)
	pids := s.routerPids()
	assert.Assert(t, is.Len(pids, 2), s.log())
	assert.Check(t, pids[1] != pids[0])

	// The control socket is held too: a control request right after the next kill
	// waits for the new process, which drives the port (a route removed closes it).
	assert.NilError(t, syscall.Kill(pids[1], syscall.SIGKILL))
	for !deadProcess(pids[1]) {
		time.Sleep(100 * time.Microsecond)
	}
	s.putConfig(`{"version":1,"routes":[]}`)
	_, err = get(url)
	assert.Check(t, is.ErrorContains(err, "connection refused"), "the port stayed open after its route left")
	pids = s.routerPids()
	assert.Assert(t, is.Len(pids, 3), s.log())

	assert.NilError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("the supervisor did not exit on SIGTERM\n%s", s.log())
	}
	assert.Check(t, is.Equal(s.cmd.ProcessState.ExitCode(), 0), s.log())
	assert.Check(t, is.ErrorIs(syscall.Kill(pids[2], 0), syscall.ESRCH), "the router process outlived its supervisor")
}

// deadProcess reports whether pid has exited (a zombie not yet reaped, or gone).
func deadProcess(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) == 0 || fields[0] == "Z" || fields[0] == "X"
}

// TestSupervisorGivesUpOnRouterFailingAtStart: a router process that cannot start (an
// invalid saved config) is restarted with a growing delay, then the supervisor exits
// with its status so the engine's restart policy (and `docker ps`) take over.
func TestSupervisorGivesUpOnRouterFailingAtStart(t *testing.T) {
	s := startSupervisor(t, `{"version": 1, "routes": [{"name": "web"}]}`)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("the supervisor kept restarting a router process that fails at start\n%s", s.log())
	}
	assert.Check(t, is.Equal(s.cmd.ProcessState.ExitCode(), 1), s.log())
	assert.Check(t, is.Len(s.routerPids(), maxQuickExits+1), s.log())
	assert.Check(t, is.Contains(s.log(), "keeps failing at start"))
}
