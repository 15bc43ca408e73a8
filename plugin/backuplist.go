package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type backupListOptions struct {
	from        string
	format      string
	allProjects bool
}

func newBackupListCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts backupListOptions
	cmd := &cobra.Command{
		Use:     "list --from DIR|s3://BUCKET/PREFIX [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List the project's backups in a target, newest first, with their last drill; reads the target only",
		Long: `list shows the project's backups in DIR or s3://BUCKET/PREFIX (matched by manifest, as
restore's "latest" and retention match them), newest first: name, time, volumes, bytes,
encryption, and the last drill's result when the backup was drilled. A backup whose
manifest cannot be read is listed as such (retention leaves it alone). It reads the
target only: no engine call, and -p PROJECT is enough without a compose file.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.from == "" {
				return usageError("--from DIR|s3://BUCKET/PREFIX is required: where the backups are")
			}
			return runBackupList(cmd, dockerCli, project, opts)
		},
	}
	cmd.Flags().StringVar(&opts.from, "from", "", "Directory or s3://BUCKET/PREFIX holding the backups (endpoint and credentials from AWS_* variables)")
	cmd.Flags().BoolVar(&opts.allProjects, "all-projects", false, "List every project's backups in the target, not only this project's")
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", "table", "json")
	return cmd
}

func runBackupList(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts backupListOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	name := ""
	if !opts.allProjects {
		// The compose file is optional (-p NAME is enough); no engine call.
		var err error
		if _, name, err = project.loadOptional(ctx); err != nil {
			return fmt.Errorf("%w (or list every project's backups with --all-projects)", err)
		}
	}
	target, err := rollout.OpenTarget(opts.from)
	if err != nil {
		return err
	}
	entries, others, err := rollout.ListBackups(ctx, target, name)
	if err != nil {
		return err
	}
	if others > 0 {
		fmt.Fprintf(dockerCli.Err(), "%d backups of other projects in %s not shown (--all-projects shows them)\n", others, target.Location(""))
	}
	if opts.format == "json" {
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(entries)
	}
	printBackupList(dockerCli.Out(), entries, opts.allProjects)
	return nil
}

// printBackupList writes the table of `backup list` (docs/backup.md), then the backups
// whose manifest could not be read, with the reason.
func printBackupList(out io.Writer, entries []rollout.BackupEntry, withProject bool) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "NAME\tCREATED\tVOLUMES\tSIZE\tSTORED\tENCRYPTED\tLAST DRILL"
	if withProject {
		header = "PROJECT\t" + header
	}
	fmt.Fprintln(w, header)
	var unreadable []rollout.BackupEntry
	for _, e := range entries {
		if e.Error != "" {
			unreadable = append(unreadable, e)
			continue
		}
		enc := "no"
		if e.Encrypted {
			enc = "age"
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", e.Name, e.Created.UTC().Format(time.RFC3339), strings.Join(e.Volumes, ","),
			units.BytesSize(float64(e.Size)), units.BytesSize(float64(e.StoredBytes)), enc, backupDrillCell(e))
		if withProject {
			row = e.Project + "\t" + row
		}
		fmt.Fprintln(w, row)
	}
	_ = w.Flush()
	if len(unreadable) > 0 {
		fmt.Fprintln(out, "\nUnreadable (not matched to a project; prune leaves them alone):")
		for _, e := range unreadable {
			fmt.Fprintf(out, "  %s: %s\n", e.Location, e.Error)
		}
	}
}

// backupDrillCell is the last drill in a cell: its result, time and RTO, and the last
// passed one's time when the last failed.
func backupDrillCell(e rollout.BackupEntry) string {
	d := e.Drill
	if d == nil {
		d = e.LastPassedDrill
	}
	if d == nil {
		return "-"
	}
	when := d.Started.UTC().Format("2006-01-02 15:04")
	if d.Passed {
		return fmt.Sprintf("passed %s, RTO %.1fs", when, d.RTOSeconds)
	}
	cell := "FAILED " + when
	if p := e.LastPassedDrill; p != nil {
		cell += fmt.Sprintf(" (passed %s)", p.Started.UTC().Format("2006-01-02 15:04"))
	}
	return cell
}
