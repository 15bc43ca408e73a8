package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
)

// Two non-HTTP protocols, so the end-to-end tests can carry real protocol traffic
// through the router beside HTTP:
//
//   - GREET_PORT: a server-first line protocol, like SMTP or MySQL: on connect the
//     server sends "HELLO $VERSION\n" before the client says anything; then every line
//     L is answered "$VERSION L\n", and "QUIT" is answered "BYE\n" and ends the session.
//   - FRAME_PORT: a client-first binary protocol, like postgres or redis: frames of a
//     4-byte big-endian length and a payload; each frame is answered with a frame
//     holding "$VERSION:" and the payload.

// maxFrame bounds a frame's payload.
const maxFrame = 64 << 10

// protoServer serves one of the protocols on a listener and tracks its sessions, so a
// graceful shutdown can let them finish.
type protoServer struct {
	name     string
	listener net.Listener
	sessions sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

func startProtoServer(name string, l net.Listener, version string, logger *log.Logger) *protoServer {
	ps := &protoServer{name: name, listener: l, conns: map[net.Conn]struct{}{}}
	session := greetSession
	if name == "frame" {
		session = frameSession
	}
	ps.sessions.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ps.mu.Lock()
			ps.conns[c] = struct{}{}
			ps.mu.Unlock()
			ps.sessions.Go(func() {
				defer func() {
					ps.mu.Lock()
					delete(ps.conns, c)
					ps.mu.Unlock()
					c.Close()
				}()
				if err := session(c, version); err != nil && err != io.EOF {
					logger.Printf("%s session from %s: %v", name, c.RemoteAddr(), err)
				}
			})
		}
	})
	logger.Printf("version %s serving the %s protocol on %s", version, name, l.Addr())
	return ps
}

// shutdown stops accepting and waits for the open sessions to end (their clients
// close them; docker stop's SIGKILL bounds the wait).
func (ps *protoServer) shutdown() {
	ps.listener.Close()
	ps.sessions.Wait()
}

// close ends every session at once, as a crash would.
func (ps *protoServer) close() {
	ps.listener.Close()
	ps.mu.Lock()
	for c := range ps.conns {
		c.Close()
	}
	ps.mu.Unlock()
}

func greetSession(c net.Conn, version string) error {
	if _, err := fmt.Fprintf(c, "HELLO %s\n", version); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "QUIT" {
			_, err := io.WriteString(c, "BYE\n")
			return err
		}
		if _, err := fmt.Fprintf(c, "%s %s\n", version, line); err != nil {
			return err
		}
	}
}

func frameSession(c net.Conn, version string) error {
	br := bufio.NewReader(c)
	var head [4]byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(head[:])
		if n > maxFrame {
			return fmt.Errorf("frame of %d bytes (at most %d)", n, maxFrame)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			return err
		}
		answer := append([]byte(version+":"), payload...)
		out := binary.BigEndian.AppendUint32(nil, uint32(len(answer)))
		if _, err := c.Write(append(out, answer...)); err != nil {
			return err
		}
	}
}
