// Package engine is the only package that talks to the Docker Engine API.
//
// It exposes a narrow interface (Engine) over the moby client with the few calls that
// docker lifecycle needs, a real implementation (Moby), a Fake with function fields for
// unit tests, and a DryRun wrapper that lets reads through and records writes.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// MinAPIVersion is the oldest Engine API the plugin supports (Docker Engine 19.03).
const MinAPIVersion = "1.40"

var (
	// ErrNotFound is returned (wrapped) when an object does not exist on the engine.
	ErrNotFound = errors.New("not found")
	// ErrEngineTooOld is returned by Ping when the engine speaks an API older than MinAPIVersion.
	ErrEngineTooOld = errors.New("engine too old")
	// ErrUnreachable is returned when the engine cannot be reached at all.
	ErrUnreachable = errors.New("cannot connect to the Docker engine")
	// ErrUnauthorized is returned (wrapped) when a registry refuses a pull for want of
	// credentials (some registries say so of an image that does not exist, too).
	ErrUnauthorized = errors.New("registry refused the pull")
	// ErrRegistryUnreachable is returned (wrapped) when the engine could not reach an
	// image's registry at all (name, network, TLS).
	ErrRegistryUnreachable = errors.New("the engine could not reach the registry")
	// ErrNameInUse is returned (wrapped) when a container is created under a name
	// another container has.
	ErrNameInUse = errors.New("container name already in use")
	// ErrLocked is returned (wrapped in *LockedError) when another process holds the project lock.
	ErrLocked = errors.New("project is locked")
)

// Engine is everything docker lifecycle asks of the Docker Engine.
type Engine interface {
	// Ping checks that the engine is reachable and new enough, and negotiates the API version.
	Ping(ctx context.Context) (ServerInfo, error)

	// ListContainers lists all containers (running or not) that carry every label in labels.
	ListContainers(ctx context.Context, labels map[string]string) ([]Container, error)
	InspectContainer(ctx context.Context, id string) (ContainerDetails, error)
	CreateContainer(ctx context.Context, spec ContainerSpec) (string, error)
	StartContainer(ctx context.Context, id string) error
	// StopContainer sends signal (empty: the container's stop signal) and kills after timeout (nil: the container's own).
	StopContainer(ctx context.Context, id, signal string, timeout *time.Duration) error
	RemoveContainer(ctx context.Context, id string, removeAnonymousVolumes bool) error
	// RenameContainer gives a container a new name (a recreate service's previous
	// revision is kept under its revision's name); a name taken is ErrNameInUse.
	RenameContainer(ctx context.Context, id, name string) error
	// ContainerLogTail returns the last lines of the container's stdout and stderr.
	ContainerLogTail(ctx context.Context, id string, lines int) (string, error)
	// ReadFile reads a regular file (following symbolic links) of a container's
	// filesystem, which it may do before the container ever started; at most limit
	// bytes. A missing file is ErrNotFound.
	ReadFile(ctx context.Context, containerID, path string, limit int64) ([]byte, error)

	ListNetworks(ctx context.Context, labels map[string]string) ([]Network, error)
	InspectNetwork(ctx context.Context, name string) (Network, error)
	CreateNetwork(ctx context.Context, spec NetworkSpec) error
	RemoveNetwork(ctx context.Context, name string) error

	ListVolumes(ctx context.Context, labels map[string]string) ([]Volume, error)
	InspectVolume(ctx context.Context, name string) (Volume, error)
	CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error)
	RemoveVolume(ctx context.Context, name string) error

	InspectImage(ctx context.Context, ref string) (Image, error)
	// BuildImage builds buildContext (a tar stream with a Dockerfile) with the classic builder and tags it.
	BuildImage(ctx context.Context, buildContext io.Reader, tag string, labels map[string]string) error
	// ImageBuild builds spec.Context (a tar stream) with the engine's classic builder
	// and tags the result; each line of the build's output goes to output (may be nil).
	ImageBuild(ctx context.Context, spec BuildSpec, output func(line string)) error
	RemoveImage(ctx context.Context, ref string) error
	// ImagePull pulls ref from its registry, sending registryAuth (the base64 value of
	// the X-Registry-Auth header; "" for none), and each progress line to output (may
	// be nil). A refusal for want of credentials wraps ErrUnauthorized, an image the
	// registry does not have ErrNotFound.
	ImagePull(ctx context.Context, ref, registryAuth string, output func(line string)) error
	// SaveImage streams the image as a `docker save` archive; the caller closes it.
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)

	// Exec runs cmd in a running container with stdin (may be nil) and returns its
	// stdout; a non-zero exit is an *ExecError carrying the exit code and stderr.
	Exec(ctx context.Context, containerID string, cmd []string, stdin []byte) ([]byte, error)
	// RunHook runs a compose lifecycle hook (post_start, pre_stop) in a running
	// container, as `docker exec` with the hook's user, privileges, directory and
	// environment; a non-zero exit is an *ExecError.
	RunHook(ctx context.Context, containerID string, hook Hook) error
	// CopyToContainer extracts a tar archive into dir of a container, running or only
	// created, keeping the owners and modes of the archive.
	CopyToContainer(ctx context.Context, containerID, dir string, archive io.Reader) error
	// Arch is the engine's hardware architecture as it reports it (x86_64, aarch64, …).
	Arch(ctx context.Context) (string, error)
	// NetworkCounters reads a running container's network byte and packet counters,
	// summed over its interfaces (one sample, no stream).
	NetworkCounters(ctx context.Context, containerID string) (NetworkCounters, error)
	// ExecSession starts cmd in a running container with its stdin and stdout attached,
	// for a conversation of many requests over one exec.
	ExecSession(ctx context.Context, containerID string, cmd []string) (*Session, error)

	// StreamStats opens the engine's stats stream of a container (one sample about every
	// second, PreCPUStats holding the previous one) and sends each sample on the returned
	// channel, which closes when the stream ends: ctx done, container stopped or removed.
	StreamStats(ctx context.Context, containerID string) (<-chan container.StatsResponse, error)
	// DiskUsage asks the engine for containers' writable layer sizes and volumes' sizes
	// (`docker system df -v`): the engine walks the files, which is slow on big layers.
	DiskUsage(ctx context.Context) (DiskUsage, error)
	// ContainerLogs streams a container's log lines (stdout and stderr, with the engine's
	// timestamps) to emit, until the logs end (or, with Follow, the container stops),
	// ctx ends or emit returns an error.
	ContainerLogs(ctx context.Context, containerID string, opts LogOptions, emit func(LogLine) error) error

	// PauseContainer and UnpauseContainer freeze and thaw a running container's processes.
	PauseContainer(ctx context.Context, id string) error
	UnpauseContainer(ctx context.Context, id string) error
	// CopyFromContainer streams path (a file or directory, its mounts included) of a
	// container, running or only created, as a tar archive; the caller closes it.
	CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error)

	// Events streams the engine's events of the containers carrying every label in
	// labels, limited to actions (empty: all; EventConnect and EventDisconnect add the
	// network events of every container, labels or not). The subscription is live when Events
	// returns, so a listing made after it misses nothing. The event channel closes when
	// the stream ends; the error channel then holds why (ctx.Err() once ctx ends): the
	// caller subscribes again and re-lists what it may have missed.
	Events(ctx context.Context, labels map[string]string, actions []string) (<-chan Event, <-chan error)

	// Swarm is the engine's Swarm membership (docker info's Swarm section); services
	// exist only on a manager (engine/swarm.go).
	Swarm(ctx context.Context) (SwarmInfo, error)
	// ListServices lists the Swarm services carrying every label in labels, with their
	// running and desired task counts and their update status.
	ListServices(ctx context.Context, labels map[string]string) ([]Service, error)
	CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, error)
	// UpdateService replaces the spec of service id, whose current version is version
	// (a concurrent change fails the update instead of being overwritten).
	UpdateService(ctx context.Context, id string, version uint64, spec swarm.ServiceSpec) error
	// RollbackService asks Swarm to roll service id (at version, with the current spec
	// current) back to its previous spec, as `docker service rollback`: the previous and
	// current specs swap and Swarm rolls the tasks with the service's rollback config.
	RollbackService(ctx context.Context, id string, version uint64, current swarm.ServiceSpec) error
	// ServiceLogs streams the log lines of a Swarm service's tasks, on every node, as
	// `docker service logs` (the manager collects them), each with its task's ID; tty is
	// the service's ContainerSpec.TTY (a TTY's stream is not multiplexed).
	ServiceLogs(ctx context.Context, serviceID string, tty bool, opts LogOptions, emit func(ServiceLogLine) error) error
	// ListSwarmObjects lists the secrets or configs (kind SwarmSecret, SwarmConfig)
	// carrying every label in labels; never their values.
	ListSwarmObjects(ctx context.Context, kind string, labels map[string]string) ([]SwarmObject, error)
	// CreateSwarmObject creates a secret or config holding data and returns its ID.
	CreateSwarmObject(ctx context.Context, kind, name string, labels map[string]string, data []byte) (string, error)
	// RemoveSwarmObject removes a secret or config by ID; Swarm refuses while a service
	// references it: ErrInUse.
	RemoveSwarmObject(ctx context.Context, kind, id string) error
	// RemoveService removes a Swarm service by ID; its tasks shut down afterwards
	// (ListTasks shows them until they are gone).
	RemoveService(ctx context.Context, id string) error
	// ListTasks lists the tasks of the services carrying every label in labels, with
	// the name of the node each was scheduled on.
	ListTasks(ctx context.Context, labels map[string]string) ([]Task, error)
}

// Container event actions the guard reads (the engine's names).
const (
	EventStart        = "start"
	EventDie          = "die"
	EventOOM          = "oom"
	EventHealthStatus = "health_status"
	EventExecCreate   = "exec_create"
	EventExecStart    = "exec_start"
	EventDestroy      = "destroy"
	// EventUpdate: `docker update` changed the container's resources or restart policy.
	EventUpdate = "update"
	// EventConnect and EventDisconnect are network events: a container was connected to
	// or disconnected from a network (`docker network connect`). Asked of Events, they
	// come from every network of the engine (a network's events carry the network's
	// labels, not the container's), with ContainerID the container's and Detail the
	// network's name.
	EventConnect    = "connect"
	EventDisconnect = "disconnect"
)

// Event is one container event of the engine's stream.
type Event struct {
	Time time.Time
	// Action is the engine's action without its detail: "health_status", not
	// "health_status: unhealthy".
	Action string
	// Detail is what the engine wrote after the action's colon: the health status, or
	// the command line of an exec.
	Detail      string
	ContainerID string
	Name        string
	// Attributes are the event's attributes: the container's labels, and e.g. exitCode
	// (die) or execID (exec_create).
	Attributes map[string]string
}

// DiskUsage is the engine's disk use of containers and volumes.
type DiskUsage struct {
	// ContainerSizes is each container's writable layer size in bytes, by container ID.
	ContainerSizes map[string]int64
	// VolumeSizes is each local volume's size in bytes, by name (-1: the engine did not say).
	VolumeSizes map[string]int64
}

// LogOptions select the log lines of a container.
type LogOptions struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // last N lines (per container); < 0: all
	Follow       bool
}

// LogLine is one line a container wrote, without its newline.
type LogLine struct {
	Time   time.Time
	Stream string // stdout or stderr
	Text   string
}

// BuildSpec is one image build: what `docker build` sends the engine.
type BuildSpec struct {
	Context    io.Reader // tar stream of the build context
	Dockerfile string    // path of the Dockerfile inside the context
	Tags       []string
	Args       map[string]*string
	Target     string
	Labels     map[string]string
	Network    string // network mode of RUN steps
	ExtraHosts []string
	ShmSize    int64
}

// NetworkCounters are a container's network counters since it started.
type NetworkCounters struct {
	Time      time.Time
	RxBytes   uint64
	TxBytes   uint64
	RxPackets uint64
	TxPackets uint64
}

// Session is a running exec: write requests to Stdin, read answers from Stdout; Close
// ends stdin and waits (briefly) for the command to finish.
type Session struct {
	Stdin   io.Writer
	Stdout  io.Reader
	closeFn func() error
}

// NewSession builds a Session (for fakes).
func NewSession(stdin io.Writer, stdout io.Reader, closeFn func() error) *Session {
	return &Session{Stdin: stdin, Stdout: stdout, closeFn: closeFn}
}

// Close ends the session.
func (s *Session) Close() error {
	if s.closeFn == nil {
		return nil
	}
	return s.closeFn()
}

// ExecError is a command run by Exec that exited non-zero.
type ExecError struct {
	Container string
	Cmd       []string
	ExitCode  int
	Stderr    string
}

func (e *ExecError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("%s in container %s exited with code %d: %s", strings.Join(e.Cmd, " "), e.Container, e.ExitCode, msg)
}

// ServerInfo is what Ping learns about the engine.
type ServerInfo struct {
	APIVersion string
	OSType     string
	Host       string
}

// Container is one row of a container list.
type Container struct {
	ID      string
	Name    string
	Image   string // the reference the container was created from
	ImageID string
	Labels  map[string]string
	State   string // created, running, paused, restarting, removing, exited, dead
	Status  string // human text, e.g. "Up 3 minutes (healthy)"
	Health  string // "", starting, healthy, unhealthy
	Created time.Time
	Ports   []PublishedPort
}

// PublishedPort is a container port, published on the host when HostPort is set.
type PublishedPort struct {
	HostIP        string
	HostPort      uint16
	ContainerPort uint16
	Protocol      string
}

// ContainerDetails is the part of an inspect that health gating and diagnostics need.
type ContainerDetails struct {
	ID           string
	Name         string
	State        string
	ExitCode     int
	OOMKilled    bool
	Error        string
	Health       string // "", starting, healthy, unhealthy
	HealthLog    []string
	RestartCount int
	// HealthFailingStreak is how many health probes in a row failed; HealthFailingSince
	// is when the first of them started (the oldest one the engine still keeps).
	HealthFailingStreak int
	HealthFailingSince  time.Time
	StartedAt           time.Time
	FinishedAt          time.Time
	Labels              map[string]string
	// ImageID is the ID of the image the container was created from (sha256:…).
	ImageID string
	// Networks are the names of the networks the container is connected to, sorted.
	Networks []string
	// Config and HostConfig are what the engine actually runs, for checks that the
	// settings asked for were applied.
	Config     *container.Config
	HostConfig *container.HostConfig
	// Mounts are the container's mounts as the engine made them (anonymous volumes
	// with the names it gave them).
	Mounts []Mount
}

// Mount is one mount of a container.
type Mount struct {
	Type        string // volume, bind, tmpfs, image, …
	Name        string // a volume's name
	Destination string
	RW          bool
}

// Hook is a command run in a running container.
type Hook struct {
	Cmd        []string
	User       string
	Privileged bool
	WorkingDir string
	Env        []string
}

// ContainerSpec is everything needed to create a container.
type ContainerSpec struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	Platform   string // "os/arch[/variant]"; empty: the engine's
}

// Network is a network on the engine.
type Network struct {
	ID       string
	Name     string
	Driver   string
	Internal bool
	Labels   map[string]string
	// Containers is the number of containers attached (only filled by InspectNetwork).
	Containers int
	// Subnets are the network's IPAM subnets.
	Subnets []netip.Prefix
}

// NetworkSpec is everything needed to create a network.
type NetworkSpec struct {
	Name       string
	Driver     string
	Internal   bool
	Attachable bool
	EnableIPv6 bool
	Options    map[string]string
	Labels     map[string]string
	IPAM       *network.IPAM
}

// Volume is a volume on the engine.
type Volume struct {
	Name   string
	Driver string
	Labels map[string]string
}

// VolumeSpec is everything needed to create a volume.
type VolumeSpec struct {
	Name       string
	Driver     string
	DriverOpts map[string]string
	Labels     map[string]string
}

// Image is what the plugin needs to know of a local image.
type Image struct {
	ID   string
	Tags []string
	// User is the image's default user ("" means root).
	User string
	// Healthcheck is true when the image defines a HEALTHCHECK other than NONE.
	Healthcheck bool
	// LastTagTime is when the engine last tagged the image (a pull or a build does);
	// zero when it never did.
	LastTagTime time.Time
	// RepoDigests are the registry digests the image is known by; none for an image
	// that was built or loaded here and never pushed or pulled.
	RepoDigests []string
	// Volumes are the paths the image declares with VOLUME, sorted.
	Volumes []string
}
