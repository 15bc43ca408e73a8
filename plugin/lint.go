package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type lintOptions struct {
	format string
	rules  bool
}

// reportFormats are the --format values of lint and scan.
var reportFormats = []string{"table", "json", "sarif"}

func newLintCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := lintOptions{}
	cmd := &cobra.Command{
		Use:   "lint [OPTIONS]",
		Short: "Check the project against security and resource rules (CIS Docker Benchmark ids); deploy runs the same checks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLint(cmd, dockerCli, project, opts)
		},
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "table", "Output format", reportFormats...)
	cmd.Flags().BoolVar(&opts.rules, "rules", false, "List the rules and exit")
	return cmd
}

func runLint(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts lintOptions) error {
	if opts.rules {
		return writeRules(dockerCli.Out())
	}
	ctx, cancel := commandContext(cmd)
	defer cancel()
	// A file with keys deploy refuses is still linted; the refusals are reported too.
	loadOpts := project.loadOptions()
	loadOpts.KeepRefused = true
	p, err := compose.Load(ctx, loadOpts)
	if err != nil {
		return err
	}
	if err := rollout.ValidatePolicy(p); err != nil {
		return err
	}
	// Image facts (the image's user and healthcheck) need the engine; without one the
	// compose file alone is judged, and lint says so.
	var images rollout.Images
	var running []policy.Finding
	if eng, err := connect(ctx, dockerCli); err != nil {
		fmt.Fprintf(dockerCli.Err(), "warning: image users and healthchecks not checked: %v\n", err)
	} else if images, err = rollout.InspectImages(ctx, eng, p); err != nil {
		return err
	} else if running, err = rollout.RuntimeSocketFindings(ctx, eng, p); err != nil {
		// The project's running containers that no compose service describes (the
		// guard is recognised as the project's own).
		return err
	}
	findings, err := rollout.CheckPolicy(p, images)
	if err != nil {
		return err
	}
	findings = append(findings, running...)
	switch opts.format {
	case "json":
		err = writeFindingsJSON(dockerCli.Out(), findings)
	case "sarif":
		err = writeLintSARIF(dockerCli.Out(), p.ComposeFiles, findings)
	default:
		err = writeFindingsTable(dockerCli.Out(), findings)
	}
	if err != nil {
		return err
	}
	var problems []error
	if blocking := policy.Blocking(findings); len(blocking) > 0 {
		problems = append(problems, fmt.Errorf("%d findings would stop a deploy (level error); fix them or allow them with a reason", len(blocking)))
	}
	if len(p.Refused) > 0 {
		problems = append(problems, fmt.Errorf("deploy would refuse these keys:\n%w", errors.Join(p.Refused...)))
	}
	if len(problems) > 0 {
		return cli.StatusError{StatusCode: 1, Status: errors.Join(problems...).Error()}
	}
	return nil
}

func writeRules(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tCIS\tDEFAULT\tTITLE")
	denied := map[string]bool{}
	for _, id := range policy.DefaultDeny() {
		denied[id] = true
	}
	for _, r := range policy.Rules() {
		level := "warning"
		if denied[r.ID] {
			level = "error"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.ID, dash(r.CIS), level, r.Title)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeFindingsTable(w io.Writer, findings []policy.Finding) error {
	if len(findings) == 0 {
		_, err := fmt.Fprintln(w, "No findings.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tRULE\tCIS\tLEVEL\tMESSAGE")
	for _, f := range findings {
		level := string(f.Level)
		if f.Allowed != "" {
			level = "allowed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Service, f.Rule, dash(f.CIS), level, f.Message)
	}
	return tw.Flush()
}

// writeFindingsJSON prints the documented JSON document: {"findings": [...], "blocking": N}.
func writeFindingsJSON(w io.Writer, findings []policy.Finding) error {
	if findings == nil {
		findings = []policy.Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Findings []policy.Finding `json:"findings"`
		Blocking int              `json:"blocking"`
	}{findings, len(policy.Blocking(findings))})
}
