package plugin

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command"
	"github.com/spf13/cobra"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/secrets"
)

func newSecretsCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Secrets delivered as files on a tmpfs under /run/secrets",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newSecretsRotateCommand(dockerCli, project))
	return cmd
}

type secretsRotateOptions struct {
	waitTimeout time.Duration
}

func newSecretsRotateCommand(dockerCli command.Cli, project *projectOptions) *cobra.Command {
	opts := secretsRotateOptions{}
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Read a secret's source again and roll the services that use it, each with its strategy",
		Args:  exactlyOne("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSecretsRotate(cmd, dockerCli, project, opts, args[0])
		},
	}
	durationFlag(cmd.Flags(), &opts.waitTimeout, "wait-timeout", 0, 0, 0, "How long to wait for each new container to become healthy")
	return cmd
}

func runSecretsRotate(cmd *cobra.Command, dockerCli command.Cli, project *projectOptions, opts secretsRotateOptions, name string) error {
	ctx, cancel := commandContext(cmd)
	defer cancel()
	p, eng, err := openProject(ctx, dockerCli, project)
	if err != nil {
		return err
	}
	if _, ok := p.Project.Secrets[name]; !ok {
		return fmt.Errorf("no secret %q in the project's top-level secrets", name)
	}
	var consumers []string
	for _, svc := range p.ServiceNames() {
		if slices.ContainsFunc(p.Project.Services[svc].Secrets, func(r types.ServiceSecretConfig) bool { return r.Source == name }) {
			consumers = append(consumers, svc)
		}
	}
	if len(consumers) == 0 {
		return fmt.Errorf("no service uses secret %q", name)
	}
	// The source is read first: a failing source changes nothing.
	if _, err := secrets.Read(ctx, p, name); err != nil {
		return err
	}
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	started := time.Now()
	_, err = rollout.Deploy(ctx, eng, p, events, rollout.DeployOptions{
		Services: consumers, WaitTimeout: opts.waitTimeout, LocalEngine: isLocalEngine(dockerCli),
		Command: "docker lifecycle secrets rotate", Checkpoint: crashCheckpoint(),
		Replace: consumers, ReplaceCause: fmt.Sprintf("secret %s rotated", name),
	})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	fmt.Fprintf(dockerCli.Out(), "Rotated secret %s: rolled %s in %s\n", name, strings.Join(consumers, ", "), time.Since(started).Round(100*time.Millisecond))
	return nil
}
