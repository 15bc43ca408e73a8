package plugin

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/compose-spec/compose-go/v2/types"
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
// resolved form, so users see exactly the settings a deploy uses.
func writeResolved(w io.Writer, p *compose.Project, format string) error {
	resolved := *p.Project
	resolved.Extensions = cloneExtensions(p.Project.Extensions)
	resolved.Extensions[compose.ExtensionKey] = p.Spec
	resolved.Services = make(types.Services, len(p.Project.Services))
	for name, svc := range p.Project.Services {
		svc.Extensions = cloneExtensions(svc.Extensions)
		svc.Extensions[compose.ExtensionKey] = p.ServiceSpecs[name]
		resolved.Services[name] = svc
	}
	var out []byte
	var err error
	if format == "json" {
		out, err = resolved.MarshalJSON()
		if err == nil {
			var doc map[string]any
			if err = json.Unmarshal(out, &doc); err == nil {
				// compose-go leaves service extensions out of its JSON (json:"-"), unlike
				// its YAML: put them back, so the JSON shows each service's x-lifecycle too.
				if services, ok := doc["services"].(map[string]any); ok {
					for name, svc := range services {
						if m, ok := svc.(map[string]any); ok {
							for k, v := range resolved.Services[name].Extensions {
								m[k] = v
							}
						}
					}
				}
				out, err = json.MarshalIndent(doc, "", "  ")
				out = append(out, '\n')
			}
		}
	} else {
		out, err = resolved.MarshalYAML()
	}
	if err != nil {
		return fmt.Errorf("render project %s: %w", p.Name, err)
	}
	_, err = w.Write(out)
	return err
}

func cloneExtensions(in map[string]any) map[string]any {
	out := make(map[string]any, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	return out
}
