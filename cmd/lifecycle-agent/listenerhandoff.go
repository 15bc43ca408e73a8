//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The listener handoff between the router's supervisor and the router process (see
// routersupervisor.go for why). They share a unix SOCK_SEQPACKET socketpair, one
// message per packet:
//
//	hold ADDR      (with the listening socket as SCM_RIGHTS) the router bound ADDR:
//	               the supervisor keeps a copy of the socket
//	release ADDR   the router stops serving ADDR: the supervisor closes its copy, so
//	               the router's close really closes the socket (a copy left open would
//	               keep the kernel accepting connections that nobody serves)
//
// Each request starts with a sequence number ("7 hold :80") and the supervisor answers
// with the same number and "ok" or "error TEXT" ("7 ok"). The number matters when a
// request timed out: its late answer is still in the socket, and without the number
// the next request would take it for its own (and every answer after would be one
// request late). The router process skips answers to earlier requests. The control API's unix socket
// is held the same way (its address is "unix:PATH"). A restarted router process
// inherits the held sockets (exec ExtraFiles) with their addresses in
// $LIFECYCLE_ROUTER_LISTENERS (JSON: address → descriptor), and serves them instead of
// binding: connections that arrived while no router process ran wait in the socket's
// backlog instead of being refused.
const (
	// handoffFD is the router process's end of the socketpair (ExtraFiles[0]).
	handoffFD = 3
	// listenersEnv names the inherited listening sockets: {"ADDR": FD, …}.
	listenersEnv = "LIFECYCLE_ROUTER_LISTENERS"
	// handoffTimeout bounds one request and its answer; the supervisor answers at once.
	handoffTimeout = 5 * time.Second
	maxHandoffMsg  = 4096
)

// listenerHolder is the supervisor's side: the listening sockets it holds, by address.
type listenerHolder struct {
	mu   sync.Mutex
	held map[string]*os.File
}

func newListenerHolder() *listenerHolder {
	return &listenerHolder{held: map[string]*os.File{}}
}

// inheritance returns the held sockets for a new router process: the files to pass as
// exec ExtraFiles after the handoff socket, and the JSON for listenersEnv naming each
// address's descriptor in the child.
func (h *listenerHolder) inheritance(firstFD int) ([]*os.File, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	addrs := make([]string, 0, len(h.held))
	for addr := range h.held {
		addrs = append(addrs, addr)
	}
	slices.Sort(addrs)
	files := make([]*os.File, 0, len(addrs))
	fds := make(map[string]int, len(addrs))
	for i, addr := range addrs {
		files = append(files, h.held[addr])
		fds[addr] = firstFD + i
	}
	env, _ := json.Marshal(fds) // a map of strings to ints always marshals
	return files, string(env)
}

// addrs lists the held addresses, sorted (for logs).
func (h *listenerHolder) addrs() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.held))
	for addr := range h.held {
		out = append(out, addr)
	}
	slices.Sort(out)
	return out
}

// close closes every held socket (the supervisor is exiting).
func (h *listenerHolder) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for addr, f := range h.held {
		f.Close()
		delete(h.held, addr)
	}
}

// serve answers one router process's requests until it closes its end (it exited).
func (h *listenerHolder) serve(conn *net.UnixConn) error {
	buf := make([]byte, maxHandoffMsg)
	oob := make([]byte, syscall.CmsgSpace(4*4)) // room for a few descriptors; one is expected
	for {
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if errors.Is(err, io.EOF) || (err == nil && n == 0 && oobn == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read the router process's handoff request: %w", err)
		}
		files, ferr := receivedFiles(oob[:oobn], flags)
		seq, msg, _ := strings.Cut(string(buf[:n]), " ")
		reply := seq + " ok"
		if err := h.handle(msg, files, ferr); err != nil {
			reply = seq + " error " + err.Error()
		}
		if _, err := conn.Write([]byte(reply)); err != nil {
			return fmt.Errorf("answer the router process: %w", err)
		}
	}
}

// handle applies one request. Descriptors it does not keep are closed.
func (h *listenerHolder) handle(msg string, files []*os.File, filesErr error) error {
	verb, addr, _ := strings.Cut(msg, " ")
	keep := false
	defer func() {
		for _, f := range files {
			if !keep {
				f.Close()
			}
		}
	}()
	if filesErr != nil {
		return filesErr
	}
	if addr == "" {
		return fmt.Errorf("request %q names no address", msg)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch verb {
	case "hold":
		if len(files) != 1 {
			return fmt.Errorf("hold %s: want one listening socket, got %d", addr, len(files))
		}
		if old := h.held[addr]; old != nil {
			old.Close()
		}
		h.held[addr] = files[0]
		keep = true
		return nil
	case "release":
		if f := h.held[addr]; f != nil {
			f.Close()
			delete(h.held, addr)
		}
		return nil
	}
	return fmt.Errorf("unknown request %q", verb)
}

// receivedFiles turns the SCM_RIGHTS descriptors of a message into files.
func receivedFiles(oob []byte, flags int) ([]*os.File, error) {
	var files []*os.File
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	for _, m := range msgs {
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "held listener"))
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 {
		for _, f := range files {
			f.Close()
		}
		return nil, errors.New("control message truncated (too many descriptors)")
	}
	return files, nil
}

// listenerHandoff is the router process's side: it opens the router's listeners
// (router.Options.Listen) from the inherited sockets or by binding, hands each new one
// to the supervisor, and releases the supervisor's copy before closing its own.
type listenerHandoff struct {
	logger *slog.Logger

	mu        sync.Mutex // one request and its answer at a time; guards inherited and seq
	conn      *net.UnixConn
	inherited map[string]*os.File
	seq       uint64        // the number of the last request sent
	timeout   time.Duration // for one answer; handoffTimeout when zero
}

// openListenerHandoff connects to the supervisor through the inherited handoff socket
// and takes the inherited listeners named in listenersEnv.
func openListenerHandoff(logger *slog.Logger) (*listenerHandoff, error) {
	f := os.NewFile(handoffFD, "handoff")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("handoff socket on descriptor %d (the router process runs under `agent router`, not alone): %w", handoffFD, err)
	}
	conn, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("descriptor %d is not a unix socket", handoffFD)
	}
	h := &listenerHandoff{logger: logger, conn: conn, inherited: map[string]*os.File{}}
	if env := os.Getenv(listenersEnv); env != "" {
		var fds map[string]int
		if err := json.Unmarshal([]byte(env), &fds); err != nil {
			conn.Close()
			return nil, fmt.Errorf("$%s: %w", listenersEnv, err)
		}
		for addr, fd := range fds {
			h.inherited[addr] = os.NewFile(uintptr(fd), "inherited listener "+addr)
		}
	}
	return h, nil
}

// listen is the router's Options.Listen.
func (h *listenerHandoff) listen(ctx context.Context, addr string) (net.Listener, error) {
	h.mu.Lock()
	f := h.inherited[addr]
	delete(h.inherited, addr)
	h.mu.Unlock()
	if f != nil {
		ln, err := net.FileListener(f)
		f.Close()
		if err == nil {
			return &heldListener{Listener: ln, addr: addr, handoff: h}, nil
		}
		// Not a listener after all: give the supervisor's copy up and bind anew.
		h.logger.Warn("inherited listener unusable; binding again", "listen", addr, "err", err)
		if err := h.request("release "+addr, nil); err != nil {
			return nil, fmt.Errorf("listen %s: release the unusable inherited socket: %w", addr, err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := h.hold(addr, ln); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: hand the socket to the supervisor: %w", addr, err)
	}
	return &heldListener{Listener: ln, addr: addr, handoff: h}, nil
}

// controlKey is the handoff address of the control API's unix socket at path.
func controlKey(path string) string { return "unix:" + path }

// listenControl opens the control API's unix socket: the inherited one, else a new
// one (a socket file left at path by a previous run of the container is removed
// first) handed to the supervisor, so control requests made while the router process
// restarts wait in its backlog instead of being refused. It is never released: the
// supervisor holds it as long as it runs.
func (h *listenerHandoff) listenControl(path string) (net.Listener, error) {
	key := controlKey(path)
	h.mu.Lock()
	f := h.inherited[key]
	delete(h.inherited, key)
	h.mu.Unlock()
	if f != nil {
		ln, err := net.FileListener(f)
		f.Close()
		if err == nil {
			return ln, nil
		}
		h.logger.Warn("inherited control socket unusable; binding again", "control", path, "err", err)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The socket outlives this process (the supervisor holds it), so its file must too.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := h.hold(key, ln); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: hand it to the supervisor: %w", path, err)
	}
	return ln, nil
}

// hold sends the supervisor a copy of ln's socket.
func (h *listenerHandoff) hold(addr string, ln net.Listener) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no descriptor", ln)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var reqErr error
	if err := raw.Control(func(fd uintptr) {
		reqErr = h.request("hold "+addr, syscall.UnixRights(int(fd)))
	}); err != nil {
		return err
	}
	if reqErr != nil && !errors.Is(reqErr, errRefused) {
		// Unanswered: the supervisor may hold the copy all the same, and a copy left
		// open keeps the port bound after the caller closes its listener, so the next
		// bind of addr would fail with "address already in use". Requests are
		// answered in order, so once this release is answered the copy is gone.
		if err := h.request("release "+addr, nil); err != nil {
			h.logger.Warn("release a socket whose hold went unanswered", "listen", addr, "err", err)
		}
	}
	return reqErr
}

// errRefused marks an answer of "error": the supervisor kept nothing.
var errRefused = errors.New("refused by the supervisor")

// releaseUnused gives up the inherited sockets the router did not take: addresses the
// supervisor held that the loaded config no longer has (the process died between
// binding or removing an address and saving its config).
func (h *listenerHandoff) releaseUnused() {
	h.mu.Lock()
	unused := h.inherited
	h.inherited = map[string]*os.File{}
	h.mu.Unlock()
	for addr, f := range unused {
		f.Close()
		if err := h.request("release "+addr, nil); err != nil {
			h.logger.Warn("release an unused inherited listener", "listen", addr, "err", err)
		}
	}
}

// request sends one message (with descriptors in oob) and waits for its answer,
// skipping late answers to earlier requests.
func (h *listenerHandoff) request(msg string, oob []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	timeout := h.timeout
	if timeout == 0 {
		timeout = handoffTimeout
	}
	if err := h.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	h.seq++
	seq := strconv.FormatUint(h.seq, 10)
	if _, _, err := h.conn.WriteMsgUnix([]byte(seq+" "+msg), oob, nil); err != nil {
		return fmt.Errorf("send %q to the supervisor: %w", msg, err)
	}
	buf := make([]byte, maxHandoffMsg)
	for {
		n, err := h.conn.Read(buf)
		if err != nil {
			return fmt.Errorf("the supervisor's answer to %q: %w", msg, err)
		}
		got, reply, _ := strings.Cut(string(buf[:n]), " ")
		if got != seq {
			continue // the late answer to a request that timed out
		}
		if reply != "ok" {
			return fmt.Errorf("%w: %q: %s", errRefused, msg, strings.TrimPrefix(reply, "error "))
		}
		return nil
	}
}

// heldListener is a listener whose socket the supervisor holds a copy of: closing it
// first has the supervisor close that copy.
type heldListener struct {
	net.Listener
	addr    string
	handoff *listenerHandoff
	once    sync.Once
}

func (l *heldListener) Close() error {
	l.once.Do(func() {
		if err := l.handoff.request("release "+l.addr, nil); err != nil {
			l.handoff.logger.Warn("release a listener held by the supervisor", "listen", l.addr, "err", err)
		}
	})
	return l.Listener.Close()
}
