package main

import (
	"bufio"
	"encoding/binary"
	"io"
	"log"
	"net"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

func startProto(t *testing.T, name string) (*protoServer, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	ps := startProtoServer(name, l, "v7", log.New(io.Discard, "", 0))
	t.Cleanup(ps.close)
	return ps, l.Addr().String()
}

func TestGreetProtocol(t *testing.T) {
	ps, addr := startProto(t, "greet")
	c, err := net.Dial("tcp", addr)
	assert.NilError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	assert.NilError(t, err)
	assert.Equal(t, line, "HELLO v7\n", "the server speaks first")
	io.WriteString(c, "PING 1\r\n")
	line, _ = br.ReadString('\n')
	assert.Equal(t, line, "v7 PING 1\n")

	// A graceful shutdown waits for the open session, which ends with QUIT.
	done := make(chan struct{})
	go func() { ps.shutdown(); close(done) }()
	select {
	case <-done:
		t.Fatal("shutdown did not wait for the open session")
	case <-time.After(50 * time.Millisecond):
	}
	io.WriteString(c, "QUIT\n")
	line, _ = br.ReadString('\n')
	assert.Equal(t, line, "BYE\n")
	<-done
}

func TestFrameProtocol(t *testing.T) {
	_, addr := startProto(t, "frame")
	c, err := net.Dial("tcp", addr)
	assert.NilError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, payload := range []string{"\x00\x01binary\xff", ""} {
		_, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...))
		assert.NilError(t, err)
		var head [4]byte
		_, err = io.ReadFull(c, head[:])
		assert.NilError(t, err)
		answer := make([]byte, binary.BigEndian.Uint32(head[:]))
		_, err = io.ReadFull(c, answer)
		assert.NilError(t, err)
		assert.Equal(t, string(answer), "v7:"+payload)
	}
}

func TestProtocolPortsFromEnvironment(t *testing.T) {
	cfg, err := parseConfig(func(name string) string {
		return map[string]string{"GREET_PORT": "7000", "FRAME_PORT": "7001"}[name]
	})
	assert.NilError(t, err)
	assert.Equal(t, cfg.greetPort, 7000)
	assert.Equal(t, cfg.framePort, 7001)
	_, err = parseConfig(func(name string) string { return map[string]string{"GREET_PORT": "x"}[name] })
	assert.ErrorContains(t, err, "GREET_PORT")
}
