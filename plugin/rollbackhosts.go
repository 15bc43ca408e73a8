package plugin

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// runHostsRollback is rollback on the hosts of x-lifecycle.hosts or --hosts, in the
// same batches as deploy and all or nothing (docs/multihost.md): exit 3 when a host
// failed and the hosts already rolled back returned to what they ran.
func runHostsRollback(ctx context.Context, dockerCli command.Cli, project *projectOptions, spec compose.HostsSpec, names []string, opts rollbackOptions, services []string) error {
	hosts, closeHosts, err := openHosts(ctx, dockerCli, project, names)
	if err != nil {
		return err
	}
	defer closeHosts()
	plan := rollout.PlanHosts(spec, names)
	events, err := newProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	started := time.Now()
	outcomes, plans, err := rollout.RollbackHosts(ctx, hosts, events, plan, services, opts.to, rollout.DeployOptions{
		DryRun: opts.dryRun, WaitTimeout: opts.waitTimeout, Command: "docker lifecycle rollback",
		Checkpoint: crashCheckpoint(), ToolVersion: meta.Version,
	})
	_ = events.Close()
	if opts.dryRun {
		if err != nil {
			return exitError(ctx, err)
		}
		return writeHostsPlan(dockerCli, plan, plans, opts.format)
	}
	rollout.WriteHostsOutcomes(dockerCli.Out(), outcomes)
	if err != nil {
		return exitError(ctx, err)
	}
	fmt.Fprintf(dockerCli.Out(), "Rolled back project %s on %d hosts in %s\n", hosts[0].Project.Name, len(hosts), time.Since(started).Round(100*time.Millisecond))
	return nil
}
