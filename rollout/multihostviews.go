package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// HostContainers is one host's part of `ps` across hosts (docs/multihost.md).
type HostContainers struct {
	Host       string
	Containers []engine.Container
}

// HostsContainers lists the project's containers on every host (ProjectContainers),
// the hosts read at the same time, in the hosts' order. A host that cannot be read
// is named in the error; the others are still listed.
func HostsContainers(ctx context.Context, hosts []Host, project string, services []string, all bool) ([]HostContainers, error) {
	out := make([]HostContainers, len(hosts))
	errs := forEachHost(hosts, func(i int, h Host) error {
		rows, err := ProjectContainers(ctx, h.Engine, project, services, all)
		out[i] = HostContainers{Host: h.Name, Containers: rows}
		return err
	})
	return out, errs
}

// HostHistory is one host's part of `history` across hosts: its revision records,
// oldest first, and the state of each revision's containers (RevisionStates).
type HostHistory struct {
	Host    string
	Records []Record
	States  map[string]map[int]string
}

// HostsHistory reads the project's revision history on every host, at the same time,
// in the hosts' order; a host that cannot be read is named in the error.
func HostsHistory(ctx context.Context, hosts []Host, project string) ([]HostHistory, error) {
	out := make([]HostHistory, len(hosts))
	errs := forEachHost(hosts, func(i int, h Host) error {
		records, err := History(ctx, h.Engine, project)
		if err != nil {
			return err
		}
		states, err := RevisionStates(ctx, h.Engine, project)
		out[i] = HostHistory{Host: h.Name, Records: records, States: states}
		return err
	})
	return out, errs
}

// forEachHost runs fn for every host at once and joins the errors, each with its host.
func forEachHost(hosts []Host, fn func(i int, h Host) error) error {
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(i, h); err != nil {
				errs[i] = fmt.Errorf("host %s: %w", h.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
