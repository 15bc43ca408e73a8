package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// runSwarmDeploy is deploy on a Swarm manager (docs/swarm.md): the project becomes
// Swarm services; exit 3 when Swarm rolled an update back, 1 when it paused one.
func runSwarmDeploy(ctx context.Context, dockerCli command.Cli, eng engine.Engine, node engine.SwarmInfo, p *compose.Project, events progress.Writer, opts deployOptions, services []string) error {
	switch {
	case opts.verifyNetwork, opts.build, opts.removeOrphans:
		_ = events.Close()
		return usageError("--verify-network, --build and --remove-orphans do not work on Swarm yet (docs/swarm.md)")
	case opts.pull != rollout.PullPolicy:
		_ = events.Close()
		return usageError("--pull does not apply on Swarm: each node pulls a service's image when it starts a task (docs/swarm.md)")
	}
	started := time.Now()
	plan, err := rollout.DeploySwarm(ctx, eng, p, events, rollout.SwarmDeployOptions{
		Services: services, DryRun: opts.dryRun, WaitTimeout: opts.waitTimeout, Command: "docker lifecycle deploy", Node: node,
		Scan: (p.Spec.Scan.Enabled || opts.scan) && !opts.skipScan, ScanDockerHost: trivyDockerHost(dockerCli),
	})
	_ = events.Close()
	if err != nil {
		return exitError(ctx, err)
	}
	if opts.dryRun {
		return writeSwarmPlan(dockerCli, plan, opts.format)
	}
	if plan.Empty() {
		fmt.Fprintf(dockerCli.Out(), "Project %s is up to date on Swarm: nothing to do.\n", p.Name)
		return nil
	}
	changed := strings.Join(plan.Services(), ", ")
	if changed == "" {
		changed = "none" // only unused secret or config versions removed
	}
	fmt.Fprintf(dockerCli.Out(), "Deployed project %s to Swarm in %s: %d steps, services changed: %s\n",
		p.Name, time.Since(started).Round(100*time.Millisecond), len(plan.Steps), changed)
	return nil
}

func writeSwarmPlan(dockerCli command.Cli, plan strategies.SwarmPlan, format string) error {
	if format == "json" {
		if plan.Steps == nil {
			plan.Steps = []strategies.SwarmStep{}
		}
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	_, err := fmt.Fprint(dockerCli.Out(), plan.Text())
	return err
}
