package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// runHostsDeploy is deploy to several Docker contexts (x-lifecycle.hosts or --hosts,
// docs/multihost.md): in batches, all or nothing; exit 3 when a host failed and the
// hosts already switched were rolled back.
func runHostsDeploy(ctx context.Context, dockerCli command.Cli, project *projectOptions, spec compose.HostsSpec, names []string, opts deployOptions, services []string) error {
	switch {
	case opts.swarm:
		return usageError("--swarm and multi-host deploys exclude each other: a Swarm manager schedules across its nodes itself (docs/swarm.md)")
	case opts.verifyNetwork:
		return usageError("--verify-network does not work across hosts yet: run `docker --context HOST lifecycle network verify` on each (docs/multihost.md)")
	}
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
	outcomes, plans, err := rollout.DeployHosts(ctx, hosts, events, plan, rollout.DeployOptions{
		Services: services, RemoveOrphans: opts.removeOrphans, DryRun: opts.dryRun,
		// No host port probe: a unix socket may be an engine in another network
		// namespace (or a VM), whose ports are not this host's; the engine itself
		// refuses a taken port.
		WaitTimeout: opts.waitTimeout, LocalEngine: false,
		Command: "docker lifecycle deploy", Checkpoint: crashCheckpoint(),
		Scan:  (hosts[0].Project.Spec.Scan.Enabled || opts.scan) && !opts.skipScan,
		Build: opts.build, Pull: opts.pull, RegistryAuth: registryAuth(dockerCli), ToolVersion: meta.Version,
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
	if !slices.ContainsFunc(outcomes, func(o rollout.HostOutcome) bool { return o.Result == rollout.HostSwitched }) {
		fmt.Fprintf(dockerCli.Out(), "Project %s is up to date on %d hosts: nothing to do.\n", hosts[0].Project.Name, len(hosts))
		return nil
	}
	fmt.Fprintf(dockerCli.Out(), "Deployed project %s to %d hosts in %s\n", hosts[0].Project.Name, len(hosts), time.Since(started).Round(100*time.Millisecond))
	return nil
}

// hostsPlanJSON is `deploy --dry-run --format json` across hosts.
type hostsPlanJSON struct {
	Batches     [][]string                 `json:"batches"`
	Concurrency int                        `json:"concurrency"`
	Wait        string                     `json:"wait"`
	Plans       map[string]strategies.Plan `json:"plans"`
}

// writeHostsPlan prints the batches, then each host's plan in deploy order.
func writeHostsPlan(dockerCli command.Cli, plan rollout.HostsPlan, plans map[string]strategies.Plan, format string) error {
	if format == "json" {
		for h, p := range plans {
			if p.Steps == nil {
				p.Steps = []strategies.Step{}
				plans[h] = p
			}
		}
		enc := json.NewEncoder(dockerCli.Out())
		enc.SetIndent("", "  ")
		return enc.Encode(hostsPlanJSON{Batches: plan.Batches, Concurrency: plan.Concurrency, Wait: plan.Wait.String(), Plans: plans})
	}
	out := dockerCli.Out()
	fmt.Fprint(out, plan.Text())
	for _, batch := range plan.Batches {
		for _, h := range batch {
			fmt.Fprintf(out, "\nhost %s:\n", h)
			if err := writePlan(out, plans[h], format); err != nil {
				return err
			}
		}
	}
	return nil
}
