package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/context/docker"
	"github.com/spf13/pflag"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// hostsFlag declares --hosts: the Docker contexts of a multi-host command
// (docs/multihost.md). It is not named --context: that is docker's global flag for
// the one context every other command uses, and `docker --context prod lifecycle
// deploy` must keep meaning that.
func hostsFlag(flags *pflag.FlagSet, hosts *[]string, what string) {
	flags.StringSliceVar(hosts, "hosts", nil, what+" these Docker contexts (comma-separated; default: x-lifecycle.hosts.contexts; see docs/multihost.md)")
}

// hostNames are the contexts a command works on: --hosts, else x-lifecycle.hosts;
// none means the current context alone.
func hostNames(flag []string, p *compose.Project) ([]string, error) {
	if len(flag) == 0 {
		if p == nil {
			return nil, nil
		}
		return p.Spec.Hosts.Contexts, nil
	}
	seen := map[string]bool{}
	for _, h := range flag {
		switch {
		case strings.TrimSpace(h) == "":
			return nil, usageError("--hosts: an empty context name in %q: name Docker contexts separated by commas (`docker context ls`)", strings.Join(flag, ","))
		case seen[h]:
			return nil, usageError("--hosts: context %q is named twice", h)
		}
		seen[h] = true
	}
	return flag, nil
}

// openHosts is connectHosts, all or none, with the project loaded once per context,
// its policy checked and its segment subnets chosen around that engine's networks.
func openHosts(ctx context.Context, dockerCli command.Cli, project *projectOptions, names []string) ([]rollout.Host, func(), error) {
	hosts, closeHosts, err := connectHosts(ctx, dockerCli, names)
	if err != nil {
		closeHosts()
		return nil, nil, fmt.Errorf("nothing changed: %w", err)
	}
	for i := range hosts {
		p, err := project.load(ctx)
		if err == nil {
			err = rollout.ValidatePolicy(p)
		}
		if err == nil {
			err = rollout.ObserveNetworks(ctx, hosts[i].Engine, p)
		}
		if err != nil {
			closeHosts()
			return nil, nil, err
		}
		hosts[i].Project = p
	}
	return hosts, closeHosts, nil
}

// connectHosts connects to each context's engine, as docker does for `docker
// --context NAME` (the context store's endpoint: unix, tcp with TLS, ssh). It returns
// the hosts that answered and an error naming every context that failed; close
// releases the clients.
func connectHosts(ctx context.Context, dockerCli command.Cli, names []string) (hosts []rollout.Host, close func(), err error) {
	var closers []func() error
	close = func() {
		for _, c := range closers {
			_ = c()
		}
	}
	var problems []error
	for _, name := range names {
		eng, closeEngine, err := dialContext(ctx, dockerCli, name)
		if err != nil {
			problems = append(problems, fmt.Errorf("context %q: %w", name, err))
			continue
		}
		closers = append(closers, closeEngine)
		hosts = append(hosts, rollout.Host{Name: name, Engine: eng})
	}
	if len(problems) > 0 {
		err = fmt.Errorf("%d of %d hosts cannot be reached (check them with `docker --context NAME info`):\n%w", len(problems), len(names), errors.Join(problems...))
	}
	return hosts, close, err
}

// dialContext connects to the engine of the named context's Docker endpoint.
func dialContext(ctx context.Context, dockerCli command.Cli, name string) (engine.Engine, func() error, error) {
	store := dockerCli.ContextStore()
	meta, err := store.GetMetadata(name)
	if errdefs.IsNotFound(err) {
		return nil, nil, errors.New("no such Docker context (list them with `docker context ls`; create one with `docker context create NAME --docker host=ssh://USER@HOST`)")
	}
	if err != nil {
		return nil, nil, err
	}
	endpointMeta, err := docker.EndpointFromContext(meta)
	if err != nil {
		return nil, nil, err
	}
	endpoint, err := docker.WithTLSData(store, name, endpointMeta)
	if err != nil {
		return nil, nil, err
	}
	opts, err := endpoint.ClientOpts()
	if err != nil {
		return nil, nil, err
	}
	return engine.Dial(ctx, opts, dockerCli.ConfigFile().HTTPHeaders)
}
