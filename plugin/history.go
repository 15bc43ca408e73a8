package plugin

import (
	"fmt"
	"slices"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/command/formatter"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

const defaultHistoryFormat = "table {{.Service}}\t{{.Revision}}\t{{.Result}}\t{{.Strategy}}\t{{.Image}}\t{{.Containers}}\t{{.Since}}\t{{.Trigger}}\t{{.Backup}}\t{{.Reason}}"

type historyOptions struct {
	format   string
	revision int
	timeline bool
	swarm    bool
	hosts    []string
}

func newHistoryCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := historyOptions{}
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] [SERVICE...]  |  history SERVICE [--rev N] --timeline",
		Short: "List each service's revisions: result, strategy, image, and whether its containers are kept for rollback",
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.revision < 0 {
				return usageError("--rev %d: a revision is a number from 1", opts.revision)
			}
			if opts.timeline {
				if opts.swarm {
					return usageError("--timeline: Swarm keeps no rollout timeline (docs/swarm.md)")
				}
				if len(opts.hosts) > 0 {
					return usageError("--timeline shows one engine's rollout: use `docker --context HOST lifecycle history --timeline SERVICE`")
				}
				if len(args) != 1 {
					return usageError("--timeline shows one service's rollout: name exactly one SERVICE (got %d)", len(args))
				}
				if opts.format != formatter.TableFormatKey && opts.format != formatter.JSONFormatKey {
					return usageError("--timeline prints 'table' or 'json', not a template")
				}
				return runTimeline(cmd, dockerCli, project, opts, args[0])
			}
			return runHistory(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	templateFlag(cmd.Flags(), &opts.format, "Format output: 'table', 'json' (one object per line; with --timeline one document), or a Go template")
	cmd.Flags().IntVar(&opts.revision, "rev", 0, "Only the records of this revision (with --timeline: its newest record; default the newest revision)")
	cmd.Flags().BoolVar(&opts.swarm, "swarm", false, "Show what Swarm keeps of the project's services: current and previous image, last update (the default on a Swarm manager; see docs/swarm.md)")
	hostsFlag(cmd.Flags(), &opts.hosts, "List, with a HOST column, the revisions on")
	cmd.Flags().BoolVar(&opts.timeline, "timeline", false, "Print the rollout's timeline: its events and the router's per-second counters (one SERVICE)")
	return cmd
}

func runHistory(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts historyOptions, services []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	t, err := openListingTarget(ctx, dockerCli, project, opts.hosts, opts.swarm, "a Swarm manager keeps the history of all its nodes")
	if err != nil {
		return err
	}
	switch {
	case len(t.hosts) > 0:
		return runHostsHistory(ctx, dockerCli, t.project, t.hosts, opts, services)
	case t.swarm:
		if opts.revision > 0 {
			return usageError("--rev: Swarm keeps no numbered revisions, only each service's previous spec (docs/swarm.md)")
		}
		revs, err := rollout.SwarmHistory(ctx, t.eng, t.project, services)
		if err != nil {
			return err
		}
		return writeSwarmHistory(dockerCli.Out(), opts.format, revs)
	}
	eng, name := t.eng, t.project
	records, err := rollout.History(ctx, eng, name)
	if err != nil {
		return err
	}
	state, err := rollout.RevisionStates(ctx, eng, name)
	if err != nil {
		return err
	}
	rows := historyRows(records, state, services, opts.revision)
	out := make([]formatter.SubContext, len(rows))
	for i := range rows {
		out[i] = &rows[i]
	}
	if err := writeRows(dockerCli.Out(), opts.format, defaultHistoryFormat, &historyRow{HeaderContext: formatter.HeaderContext{Header: historyHeader()}}, out); err != nil {
		return err
	}
	if t.compose == nil || (opts.format != "" && opts.format != formatter.TableFormatKey) {
		return nil // a template or JSON reader gets the records alone
	}
	st, ok, err := rollout.ProjectDrillStatus(ctx, t.compose)
	switch {
	case !ok:
		return nil
	case err != nil:
		fmt.Fprintf(dockerCli.Err(), "warning: %v\n", err)
		return nil
	}
	_, err = fmt.Fprintln(dockerCli.Out(), "\n"+drillStatusLine(st, time.Now()))
	return err
}

// drillStatusLine says when the project's data was last shown restorable (the table
// output of history, under the revisions).
func drillStatusLine(st rollout.DrillStatus, now time.Time) string {
	switch {
	case st.LastGood != nil:
		d := st.LastGood
		return fmt.Sprintf("Last good drill: %s (%s ago), RTO %.1fs, of backup %s", d.Started.UTC().Format(time.RFC3339),
			now.Sub(d.Started).Round(time.Minute), d.RTOSeconds, st.Backup)
	case st.Backups == 0:
		return fmt.Sprintf("Last good drill: none: the project has no backup in %s yet (docker lifecycle backup)", st.Target)
	}
	return fmt.Sprintf("Last good drill: none of the project's %d backups in %s passed a drill: docker lifecycle drill %s/latest", st.Backups, st.Target, st.Target)
}

// historyRows are the records of the services asked for (all when none), newest
// first, each with the state of its revision's containers.
func historyRows(records []rollout.Record, state map[string]map[int]string, services []string, revision int) []historyRow {
	var rows []historyRow
	for i := len(records) - 1; i >= 0; i-- {
		r := records[i]
		if len(services) > 0 && !slices.Contains(services, r.Service) || revision > 0 && r.Revision != revision {
			continue
		}
		containers := state[r.Service][r.Revision]
		if containers == "" {
			containers = "removed"
		}
		rows = append(rows, historyRow{r: r, containers: containers})
	}
	return rows
}

func historyHeader() formatter.SubHeaderContext {
	return formatter.SubHeaderContext{
		"Service": "SERVICE", "Revision": "REVISION", "Result": "RESULT", "Strategy": "STRATEGY", "Image": "IMAGE",
		"ImageID": "IMAGE ID", "ConfigHash": "CONFIG", "Containers": "CONTAINERS", "Since": "WHEN", "Time": "TIME", "Trigger": "TRIGGER", "Backup": "BACKUP", "Reason": "REASON",
	}
}

// historyRow is one revision record; its exported methods are the --format fields and
// the keys of the JSON output.
type historyRow struct {
	formatter.HeaderContext
	r          rollout.Record
	containers string
}

func (h *historyRow) MarshalJSON() ([]byte, error) { return formatter.MarshalJSON(h) }
func (h *historyRow) Service() string              { return h.r.Service }
func (h *historyRow) Revision() int                { return h.r.Revision }
func (h *historyRow) Result() string               { return h.r.Result }
func (h *historyRow) Strategy() string             { return h.r.Strategy }
func (h *historyRow) Image() string                { return h.r.Image }
func (h *historyRow) ImageID() string              { return h.r.ImageID }
func (h *historyRow) ConfigHash() string           { return h.r.ConfigHash }
func (h *historyRow) Containers() string           { return h.containers }
func (h *historyRow) Time() string                 { return h.r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
func (h *historyRow) Reason() string               { return h.r.Reason }

// Trigger is what started the rollout when not a person's command: guard-rollback.
func (h *historyRow) Trigger() string { return h.r.Trigger }

// Backup is where x-lifecycle.backup.before-deploy backed up the service's volumes
// before this rollout (what `rollback --with-data` restores when leaving it).
func (h *historyRow) Backup() string { return h.r.Backup }
func (h *historyRow) Since() string {
	return units.HumanDuration(time.Since(h.r.Time)) + " ago"
}
