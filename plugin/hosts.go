package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/context/docker"
	"github.com/moby/moby/client"
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

// openHosts is connectHosts with the project loaded once per context, its policy
// checked and its segment subnets chosen around that engine's networks.
func openHosts(ctx context.Context, dockerCli command.Cli, project *projectOptions, names []string) ([]rollout.Host, func(), error) {
	hosts, closeHosts, err := connectHosts(ctx, dockerCli, names)
	if err != nil {
		return nil, nil, err
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
// --context NAME` (the context store's endpoint: unix, tcp with TLS, ssh). Every
// context that fails is named at once; close releases the clients.
func connectHosts(ctx context.Context, dockerCli command.Cli, names []string) (hosts []rollout.Host, close func(), err error) {
	var clients []client.APIClient
	close = func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}
	var problems []error
	for _, name := range names {
		api, err := contextClient(dockerCli, name)
		if err != nil {
			problems = append(problems, fmt.Errorf("context %q: %w", name, err))
			continue
		}
		clients = append(clients, api)
		eng, err := engine.Connect(ctx, api)
		if err != nil {
			problems = append(problems, fmt.Errorf("context %q (%s): %w", name, api.DaemonHost(), err))
			continue
		}
		hosts = append(hosts, rollout.Host{Name: name, Engine: eng})
	}
	if len(problems) > 0 {
		close()
		return nil, nil, fmt.Errorf("multi-host: %d of %d contexts cannot be used; nothing changed (check them with `docker --context NAME info`):\n%w",
			len(problems), len(names), errors.Join(problems...))
	}
	return hosts, close, nil
}

// contextClient is an API client for the named context's Docker endpoint.
func contextClient(dockerCli command.Cli, name string) (client.APIClient, error) {
	store := dockerCli.ContextStore()
	meta, err := store.GetMetadata(name)
	if err != nil {
		return nil, fmt.Errorf("%w (list the contexts with `docker context ls`)", err)
	}
	endpointMeta, err := docker.EndpointFromContext(meta)
	if err != nil {
		return nil, err
	}
	endpoint, err := docker.WithTLSData(store, name, endpointMeta)
	if err != nil {
		return nil, err
	}
	opts, err := endpoint.ClientOpts()
	if err != nil {
		return nil, err
	}
	if headers := dockerCli.ConfigFile().HTTPHeaders; len(headers) > 0 {
		opts = append(opts, client.WithHTTPHeaders(headers))
	}
	return client.New(opts...)
}
