package plugin

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type logsOptions struct {
	follow     bool
	since      string
	until      string
	tail       string
	timestamps bool
	noColor    bool
	grep       string
	revision   int
	format     string
	level      string
	archive    string
}

func newLogsCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "Logs of the project's services, merged by timestamp, following the services across rollouts",
		Long: `Print the logs of the project's containers (all revisions, running or stopped), merged
and ordered by timestamp, each line prefixed with service-rREVISION-NUMBER. With --follow
the services are followed, not containers: a rollout's new containers are read from their
first line as they start, the old ones' last lines are kept, and no line is printed twice.
The routers' JSON access log is the pseudo-service "router".

With --archive DIR nothing is printed but the files written: the logs of the same
containers (SERVICE… and --revision select) are written to DIR, one zstd-compressed
file per container, DIR/PROJECT/SERVICE/rREVISION/CONTAINER-ID-TIME.log.zst, each line
"TIMESTAMP STREAM TEXT", as deploys do before removing containers when
x-lifecycle.logs.archive is set (use it before a down). Containers are left as they are.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd, dockerCli, project, opts, args)
		},
		ValidArgsFunction: completeServices(project),
	}
	flags := cmd.Flags()
	flags.BoolVar(&opts.follow, "follow", false, "Follow the services' logs, across rollouts (no -f: it is --file)")
	flags.StringVar(&opts.since, "since", "", "Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes ago)")
	flags.StringVar(&opts.until, "until", "", "Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m for 42 minutes ago)")
	flags.StringVarP(&opts.tail, "tail", "n", "all", "Number of lines to show from the end of the logs of each container, or all")
	flags.BoolVarP(&opts.timestamps, "timestamps", "t", false, "Show timestamps")
	flags.BoolVar(&opts.noColor, "no-color", false, "Produce monochrome output")
	flags.StringVar(&opts.grep, "grep", "", "Show only the lines matching this regular expression (Go syntax)")
	flags.IntVar(&opts.revision, "revision", 0, "Show only the containers of this revision")
	enumFlag(flags, &opts.format, "format", "text", "Output format: text, or json (one object per line: the line's own JSON object, or {message, stream}, with service, container and revision added)", "text", "json")
	flags.StringVar(&opts.archive, "archive", "", "Write each container's logs, zstd-compressed, to files under this directory instead of printing them")
	flags.StringVar(&opts.level, "level", "", "Show only JSON lines whose level (field level, severity or lvl) is at least this one ("+strings.Join(rollout.LogLevels, ", ")+")")
	return cmd
}

func runLogs(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts logsOptions, services []string) error {
	if cmd.Flags().Changed("archive") {
		return runLogsArchive(cmd, dockerCli, project, opts, services)
	}
	if opts.level != "" {
		if err := checkEnum(cmd, "level", opts.level, rollout.LogLevels); err != nil {
			return err
		}
	}
	now := time.Now()
	ro := rollout.LogsOptions{Services: services, Follow: opts.follow, Revision: opts.revision, MinLevel: opts.level, Tail: -1,
		Structured: opts.format == "json"}
	var err error
	if ro.Since, err = parseLogTime(opts.since, now); err != nil {
		return usageError("invalid --since %q: %v", opts.since, err)
	}
	if ro.Until, err = parseLogTime(opts.until, now); err != nil {
		return usageError("invalid --until %q: %v", opts.until, err)
	}
	if opts.tail != "all" {
		if ro.Tail, err = strconv.Atoi(opts.tail); err != nil || ro.Tail < 0 {
			return usageError("invalid --tail %q: use a number of lines or all", opts.tail)
		}
	}
	if opts.grep != "" {
		if ro.Grep, err = regexp.Compile(opts.grep); err != nil {
			return usageError("invalid --grep: %v", err)
		}
	}
	if opts.revision < 0 {
		return usageError("--revision must be a revision number (1, 2, …), got %d", opts.revision)
	}
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name, eng, err := openProjectName(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(dockerCli.Out(), 64*1024)
	p := &logPrinter{out: out, timestamps: opts.timestamps, json: opts.format == "json",
		color: !opts.noColor && dockerCli.Out().IsTerminal(), colors: map[string]string{}}
	read := rollout.Logs
	if _, onSwarm, err := rollout.SwarmTarget(ctx, eng, false); err != nil {
		return err
	} else if onSwarm {
		if !ro.Until.IsZero() {
			// `docker service logs` has no --until either: not relied on (docs/swarm.md).
			return usageError("--until does not work on Swarm: use --since, or `docker logs --until` on a task's container")
		}
		read = rollout.SwarmLogs // the tasks' logs through the manager (docs/swarm.md)
	}
	err = read(ctx, eng, name, ro, func(e rollout.LogEntry) error {
		if err := p.print(e); err != nil {
			return err
		}
		if opts.follow {
			return out.Flush()
		}
		return nil
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if ctx.Err() != nil && opts.follow {
		return nil // Ctrl-C ends following
	}
	return exitError(ctx, err)
}

// parseLogTime reads --since/--until: empty, a duration before now, a Unix timestamp,
// or an RFC 3339 time (with or without the zone; without it, local time).
func parseLogTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("use a duration (10m), a Unix timestamp or a time such as 2013-01-02T13:23:37Z")
}

// logColors are compose's prefix colours, in its order.
var logColors = []string{"36", "33", "32", "35", "34", "1;36", "1;33", "1;32", "1;35", "1;34"}

type logPrinter struct {
	out        io.Writer
	timestamps bool
	json       bool
	color      bool
	colors     map[string]string
	width      int
}

func (p *logPrinter) print(e rollout.LogEntry) error {
	if p.json {
		return p.printJSON(e)
	}
	prefix := rollout.LogPrefix(e)
	p.width = max(p.width, len(prefix))
	padded := prefix + strings.Repeat(" ", p.width-len(prefix)) + "  | "
	if p.color {
		c, ok := p.colors[prefix]
		if !ok {
			c = logColors[len(p.colors)%len(logColors)]
			p.colors[prefix] = c
		}
		padded = "\033[" + c + "m" + padded + "\033[0m"
	}
	line := padded
	if p.timestamps {
		line += e.Time.UTC().Format(time.RFC3339Nano) + " "
	}
	_, err := io.WriteString(p.out, line+e.Text+"\n")
	return err
}

// printJSON writes the line's own object (or {message, stream} for a plain line) with
// service, container and revision set (replacing the app's own keys of these names).
func (p *logPrinter) printJSON(e rollout.LogEntry) error {
	obj := map[string]any{}
	if e.Fields != nil {
		for k, v := range e.Fields {
			obj[k] = v
		}
	} else {
		obj["message"], obj["stream"] = e.Text, e.Stream
	}
	obj["service"], obj["container"], obj["revision"] = e.Service, e.Container, e.Revision
	if p.timestamps {
		obj["timestamp"] = e.Time.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	_, err = p.out.Write(append(b, '\n'))
	return err
}
