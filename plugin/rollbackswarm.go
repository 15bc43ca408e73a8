package plugin

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// runSwarmRollback is rollback on a Swarm manager (docs/swarm.md): each service goes
// back to the spec Swarm kept from before its last update. Exit 0 once Swarm finished,
// 1 when it paused the rollback or the wait timed out.
func runSwarmRollback(ctx context.Context, dockerCli command.Cli, eng engine.Engine, project *projectOptions, p *compose.Project, name string, opts rollbackOptions, services []string) error {
	switch {
	case opts.to > 0:
		return usageError("--to: Swarm keeps no numbered revisions, only each service's previous spec (docs/swarm.md)")
	case opts.withData:
		return usageError("--with-data does not work on Swarm: volumes live on each node (docs/swarm.md)")
	}
	events, _, err := newDeployProgress(dockerCli, project.progress)
	if err != nil {
		return err
	}
	started := time.Now()
	plan, err := rollout.RollbackSwarm(ctx, eng, name, events, rollout.SwarmRollbackOptions{
		Services: services, DryRun: opts.dryRun, WaitTimeout: opts.waitTimeout, Command: "docker lifecycle rollback", Project: p,
	})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if opts.dryRun {
		return writeSwarmPlan(dockerCli, plan, opts.format)
	}
	fmt.Fprintf(dockerCli.Out(), "Rolled back %s on Swarm to the previous spec in %s (`docker lifecycle history` shows it)\n",
		strings.Join(plan.Services(), ", "), time.Since(started).Round(100*time.Millisecond))
	return nil
}
