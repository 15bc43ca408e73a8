//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
)

// routerFlags are the flags of `agent router`, which its supervisor passes on to the
// router process unchanged.
type routerFlags struct {
	configFile, control string
	accessLog           bool
}

func parseRouterFlags(args []string) (routerFlags, error) {
	var f routerFlags
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	fs.StringVar(&f.configFile, "config", "/state/router.json", "config file, loaded at start and saved on every change")
	fs.StringVar(&f.control, "control", "/state/control.sock", "unix socket of the control API")
	fs.BoolVar(&f.accessLog, "access-log", false, "write one JSON line per HTTP request to stdout")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return f, nil
}

// runRouterProcess is `agent router-worker`, the router process its supervisor
// (`agent router`, routersupervisor.go) starts and restarts: routes from the config
// file (so a restarted router serves what it served before) on the listening sockets
// the supervisor holds, control API on a unix socket on a volume shared with the
// plugin's exec calls; no control port is ever published.
func runRouterProcess(args []string) int {
	flags, err := parseRouterFlags(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent router-worker: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	handoff, err := openListenerHandoff(logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent router-worker: %v\n", err)
		return 1
	}
	opts := router.Options{Logger: logger, ConfigFile: flags.configFile, Listen: handoff.listen}
	if flags.accessLog {
		opts.AccessLog = os.Stdout
	}
	stopGC := make(chan struct{})
	defer close(stopGC)
	tuneGC(stopGC)
	r := router.New(opts)
	defer r.Close()

	// The control socket is opened first, served once the saved routes are applied:
	// a control request made meanwhile waits for them.
	l, err := handoff.listenControl(flags.control)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent router-worker: control socket: %v\n", err)
		return 1
	}
	cfg, err := router.LoadConfigFile(flags.configFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		fmt.Fprintf(os.Stderr, "agent router-worker: %v\n", err)
		return 1
	default:
		if err := r.Apply(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "agent router-worker: apply %s: %v\n", flags.configFile, err)
			return 1
		}
	}
	// Sockets the supervisor held for addresses the saved config no longer has.
	handoff.releaseUnused()

	errs := make(chan error, 1)
	go func() { errs <- r.ServeControl(l) }()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	logger.Info("router started", "config", flags.configFile, "control", flags.control)
	select {
	case sig := <-signals:
		logger.Info("router stopping", "signal", sig.String())
		return 0
	case err := <-errs:
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(os.Stderr, "agent router-worker: control API: %v\n", err)
			return 1
		}
		return 0
	}
}

// GC tuning for the router process. Its live heap is small (a few MiB: routing tables,
// connection buffers) and nearly everything it allocates dies with its request, so with
// the default GOGC=100 the collector runs hundreds of times a second under load and
// costs 6-10 % of the router's CPU (measured with GOGC=off; docs/benchmarks.md, section
// 7). A higher GOGC while the live heap is small buys most of that back for a few MiB
// of heap; should the live heap grow (many thousands of connections), the default
// comes back so the heap never grows to 5× something large. An operator's GOGC or
// GOMEMLIMIT in the environment still wins over this.
const (
	gcPercentSmallHeap = 400
	gcSmallHeapEnter   = 8 << 20  // live heap below this: gcPercentSmallHeap again
	gcSmallHeapLeave   = 16 << 20 // live heap above this: the default GOGC
	gcTuneInterval     = 5 * time.Second
)

// gcPercentFor is the GOGC for a live heap, given the current one (hysteresis between
// the two thresholds, so a heap near one of them does not flip it every interval).
func gcPercentFor(live uint64, current int) int {
	switch {
	case live > gcSmallHeapLeave:
		return 100
	case live < gcSmallHeapEnter:
		return gcPercentSmallHeap
	}
	return current
}

// tuneGC applies gcPercentFor now and every gcTuneInterval until stop is closed,
// unless GOGC or GOMEMLIMIT is set in the environment.
func tuneGC(stop <-chan struct{}) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	pct := gcPercentSmallHeap
	debug.SetGCPercent(pct)
	go func() {
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(gcTuneInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			metrics.Read(live)
			if live[0].Value.Kind() != metrics.KindUint64 {
				return
			}
			if want := gcPercentFor(live[0].Value.Uint64(), pct); want != pct {
				pct = want
				debug.SetGCPercent(pct)
			}
		}
	}()
}
