package plugin

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const defaultPsFormat = "table {{.Service}}\t{{.Name}}\t{{.Revision}}\t{{.State}}\t{{.Health}}\t{{.Ports}}"

type psOptions struct {
	format string
	all    bool
	swarm  bool
	hosts  []string
}

func newPsCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := psOptions{}
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS] [SERVICE...]",
		Aliases: []string{"status"},
		Short:   "List the project's containers: service, revision, state, health, ports (on Swarm: its tasks)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	templateFlag(cmd.Flags(), &opts.format, "Format output using a custom template:\n'table': Print output in table format with column headers (default)\n'table TEMPLATE': Print output in table format using the given Go template\n'json': Print in JSON format, one object per line\n'TEMPLATE': Print output using the given Go template")
	cmd.Flags().BoolVarP(&opts.all, "all", "a", false, "Show stopped containers too (on Swarm: the tasks' history too)")
	cmd.Flags().BoolVar(&opts.swarm, "swarm", false, "List the project's Swarm tasks (the default on a Swarm manager; see docs/swarm.md)")
	hostsFlag(cmd.Flags(), &opts.hosts, "List, with a HOST column, the containers on")
	return cmd
}

func runPs(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts psOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	t, err := openListingTarget(ctx, dockerCli, project, opts.hosts, opts.swarm, "a Swarm manager lists the tasks of all its nodes")
	if err != nil {
		return err
	}
	switch {
	case len(t.hosts) > 0:
		return runHostsPs(ctx, dockerCli, t.project, t.hosts, opts, services)
	case t.swarm:
		tasks, err := rollout.SwarmTasks(ctx, t.eng, t.project, services, opts.all)
		if err != nil {
			return err
		}
		return writeSwarmPs(dockerCli.Out(), opts.format, tasks)
	}
	rows, err := rollout.ProjectContainers(ctx, t.eng, t.project, services, opts.all)
	if err != nil {
		return err
	}
	return writePs(dockerCli, opts.format, rows)
}

func writePs(dockerCli command.Cli, format string, rows []engine.Container) error {
	header := psHeader()
	out := make([]formatter.SubContext, len(rows))
	for i, c := range rows {
		out[i] = &psRow{c: c}
	}
	return writeRows(dockerCli.Out(), format, defaultPsFormat, &psRow{HeaderContext: formatter.HeaderContext{Header: header}}, out)
}

func psHeader() formatter.SubHeaderContext {
	return formatter.SubHeaderContext{
		"Service": "SERVICE", "Name": formatter.NameHeader, "Revision": "REVISION", "State": formatter.StateHeader,
		"Health": "HEALTH", "Ports": formatter.PortsHeader, "Image": formatter.ImageHeader, "ID": formatter.ContainerIDHeader,
		"Status": formatter.StatusHeader, "Project": "PROJECT", "Number": "NUMBER",
	}
}

// psRow is one `ps` line; its exported methods are the --format fields and, through
// formatter.MarshalJSON, the keys of the stable JSON output.
type psRow struct {
	formatter.HeaderContext
	c engine.Container
}

func (r *psRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(r) }
func (r *psRow) ID() string                   { return r.c.ID }
func (r *psRow) Name() string                 { return r.c.Name }
func (r *psRow) Project() string              { return r.c.Labels[compose.LabelProject] }
func (r *psRow) Service() string              { return r.c.Labels[compose.LabelService] }
func (r *psRow) Number() int {
	n, _ := strconv.Atoi(r.c.Labels[compose.LabelContainerNumber])
	return n
}
func (r *psRow) Revision() string { return r.c.Labels[compose.LabelRevision] }
func (r *psRow) Image() string    { return r.c.Image }
func (r *psRow) State() string    { return r.c.State }
func (r *psRow) Status() string   { return r.c.Status }
func (r *psRow) Health() string {
	if r.c.Health == "" {
		return "-"
	}
	return r.c.Health
}

func (r *psRow) Ports() string {
	var out []string
	for _, p := range r.c.Ports {
		if p.HostPort == 0 {
			out = append(out, fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol))
			continue
		}
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, p.HostPort, p.ContainerPort, p.Protocol))
	}
	sort.Strings(out)
	return strings.Join(slices.Compact(out), ", ")
}
