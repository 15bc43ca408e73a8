package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type drPlanOptions struct {
	from   string
	format string
}

func newDRCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dr",
		Short: "Disaster recovery: the runbook that brings the project's data back",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newDRPlanCommand(dockerCli, project))
	return cmd
}

func newDRPlanCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts drPlanOptions
	cmd := &cobra.Command{
		Use:   "plan --from DIR|s3://BUCKET/PREFIX [OPTIONS]",
		Short: "Print the recovery runbook from the project's newest backup: volumes, order, exact commands, last drill; change nothing",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.from == "" {
				return usageError("--from DIR|s3://BUCKET/PREFIX is required: where the project's backups are")
			}
			return runDRPlan(cmd, dockerCli, project, opts)
		},
	}
	cmd.Flags().StringVar(&opts.from, "from", "", "Directory or s3://BUCKET/PREFIX holding the project's backups")
	enumFlag(cmd.Flags(), &opts.format, "format", "text", "Output format", "text", "json")
	return cmd
}

func runDRPlan(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts drPlanOptions) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	// The compose file is optional (-p NAME is enough): with it the plan knows which
	// services mount which volume and their order. No engine call.
	p, name, err := project.loadOptional(ctx)
	if err != nil {
		return err
	}
	target, err := rollout.OpenTarget(opts.from)
	if err != nil {
		return err
	}
	backup, m, drills, err := rollout.LoadRecovery(ctx, target, name)
	if err != nil {
		return err
	}
	plan := rollout.PlanRecovery(p, target.Location(""), target.Location(backup), m, drills)
	if opts.format == "json" {
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	printRunbook(dockerCli.Out(), plan)
	return nil
}

// printRunbook writes the plan as a runbook a person follows (docs/backup.md: dr plan).
func printRunbook(out io.Writer, plan rollout.RecoveryPlan) {
	fmt.Fprintf(out, "Recovery runbook for project %s\n\n", plan.Project)
	enc := "not encrypted"
	if plan.Encrypted {
		enc = "encrypted with age: keep its identity file at hand"
	}
	fmt.Fprintf(out, "Backup:     %s\n            newest of %s, taken %s, %s\n", plan.Backup, plan.From, plan.BackupCreated, enc)
	fmt.Fprintf(out, "Last drill: %s\n", drillLine(plan.LastDrill))
	if plan.LastDrill != nil && !plan.LastDrill.Passed {
		fmt.Fprintf(out, "Last good:  %s\n", drillLine(plan.LastGoodDrill))
	}
	fmt.Fprintln(out, "\nVolumes to restore:")
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "  VOLUME\tENGINE VOLUME\tFILES\tBYTES\tMOUNTED BY")
	for _, v := range plan.Volumes {
		mounted := strings.Join(v.MountedBy, ", ")
		if mounted == "" {
			mounted = "-"
		}
		fmt.Fprintf(w, "  %s\t%s\t%d\t%d\t%s\n", v.Name, v.EngineName, v.Files, v.Size, mounted)
	}
	_ = w.Flush()
	if len(plan.Stop) > 0 {
		fmt.Fprintf(out, "\nOrder: stop %s; restore; deploy %s\n", strings.Join(plan.Stop, ", "), strings.Join(plan.Deploy, ", "))
	}
	fmt.Fprintln(out, "\nSteps:")
	for i, s := range plan.Steps {
		fmt.Fprintf(out, "%d. %s\n", i+1, s.Title)
		for _, c := range s.Commands {
			fmt.Fprintf(out, "     %s\n", c)
		}
		if s.Note != "" {
			fmt.Fprintf(out, "   (%s)\n", s.Note)
		}
	}
}

func drillLine(d *rollout.DrillResult) string {
	if d == nil {
		return "none recorded (run `docker lifecycle drill BACKUP` to measure the RTO)"
	}
	result := "passed"
	if !d.Passed {
		result = "FAILED"
		if d.Error != "" {
			result += " (" + d.Error + ")"
		}
	}
	passed := 0
	for _, c := range d.Checks {
		if c.Passed {
			passed++
		}
	}
	return fmt.Sprintf("%s %s of %s: RTO %.1fs (restore %.1fs + healthy %.1fs), %d/%d checks passed",
		result, d.Started.UTC().Format("2006-01-02T15:04:05Z"), d.Backup, d.RTOSeconds, d.RestoreSeconds, d.HealthySeconds, passed, len(d.Checks))
}
