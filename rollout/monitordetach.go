package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// `monitor --detach` runs the monitor as a detached agent (detachedagent.go): the
// container <project>-monitor runs `docker-lifecycle lifecycle monitor --target JSON`
// (MonitorTarget: the project name and its alert rules and targets, resolved on the
// user's side). Unlike the guard it has a network: the default bridge, to serve
// /metrics through a port published on the engine's host and to reach webhooks.

// Resource limits of the monitor container: one stats stream per project container and
// the metrics of one scrape.
const (
	monitorMemory = 128 << 20
	monitorPids   = 64
)

// ErrDetachedMonitor: the monitor cannot be detached as asked.
var ErrDetachedMonitor = errors.New("cannot detach the monitor")

// MonitorPublish reads `monitor --detach --listen HOST:PORT`: where the metrics port is
// published on the engine's host. HOST must be an IP address (localhost is 127.0.0.1)
// and PORT fixed; an empty HOST (every interface, implicitly) is refused: the endpoint
// has no authentication, so exposing it beyond loopback takes writing the address
// (0.0.0.0:PORT for every interface). Loopback tells whether it stays on the host.
func MonitorPublish(listen string) (p PublishedPort, loopback bool, err error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return p, false, fmt.Errorf("%w: --listen %q: %w (expected IP:PORT, such as 127.0.0.1:9464)", ErrDetachedMonitor, listen, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return p, false, fmt.Errorf("%w: --listen %q: the port must be a number from 1 to 65535 (the published port on the engine's host; 0 is for the foreground monitor)", ErrDetachedMonitor, listen)
	}
	switch host {
	case "":
		return p, false, fmt.Errorf("%w: --listen %q has no host, which would publish the metrics (no authentication) on every interface of the engine's host: write 127.0.0.1:%d, or 0.0.0.0:%d if every interface is meant", ErrDetachedMonitor, listen, n, n)
	case "localhost":
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return p, false, fmt.Errorf("%w: --listen %q: the host must be an IP address of the engine's host (the port is published there), such as 127.0.0.1", ErrDetachedMonitor, listen)
	}
	return PublishedPort{HostIP: ip.String(), Port: n}, ip.IsLoopback(), nil
}

// MonitorAgent is the detached monitor of target t, published at p. Its exec alert
// targets are refused: the container has no shell and no command but the plugin.
func MonitorAgent(t MonitorTarget, p PublishedPort) (DetachedAgent, error) {
	if t.Alerts != nil {
		for i, target := range t.Alerts.Targets {
			if target.Exec != nil {
				return DetachedAgent{}, fmt.Errorf("%w: x-lifecycle.alerts.targets[%d] is an exec target (%q), and the monitor's container (FROM scratch, the plugin alone) cannot run it: use a webhook or stderr target, or run the monitor in the foreground", ErrDetachedMonitor, i, target.Exec.Command)
			}
		}
	}
	// In its own network namespace the monitor listens on every interface of the
	// container; only the published port reaches it from the host.
	args := []string{"--listen", net.JoinHostPort("0.0.0.0", strconv.Itoa(p.Port)), "--target", t.Encode()}
	a := DetachedAgent{Role: compose.RoleMonitor, Project: t.Project, Args: args, Publish: &p, Memory: monitorMemory, Pids: monitorPids}
	if t.BackupTo != "" && !strings.HasPrefix(t.BackupTo, "s3://") {
		// The drill records: read where they are, on the engine's host (the same
		// host as the plugin's when the engine is local). A directory that is not
		// there yet is not mounted (the engine refuses a bind of a missing path, and
		// creating it is the first backup's job): the monitor then reports the target
		// unreadable until it is detached again. An s3:// target is read over the
		// network, without the user's credentials: see docs/backup.md#the-drill-record.
		if info, err := os.Stat(t.BackupTo); err == nil && info.IsDir() {
			a.ReadOnlyDirs = []string{t.BackupTo}
		}
	}
	return a, nil
}

// DetachMonitor starts project t's monitor as a container, published at p, replacing
// an older monitor of the project.
func DetachMonitor(ctx context.Context, eng engine.Engine, t MonitorTarget, p PublishedPort, opts DetachOptions) (DetachResult, error) {
	if !opts.MountDockerSocket {
		return DetachResult{}, SocketOptInError(compose.RoleMonitor)
	}
	a, err := MonitorAgent(t, p)
	if err != nil {
		return DetachResult{}, err
	}
	return Detach(ctx, eng, a, opts)
}
