package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

type backupOptions struct {
	to          string
	consistency string
	format      string
}

func newBackupCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts backupOptions
	cmd := &cobra.Command{
		Use:   "backup [OPTIONS] --to DIR [VOLUME|SERVICE...]",
		Short: "Archive the project's named volumes (or those named, or mounted by the services named) into DIR",
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.to == "" {
				return usageError("--to DIR is required: the directory the backup is written under")
			}
			modes := []string{compose.ConsistencyPause, compose.ConsistencyStop, compose.ConsistencyNone}
			if opts.consistency != "" && !slices.Contains(modes, opts.consistency) {
				return usageError("--consistency must be one of pause, stop, none, got %q", opts.consistency)
			}
			if opts.format != "" && opts.format != "json" {
				return usageError("--format must be json or empty, got %q", opts.format)
			}
			return runBackup(cmd, dockerCli, project, opts, args)
		},
	}
	cmd.Flags().StringVar(&opts.to, "to", "", "Directory under which <project>-<timestamp>/ is written")
	cmd.Flags().StringVar(&opts.consistency, "consistency", "", "pause, stop or none: what happens to the containers mounting a volume while it is copied (default: x-lifecycle.backup.consistency, else pause)")
	cmd.Flags().StringVar(&opts.format, "format", "", "Print the manifest as 'json'")
	return cmd
}

func runBackup(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts backupOptions, targets []string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	backupOpts := rollout.BackupOptions{Targets: targets, Dir: opts.to, Consistency: opts.consistency, ToolVersion: meta.Version}
	// The compose file is optional (-p NAME is enough); when it loads, it gives the
	// consistency mode and the files recorded in the manifest.
	p, loadErr := project.load(ctx)
	name := project.projectName
	switch {
	case loadErr == nil:
		name = p.Name
		backupOpts.ComposeFiles = p.ComposeFiles
		if backupOpts.Consistency == "" {
			backupOpts.Consistency = p.Spec.Backup.Mode()
		}
	case name == "":
		return loadErr
	}
	eng, err := connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	dir, m, err := rollout.Backup(ctx, eng, name, events, backupOpts)
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if opts.format == "json" {
		return printManifestJSON(dockerCli.Out(), m)
	}
	fmt.Fprintf(dockerCli.Out(), "Backup of project %s written to %s\n", name, dir)
	printManifestSummary(dockerCli.Out(), m)
	return nil
}

func printManifestJSON(out io.Writer, m rollout.Manifest) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

func printManifestSummary(out io.Writer, m rollout.Manifest) {
	for _, v := range m.Volumes {
		fmt.Fprintf(out, "  %-20s %8d files %12d bytes -> %s (%d bytes, sha256 %.12s)\n", v.Name, v.Files, v.Size, v.Archive, v.ArchiveBytes, v.SHA256)
	}
}

type restoreOptions struct {
	project string
	force   bool
}

func newRestoreCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	var opts restoreOptions
	cmd := &cobra.Command{
		Use:   "restore [OPTIONS] BACKUP_DIR",
		Short: "Restore a backup's volumes, after checking every archive against its manifest",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd, dockerCli, project, opts, args[0])
		},
	}
	cmd.Flags().StringVar(&opts.project, "project", "", "Restore into this project (volumes named <project>_<volume>); default: the backup's own")
	cmd.Flags().BoolVar(&opts.force, "force", false, "Write into volumes that already hold files (files not in the backup stay)")
	return cmd
}

func runRestore(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts restoreOptions, dir string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	eng, err := connect(ctx, dockerCli)
	if err != nil {
		return err
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	volumes, err := rollout.Restore(ctx, eng, dir, events, rollout.RestoreOptions{Project: opts.project, Force: opts.force})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	for _, v := range volumes {
		fmt.Fprintf(dockerCli.Out(), "Restored volume %s\n", v)
	}
	return nil
}
