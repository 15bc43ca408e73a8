package plugin

import (
	"context"
	"errors"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const defaultHostsHistoryFormat = "table {{.Host}}\t{{.Service}}\t{{.Revision}}\t{{.Result}}\t{{.Strategy}}\t{{.Image}}\t{{.Containers}}\t{{.Since}}\t{{.Trigger}}\t{{.Reason}}"

// runHostsHistory is history across the hosts of x-lifecycle.hosts or --hosts: each
// host's records, newest first, host after host, with a HOST column (the key Host in
// JSON); revision numbers are each host's own. docs/multihost.md.
func runHostsHistory(ctx context.Context, dockerCli command.Cli, project string, names []string, opts historyOptions, services []string) error {
	// The hosts that answer are listed; those that do not are named in the error.
	hosts, closeHosts, connectErr := connectHosts(ctx, dockerCli, names)
	defer closeHosts()
	perHost, readErr := rollout.HostsHistory(ctx, hosts, project)
	var rows []formatter.SubContext
	for _, h := range perHost {
		for _, r := range historyRows(h.Records, h.States, services, opts.revision) {
			rows = append(rows, &hostHistoryRow{historyRow: &r, host: h.Host})
		}
	}
	header := historyHeader()
	header["Host"] = "HOST"
	if err := writeRows(dockerCli.Out(), opts.format, defaultHostsHistoryFormat, &hostHistoryRow{historyRow: &historyRow{HeaderContext: formatter.HeaderContext{Header: header}}}, rows); err != nil {
		return err
	}
	return errors.Join(connectErr, readErr)
}

// hostHistoryRow is a history row of one host: the history fields and Host.
type hostHistoryRow struct {
	*historyRow
	host string
}

func (r *hostHistoryRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }

// Host is the Docker context whose engine keeps the record.
func (r *hostHistoryRow) Host() string { return r.host }
