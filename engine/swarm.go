package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// SwarmInfo is the engine's Swarm membership.
type SwarmInfo struct {
	NodeID string
	// LocalNodeState is inactive, pending, active, error or locked.
	LocalNodeState string
	// ControlAvailable is true on a manager: only there can services be deployed.
	ControlAvailable bool
	Nodes, Managers  int
	// NodeName is the engine's host name, as `docker node ls` shows it.
	NodeName string
}

// Service is a Swarm service as the manager reports it.
type Service struct {
	ID      string
	Name    string
	Version uint64
	Labels  map[string]string
	Spec    swarm.ServiceSpec
	// UpdateState is the state of the last update (updating, paused, completed,
	// rollback_started, rollback_paused, rollback_completed); "" when the service was
	// never updated, or the update just asked for has not started yet.
	UpdateState   string
	UpdateMessage string
	// UpdateStarted is when that update started: a new update has started once it moves.
	UpdateStarted time.Time
	// RunningTasks and DesiredTasks count the service's tasks (API 1.41+).
	RunningTasks, DesiredTasks uint64
}

func (m *Moby) Swarm(ctx context.Context) (SwarmInfo, error) {
	// Every deploy asks; on an engine in no swarm (most) the ping already said so, and
	// the engine's info costs a call that also counts images and containers.
	if m.pingSwarm != nil && m.pingSwarm.NodeState == swarm.LocalNodeStateInactive {
		return SwarmInfo{LocalNodeState: string(swarm.LocalNodeStateInactive)}, nil
	}
	res, err := m.api.Info(ctx, client.InfoOptions{})
	if err != nil {
		return SwarmInfo{}, fmt.Errorf("read the engine's info (Swarm state): %w", err)
	}
	s := res.Info.Swarm
	return SwarmInfo{NodeID: s.NodeID, LocalNodeState: string(s.LocalNodeState), ControlAvailable: s.ControlAvailable, Nodes: s.Nodes, Managers: s.Managers, NodeName: res.Info.Name}, nil
}

func (m *Moby) ListServices(ctx context.Context, labels map[string]string) ([]Service, error) {
	res, err := m.api.ServiceList(ctx, client.ServiceListOptions{Filters: labelFilters(labels), Status: true})
	if err != nil {
		return nil, fmt.Errorf("list Swarm services: %w", err)
	}
	out := make([]Service, 0, len(res.Items))
	for _, s := range res.Items {
		svc := Service{ID: s.ID, Name: s.Spec.Name, Version: s.Version.Index, Labels: s.Spec.Labels, Spec: s.Spec}
		if u := s.UpdateStatus; u != nil {
			svc.UpdateState, svc.UpdateMessage = string(u.State), u.Message
			if u.StartedAt != nil {
				svc.UpdateStarted = *u.StartedAt
			}
		}
		if st := s.ServiceStatus; st != nil {
			svc.RunningTasks, svc.DesiredTasks = st.RunningTasks, st.DesiredTasks
		}
		out = append(out, svc)
	}
	return out, nil
}

func (m *Moby) CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	res, err := m.api.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	if err != nil {
		return "", fmt.Errorf("create Swarm service %s: %w", spec.Name, err)
	}
	return res.ID, nil
}

func (m *Moby) UpdateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) error {
	_, err := m.api.ServiceUpdate(ctx, id, client.ServiceUpdateOptions{Version: swarm.Version{Index: version}, Spec: spec})
	if err != nil {
		return wrapNotFound(err, "update Swarm service "+spec.Name)
	}
	return nil
}
