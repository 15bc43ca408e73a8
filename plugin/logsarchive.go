package plugin

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// logsArchiveExcluded are the logs flags that choose lines or how they print: an
// archive holds every line the engine keeps, so they make no sense with --archive.
var logsArchiveExcluded = []string{"follow", "since", "until", "tail", "grep", "level", "timestamps", "no-color"}

// runLogsArchive is `logs --archive DIR`: the project's containers' logs written to
// DIR now (rollout.ArchiveLogs), the files listed on stdout.
func runLogsArchive(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts logsOptions, services []string) error {
	if strings.TrimSpace(opts.archive) == "" {
		return usageError("--archive needs a directory")
	}
	var conflicting []string
	for _, f := range logsArchiveExcluded {
		if cmd.Flags().Changed(f) {
			conflicting = append(conflicting, "--"+f)
		}
	}
	if len(conflicting) > 0 {
		return usageError("--archive writes every line of each container; it does not take %s (select containers with SERVICE… and --revision)", strings.Join(conflicting, ", "))
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
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	files, err := rollout.ArchiveLogs(ctx, eng, name, rollout.ArchiveLogsOptions{Dir: opts.archive, Services: services, Revision: opts.revision}, events)
	_ = events.Close()
	if opts.format == "json" {
		if files == nil {
			files = []rollout.ArchivedLog{}
		}
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		if perr := enc.Encode(files); perr != nil {
			return perr
		}
	} else {
		for _, f := range files {
			fmt.Fprintln(dockerCli.Out(), f.Path)
		}
	}
	return exitError(ctx, err)
}
