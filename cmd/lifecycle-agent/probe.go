package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// probe checks reachability from inside a container's network namespace: scratch images
// have no curl or nc, and `network verify` needs a proof from the right side.
func probe(args []string) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: agent probe [-timeout D] tcp HOST:PORT | http URL")
		return 2
	}
	kind, target := fs.Arg(0), fs.Arg(1)
	if kind != "tcp" && kind != "http" {
		fmt.Fprintf(os.Stderr, "agent probe: unknown kind %q (tcp or http)\n", kind)
		return 2
	}
	// Retry until the deadline: a service that is still starting refuses connections,
	// and a probe should report what holds within the timeout, not at one instant.
	deadline := time.Now().Add(*timeout)
	var err error
	for {
		if err = probeOnce(kind, target, time.Until(deadline)); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "unreachable: %v\n", err)
		return 1
	}
	fmt.Printf("reachable: %s %s\n", kind, target)
	return 0
}

func probeOnce(kind, target string, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	if kind == "tcp" {
		conn, err := net.DialTimeout("tcp", target, timeout)
		if err != nil {
			return err
		}
		return conn.Close()
	}
	client := http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%s answered %s", target, resp.Status)
	}
	return nil
}
