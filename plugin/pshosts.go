package plugin

import (
	"context"
	"errors"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const defaultHostsPsFormat = "table {{.Host}}\t{{.Service}}\t{{.Name}}\t{{.Revision}}\t{{.State}}\t{{.Health}}\t{{.Ports}}"

// runHostsPs is ps across the hosts of x-lifecycle.hosts or --hosts: every host's
// containers with a HOST column (the key Host in JSON); docs/multihost.md.
func runHostsPs(ctx context.Context, dockerCli command.Cli, project string, names []string, opts psOptions, services []string) error {
	// The hosts that answer are listed; those that do not are named in the error.
	hosts, closeHosts, connectErr := connectHosts(ctx, dockerCli, names)
	defer closeHosts()
	perHost, listErr := rollout.HostsContainers(ctx, hosts, project, services, opts.all)
	var rows []formatter.SubContext
	for _, h := range perHost {
		for _, c := range h.Containers {
			rows = append(rows, &hostPsRow{psRow: &psRow{c: c}, host: h.Host})
		}
	}
	header := psHeader()
	header["Host"] = "HOST"
	if err := writeRows(dockerCli.Out(), opts.format, defaultHostsPsFormat, &hostPsRow{psRow: &psRow{HeaderContext: formatter.HeaderContext{Header: header}}}, rows); err != nil {
		return err
	}
	return errors.Join(connectErr, listErr)
}

// hostPsRow is a ps row of one host: the ps fields and Host.
type hostPsRow struct {
	*psRow
	host string
}

func (r *hostPsRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }

// Host is the Docker context the container runs on.
func (r *hostPsRow) Host() string { return r.host }
