package plugin

import (
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const defaultNetworkTopFormat = "table {{.Service}}\t{{.Name}}\t{{.Role}}\t{{.RxRate}}\t{{.TxRate}}\t{{.Rx}}\t{{.Tx}}"

type networkTopOptions struct {
	interval time.Duration
	format   string
}

func newNetworkTopCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := networkTopOptions{}
	cmd := &cobra.Command{
		Use:   "top [OPTIONS] [SERVICE...]",
		Short: "Per-container network traffic of the project: bytes received and sent, and their rates",
		Long: `Sample every running container of the project (the routers included) twice, --interval
apart, and print the bytes each received and sent since it started and the rates over the
interval. Requests through a router show as its rx/tx and as its backends' tx/rx; the
router's access log (docker logs <project>-lifecycle-router) has one JSON line per request.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runNetworkTop(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	durationFlag(cmd.Flags(), &opts.interval, "interval", time.Second, 100*time.Millisecond, time.Minute, "Time between the two samples the rates come from")
	templateFlag(cmd.Flags(), &opts.format, "Format output: 'table', 'json' (one object per line), or a Go template")
	return cmd
}

func runNetworkTop(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts networkTopOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	samples, err := rollout.SampleTraffic(ctx, eng, name, services, opts.interval)
	if err != nil {
		return exitError(ctx, err)
	}
	rows := make([]trafficRow, 0, len(samples))
	for _, t := range samples {
		rows = append(rows, newTrafficRow(t.Container, t.First, t.Second))
	}
	return writeTraffic(dockerCli, opts.format, rows)
}

func writeTraffic(dockerCli command.Cli, format string, rows []trafficRow) error {
	header := formatter.SubHeaderContext{
		"Service": "SERVICE", "Name": formatter.NameHeader, "Role": "ROLE", "Rx": "RX", "Tx": "TX",
		"RxRate": "RX/S", "TxRate": "TX/S", "RxBytes": "RX BYTES", "TxBytes": "TX BYTES",
		"RxBytesPerSecond": "RX B/S", "TxBytesPerSecond": "TX B/S", "RxPackets": "RX PACKETS", "TxPackets": "TX PACKETS",
	}
	out := make([]formatter.SubContext, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	return writeRows(dockerCli.Out(), format, defaultNetworkTopFormat, &trafficRow{HeaderContext: formatter.HeaderContext{Header: header}}, out)
}

// trafficRow is one container's traffic; its exported methods are the --format fields
// and the keys of the JSON output.
type trafficRow struct {
	formatter.HeaderContext
	c              engine.Container
	last           engine.NetworkCounters
	rxRate, txRate float64
}

func newTrafficRow(c engine.Container, first, second engine.NetworkCounters) trafficRow {
	r := trafficRow{c: c, last: second}
	if d := second.Time.Sub(first.Time).Seconds(); d > 0 {
		r.rxRate = float64(second.RxBytes-min(first.RxBytes, second.RxBytes)) / d
		r.txRate = float64(second.TxBytes-min(first.TxBytes, second.TxBytes)) / d
	}
	return r
}

func (r *trafficRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }
func (r *trafficRow) Service() string              { return r.c.Labels[compose.LabelService] }
func (r *trafficRow) Name() string                 { return r.c.Name }
func (r *trafficRow) Role() string {
	if role := r.c.Labels[compose.LabelRole]; role != "" {
		return role
	}
	return "-"
}
func (r *trafficRow) RxBytes() uint64           { return r.last.RxBytes }
func (r *trafficRow) TxBytes() uint64           { return r.last.TxBytes }
func (r *trafficRow) RxPackets() uint64         { return r.last.RxPackets }
func (r *trafficRow) TxPackets() uint64         { return r.last.TxPackets }
func (r *trafficRow) RxBytesPerSecond() float64 { return r.rxRate }
func (r *trafficRow) TxBytesPerSecond() float64 { return r.txRate }
func (r *trafficRow) Rx() string                { return units.BytesSize(float64(r.last.RxBytes)) }
func (r *trafficRow) Tx() string                { return units.BytesSize(float64(r.last.TxBytes)) }
func (r *trafficRow) RxRate() string            { return units.BytesSize(r.rxRate) + "/s" }
func (r *trafficRow) TxRate() string            { return units.BytesSize(r.txRate) + "/s" }
