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
	"syscall"

	"github.com/docker-lifecycle/docker-lifecycle/router"
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
