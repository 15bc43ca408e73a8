package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"

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
	// PreviousSpec is the spec before the last update (what `docker service rollback`
	// returns to); nil for a service never updated.
	PreviousSpec *swarm.ServiceSpec
	// Ports are the ports the service publishes (its endpoint).
	Ports []swarm.PortConfig
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
		svc := Service{ID: s.ID, Name: s.Spec.Name, Version: s.Version.Index, Labels: s.Spec.Labels, Spec: s.Spec, PreviousSpec: s.PreviousSpec, Ports: s.Endpoint.Ports}
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

func (m *Moby) RollbackService(ctx context.Context, id string, version uint64, current swarm.ServiceSpec) error {
	// The manager restores its own copy of the previous spec, but still validates the
	// spec sent ("mismatched Runtime and *Spec fields" for an empty one): the current
	// one, as `docker service rollback` sends.
	_, err := m.api.ServiceUpdate(ctx, id, client.ServiceUpdateOptions{Version: swarm.Version{Index: version}, Spec: current, Rollback: "previous"})
	if err != nil {
		return wrapNotFound(err, "roll back Swarm service "+id)
	}
	return nil
}

// Kinds of Swarm objects a service references by name (ListSwarmObjects and friends).
const (
	SwarmSecret = "secret"
	SwarmConfig = "config"
)

// ErrInUse is returned (wrapped) by RemoveSwarmObject when a service still references
// the object: Swarm refuses to remove it.
var ErrInUse = errors.New("in use by a service")

// SwarmObject is a Swarm secret or config as the manager lists it: never its value
// (Swarm does not return a secret's).
type SwarmObject struct {
	ID, Name string
	Labels   map[string]string
}

func (m *Moby) ListSwarmObjects(ctx context.Context, kind string, labels map[string]string) ([]SwarmObject, error) {
	var out []SwarmObject
	switch kind {
	case SwarmSecret:
		res, err := m.api.SecretList(ctx, client.SecretListOptions{Filters: labelFilters(labels)})
		if err != nil {
			return nil, fmt.Errorf("list Swarm secrets: %w", err)
		}
		for _, s := range res.Items {
			out = append(out, SwarmObject{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels})
		}
	case SwarmConfig:
		res, err := m.api.ConfigList(ctx, client.ConfigListOptions{Filters: labelFilters(labels)})
		if err != nil {
			return nil, fmt.Errorf("list Swarm configs: %w", err)
		}
		for _, c := range res.Items {
			out = append(out, SwarmObject{ID: c.ID, Name: c.Spec.Name, Labels: c.Spec.Labels})
		}
	default:
		return nil, fmt.Errorf("list Swarm objects: unknown kind %q", kind)
	}
	return out, nil
}

// CreateSwarmObject creates a secret or config holding data; an error never quotes data.
func (m *Moby) CreateSwarmObject(ctx context.Context, kind, name string, labels map[string]string, data []byte) (string, error) {
	ann := swarm.Annotations{Name: name, Labels: labels}
	var id string
	var err error
	switch kind {
	case SwarmSecret:
		var res client.SecretCreateResult
		res, err = m.api.SecretCreate(ctx, client.SecretCreateOptions{Spec: swarm.SecretSpec{Annotations: ann, Data: data}})
		id = res.ID
	case SwarmConfig:
		var res client.ConfigCreateResult
		res, err = m.api.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: swarm.ConfigSpec{Annotations: ann, Data: data}})
		id = res.ID
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil {
		return "", fmt.Errorf("create Swarm %s %s: %w", kind, name, err)
	}
	return id, nil
}

// RemoveSwarmObject removes a secret or config; one a service still uses is ErrInUse.
func (m *Moby) RemoveSwarmObject(ctx context.Context, kind, id string) error {
	var err error
	switch kind {
	case SwarmSecret:
		_, err = m.api.SecretRemove(ctx, id, client.SecretRemoveOptions{})
	case SwarmConfig:
		_, err = m.api.ConfigRemove(ctx, id, client.ConfigRemoveOptions{})
	default:
		err = fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil && cerrdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "in use") {
		return fmt.Errorf("remove Swarm %s %s: %w", kind, id, errors.Join(ErrInUse, err))
	}
	return wrapNotFound(err, "remove Swarm "+kind+" "+id)
}

func (m *Moby) RemoveService(ctx context.Context, id string) error {
	_, err := m.api.ServiceRemove(ctx, id, client.ServiceRemoveOptions{})
	return wrapNotFound(err, "remove Swarm service "+id)
}

// Task is a Swarm task as the manager reports it.
type Task struct {
	ID, ServiceID string
	// Slot is the replica number of a replicated service's task.
	Slot int
	// Node is the host name of the node the task was scheduled on ("" before it was).
	Node string
	// DesiredState is what Swarm wants (running, shutdown, …); State is where the task
	// is (new, pending, …, running, complete, failed, rejected, shutdown).
	DesiredState, State string
	// Since is when the task reached State.
	Since time.Time
	// Err is why a task failed or was rejected ("" otherwise).
	Err   string
	Image string
	// Ports are the ports the task publishes in host mode.
	Ports []swarm.PortConfig
}

func (m *Moby) ListTasks(ctx context.Context, labels map[string]string) ([]Task, error) {
	res, err := m.api.TaskList(ctx, client.TaskListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list Swarm tasks: %w", err)
	}
	nodes := map[string]string{}
	if len(res.Items) > 0 {
		ns, err := m.api.NodeList(ctx, client.NodeListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list Swarm nodes: %w", err)
		}
		for _, n := range ns.Items {
			nodes[n.ID] = n.Description.Hostname
		}
	}
	out := make([]Task, 0, len(res.Items))
	for _, t := range res.Items {
		task := Task{ID: t.ID, ServiceID: t.ServiceID, Slot: t.Slot, Node: nodes[t.NodeID], DesiredState: string(t.DesiredState),
			State: string(t.Status.State), Since: t.Status.Timestamp, Err: t.Status.Err}
		if task.Node == "" {
			task.Node = t.NodeID
		}
		if cs := t.Spec.ContainerSpec; cs != nil {
			task.Image = cs.Image
		}
		task.Ports = t.Status.PortStatus.Ports
		out = append(out, task)
	}
	return out, nil
}

// ServiceLogLine is one line a task of a Swarm service wrote.
type ServiceLogLine struct {
	LogLine
	TaskID string
}

// swarmTaskDetail is the key of the task's ID in the details the manager prepends to
// each line of a service's logs ("com.docker.swarm.node.id=…,…,com.docker.swarm.task.id=…").
const swarmTaskDetail = "com.docker.swarm.task.id"

func (m *Moby) ServiceLogs(ctx context.Context, serviceID string, tty bool, opts LogOptions, emit func(ServiceLogLine) error) error {
	query := client.ServiceLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Details: true, Follow: opts.Follow, Tail: "all"}
	if opts.Tail >= 0 {
		query.Tail = fmt.Sprint(opts.Tail)
	}
	if !opts.Since.IsZero() {
		query.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	if !opts.Until.IsZero() {
		query.Until = fmt.Sprintf("%d.%09d", opts.Until.Unix(), opts.Until.Nanosecond())
	}
	rc, err := m.api.ServiceLogs(ctx, serviceID, query)
	if err != nil {
		return wrapNotFound(err, "logs of Swarm service "+serviceID)
	}
	defer rc.Close()
	return splitLogStream(ctx, rc, tty, "logs of Swarm service "+serviceID, func(l LogLine) error {
		return emit(parseServiceLogLine(l))
	})
}

// parseServiceLogLine takes the details (comma-separated key=value pairs, then a space)
// off the front of a line of a service's logs.
func parseServiceLogLine(l LogLine) ServiceLogLine {
	details, text, ok := strings.Cut(l.Text, " ")
	if !ok && strings.Contains(l.Text, swarmTaskDetail+"=") {
		details, text, ok = l.Text, "", true // an empty line
	}
	out := ServiceLogLine{LogLine: l}
	if !ok || !strings.Contains(details, swarmTaskDetail+"=") {
		return out
	}
	out.Text = text
	for _, kv := range strings.Split(details, ",") {
		if k, v, _ := strings.Cut(kv, "="); k == swarmTaskDetail {
			out.TaskID = v
		}
	}
	return out
}
