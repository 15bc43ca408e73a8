package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// SwarmLogs emits the log lines of the tasks of a project deployed to Swarm, read
// through the manager's service logs (every node's tasks, as `docker service logs`),
// one stream per service of the project (found by the namespace label). Without Follow
// the lines are merged by timestamp; with Follow they come as they arrive, until ctx
// ends, and the project's services are listed again every swarmServiceListing: a
// service created meanwhile (a deploy that adds it) is followed from its first line.
// Each entry's Service is the compose service (a blue-green or canary service's revision
// services under it, with their Revision; the router as RouterService), Number its
// task's slot, Container the task's name (<project>_<service>.<slot>) and ContainerID
// the task's ID.
func SwarmLogs(ctx context.Context, eng engine.Engine, project string, opts LogsOptions, emit func(LogEntry) error) error {
	ns := map[string]string{compose.LabelStackNamespace: project}
	svcs, err := eng.ListServices(ctx, ns)
	if err != nil {
		return err
	}
	var unknown []string
	for _, name := range opts.Services {
		if !slices.ContainsFunc(svcs, func(s engine.Service) bool { return swarmMemberOf(project, s).Service == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("no Swarm service %s in project %s (services: %s)", strings.Join(unknown, ", "), project, strings.Join(swarmServiceNames(project, svcs), ", "))
	}
	// Revision keeps only the revision services of that revision (blue-green and canary
	// services; a rolling service has none on Swarm).
	wanted := func(s engine.Service) bool {
		m := swarmMemberOf(project, s)
		return (len(opts.Services) == 0 || slices.Contains(opts.Services, m.Service)) && (opts.Revision == 0 || m.Revision == opts.Revision)
	}
	slots := swarmSlots{eng: eng, ns: ns}
	if err := slots.refresh(ctx); err != nil {
		return err
	}
	// A stream that fails ends the others (and the listing): the error is returned.
	streams, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu    sync.Mutex // emit, lists and errs, from one stream at a time
		lists [][]LogEntry
		errs  []error
		wg    sync.WaitGroup
	)
	read := func(s engine.Service, q engine.LogOptions) {
		member := swarmMemberOf(project, s)
		tty := s.Spec.TaskTemplate.ContainerSpec != nil && s.Spec.TaskTemplate.ContainerSpec.TTY
		i := len(lists)
		lists = append(lists, nil)
		wg.Go(func() {
			err := eng.ServiceLogs(streams, s.ID, tty, q, func(l engine.ServiceLogLine) error {
				slot := slots.slot(streams, l.TaskID)
				e := LogEntry{Service: member.Service, Revision: member.Revision, Number: slot, Container: fmt.Sprintf("%s.%d", s.Name, slot), ContainerID: l.TaskID, LogLine: l.LogLine}
				if opts.parses() {
					parseLine(&e)
				}
				if !opts.keep(e) {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if opts.Follow {
					return emit(e)
				}
				lists[i] = append(lists[i], e)
				return nil
			})
			if err == nil || errors.Is(err, engine.ErrNotFound) || streams.Err() != nil {
				return // ended, removed meanwhile, or stopped
			}
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			stop()
		})
	}
	known := map[string]bool{}
	mu.Lock()
	for _, s := range svcs {
		known[s.ID] = true
		if wanted(s) {
			read(s, engine.LogOptions{Since: opts.Since, Until: opts.Until, Tail: opts.Tail, Follow: opts.Follow})
		}
	}
	mu.Unlock()
	if opts.Follow {
		followNewServices(streams, eng, ns, known, func(s engine.Service) {
			if wanted(s) {
				mu.Lock()
				defer mu.Unlock()
				// All of a new service's lines were written after following began.
				read(s, engine.LogOptions{Since: opts.Since, Until: opts.Until, Tail: -1, Follow: true})
			}
		})
	}
	wg.Wait()
	for _, e := range mergeByTime(lists) {
		if err := emit(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil && opts.Follow {
		return nil
	}
	return errors.Join(errs...)
}

// swarmServiceListing is how often `logs --follow` on Swarm lists the project's
// services for one created since (one call to the manager; a new service's lines are
// read from its first, so none is lost however late it is found).
const swarmServiceListing = time.Second

// followNewServices lists the services labelled ns every swarmServiceListing until ctx
// ends and calls found for each one not in known (which it updates). A failed listing
// is skipped: the streams report an engine that went away.
func followNewServices(ctx context.Context, eng engine.Engine, ns map[string]string, known map[string]bool, found func(engine.Service)) {
	tick := time.NewTicker(swarmServiceListing)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		svcs, err := eng.ListServices(ctx, ns)
		if err != nil {
			continue
		}
		for _, s := range svcs {
			if !known[s.ID] {
				known[s.ID] = true
				found(s)
			}
		}
	}
}

// swarmSlots maps the project's task IDs to their slots, listing the tasks again when a
// line comes from a task not seen yet (one a rolling update started).
type swarmSlots struct {
	eng    engine.Engine
	ns     map[string]string
	mu     sync.Mutex
	bySlot map[string]int
}

func (s *swarmSlots) refresh(ctx context.Context) error {
	tasks, err := s.eng.ListTasks(ctx, s.ns)
	if err != nil {
		return err
	}
	s.bySlot = map[string]int{}
	for _, t := range tasks {
		s.bySlot[t.ID] = t.Slot
	}
	return nil
}

func (s *swarmSlots) slot(ctx context.Context, taskID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.bySlot[taskID]
	if !ok && taskID != "" {
		_ = s.refresh(ctx) // a failed listing leaves the slot 0 (printed as 1): the line is still shown
		n = s.bySlot[taskID]
		if _, ok := s.bySlot[taskID]; !ok {
			s.bySlot[taskID] = 0 // not listed (removed already): do not list again for each line
		}
	}
	return n
}
