//go:build linux

package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// The router's supervisor. `agent router` (the router container's PID 1) runs the
// router as a child process, `agent router-worker` with the same flags, and holds a
// copy of each of its listening sockets (listenerhandoff.go). When the router process
// dies (a crash, the OOM killer, kill -9) the sockets stay open: the kernel completes
// new connections into their backlog instead of refusing them, and the supervisor
// starts a new router process at once, on the same sockets, which loads the saved
// config and accepts what queued meanwhile. Only the requests in flight on the dead
// process fail. Before, the container itself died and the engine's restart policy
// brought it back about a second later, with every connection refused meanwhile.
//
// Why one router process behind a supervisor and not two router processes with
// SO_REUSEPORT: the router's state is more than its routes — per-backend counters and
// latency histograms (stats, `monitor`, canary analysis read them through the control
// socket), backends draining with their in-flight counts, passive health. Two
// processes would each hold half of it, and every reader would have to merge them.
// And SO_REUSEPORT gives each process its own accept queue: the connections queued on
// the one that dies are reset with it, where a socket the supervisor keeps open loses
// none.
//
// The supervisor must not die: it does nothing but wait, pass sockets and restart (no
// parsing of traffic, a few hundred KiB of heap). Should it die anyway, the container
// stops and the engine's restart policy (unless-stopped) starts it again, as before.

const (
	// routerProcessCommand is the agent subcommand of the supervised router process.
	routerProcessCommand = "router-worker"
	// quickExit: a router process that ran less than this failed at start (a bad
	// config file, a port it cannot bind); restarts after such exits are backed off.
	quickExit = 5 * time.Second
	// maxQuickExits in a row and the supervisor exits too, with the router process's
	// status: the container stops, `docker ps` shows it restarting and the engine's
	// restart policy backs off, instead of a restart loop hidden in the container.
	maxQuickExits = 5
)

// restartDelay is the wait before starting the router process again after the n-th
// exit in a row that came within quickExit of its start: none after a process that
// had been serving (so one crash costs milliseconds), then 50 ms doubling.
func restartDelay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(50*time.Millisecond<<(n-2), 2*time.Second)
}

// superviseRouter is `agent router`.
func superviseRouter(args []string) int {
	if _, err := parseRouterFlags(args); err != nil { // refused once here, not in a restart loop
		fmt.Fprintf(os.Stderr, "agent router: %v\n", err)
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent router: find the agent binary to run the router process: %v\n", err)
		return 1
	}
	s := &supervisor{
		exe: exe, args: args, holder: newListenerHolder(),
		logger: slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "supervisor"),
	}
	defer s.holder.close()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	return s.run(signals)
}

type supervisor struct {
	exe    string
	args   []string
	holder *listenerHolder
	logger *slog.Logger
}

// run starts the router process and starts it again whenever it exits, until a signal
// arrives (it is forwarded, and the supervisor exits with the router process) or the
// process keeps failing at start.
func (s *supervisor) run(signals <-chan os.Signal) int {
	quick := 0
	for {
		p, err := s.start()
		if err != nil {
			s.logger.Error("cannot start the router process", "err", err.Error())
			return 1
		}
		var state *os.ProcessState
		select {
		case sig := <-signals:
			s.logger.Info("stopping the router process", "signal", sig.String(), "pid", p.cmd.Process.Pid)
			return p.stop(sig, signals)
		case <-p.done:
			state = p.cmd.ProcessState
		}
		ran := time.Since(p.started)
		if ran < quickExit {
			quick++
		} else {
			quick = 0
		}
		if quick > maxQuickExits {
			s.logger.Error("the router process keeps failing at start; exiting so the engine restarts the container",
				"status", state.String(), "exits", quick)
			return exitStatus(state)
		}
		delay := restartDelay(quick)
		s.logger.Warn("router process exited; starting it again", "pid", p.cmd.Process.Pid, "status", state.String(),
			"ran", ran.Round(time.Millisecond).String(), "delay", delay.String(), "listeners", s.holder.addrs())
		if delay > 0 {
			select {
			case sig := <-signals:
				s.logger.Info("stopping", "signal", sig.String())
				return 0
			case <-time.After(delay):
			}
		}
	}
}

// routerProcess is one run of `agent router-worker`.
type routerProcess struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed once it exited and its handoff requests are all answered
}

// start runs a router process with the held listening sockets.
func (s *supervisor) start() (*routerProcess, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("handoff socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "handoff"), os.NewFile(uintptr(fds[1]), "handoff (router process)")
	defer theirs.Close() // the child has its copy once started
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("handoff socket: %w", err)
	}
	conn := c.(*net.UnixConn)

	held, env := s.holder.inheritance(handoffFD + 1)
	cmd := &exec.Cmd{
		Path:       s.exe,
		Args:       append([]string{os.Args[0], routerProcessCommand}, s.args...),
		Env:        append(environWithout(listenersEnv), listenersEnv+"="+env),
		Stdout:     os.Stdout, // the access log, straight to the container's log
		Stderr:     os.Stderr,
		ExtraFiles: append([]*os.File{theirs}, held...), // theirs is handoffFD (3)
		// Outside a container (the benchmark runs it on the host) the router process
		// must not outlive its supervisor; in one, the kernel sees to that.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("start %s %s: %w", s.exe, routerProcessCommand, err)
	}
	p := &routerProcess{cmd: cmd, started: time.Now(), done: make(chan struct{})}
	s.logger.Info("router process started", "pid", cmd.Process.Pid, "listeners", s.holder.addrs())
	served := make(chan struct{})
	go func() {
		defer close(served)
		defer conn.Close()
		if err := s.holder.serve(conn); err != nil {
			s.logger.Warn("listener handoff", "pid", cmd.Process.Pid, "err", err.Error())
		}
	}()
	go func() {
		_ = cmd.Wait() // its status is in cmd.ProcessState
		// Its last requests are answered before the next process inherits the sockets.
		// The answers' reader is gone, so the serve loop ends at end of file.
		<-served
		close(p.done)
	}()
	return p, nil
}

// stop forwards sig (and any further one) to the router process and returns its exit
// status once it exited.
func (p *routerProcess) stop(sig os.Signal, signals <-chan os.Signal) int {
	for {
		_ = p.cmd.Process.Signal(sig)
		select {
		case sig = <-signals:
		case <-p.done:
			return exitStatus(p.cmd.ProcessState)
		}
	}
}

// exitStatus is a shell's view of how a process ended: its exit code, or 128+signal.
func exitStatus(state *os.ProcessState) int {
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// environWithout is the supervisor's environment without the variable name.
func environWithout(name string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			env = append(env, kv)
		}
	}
	return env
}
