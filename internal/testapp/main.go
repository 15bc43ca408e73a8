// Command testapp is the application that the end-to-end tests of
// docker lifecycle deploy. It is a small static HTTP server whose behaviour
// (slow start, crashes, failed health checks, slow draining, errors, OOM, ...)
// is chosen through environment variables, so that one image can play every
// kind of service a deploy has to cope with. It is built with CGO_ENABLED=0
// and runs as /testapp in a FROM scratch image: it needs no files, shell or
// curl, and its own subcommands stand in for them.
//
// Usage:
//
//	testapp                     serve HTTP (the default)
//	testapp healthcheck [URL]   GET URL (default http://127.0.0.1:$PORT/healthz),
//	                            2s timeout; exit 0 on 200, 1 otherwise
//	testapp version             print $VERSION
//	testapp sleep DURATION      sleep, then exit 0 (143 on SIGTERM, 130 on SIGINT)
//	testapp cat FILE            print FILE (e.g. a secret under /run/secrets)
//	testapp load URL RATE DURATION
//	                            GET URL RATE times a second for DURATION and print
//	                            {"sent","failed","bodies","errors"} as JSON
//	testapp until URL BODY TIMEOUT
//	                            GET URL every 20 ms until it answers BODY; print
//	                            how long that took (exit 1 after TIMEOUT)
//
// Environment (durations are Go durations such as 500ms, 10s or 1m30s;
// booleans are 1/0 or true/false; an unparsable value exits 2 naming the
// variable):
//
//	VERSION         answer of GET / and header X-Version (default "v1")
//	PORT            listen on :PORT (default 8080)
//	READY_AFTER     /healthz answers 503 until this long after start (default 0)
//	NEVER_HEALTHY   1: /healthz always answers 503
//	UNHEALTHY_AFTER /healthz answers 503 from this long after start on (default 0: off)
//	CRASH_AFTER     exit with code 3 this long after start
//	EXIT_AFTER      exit with EXIT_CODE this long after start, logging "done"
//	EXIT_CODE       code for EXIT_AFTER (default 0); setting only EXIT_CODE
//	                exits at once, as if EXIT_AFTER=0s
//	IGNORE_SIGTERM  1: log SIGTERM and ignore it (SIGINT still shuts down)
//	DRAIN           on SIGTERM or SIGINT, report unhealthy for this long before
//	                shutting down the HTTP server (default 0)
//	SLOW            every GET / waits this long before answering
//	ERROR_RATE      fraction 0..1 of GET / answered 500, deterministically:
//	                0.2 fails requests 5, 10, 15, ...
//	MEMORY_HOG      1: enable GET /hog, which allocates memory until killed
//	QUIET           1: do not log one line per request
//	LOG_SEQ_EVERY   print {"level":"info","seq":N} every interval (N from 1)
//	COUNT_DIR       a directory shared by several containers where each one
//	                claims the next number once (files container-1, ...; a
//	                restart keeps the number, found by hostname)
//	FAULT_FREE_FIRST
//	                the first N containers counted in COUNT_DIR ignore
//	                NEVER_HEALTHY, UNHEALTHY_AFTER and CRASH_AFTER
//	GREET_PORT      also serve a server-first line protocol on this port:
//	                "HELLO $VERSION\n" on connect, then "$VERSION LINE\n" per
//	                line, "BYE\n" to QUIT (lineproto.go)
//	FRAME_PORT      also serve a client-first binary protocol on this port:
//	                4-byte big-endian length + payload, answered "$VERSION:"
//	                + payload
//
// Endpoints (every response carries headers X-Version and X-Hostname):
//
//	GET /            "$VERSION\n", subject to SLOW and ERROR_RATE
//	GET /healthz     200 "ok\n" when healthy, else 503 with the reason
//	GET /slow?d=2s   waits d, then answers "slept 2s\n"
//	GET /env?name=X  the raw value of environment variable X; 404 if unset
//	GET /file?path=P the raw content of file P; 404 if missing
//	GET /whoami      "uid=N gid=N\n" of the process
//	GET /stat?path=P "mode=0400 uid=N gid=N\n" of file P; 404 if missing
//	GET /hog         with MEMORY_HOG=1, allocates and touches memory until the
//	                 process is killed, answering nothing; 403 otherwise
//	GET /burn?d=10s  keeps one CPU busy for d (at most 1m), answers at once
//	GET /hog?mib=N   with MEMORY_HOG=1, allocates N MiB, keeps them, then answers
//
// On SIGTERM (unless IGNORE_SIGTERM=1) or SIGINT the server marks /healthz
// unhealthy, waits DRAIN, then shuts the HTTP server down, waiting for
// in-flight requests, and exits 0. Lifecycle events and requests are logged to
// stdout.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(runCommand(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// runCommand dispatches to a subcommand and returns the process exit code.
func runCommand(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return serve(getenv, stdout, stderr)
	}
	switch command, rest := args[0], args[1:]; command {
	case "healthcheck":
		return runHealthcheck(rest, getenv, stdout, stderr)
	case "load":
		return runLoad(rest, stdout, stderr)
	case "until":
		return runUntil(rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionFromEnv(getenv))
		return 0
	case "sleep":
		return runSleep(rest, stdout, stderr)
	case "cat":
		return runCat(rest, stdout, stderr)
	case "write":
		return runWrite(rest, stderr)
	case "rm":
		return runRemove(rest, stderr)
	case "id":
		return runID(rest, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "testapp: unknown command %q\n%s", command, usage)
		return 2
	}
}

const usage = `usage:
  testapp                     serve HTTP (behaviour set by environment variables)
  testapp healthcheck [URL]   exit 0 if URL (default http://127.0.0.1:$PORT/healthz) answers 200
  testapp version             print $VERSION
  testapp sleep DURATION      sleep, then exit 0
  testapp cat FILE            print FILE
  testapp write FILE TEXT     write TEXT to FILE (a dump in a backup hook's test)
  testapp rm FILE             remove FILE
  testapp id FILE             write this process's UID:GID to FILE (which user an exec ran as)
  testapp until URL BODY TIMEOUT  GET URL every 20 ms until it answers BODY; print how long it took
`

// serve runs the HTTP server until a signal or a scheduled exit ends it.
func serve(getenv func(string) string, stdout, stderr io.Writer) int {
	// Subscribe before anything else: a SIGTERM that arrives while we start
	// must go through the shutdown path, not the runtime's default handling.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	cfg, err := parseConfig(getenv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "testapp: invalid environment: %s\n", line)
		}
		return 2
	}

	logger := log.New(stdout, "testapp: ", log.LstdFlags|log.Lmicroseconds)
	if cfg.countDir != "" {
		hostname, _ := os.Hostname() // a container's hostname is its ID unless set
		var n int
		if cfg, n, err = countContainer(cfg, hostname); err != nil {
			fmt.Fprintf(stderr, "testapp: %v\n", err)
			return 2
		}
		faults := "on"
		if n <= cfg.faultFreeFirst {
			faults = "off"
		}
		logger.Printf("container %d counted in %s (FAULT_FREE_FIRST=%d): faults %s", n, cfg.countDir, cfg.faultFreeFirst, faults)
	}
	listener, err := net.Listen("tcp", fmt.Sprintf(":%d", cfg.port))
	if err != nil {
		logger.Printf("cannot listen: %v", err)
		return 1
	}
	return run(cfg, listener, signals, logger)
}

// runCat implements "testapp cat FILE", a stand-in for cat(1) in a scratch image.
func runCat(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: testapp cat FILE\n")
		return 2
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "testapp cat: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(b)
	return 0
}

// runWrite implements "testapp write FILE TEXT": a stand-in for a database dump that
// a backup hook writes into a volume.
func runWrite(args []string, stderr io.Writer) int {
	if len(args) != 2 {
		fmt.Fprintf(stderr, "usage: testapp write FILE TEXT\n")
		return 2
	}
	if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
		fmt.Fprintf(stderr, "testapp write: %v\n", err)
		return 1
	}
	return 0
}

// runID implements "testapp id FILE": the image has no id(1), and a backup hook's
// output is not kept, so the user a hook ran as is read from the file it writes.
func runID(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: testapp id FILE\n")
		return 2
	}
	if err := os.WriteFile(args[0], fmt.Appendf(nil, "%d:%d", os.Getuid(), os.Getgid()), 0o644); err != nil {
		fmt.Fprintf(stderr, "testapp id: %v\n", err)
		return 1
	}
	return 0
}

// runRemove implements "testapp rm FILE".
func runRemove(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: testapp rm FILE\n")
		return 2
	}
	if err := os.Remove(args[0]); err != nil {
		fmt.Fprintf(stderr, "testapp rm: %v\n", err)
		return 1
	}
	return 0
}

// runSleep implements "testapp sleep DURATION", a stand-in for sleep(1) in a
// scratch image.
func runSleep(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: testapp sleep DURATION (e.g. 10s)\n")
		return 2
	}
	duration, err := time.ParseDuration(args[0])
	if err != nil || duration < 0 {
		fmt.Fprintf(stderr, "testapp sleep: %q is not a non-negative duration (e.g. 500ms, 10s)\n", args[0])
		return 2
	}

	// As PID 1 of a container a signal without a handler does nothing, so
	// handle SIGTERM/SIGINT and exit the way a shell would (128+signal): an
	// interrupted job must not look like one that completed successfully.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	select {
	case <-time.After(duration):
		return 0
	case sig := <-signals:
		fmt.Fprintf(stdout, "testapp sleep: received %s, exiting\n", signalName(sig))
		if number, ok := sig.(syscall.Signal); ok {
			return 128 + int(number)
		}
		return 1
	}
}

// signalName spells the signals we handle the way people and logs do
// ("SIGTERM"), rather than Go's "terminated".
func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	default:
		return sig.String()
	}
}
