//go:build linux

package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// handoffPair connects a listenerHolder (the supervisor's side, served on its own
// goroutine) and a listenerHandoff (the router process's side) through a socketpair,
// as the supervisor does across a fork.
func handoffPair(t *testing.T, holder *listenerHolder, inherited map[string]*os.File) *listenerHandoff {
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
	supervisorEnd, routerEnd := conn(fds[0]), conn(fds[1])
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
