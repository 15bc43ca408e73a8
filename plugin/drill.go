package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type drillOptions struct {
	identities  []string
	format      string
	waitTimeout time.Duration
}

func newDrillCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts drillOptions
	cmd := &cobra.Command{
		Use:   "drill [OPTIONS] BACKUP_DIR|s3://BUCKET/PREFIX/BACKUP|…/latest",
		Short: "Restore a backup into a scratch project on an internal network, start it, run x-lifecycle.backup.verify, report the RTO, remove it",
		Long: `drill rehearses a recovery without touching the project: it restores the backup into
a scratch project <project>-drill-<random> whose networks are all internal (no egress)
and whose services publish no port, deploys the project's compose file there and waits
for health, runs the x-lifecycle.backup.verify commands in the services' containers,
prints the RTO (restore + time to healthy) and each check, and removes the scratch
project (containers, networks, volumes), also on failure and on Ctrl-C. It exits 1 when
a check fails or the scratch project does not come up. See docs/backup.md.`,
		Args: exactlyOne("BACKUP"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDrill(cmd, dockerCli, project, opts, args[0])
		},
	}
	cmd.Flags().StringArrayVar(&opts.identities, "identity", nil, "age identity file that decrypts an encrypted backup (like age -i; repeatable)")
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", "table", "json")
	durationFlag(cmd.Flags(), &opts.waitTimeout, "wait-timeout", 0, 0, 0, "How long to wait for each container to become healthy (default: x-lifecycle wait-timeout, 2m)")
	return cmd
}

func runDrill(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts drillOptions, location string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	identities, err := readIdentities(opts.identities)
	if err != nil {
		return usageError("%v", err)
	}
	where, backup, err := rollout.SplitBackupLocation(location)
	if err != nil {
		return usageError("%v", err)
	}
	p, err := project.load(ctx)
	if err != nil {
		return err
	}
	target, err := rollout.OpenTarget(where)
	if err != nil {
		return err
	}
	eng, events, err := connectWithProgress(ctx, dockerCli, project.progress)
	if err != nil {
		return err
	}
	res, err := rollout.Drill(ctx, eng, p, events, rollout.DrillOptions{Target: target, Backup: backup, Identities: identities, WaitTimeout: opts.waitTimeout})
	_ = events.Close()
	if res.ScratchProject == "" { // stopped before the drill began: nothing to report
		return exitError(ctx, err)
	}
	var perr error
	if opts.format == "json" {
		perr = printDrillJSON(dockerCli.Out(), res)
	} else {
		printDrillTable(dockerCli.Out(), res)
	}
	switch {
	case ctx.Err() != nil:
		removed := "the scratch project was removed"
		if !res.CleanedUp {
			removed = "the scratch project was NOT removed: " + res.CleanupError
		}
		return cli.StatusError{StatusCode: ExitInterrupted, Status: "interrupted: drill of " + res.Backup + " stopped; " + removed}
	case errors.Is(err, rollout.ErrDrillFailed):
		return cli.StatusError{StatusCode: 1, Status: err.Error()}
	case err != nil:
		return err
	}
	return perr
}

// readIdentities reads age identity files (restore and drill --identity).
func readIdentities(names []string) ([]age.Identity, error) {
	var out []age.Identity
	var errs []error
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("--identity: %w", err))
			continue
		}
		ids, err := rollout.ParseIdentities(name, f)
		f.Close()
		errs = append(errs, err)
		out = append(out, ids...)
	}
	return out, errors.Join(errs...)
}

func printDrillJSON(out io.Writer, res rollout.DrillResult) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

func printDrillTable(out io.Writer, res rollout.DrillResult) {
	fmt.Fprintf(out, "Drill of project %s from %s (backup of %s)\n", res.Project, res.Backup, res.BackupCreated.UTC().Format(time.RFC3339))
	if res.RTOSeconds > 0 {
		fmt.Fprintf(out, "Scratch project %s: %s\n", res.ScratchProject, isolationSummary(res))
		fmt.Fprintf(out, "RTO %.1fs = restore %.1fs + healthy %.1fs\n", res.RTOSeconds, res.RestoreSeconds, res.HealthySeconds)
	} else {
		fmt.Fprintf(out, "Scratch project %s did not come up: no RTO\n", res.ScratchProject)
	}
	for _, v := range res.Volumes {
		mounted := "not mounted by any service"
		if len(v.MountedBy) > 0 {
			mounted = "mounted by " + strings.Join(v.MountedBy, ", ")
		}
		fmt.Fprintf(out, "  volume %s: %d files, %d bytes, %s\n", v.Name, v.Files, v.Size, mounted)
	}
	for _, s := range res.Services {
		if len(s.EmptyVolumes) > 0 {
			fmt.Fprintf(out, "  service %s: started with empty %s (not in the backup)\n", s.Name, strings.Join(s.EmptyVolumes, ", "))
		}
	}
	if len(res.Checks) > 0 {
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SERVICE\tCONTAINER\tCOMMAND\tEXIT\tTIME\tRESULT")
		for _, c := range res.Checks {
			result := "passed"
			if !c.Passed {
				result = "FAILED: " + c.Error
			}
			exit := "-"
			if c.ExitCode >= 0 {
				exit = fmt.Sprint(c.ExitCode)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1fs\t%s\n", c.Service, c.Container, strings.Join(c.Command, " "), exit, c.Seconds, result)
		}
		_ = w.Flush()
		for _, c := range res.Checks {
			if !c.Passed && c.Output != "" {
				fmt.Fprintf(out, "output of %s (%s):\n%s\n", c.Service, strings.Join(c.Command, " "), indent(c.Output))
			}
		}
	} else if res.Error == "" {
		fmt.Fprintln(out, "No x-lifecycle.backup.verify commands: the drill checked that the services came up healthy")
	}
	switch {
	case res.Passed:
		fmt.Fprint(out, "Drill passed")
	case res.Error != "":
		fmt.Fprintf(out, "Drill FAILED: %s", res.Error)
	default:
		fmt.Fprint(out, "Drill FAILED")
	}
	if res.CleanedUp {
		fmt.Fprintf(out, "; scratch project %s removed\n", res.ScratchProject)
	} else {
		fmt.Fprintf(out, "; scratch project NOT removed: %s\n", res.CleanupError)
	}
}

func isolationSummary(res rollout.DrillResult) string {
	var nets []string
	for _, n := range res.Networks {
		kind := "internal"
		if !n.Internal {
			kind = "NOT internal"
		}
		nets = append(nets, n.Name+" ("+kind+")")
	}
	s := "networks " + strings.Join(nets, ", ")
	if len(nets) == 0 {
		s = "no network"
	}
	if len(res.PublishedPorts) == 0 {
		return s + "; no published port"
	}
	return s + "; PUBLISHED: " + strings.Join(res.PublishedPorts, ", ")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
