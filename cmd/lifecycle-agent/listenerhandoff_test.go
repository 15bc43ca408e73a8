//go:build linux

package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// handoffSocketpair is the supervisor's and the router process's ends of a handoff
// socket, as the supervisor makes them.
func handoffSocketpair(t *testing.T) (supervisorEnd, routerEnd *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	assert.NilError(t, err)
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "handoff")
		defer f.Close()
		c, err := net.FileConn(f)
		assert.NilError(t, err)
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// handoffPair connects a listenerHolder (the supervisor's side, served on its own
// goroutine) and a listenerHandoff (the router process's side) through a socketpair,
// as the supervisor does across a fork.
func handoffPair(t *testing.T, holder *listenerHolder, inherited map[string]*os.File) *listenerHandoff {
	t.Helper()
	supervisorEnd, routerEnd := handoffSocketpair(t)
	served := make(chan error, 1)
	go func() { served <- holder.serve(supervisorEnd) }()
	t.Cleanup(func() {
		routerEnd.Close()
		assert.Check(t, <-served) // the router end closed: the holder stops without error
		supervisorEnd.Close()
	})
	if inherited == nil {
		inherited = map[string]*os.File{}
	}
	return &listenerHandoff{logger: slog.New(slog.DiscardHandler), conn: routerEnd, inherited: inherited}
}

// accepts reports whether a connection to addr is accepted on ln within a second.
func accepts(t *testing.T, ln net.Listener, addr string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	a, err := ln.Accept()
	if err != nil {
		return false
	}
	a.Close()
	return true
}

// TestHandoffHoldsAndReleases: a socket the router process binds is held by the
// supervisor (the same socket: a connection to it can be accepted from the
// supervisor's copy), and closing the router's listener has the supervisor close its
// copy first, so the port really closes.
func TestHandoffHoldsAndReleases(t *testing.T) {
	holder := newListenerHolder()
	defer holder.close()
	h := handoffPair(t, holder, nil)

	ln, err := h.listen(context.Background(), "127.0.0.1:0")
	assert.NilError(t, err)
	addr := ln.Addr().String()
	assert.Check(t, is.DeepEqual(holder.addrs(), []string{"127.0.0.1:0"}))
	files, env := holder.inheritance(4)
	assert.Assert(t, is.Len(files, 1))
	assert.Check(t, is.Equal(env, `{"127.0.0.1:0":4}`))
	held, err := net.FileListener(files[0])
	assert.NilError(t, err)
	assert.Check(t, accepts(t, held, addr), "the supervisor's copy is not the router's socket")
	held.Close() // a dup: the holder's own copy stays open

	assert.NilError(t, ln.Close())
	assert.Check(t, is.Len(holder.addrs(), 0))
	_, err = net.DialTimeout("tcp", addr, time.Second)
	assert.Check(t, is.ErrorContains(err, "connection refused"), "the port is still open after its last copy was released")

	// The address comes back; closing the old listener again (the router's Shutdown
	// then Close) must not release the new socket.
	again, err := h.listen(context.Background(), "127.0.0.1:0")
	assert.NilError(t, err)
	defer again.Close()
	_ = ln.Close()
	assert.Check(t, is.DeepEqual(holder.addrs(), []string{"127.0.0.1:0"}))
}

// TestHandoffServesInheritedSockets: a restarted router process serves the sockets it
// inherited without binding (connections queued while no process ran are accepted),
// and gives up the inherited ones its config no longer has.
func TestHandoffServesInheritedSockets(t *testing.T) {
	holder := newListenerHolder()
	defer holder.close()
	first := handoffPair(t, holder, nil)
	kept, err := first.listen(context.Background(), "127.0.0.1:0")
	assert.NilError(t, err)
	gone, err := first.listen(context.Background(), "127.0.0.2:0")
	assert.NilError(t, err)
	keptAddr, goneAddr := kept.Addr().String(), gone.Addr().String()

	// The router process dies (its descriptors close without a release); a client
	// connects meanwhile.
	kept.(*heldListener).Listener.Close()
	gone.(*heldListener).Listener.Close()
	queued, err := net.DialTimeout("tcp", keptAddr, time.Second)
	assert.NilError(t, err, "refused while no router process ran")
	defer queued.Close()

	// The next process: what the supervisor passes, as the child sees it.
	files, env := holder.inheritance(4)
	var fds map[string]int
	assert.NilError(t, json.Unmarshal([]byte(env), &fds))
	inherited := map[string]*os.File{}
	for addr, fd := range fds {
		f := files[fd-4]
		dup, err := syscall.Dup(int(f.Fd()))
		assert.NilError(t, err)
		inherited[addr] = os.NewFile(uintptr(dup), addr)
	}
	second := handoffPair(t, holder, inherited)
	ln, err := second.listen(context.Background(), "127.0.0.1:0")
	assert.NilError(t, err)
	defer ln.Close()
	assert.Check(t, is.Equal(ln.Addr().String(), keptAddr), "bound anew instead of inheriting")
	ln.(*heldListener).Listener.(*net.TCPListener).SetDeadline(time.Now().Add(time.Second))
	c, err := ln.Accept()
	assert.NilError(t, err, "the connection queued while no process ran was lost")
	c.Close()

	second.releaseUnused()
	assert.Check(t, is.DeepEqual(holder.addrs(), []string{"127.0.0.1:0"}))
	_, err = net.DialTimeout("tcp", goneAddr, time.Second)
	assert.Check(t, is.ErrorContains(err, "connection refused"))
}

// TestHolderRefusesBadRequests: malformed requests get an error answer and leave no
// descriptor open.
func TestHolderRefusesBadRequests(t *testing.T) {
	holder := newListenerHolder()
	defer holder.close()
	h := handoffPair(t, holder, nil)
	assert.Check(t, is.ErrorContains(h.request("hold 127.0.0.1:1", nil), "want one listening socket, got 0"))
	assert.Check(t, is.ErrorContains(h.request("bogus x", nil), `unknown request "bogus"`))
	assert.Check(t, is.ErrorContains(h.request("hold", nil), "names no address"))
	r, w, err := os.Pipe()
	assert.NilError(t, err)
	defer r.Close()
	assert.Check(t, is.ErrorContains(h.request("frob x", syscall.UnixRights(int(w.Fd()))), "unknown request"))
	w.Close()
	// The holder closed its copy of the write end: the pipe reads end of file.
	r.SetReadDeadline(time.Now().Add(time.Second))
	_, err = r.Read(make([]byte, 1))
	assert.Check(t, is.ErrorIs(err, io.EOF), "the holder kept a descriptor it refused")
	assert.Check(t, is.Len(holder.addrs(), 0))
}

// scriptedSupervisor plays the supervisor's side of a handoff: answer returns the
// packets to write for each request (which it may hold back, see the tests). It returns
// the router's side and a function that closes it and returns the requests received.
func scriptedSupervisor(t *testing.T, timeout time.Duration, answer func(seq, msg string) []string) (*listenerHandoff, func() []string) {
	t.Helper()
	supervisorEnd, routerEnd := handoffSocketpair(t)
	asked := make(chan []string, 1)
	go func() {
		defer supervisorEnd.Close()
		var got []string
		buf, oob := make([]byte, maxHandoffMsg), make([]byte, syscall.CmsgSpace(4*4))
		for {
			n, oobn, flags, _, err := supervisorEnd.ReadMsgUnix(buf, oob)
			if err != nil || n == 0 {
				asked <- got
				return
			}
			files, _ := receivedFiles(oob[:oobn], flags)
			for _, f := range files {
				f.Close()
			}
			got = append(got, string(buf[:n]))
			seq, msg, _ := strings.Cut(string(buf[:n]), " ")
			for _, packet := range answer(seq, msg) {
				_, _ = supervisorEnd.Write([]byte(packet))
			}
		}
	}()
	h := &listenerHandoff{logger: slog.New(slog.DiscardHandler), conn: routerEnd, inherited: map[string]*os.File{}, timeout: timeout}
	return h, func() []string {
		routerEnd.Close()
		return <-asked
	}
}

// TestHandoffSkipsALateAnswer: the late answer to an earlier request (here an "error")
// is not taken for the answer to the current one.
func TestHandoffSkipsALateAnswer(t *testing.T) {
	h, done := scriptedSupervisor(t, 5*time.Second, func(seq, msg string) []string {
		if seq == "1" {
			return []string{"1 ok"}
		}
		return []string{"1 error a late answer to request 1", seq + " ok"}
	})
	ln, err := h.listen(context.Background(), "127.0.0.1:0")
	assert.NilError(t, err)
	assert.NilError(t, ln.Close(), "the release took request 1's late answer for its own")
	assert.Check(t, is.DeepEqual(done(), []string{"1 hold 127.0.0.1:0", "2 release 127.0.0.1:0"}))
}

// TestHandoffUndoesAnUnansweredHold: a hold that gets no answer in time fails the
// listen, and is undone with a release (the supervisor may have kept the socket, which
// would keep the port bound and fail the next bind with "address already in use").
// The hold's late answer does not answer the release.
func TestHandoffUndoesAnUnansweredHold(t *testing.T) {
	h, done := scriptedSupervisor(t, 200*time.Millisecond, func(seq, msg string) []string {
		if seq == "1" {
			return nil // answered with request 2's answer, too late
		}
		return []string{"1 ok", seq + " ok"}
	})
	_, err := h.listen(context.Background(), "127.0.0.1:0")
	assert.Check(t, is.ErrorContains(err, "hand the socket to the supervisor"))
	assert.Check(t, is.ErrorContains(err, "i/o timeout"))
	assert.Check(t, is.DeepEqual(done(), []string{"1 hold 127.0.0.1:0", "2 release 127.0.0.1:0"}))

}
