package plugin

import (
	"fmt"
	"runtime"

	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"
)

func newVersionCommand(dockerCli command.Cli) *cobra.Command {
	var short bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the docker lifecycle version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if short {
				fmt.Fprintln(dockerCli.Out(), meta.Version)
				return nil
			}
			fmt.Fprintf(dockerCli.Out(), "docker lifecycle %s (%s, %s/%s)\n", meta.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "Print only the version number")
	return cmd
}
