package plugin

import (
	"context"

	"github.com/docker/cli/cli/command"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// listingTarget is where a listing command (ps, history) reads the project: the
// hosts of --hosts or x-lifecycle.hosts, else the current context's engine, which is
// a Swarm manager or not. The three lead to three renderings; choosing among them is
// one place, so the commands agree on what wins.
type listingTarget struct {
	project string           // the project's name
	compose *compose.Project // the loaded compose file; nil with -p NAME alone
	hosts   []string         // a multi-host listing when not empty (eng is nil then)
	eng     engine.Engine
	swarm   bool // eng is a Swarm manager (or --swarm asked for it)
}

// openListingTarget resolves the target. swarmSeesAll says, for the refusal of
// --swarm with hosts, what a Swarm manager already shows of every node.
func openListingTarget(ctx context.Context, dockerCli command.Cli, project *projectOptions, hostsFlag []string, swarmFlag bool, swarmSeesAll string) (listingTarget, error) {
	p, name, err := project.loadOptional(ctx)
	if err != nil {
		return listingTarget{}, err
	}
	t := listingTarget{project: name, compose: p}
	if t.hosts, err = hostNames(hostsFlag, p); err != nil {
		return listingTarget{}, err
	}
	if len(t.hosts) > 0 {
		if swarmFlag {
			return listingTarget{}, usageError("--swarm and multi-host listings exclude each other: %s", swarmSeesAll)
		}
		return t, nil
	}
	if t.eng, err = connect(ctx, dockerCli); err != nil {
		return listingTarget{}, err
	}
	if _, t.swarm, err = rollout.SwarmTarget(ctx, t.eng, swarmFlag); err != nil {
		return listingTarget{}, err
	}
	return t, nil
}
