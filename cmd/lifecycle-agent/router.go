package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/agent/router"
)

// runRouter runs the traffic router: routes from the config file (so a restarted router
// serves what it served before), control API on a unix socket on a volume shared with
// the plugin's exec calls; no control port is ever published.
func runRouter(args []string) int {
	fs := flag.NewFlagSet("router", flag.ContinueOnError)
	configFile := fs.String("config", "/state/router.json", "config file, loaded at start and saved on every change")
	control := fs.String("control", "/state/control.sock", "unix socket of the control API")
	accessLog := fs.Bool("access-log", false, "write one JSON line per HTTP request to stdout")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	opts := router.Options{Logger: logger, ConfigFile: *configFile}
	if *accessLog {
		opts.AccessLog = os.Stdout
	}
	stopGC := make(chan struct{})
	defer close(stopGC)
	tuneGC(stopGC)
	r := router.New(opts)
	defer r.Close()

	cfg, err := router.LoadConfigFile(*configFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		fmt.Fprintf(os.Stderr, "agent router: %v\n", err)
		return 1
	default:
		if err := r.Apply(cfg); err != nil {
			fmt.Fprintf(os.Stderr, "agent router: apply %s: %v\n", *configFile, err)
			return 1
		}
	}

	_ = os.Remove(*control) // a socket left by a previous run of this container
	l, err := net.Listen("unix", *control)
	if err != nil {
		fmt.Fprintf(os.Stderr, "agent router: control socket: %v\n", err)
		return 1
	}
	errs := make(chan error, 1)
	go func() { errs <- r.ServeControl(l) }()

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	logger.Info("router started", "config", *configFile, "control", *control)
	select {
	case sig := <-signals:
		logger.Info("router stopping", "signal", sig.String())
		return 0
	case err := <-errs:
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(os.Stderr, "agent router: control API: %v\n", err)
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
