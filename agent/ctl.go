package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/router"
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
		fmt.Fprintln(os.Stderr, "usage: agent ctl [-control SOCKET] put-config|get-config|stats|healthz")
		return 2
	}
	client := http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *control)
		}},
	}
	var req *http.Request
	var err error
	switch fs.Arg(0) {
	case "put-config":
		body, rerr := io.ReadAll(os.Stdin)
		if rerr != nil {
			fmt.Fprintf(os.Stderr, "agent ctl: read config from stdin: %v\n", rerr)
			return 1
		}
		req, err = http.NewRequest(http.MethodPut, "http://router/config", bytes.NewReader(body))
	case "get-config":
		req, err = http.NewRequest(http.MethodGet, "http://router/config", nil)
	case "stats":
		req, err = http.NewRequest(http.MethodGet, "http://router/stats", nil)
	case "healthz":
		req, err = http.NewRequest(http.MethodGet, "http://router/healthz", nil)
	default:
		fmt.Fprintf(os.Stderr, "agent ctl: unknown command %q\n", fs.Arg(0))
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent ctl: %v\n", err)
		return 1
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent ctl: router control socket %s: %v\n", *control, err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "agent ctl: router answered %s\n", resp.Status)
		return 1
	}
	if fs.Arg(0) == "put-config" && *waitDrained > 0 {
		return waitUntilDrained(&client, *waitDrained)
	}
	return 0
}

// waitUntilDrained polls the router's stats until no backend is draining: the plugin
// stops an old container only once its in-flight requests are done. Polling here,
// inside the router container, costs one exec instead of one per poll.
func waitUntilDrained(client *http.Client, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for pause := 5 * time.Millisecond; ; pause = min(pause*2, 50*time.Millisecond) {
		resp, err := client.Get("http://router/stats")
		if err != nil {
			fmt.Fprintf(os.Stderr, "agent ctl: stats: %v\n", err)
			return 1
		}
		var snap router.Snapshot
		err = json.NewDecoder(resp.Body).Decode(&snap)
		resp.Body.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "agent ctl: stats: %v\n", err)
			return 1
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
			return 0
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "agent ctl: %d backends still draining after %s\n", draining, timeout)
			return 0 // the router cuts them at its drain timeout; the caller goes on
		}
		time.Sleep(pause)
	}
}
