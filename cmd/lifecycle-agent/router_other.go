//go:build !linux

package main

import (
	"fmt"
	"os"
)

// The router and its supervisor need Linux (descriptors passed over a SOCK_SEQPACKET
// socketpair, a parent-death signal); the agent runs in a Linux container only.

const routerProcessCommand = "router-worker"

func superviseRouter([]string) int {
	fmt.Fprintln(os.Stderr, "agent router: runs on Linux only (in the agent's container)")
	return 1
}

func runRouterProcess([]string) int { return superviseRouter(nil) }
