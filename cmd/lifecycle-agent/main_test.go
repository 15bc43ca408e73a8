package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestCommands(t *testing.T) {
	assert.Check(t, is.Equal(run(nil), 2))
	assert.Check(t, is.Equal(run([]string{"version"}), 0))
	assert.Check(t, is.Equal(run([]string{"bogus"}), 2))
	assert.Check(t, is.Equal(run([]string{"probe", "udp", "x"}), 2))
	assert.Check(t, is.Equal(run([]string{"ctl", "bogus"}), 2))
}

func TestProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	open := l.Addr().String()
	assert.Check(t, is.Equal(run([]string{"probe", "-timeout", "1s", "tcp", open}), 0))
	l.Close()
	assert.Check(t, is.Equal(run([]string{"probe", "-timeout", "300ms", "tcp", open}), 1))

	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer failing.Close()
	assert.Check(t, is.Equal(run([]string{"probe", "http", ok.URL}), 0))
	assert.Check(t, is.Equal(run([]string{"probe", "-timeout", "300ms", "http", failing.URL}), 1))
}

func TestCtlWithoutRouter(t *testing.T) {
	assert.Check(t, is.Equal(run([]string{"ctl", "-control", t.TempDir() + "/none.sock", "healthz"}), 1))
}
