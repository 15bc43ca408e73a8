package plugin

import (
	"fmt"
	"io"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

type configOptions struct {
	format   string
	services bool
}

func newConfigCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := configOptions{}
	cmd := &cobra.Command{
		Use:   "config [OPTIONS]",
		Short: "Print the resolved compose project and x-lifecycle settings, defaults applied",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConfig(cmd, dockerCli, project, opts)
		},
	}
	enumFlag(cmd.Flags(), &opts.format, "format", "yaml", "Output format", "yaml", "json")
	cmd.Flags().BoolVar(&opts.services, "services", false, "Print the service names, one per line")
	return cmd
}

func runConfig(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts configOptions) error {
	p, err := project.load(cmd.Context())
	if err != nil {
		return err
	}
	if opts.services {
		for _, name := range p.ServiceNames() {
			fmt.Fprintln(dockerCli.Out(), name)
		}
		return nil
	}
	return writeResolved(dockerCli.Out(), p, opts.format)
}

// writeResolved prints the compose model with each x-lifecycle block replaced by its
// resolved form, so users see exactly the settings a deploy uses; the output loads again.
func writeResolved(w io.Writer, p *compose.Project, format string) error {
	out, err := compose.Resolved(p, format)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}
