package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
)

// ctl talks to the router's control socket from inside the router container, so the
// plugin drives the router with `docker exec ROUTER /agent ctl …`: the control plane never
// needs a published port.
//
//	agent ctl put-config < config.json
//	agent ctl get-config | stats | healthz
func ctl(args []string) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	control := fs.String("control", "/state/control.sock", "unix socket of the router's control API")
	waitDrained := fs.Duration("wait-drained", 0, "put-config: then wait up to this long until no backend is draining")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: agent ctl [-control SOCKET] [-wait-drained D] put-config|get-config|stats|healthz|session")
		return 2
	}
	client := http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *control)
		}},
	}
	if fs.Arg(0) == "session" {
		return session(&client, os.Stdin, os.Stdout)
	}
	var body []byte
	if fs.Arg(0) == "put-config" {
		var err error
		if body, err = io.ReadAll(os.Stdin); err != nil {
			fmt.Fprintf(os.Stderr, "agent ctl: read config from stdin: %v\n", err)
			return 1
		}
	}
	out, err := call(&client, fs.Arg(0), body, *waitDrained)
	_, _ = os.Stdout.Write(out)
	var usage usageError
	switch {
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "agent ctl: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(os.Stderr, "agent ctl: router control socket %s: %v\n", *control, err)
		return 1
	}
	return 0
}

type usageError struct{ op string }

func (e usageError) Error() string { return fmt.Sprintf("unknown command %q", e.op) }

// call runs one control request: put-config (then, with waitDrained, waits until no
// backend drains), get-config, stats or healthz.
func call(client *http.Client, op string, body []byte, waitDrained time.Duration) ([]byte, error) {
	var req *http.Request
	var err error
	switch op {
	case "put-config":
		req, err = http.NewRequest(http.MethodPut, "http://router/config", bytes.NewReader(body))
	case "get-config":
		req, err = http.NewRequest(http.MethodGet, "http://router/config", nil)
	case "stats":
		req, err = http.NewRequest(http.MethodGet, "http://router/stats", nil)
	case "healthz":
		req, err = http.NewRequest(http.MethodGet, "http://router/healthz", nil)
	default:
		return nil, usageError{op}
	}
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("router answered %s: %s", resp.Status, bytes.TrimSpace(out))
	}
	if op == "put-config" && waitDrained > 0 {
		return out, waitUntilDrained(client, waitDrained)
	}
	return out, nil
}

// waitUntilDrained polls the router's stats until no backend is draining: the plugin
// stops an old container only once its in-flight requests are done. Polling here,
// inside the router container, costs one exec instead of one per poll.
func waitUntilDrained(client *http.Client, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for pause := 5 * time.Millisecond; ; pause = min(pause*2, 50*time.Millisecond) {
		resp, err := client.Get("http://router/stats")
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		var snap router.Snapshot
		err = json.NewDecoder(resp.Body).Decode(&snap)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		draining := 0
		for _, r := range snap.Routes {
			for _, b := range r.Backends {
				if b.State == router.Draining {
					draining++
				}
			}
		}
		if draining == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			// The router cuts them at its drain timeout; the caller goes on.
			fmt.Fprintf(os.Stderr, "agent ctl: %d backends still draining after %s\n", draining, timeout)
			return nil
		}
		time.Sleep(pause)
	}
}

// SessionRequest is one line of `agent ctl session` input.
type SessionRequest struct {
	Op          string `json:"op"`
	Body        string `json:"body,omitempty"`
	WaitDrained string `json:"wait_drained,omitempty"`
}

// SessionResponse is one line of `agent ctl session` output.
type SessionResponse struct {
	OK    bool   `json:"ok"`
	Body  string `json:"body,omitempty"`
	Error string `json:"error,omitempty"`
}

// session answers control requests, one JSON line in, one JSON line out, until stdin
// closes: the plugin keeps one `docker exec` open for a whole deploy instead of paying
// an exec (a process start in the container) per router change.
func session(client *http.Client, in io.Reader, out io.Writer) int {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req SessionRequest
		resp := SessionResponse{}
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			resp.Error = "bad request: " + err.Error()
		} else {
			var wait time.Duration
			if req.WaitDrained != "" {
				wait, err = time.ParseDuration(req.WaitDrained)
			}
			var body []byte
			if err == nil {
				body, err = call(client, req.Op, []byte(req.Body), wait)
			}
			resp.Body = string(body)
			if err != nil {
				resp.Error = err.Error()
			} else {
				resp.OK = true
			}
		}
		if err := enc.Encode(resp); err != nil {
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "agent ctl session: %v\n", err)
		return 1
	}
	return 0
}
