package plugin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const defaultStatsFormat = "table {{.Service}}\t{{.Revision}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}\t{{.Restarts}}\t{{.Health}}\t{{.Requests}}\t{{.Errors5xx}}\t{{.P50}}\t{{.P99}}"

type statsOptions struct {
	noStream bool
	format   string
	interval time.Duration
	disk     bool
}

func newStatsCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := statsOptions{}
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [SERVICE...]",
		Short: "Live resource use of the project's containers, grouped by service and revision, with the router's traffic",
		Long: `Show CPU, memory, network and block I/O rates, pids, restarts and health of the project's
running containers, grouped by service and revision with a total row per service, and for
routed services the router's request rate, 5xx rate and p50/p99 latency per backend.
CPU % and memory are computed as 'docker stats' does. One stats stream per container stays
open (new containers are picked up, removed ones dropped). --disk adds each container's
writable layer and the project's volume sizes: the engine walks the files for it, which is
slow on big layers and volumes, so it is read at most every 30 s.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStats(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.noStream, "no-stream", false, "Print once (after two samples of each container, about 2 s) and exit")
	templateFlag(flags, &opts.format, "Format output: 'table', 'json' (one object per interval, see docs/observability.md), or a Go template applied to each row")
	durationFlag(flags, &opts.interval, "interval", time.Second, 200*time.Millisecond, time.Minute, "Time between two reports")
	flags.BoolVar(&opts.disk, "disk", false, "Add writable layer and volume sizes (expensive on the engine: it walks the files; read at most every 30s)")
	return cmd
}

func runStats(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts statsOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	// On a manager: the containers of the project's tasks on this node (docs/swarm.md).
	_, onSwarm, err := rollout.SwarmTarget(ctx, eng, false)
	if err != nil {
		return err
	}
	tty := dockerCli.Out().IsTerminal() && !opts.noStream
	first := true
	err = rollout.Stats(ctx, eng, name, rollout.StatsOptions{Services: services, Interval: opts.interval, Once: opts.noStream, Disk: opts.disk, Swarm: onSwarm},
		func(r rollout.StatsReport) error {
			var b bytes.Buffer
			if err := writeStats(&b, opts.format, opts.disk, r); err != nil {
				return err
			}
			if tty {
				// Redraw in place, as docker stats does: clear the screen, cursor home.
				_, _ = io.WriteString(dockerCli.Out(), "\033[2J\033[H")
			} else if !first && opts.format == formatter.TableFormatKey {
				b.WriteString("\n")
			}
			first = false
			for _, w := range r.Warnings {
				fmt.Fprintf(dockerCli.Err(), "warning: %s\n", w)
			}
			_, err := dockerCli.Out().Write(b.Bytes())
			return err
		})
	return exitError(ctx, err)
}

// writeStats prints one report: one JSON object, or a row per container and a total
// row per service (then the volumes with --disk) through the table or template.
func writeStats(out io.Writer, format string, disk bool, r rollout.StatsReport) error {
	if format == formatter.JSONFormatKey {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = out.Write(append(b, '\n'))
		return err
	}
	var rows []formatter.SubContext
	for _, svc := range r.Services {
		for _, rev := range svc.Revisions {
			for i := range rev.Containers {
				c := rev.Containers[i]
				revision := "-" // a router, or a container deployed without revisions
				if c.Revision > 0 {
					revision = strconv.Itoa(c.Revision)
				}
				rows = append(rows, &statsRow{service: svc.Service, revision: revision, name: c.Name, u: c.Usage})
			}
		}
		rows = append(rows, &statsRow{service: svc.Service, revision: "*", name: "total", u: svc.Total, total: true})
	}
	table := defaultStatsFormat
	if disk {
		table += "\t{{.WritableLayer}}"
	}
	header := formatter.SubHeaderContext{
		"Service": "SERVICE", "Revision": "REV", "Name": formatter.NameHeader, "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT",
		"MemPerc": "MEM %", "NetIO": "NET RX/TX /s", "BlockIO": "BLOCK R/W /s", "PIDs": "PIDS", "Restarts": "RESTARTS",
		"Health": "HEALTH", "Requests": "REQ/S", "Errors5xx": "5XX/S", "P50": "P50", "P99": "P99", "WritableLayer": "WRITABLE",
		"Total": "TOTAL",
	}
	if err := writeRows(out, format, table, &statsRow{HeaderContext: formatter.HeaderContext{Header: header}}, rows); err != nil {
		return err
	}
	if disk && (format == formatter.TableFormatKey || format == "") && len(r.Volumes) > 0 {
		fmt.Fprintf(out, "\nVOLUME\tSIZE\n")
		for _, v := range r.Volumes {
			size := "-"
			if v.SizeBytes >= 0 {
				size = units.HumanSize(float64(v.SizeBytes))
			}
			fmt.Fprintf(out, "%s\t%s\n", v.Name, size)
		}
	}
	return nil
}

// statsRow is one container, or a service's total; its exported methods are the
// --format fields.
type statsRow struct {
	formatter.HeaderContext
	service, revision, name string
	u                       rollout.Usage
	total                   bool
}

func (r *statsRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }
func (r *statsRow) Service() string              { return r.service }
func (r *statsRow) Revision() string             { return r.revision }
func (r *statsRow) Name() string                 { return r.name }
func (r *statsRow) Total() bool                  { return r.total }
func (r *statsRow) CPUPerc() string {
	if !r.u.Sampled {
		return "--"
	}
	return fmt.Sprintf("%.2f%%", r.u.CPUPercent)
}
func (r *statsRow) MemUsage() string {
	return units.BytesSize(float64(r.u.MemoryBytes)) + " / " + units.BytesSize(float64(r.u.MemoryLimitBytes))
}
func (r *statsRow) MemPerc() string { return fmt.Sprintf("%.2f%%", r.u.MemoryPercent) }
func (r *statsRow) NetIO() string {
	return units.HumanSizeWithPrecision(r.u.NetRxPerSecond, 3) + " / " + units.HumanSizeWithPrecision(r.u.NetTxPerSecond, 3)
}
func (r *statsRow) BlockIO() string {
	return units.HumanSizeWithPrecision(r.u.BlockReadPerSec, 3) + " / " + units.HumanSizeWithPrecision(r.u.BlockWritePerSec, 3)
}
func (r *statsRow) PIDs() string     { return strconv.FormatUint(r.u.Pids, 10) }
func (r *statsRow) Restarts() string { return strconv.Itoa(r.u.Restarts) }
func (r *statsRow) Health() string {
	if r.u.Health == "" {
		return "-"
	}
	return r.u.Health
}
func (r *statsRow) Requests() string {
	if r.u.Traffic == nil {
		return "-"
	}
	return strconv.FormatFloat(r.u.Traffic.RequestsPerSecond, 'f', 1, 64)
}
func (r *statsRow) Errors5xx() string {
	if r.u.Traffic == nil {
		return "-"
	}
	return strconv.FormatFloat(r.u.Traffic.Errors5xxPerSec, 'f', 1, 64)
}
func (r *statsRow) P50() string {
	return r.latency(r.u.Traffic != nil && r.u.Traffic.RequestsPerSecond > 0, 0.5)
}
func (r *statsRow) P99() string {
	return r.latency(r.u.Traffic != nil && r.u.Traffic.RequestsPerSecond > 0, 0.99)
}
func (r *statsRow) latency(ok bool, q float64) string {
	if !ok || (r.total && r.u.Traffic.P50Ms == 0 && r.u.Traffic.P99Ms == 0) {
		return "-"
	}
	ms := r.u.Traffic.P50Ms
	if q > 0.5 {
		ms = r.u.Traffic.P99Ms
	}
	return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
}
func (r *statsRow) WritableLayer() string {
	if r.u.WritableLayerBytes < 0 {
		return "-"
	}
	return units.HumanSize(float64(r.u.WritableLayerBytes))
}
