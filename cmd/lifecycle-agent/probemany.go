package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// probeResult is one target of `agent probe-many`, printed as a JSON line for `network verify`.
type probeResult struct {
	Target   string   `json:"target"`
	Host     string   `json:"host"`
	Port     int      `json:"port,omitempty"`
	Resolved bool     `json:"resolved"`
	Addrs    []string `json:"addrs,omitempty"`
	// Connect is "ok", "refused" (a host answered: the network path exists), "timeout",
	// "error", or "" when no port was given or the name did not resolve.
	Connect string `json:"connect,omitempty"`
	Error   string `json:"error,omitempty"`
	Millis  int64  `json:"ms"`
}

// probeMany resolves and connects to every target at once (HOST or HOST:PORT) and prints
// one JSON line per target, so one short-lived container proves a service's whole row of the
// reachability matrix from inside its network namespace.
func probeMany(args []string) int {
	fs := flag.NewFlagSet("probe-many", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "give up on a target after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	results := make([]probeResult, fs.NArg())
	var wg sync.WaitGroup
	for i, target := range fs.Args() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = probeTarget(target, *timeout)
		}()
	}
	wg.Wait()
	// One object per line: log drivers split long lines, and a large project has many targets.
	enc := json.NewEncoder(os.Stdout)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func probeTarget(target string, timeout time.Duration) (r probeResult) {
	start := time.Now()
	r = probeResult{Target: target, Host: target}
	if host, port, err := net.SplitHostPort(target); err == nil {
		r.Host = host
		r.Port, _ = strconv.Atoi(port)
	}
	defer func() { r.Millis = time.Since(start).Milliseconds() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, r.Host)
	if err != nil || len(addrs) == 0 {
		r.Error = fmt.Sprint(err)
		return r
	}
	r.Resolved, r.Addrs = true, addrs
	if r.Port == 0 {
		return r
	}
	// A service that is still starting refuses connections: retry refusals until the
	// deadline, and report the last outcome.
	for {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(r.Host, strconv.Itoa(r.Port)))
		if err == nil {
			conn.Close()
			r.Connect, r.Error = "ok", ""
			return r
		}
		r.Error = err.Error()
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			r.Connect = "refused"
		case ctx.Err() != nil || os.IsTimeout(err):
			if r.Connect == "" {
				r.Connect = "timeout"
			}
			return r
		default:
			r.Connect = "error"
		}
		select {
		case <-ctx.Done():
			return r
		case <-time.After(100 * time.Millisecond):
		}
	}
}
