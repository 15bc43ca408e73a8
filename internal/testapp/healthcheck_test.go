package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestCheckHealth(t *testing.T) {
	handler := http.NewServeMux()
	handler.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	handler.HandleFunc("/starting", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "starting, ready in 2s", http.StatusServiceUnavailable)
	})
	handler.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	ts := httptest.NewServer(handler)
	defer ts.Close()

	tests := []struct {
		name    string
		url     string
		wantErr string // "" means healthy
	}{
		{"200 is healthy", ts.URL + "/ok", ""},
		{"503 is unhealthy and says why", ts.URL + "/starting", "503 Service Unavailable: starting, ready in 2s"},
		{"404 is unhealthy", ts.URL + "/missing", "404"},
		{"a hung server times out", ts.URL + "/hang", "Client.Timeout"},
		{"nothing listening", "http://" + closedAddr(t) + "/healthz", "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkHealth(tt.url, 200*time.Millisecond)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkHealth(%s) = %v, want healthy", tt.url, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkHealth(%s) = %v, want an error containing %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

// closedAddr returns a 127.0.0.1 address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	return addr
}

func TestRunHealthcheck(t *testing.T) {
	srv, _ := newTestServer(t, config{})
	healthy := httptest.NewServer(srv.routes())
	defer healthy.Close()
	_, healthyPort, _ := net.SplitHostPort(healthy.Listener.Addr().String())

	unhealthySrv, _ := newTestServer(t, config{neverHealthy: true})
	unhealthy := httptest.NewServer(unhealthySrv.routes())
	defer unhealthy.Close()

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantOutput string
	}{
		{"default URL from PORT", nil, map[string]string{"PORT": healthyPort}, 0, "healthy: http://127.0.0.1:" + healthyPort + "/healthz"},
		{"explicit URL", []string{healthy.URL + "/healthz"}, nil, 0, "healthy"},
		{"unhealthy", []string{unhealthy.URL + "/healthz"}, nil, 1, "NEVER_HEALTHY"},
		{"bad PORT", nil, map[string]string{"PORT": "x"}, 2, `PORT="x"`},
		{"too many arguments", []string{"a", "b"}, nil, 2, "usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runCommand(append([]string{"healthcheck"}, tt.args...), envOf(tt.env), &stdout, &stderr)
			output := stdout.String() + stderr.String()
			if code != tt.wantCode || !strings.Contains(output, tt.wantOutput) {
				t.Errorf("healthcheck = %d %q, want %d containing %q", code, output, tt.wantCode, tt.wantOutput)
			}
		})
	}
}
