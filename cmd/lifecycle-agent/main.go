// Command agent is the in-container helper of docker lifecycle. The plugin embeds it and
// creates a FROM scratch image from it on the engine (see package agentimage).
//
// It imports none of the plugin's CLI packages, so it stays a few MB and starts in
// milliseconds. Subcommands:
//
//	agent version                 print the agent version
//	agent probe tcp HOST:PORT     exit 0 when a TCP connection opens within the timeout
//	agent probe http URL          exit 0 when GET URL answers 2xx/3xx within the timeout
//	agent router [flags]          run the traffic router (see package router) as a
//	                              supervised child process, restarted on the same
//	                              listening sockets if it dies (routersupervisor.go)
//	agent router-worker [flags]   the router process itself (started by `agent router`)
//	agent ctl COMMAND             drive a running router through its control socket
package main

import (
	"fmt"
	"os"
)

// version is set with -ldflags "-X main.version=…" by the Makefile.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: agent version | probe tcp|http TARGET | router [flags] | ctl COMMAND")
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Println(version)
		return 0
	case "probe":
		return probe(args[1:])
	case "probe-many": // agent probe-many [-timeout D] HOST[:PORT]…: JSON results (network verify)
		return probeMany(args[1:])
	case "router":
		return superviseRouter(args[1:])
	case routerProcessCommand:
		return runRouterProcess(args[1:])
	case "ctl":
		return ctl(args[1:])
	case "secrets-write": // agent secrets-write [DIR] < files.json (the secrets holder)
		return secretsWrite(args[1:])
	case "hold":
		return hold()
	}
	fmt.Fprintf(os.Stderr, "agent: unknown command %q\n", args[0])
	return 2
}
