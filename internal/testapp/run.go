package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// run serves HTTP on listener until a signal, a scheduled exit or a server
// failure ends it, and returns the process exit code. Signals come in on a
// channel so that tests can drive the shutdown path without real signals.
func run(cfg config, listener net.Listener, signals <-chan os.Signal, logger *log.Logger) int {
	srv := newServer(cfg, logger)
	httpServer := &http.Server{
		Handler:           srv.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          logger,
	}
	// A crash or scheduled exit drops connections abruptly, like a real
	// process exit; after a graceful Shutdown this is a no-op.
	defer httpServer.Close()

	var protos []*protoServer
	for _, p := range []struct {
		name string
		port int
	}{{"greet", cfg.greetPort}, {"frame", cfg.framePort}} {
		if p.port == 0 {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p.port))
		if err != nil {
			logger.Printf("cannot listen for the %s protocol: %v", p.name, err)
			return 1
		}
		ps := startProtoServer(p.name, l, cfg.version, logger)
		protos = append(protos, ps)
		defer ps.close() // a crash or scheduled exit; after shutdown a no-op
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(listener) }()
	logger.Printf("version %s listening on %s (hostname %s, pid %d)",
		cfg.version, listener.Addr(), srv.hostname, os.Getpid())

	if cfg.logHistoryMiB > 0 {
		writeLogHistory(os.Stdout, cfg.logHistoryMiB)
	}
	if cfg.logSeqEvery > 0 {
		go logSequence(os.Stdout, cfg.logSeqEvery)
	}
	exit, exitTimer := earliestExit(cfg.scheduledExits)
	for {
		select {
		case err := <-serveErr:
			logger.Printf("http server failed: %v", err)
			return 1
		case <-exitTimer:
			logger.Print(exit.message)
			return exit.code
		case sig := <-signals:
			if sig == syscall.SIGTERM && cfg.ignoreSIGTERM {
				logger.Printf("received SIGTERM: ignoring it (IGNORE_SIGTERM=1)")
				continue
			}
			code := srv.shutdown(httpServer, signalName(sig))
			for _, ps := range protos {
				ps.shutdown()
			}
			return code
		}
	}
}

// earliestExit returns the first scheduled exit and a channel that fires
// when it is due; with none, the channel is nil and never fires.
func earliestExit(exits []scheduledExit) (scheduledExit, <-chan time.Time) {
	if len(exits) == 0 {
		return scheduledExit{}, nil
	}
	first := exits[0]
	for _, exit := range exits[1:] {
		if exit.after < first.after {
			first = exit
		}
	}
	return first, time.After(first.after)
}

// shutdown is the graceful stop a well-behaved service does on SIGTERM:
// fail health checks first so the load balancer stops sending traffic, keep
// serving for DRAIN meanwhile, then stop accepting and wait for in-flight
// requests. Docker's stop timeout bounds the whole thing with a SIGKILL.
func (s *server) shutdown(httpServer *http.Server, signal string) int {
	s.draining.Store(true)
	// Close persistent connections after their next response, so clients
	// reconnect and get routed to another container.
	httpServer.SetKeepAlivesEnabled(false)
	s.logger.Printf("received %s: /healthz now unhealthy, draining for %s (DRAIN)", signal, s.cfg.drain)
	time.Sleep(s.cfg.drain)

	s.logger.Printf("shutting down http server, waiting for in-flight requests")
	if err := httpServer.Shutdown(context.Background()); err != nil {
		s.logger.Printf("shutdown failed: %v", err)
		return 1
	}
	s.logger.Printf("shutdown complete, exiting with code 0")
	return 0
}

// writeLogHistory writes mib MiB of {"level":"info","seq":N,"pad":"…"} lines, N from 1,
// through a buffer (the engine splits the lines again), then says how many.
func writeLogHistory(w io.Writer, mib int) {
	bw := bufio.NewWriterSize(w, 64*1024)
	pad := strings.Repeat("x", 160)
	written, n := 0, 0
	for written < mib<<20 {
		n++
		k, _ := fmt.Fprintf(bw, "{\"level\":\"info\",\"seq\":%d,\"pad\":\"%s\"}\n", n, pad)
		written += k
	}
	_ = bw.Flush()
	fmt.Fprintf(w, "{\"level\":\"info\",\"history_lines\":%d,\"history_bytes\":%d}\n", n, written)
}

// logSequence writes {"level":"info","seq":N} every interval until the process
// ends (LOG_SEQ_EVERY), straight to w: one write per line, so lines never interleave.
func logSequence(w io.Writer, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 1; ; n++ {
		fmt.Fprintf(w, "{\"level\":\"info\",\"seq\":%d}\n", n)
		<-t.C
	}
}
