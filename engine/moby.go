package engine

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Moby implements Engine with the moby client of the current Docker context.
type Moby struct {
	api client.APIClient
	// pingSwarm is the Swarm state the engine's ping told (nil: not told), so that
	// Swarm need not ask for the engine's whole info on an engine in no swarm.
	pingSwarm *client.SwarmStatus
}

// NewMoby wraps an API client, typically command.Cli.Client(), so that --context,
// DOCKER_HOST, TLS and ssh:// contexts work as they do for every docker command.
// Connect returns the engine behind api once it answered a ping: a clear error for an
// unreachable or too-old engine comes before any other call.
func Connect(ctx context.Context, api client.APIClient) (Engine, error) {
	m := NewMoby(api)
	if _, err := m.Ping(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Dial makes an API client from opts (a Docker context's endpoint, as docker/cli's
// ClientOpts gives them) with headers (the CLI config's HttpHeaders), then Connect.
// close releases the client.
func Dial(ctx context.Context, opts []client.Opt, headers map[string]string) (eng Engine, close func() error, err error) {
	if len(headers) > 0 {
		opts = append(opts, client.WithHTTPHeaders(headers))
	}
	api, err := client.New(opts...)
	if err != nil {
		return nil, nil, err
	}
	eng, err = Connect(ctx, api)
	if err != nil {
		_ = api.Close()
		return nil, nil, err
	}
	return eng, api.Close, nil
}

func NewMoby(api client.APIClient) *Moby {
	return &Moby{api: api}
}

// Ping negotiates the API version and refuses engines older than MinAPIVersion with
// ErrEngineTooOld, instead of the client's misleading "client version is too new".
func (m *Moby) Ping(ctx context.Context) (ServerInfo, error) {
	ping, err := m.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	info := ServerInfo{APIVersion: ping.APIVersion, OSType: ping.OSType, Host: m.api.DaemonHost()}
	m.pingSwarm = ping.SwarmStatus
	if ping.APIVersion != "" && versionLess(ping.APIVersion, MinAPIVersion) {
		return info, fmt.Errorf("%w: the Docker engine at %s speaks API %s, docker lifecycle needs API %s or newer (Docker Engine 19.03+): upgrade the engine or use another context",
			ErrEngineTooOld, info.Host, ping.APIVersion, MinAPIVersion)
	}
	if err != nil {
		if client.IsErrConnectionFailed(err) || isDialError(err) {
			// The client's own text repeats the host and "is the daemon running"; the
			// dial error alone says what went wrong.
			cause := err
			var dial *net.OpError
			if errors.As(err, &dial) {
				cause = dial
			}
			return info, fmt.Errorf("%w at %s: is the daemon running? (check `docker context ls` and DOCKER_HOST): %w", ErrUnreachable, info.Host, cause)
		}
		return info, fmt.Errorf("ping the Docker engine at %s: %w", info.Host, err)
	}
	return info, nil
}

func isDialError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "dial ")
}

// versionLess compares dotted API versions such as "1.9" < "1.40".
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			_, _ = fmt.Sscanf(as[i], "%d", &x)
		}
		if i < len(bs) {
			_, _ = fmt.Sscanf(bs[i], "%d", &y)
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func labelFilters(labels map[string]string) client.Filters {
	f := make(client.Filters)
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	return f
}

func wrapNotFound(err error, what string) error {
	if err == nil {
		return nil
	}
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w", what, errors.Join(ErrNotFound, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (m *Moby) ListContainers(ctx context.Context, labels map[string]string) ([]Container, error) {
	res, err := m.api.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(res.Items))
	for _, c := range res.Items {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		health := ""
		if c.Health != nil && c.Health.Status != container.NoHealthcheck {
			health = string(c.Health.Status)
		} else {
			health = healthFromStatus(c.Status)
		}
		var ports []PublishedPort
		for _, p := range c.Ports {
			hostIP := ""
			if p.IP.IsValid() {
				hostIP = p.IP.String()
			}
			ports = append(ports, PublishedPort{HostIP: hostIP, HostPort: p.PublicPort, ContainerPort: p.PrivatePort, Protocol: p.Type})
		}
		out = append(out, Container{
			ID: c.ID, Name: name, Image: c.Image, ImageID: c.ImageID, Labels: c.Labels,
			State: string(c.State), Status: c.Status, Health: health,
			Created: time.Unix(c.Created, 0), Ports: ports,
		})
	}
	return out, nil
}

// healthFromStatus reads health from the status text, because engines before API 1.52 do
// not send the Health field in container lists.
func healthFromStatus(status string) string {
	switch {
	case strings.Contains(status, "(healthy)"):
		return "healthy"
	case strings.Contains(status, "(unhealthy)"):
		return "unhealthy"
	case strings.Contains(status, "(health: starting)"):
		return "starting"
	}
	return ""
}

func (m *Moby) InspectContainer(ctx context.Context, id string) (ContainerDetails, error) {
	res, err := m.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return ContainerDetails{}, wrapNotFound(err, "inspect container "+id)
	}
	c := res.Container
	d := ContainerDetails{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/"), RestartCount: c.RestartCount, ImageID: c.Image}
	d.Config, d.HostConfig = c.Config, c.HostConfig
	for _, mp := range c.Mounts {
		d.Mounts = append(d.Mounts, Mount{Type: string(mp.Type), Name: mp.Name, Destination: mp.Destination, RW: mp.RW})
	}
	if c.NetworkSettings != nil {
		d.Networks = slices.Sorted(maps.Keys(c.NetworkSettings.Networks))
	}
	if c.Config != nil {
		d.Labels = c.Config.Labels
	}
	if s := c.State; s != nil {
		d.State, d.ExitCode, d.OOMKilled, d.Error = string(s.Status), s.ExitCode, s.OOMKilled, s.Error
		d.StartedAt, _ = time.Parse(time.RFC3339Nano, s.StartedAt)
		d.FinishedAt, _ = time.Parse(time.RFC3339Nano, s.FinishedAt)
		if s.Health != nil {
			d.Health = string(s.Health.Status)
			d.HealthFailingStreak = s.Health.FailingStreak
			for i, r := range s.Health.Log {
				if r != nil {
					d.HealthLog = append(d.HealthLog, fmt.Sprintf("exit %d: %s", r.ExitCode, strings.TrimSpace(r.Output)))
					// The streak is the log's last FailingStreak entries.
					if d.HealthFailingStreak > 0 && d.HealthFailingSince.IsZero() && i >= len(s.Health.Log)-d.HealthFailingStreak {
						d.HealthFailingSince = r.Start
					}
				}
			}
		}
	}
	return d, nil
}

// CreateContainer creates the container attached to all its networks. Engines before
// API 1.44 accept a single network at create time, so the others are connected after.
func (m *Moby) CreateContainer(ctx context.Context, spec ContainerSpec) (string, error) {
	networking := spec.Networking
	if networking != nil && versionLess(m.api.ClientVersion(), "1.44") {
		// Before API 1.44 an endpoint's MAC address is ignored, and this client no
		// longer has the container-wide field older engines read: refuse, not ignore.
		for name, ep := range networking.EndpointsConfig {
			if ep != nil && len(ep.MacAddress) > 0 {
				return "", fmt.Errorf("create container %s: mac_address on network %s needs Docker Engine API 1.44 (Docker 25) or later; this engine speaks API %s: upgrade the engine or remove mac_address", spec.Name, name, m.api.ClientVersion())
			}
		}
	}
	var later map[string]*network.EndpointSettings
	if networking != nil && len(networking.EndpointsConfig) > 1 && versionLess(m.api.ClientVersion(), "1.44") {
		primary := string(spec.HostConfig.NetworkMode)
		later = map[string]*network.EndpointSettings{}
		first := map[string]*network.EndpointSettings{}
		for name, ep := range networking.EndpointsConfig {
			if name == primary {
				first[name] = ep
			} else {
				later[name] = ep
			}
		}
		networking = &network.NetworkingConfig{EndpointsConfig: first}
	}
	opts := client.ContainerCreateOptions{
		Name: spec.Name, Config: spec.Config, HostConfig: spec.HostConfig, NetworkingConfig: networking,
	}
	if spec.Platform != "" {
		p, err := platforms.Parse(spec.Platform)
		if err != nil {
			return "", fmt.Errorf("create container %s: platform %q: %w", spec.Name, spec.Platform, err)
		}
		opts.Platform = &p
	}
	res, err := m.api.ContainerCreate(ctx, opts)
	if cerrdefs.IsConflict(err) {
		return "", fmt.Errorf("create container %s: %w", spec.Name, errors.Join(ErrNameInUse, err))
	} else if err != nil {
		return "", wrapNotFound(err, "create container "+spec.Name)
	}
	for name, ep := range later {
		if _, err := m.api.NetworkConnect(ctx, name, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: ep}); err != nil {
			return res.ID, fmt.Errorf("connect container %s to network %s: %w", spec.Name, name, err)
		}
	}
	return res.ID, nil
}

func (m *Moby) CopyToContainer(ctx context.Context, containerID, dir string, archive io.Reader) error {
	if _, err := m.api.CopyToContainer(ctx, containerID, client.CopyToContainerOptions{DestinationPath: dir, Content: archive}); err != nil {
		return wrapNotFound(err, "copy files into container "+containerID)
	}
	return nil
}

func (m *Moby) StartContainer(ctx context.Context, id string) error {
	_, err := m.api.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return wrapNotFound(err, "start container "+id)
}

func (m *Moby) RenameContainer(ctx context.Context, id, name string) error {
	_, err := m.api.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: name})
	if cerrdefs.IsConflict(err) {
		return fmt.Errorf("rename container %s to %s: %w", id, name, errors.Join(ErrNameInUse, err))
	}
	return wrapNotFound(err, "rename container "+id+" to "+name)
}

func (m *Moby) StopContainer(ctx context.Context, id, signal string, timeout *time.Duration) error {
	opts := client.ContainerStopOptions{Signal: signal}
	if timeout != nil {
		secs := int(timeout.Round(time.Second) / time.Second)
		opts.Timeout = &secs
	}
	_, err := m.api.ContainerStop(ctx, id, opts)
	return wrapNotFound(err, "stop container "+id)
}

// RemoveContainer removes the container; with removeAnonymousVolumes, also the
// anonymous volumes it mounted, those the engine made for it and those it inherited from
// the container it replaced (engine/anonymousvolumes.go).
func (m *Moby) RemoveContainer(ctx context.Context, id string, removeAnonymousVolumes bool) error {
	var mounts []Mount
	if removeAnonymousVolumes {
		// Read before the removal: afterwards nothing says which volumes it had.
		if d, err := m.InspectContainer(ctx, id); err == nil {
			mounts = d.Mounts
		}
	}
	_, err := m.api.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: removeAnonymousVolumes})
	if err != nil {
		return wrapNotFound(err, "remove container "+id)
	}
	RemoveAnonymousVolumes(ctx, m, mounts)
	return nil
}

func (m *Moby) ContainerLogTail(ctx context.Context, id string, lines int) (string, error) {
	rc, err := m.api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(lines)})
	if err != nil {
		return "", wrapNotFound(err, "logs of container "+id)
	}
	defer rc.Close()
	var buf bytes.Buffer
	raw, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return "", fmt.Errorf("read logs of container %s: %w", id, err)
	}
	// Containers without a TTY multiplex stdout and stderr; with a TTY the stream is raw.
	if _, err := stdcopy.StdCopy(&buf, &buf, bytes.NewReader(raw)); err != nil {
		return string(raw), nil
	}
	return buf.String(), nil
}

func (m *Moby) ReadFile(ctx context.Context, containerID, file string, limit int64) ([]byte, error) {
	for range 8 { // symbolic links followed, as a lookup in the container would
		res, err := m.api.CopyFromContainer(ctx, containerID, client.CopyFromContainerOptions{SourcePath: file})
		if err != nil {
			return nil, wrapNotFound(err, fmt.Sprintf("read %s in container %s", file, containerID))
		}
		hdr, content, err := firstTarEntry(res.Content, limit)
		res.Content.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s in container %s: %w", file, containerID, err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			return content, nil
		case tar.TypeSymlink:
			if path.IsAbs(hdr.Linkname) {
				file = hdr.Linkname
			} else {
				file = path.Join(path.Dir(file), hdr.Linkname)
			}
		default:
			return nil, fmt.Errorf("read %s in container %s: not a regular file", file, containerID)
		}
	}
	return nil, fmt.Errorf("read %s in container %s: too many symbolic links", file, containerID)
}

// firstTarEntry reads the header and (up to limit bytes of) the content of an archive's
// first entry.
func firstTarEntry(r io.Reader, limit int64) (*tar.Header, []byte, error) {
	tr := tar.NewReader(r)
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, err
	}
	if hdr.Size > limit {
		return nil, nil, fmt.Errorf("%d bytes, more than the %d read", hdr.Size, limit)
	}
	content, err := io.ReadAll(io.LimitReader(tr, limit))
	return hdr, content, err
}

func toNetwork(n network.Inspect) Network {
	return Network{ID: n.ID, Name: n.Name, Driver: n.Driver, Internal: n.Internal, Labels: n.Labels, Containers: len(n.Containers), Subnets: subnets(n.IPAM)}
}

func subnets(ipam network.IPAM) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range ipam.Config {
		if c.Subnet.IsValid() {
			out = append(out, c.Subnet)
		}
	}
	return out
}

func (m *Moby) ListNetworks(ctx context.Context, labels map[string]string) ([]Network, error) {
	res, err := m.api.NetworkList(ctx, client.NetworkListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	out := make([]Network, 0, len(res.Items))
	for _, n := range res.Items {
		out = append(out, Network{ID: n.ID, Name: n.Name, Driver: n.Driver, Internal: n.Internal, Labels: n.Labels, Subnets: subnets(n.IPAM)})
	}
	return out, nil
}

func (m *Moby) InspectNetwork(ctx context.Context, name string) (Network, error) {
	res, err := m.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err != nil {
		return Network{}, wrapNotFound(err, "inspect network "+name)
	}
	return toNetwork(res.Network), nil
}

func (m *Moby) CreateNetwork(ctx context.Context, spec NetworkSpec) error {
	opts := client.NetworkCreateOptions{
		Driver: spec.Driver, Internal: spec.Internal, Attachable: spec.Attachable,
		Options: spec.Options, Labels: spec.Labels, IPAM: spec.IPAM,
	}
	if spec.EnableIPv6 {
		opts.EnableIPv6 = &spec.EnableIPv6
	}
	if _, err := m.api.NetworkCreate(ctx, spec.Name, opts); err != nil {
		return fmt.Errorf("create network %s: %w", spec.Name, err)
	}
	return m.removeDuplicateNetworks(ctx, spec)
}

// removeDuplicateNetworks keeps one network named spec.Name with spec's labels: the
// oldest. Engines before API 1.44 create a second network with a name already taken
// (this client no longer sends CheckDuplicate), and a deploy killed while its create
// was in flight races the next deploy's create: two networks of one name, and every
// container that joins it by name fails with "network … is ambiguous". The oldest is
// the one every creator agrees on. A network with other labels is not ours to remove,
// and one already in use is left (the engine refuses; the next deploy sees it).
func (m *Moby) removeDuplicateNetworks(ctx context.Context, spec NetworkSpec) error {
	f := make(client.Filters).Add("name", spec.Name)
	res, err := m.api.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil // best effort: the network was created, and a duplicate is rare
	}
	var same []network.Summary
	for _, n := range res.Items {
		if n.Name == spec.Name && maps.Equal(n.Labels, spec.Labels) { // the filter matches substrings
			same = append(same, n)
		}
	}
	slices.SortFunc(same, func(a, b network.Summary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	for i := 1; i < len(same); i++ {
		_, _ = m.api.NetworkRemove(ctx, same[i].ID, client.NetworkRemoveOptions{})
	}
	return nil
}

func (m *Moby) RemoveNetwork(ctx context.Context, name string) error {
	_, err := m.api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	return wrapNotFound(err, "remove network "+name)
}

func (m *Moby) ListVolumes(ctx context.Context, labels map[string]string) ([]Volume, error) {
	res, err := m.api.VolumeList(ctx, client.VolumeListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	out := make([]Volume, 0, len(res.Items))
	for _, v := range res.Items {
		out = append(out, Volume{Name: v.Name, Driver: v.Driver, Labels: v.Labels})
	}
	return out, nil
}

func (m *Moby) InspectVolume(ctx context.Context, name string) (Volume, error) {
	res, err := m.api.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if err != nil {
		return Volume{}, wrapNotFound(err, "inspect volume "+name)
	}
	return Volume{Name: res.Volume.Name, Driver: res.Volume.Driver, Labels: res.Volume.Labels}, nil
}

// CreateVolume returns the volume as the engine has it: when a volume of that name
// exists already, the engine returns it unchanged (with its own labels), atomically.
func (m *Moby) CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error) {
	res, err := m.api.VolumeCreate(ctx, client.VolumeCreateOptions{Name: spec.Name, Driver: spec.Driver, DriverOpts: spec.DriverOpts, Labels: spec.Labels})
	if err != nil {
		return Volume{}, fmt.Errorf("create volume %s: %w", spec.Name, err)
	}
	return Volume{Name: res.Volume.Name, Driver: res.Volume.Driver, Labels: res.Volume.Labels}, nil
}

func (m *Moby) RemoveVolume(ctx context.Context, name string) error {
	_, err := m.api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{})
	if cerrdefs.IsConflict(err) {
		return fmt.Errorf("remove volume %s: %w", name, errors.Join(ErrVolumeInUse, err))
	}
	return wrapNotFound(err, "remove volume "+name)
}

func (m *Moby) InspectImage(ctx context.Context, ref string) (Image, error) {
	res, err := m.api.ImageInspect(ctx, ref)
	if err != nil {
		return Image{}, wrapNotFound(err, "image "+ref)
	}
	img := Image{ID: res.ID, Tags: res.RepoTags, LastTagTime: res.Metadata.LastTagTime, RepoDigests: res.RepoDigests}
	if res.Config != nil {
		img.User = res.Config.User
		hc := res.Config.Healthcheck
		img.Healthcheck = hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
		img.Volumes = slices.Sorted(maps.Keys(res.Config.Volumes))
	}
	return img, nil
}

func (m *Moby) BuildImage(ctx context.Context, buildContext io.Reader, tag string, labels map[string]string) error {
	return m.ImageBuild(ctx, BuildSpec{Context: buildContext, Tags: []string{tag}, Labels: labels}, nil)
}

func (m *Moby) ImageBuild(ctx context.Context, spec BuildSpec, output func(line string)) error {
	what := "build image"
	if len(spec.Tags) > 0 {
		what += " " + spec.Tags[0]
	}
	res, err := m.api.ImageBuild(ctx, spec.Context, client.ImageBuildOptions{
		Tags: spec.Tags, Dockerfile: spec.Dockerfile, BuildArgs: spec.Args, Target: spec.Target,
		Labels: spec.Labels, NetworkMode: spec.Network, ExtraHosts: spec.ExtraHosts, ShmSize: spec.ShmSize,
		Remove: true, ForceRemove: true, Version: "1",
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer res.Body.Close()
	// The build reports failures inside its JSON message stream, not as an HTTP error.
	dec := json.NewDecoder(res.Body)
	var partial strings.Builder
	for {
		var msg struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			if output != nil && partial.Len() > 0 {
				output(partial.String())
			}
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: read build output: %w", what, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("%s: %s", what, msg.Error)
		}
		if output == nil || msg.Stream == "" {
			continue
		}
		// The stream arrives in chunks that need not end at a line's end.
		partial.WriteString(msg.Stream)
		text := partial.String()
		partial.Reset()
		for {
			line, rest, found := strings.Cut(text, "\n")
			if !found {
				partial.WriteString(line)
				break
			}
			if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
				output(line)
			}
			text = rest
		}
	}
}

func (m *Moby) ImagePull(ctx context.Context, ref, registryAuth string, output func(line string)) error {
	res, err := m.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return pullError(ref, err)
	}
	defer res.Close()
	// The pull reports failures inside its JSON message stream, not as an HTTP error.
	for msg, err := range res.JSONMessages(ctx) {
		if err != nil {
			return pullError(ref, err)
		}
		if msg.Error != nil {
			return pullError(ref, errors.New(msg.Error.Message))
		}
		if output == nil || msg.Status == "" {
			continue
		}
		line := msg.Status
		if msg.ID != "" {
			line = msg.ID + ": " + line
		}
		if msg.Progress != nil && msg.Progress.Total > 0 {
			line += fmt.Sprintf(" %d/%d kB", msg.Progress.Current/1000, msg.Progress.Total/1000)
		}
		output(line)
	}
	return nil
}

// pullRefusals sorts a failed pull's message into what the user can mend: a login, the
// image's name, or the way to the registry. The engine reports a registry's answer as
// text inside the pull's stream (no status code reaches the client), so the text
// decides; the first row whose needle the message contains wins.
var pullRefusals = []struct {
	sentinel error
	needles  []string
}{
	{ErrUnauthorized, []string{"unauthorized", "denied", "no basic auth credentials", "authentication required"}},
	{ErrNotFound, []string{"manifest unknown", "not found"}},
	{ErrRegistryUnreachable, []string{"no such host", "connection refused", "i/o timeout", "network is unreachable",
		"tls: ", "x509: ", "server gave http response to https client", "client.timeout exceeded"}},
}

// pullError names the image and wraps the sentinel of its refusal (pullRefusals).
func pullError(ref string, err error) error {
	msg := err.Error()
	switch {
	case cerrdefs.IsUnauthorized(err):
		return fmt.Errorf("pull %s: %w: %s", ref, ErrUnauthorized, msg)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("pull %s: %w in its registry: %s", ref, ErrNotFound, msg)
	}
	lower := strings.ToLower(msg)
	for _, refusal := range pullRefusals {
		for _, needle := range refusal.needles {
			if !strings.Contains(lower, needle) {
				continue
			}
			if refusal.sentinel == ErrNotFound {
				return fmt.Errorf("pull %s: %w in its registry: %s", ref, ErrNotFound, msg)
			}
			return fmt.Errorf("pull %s: %w: %s", ref, refusal.sentinel, msg)
		}
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

func (m *Moby) RemoveImage(ctx context.Context, ref string) error {
	_, err := m.api.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	return wrapNotFound(err, "remove image "+ref)
}

// Exec runs cmd in the container and waits for it, feeding stdin and collecting stdout
// and stderr separately (the stream is multiplexed because no TTY is asked for).
func (m *Moby) Exec(ctx context.Context, containerID string, cmd []string, stdin []byte) ([]byte, error) {
	return m.exec(ctx, containerID, client.ExecCreateOptions{Cmd: cmd}, stdin)
}

func (m *Moby) RunHook(ctx context.Context, containerID string, hook Hook) error {
	_, err := m.exec(ctx, containerID, client.ExecCreateOptions{
		Cmd: hook.Cmd, User: hook.User, Privileged: hook.Privileged, WorkingDir: hook.WorkingDir, Env: hook.Env,
	}, nil)
	return err
}

func (m *Moby) exec(ctx context.Context, containerID string, opts client.ExecCreateOptions, stdin []byte) ([]byte, error) {
	cmd := opts.Cmd
	opts.AttachStdin, opts.AttachStdout, opts.AttachStderr = stdin != nil, true, true
	created, err := m.api.ExecCreate(ctx, containerID, opts)
	if err != nil {
		return nil, wrapNotFound(err, "exec in container "+containerID)
	}
	attached, err := m.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: attach: %w", containerID, err)
	}
	defer attached.Close()
	if stdin != nil {
		go func() {
			_, _ = attached.Conn.Write(stdin)
			_ = attached.CloseWrite()
		}()
	}
	var stdout, stderr bytes.Buffer
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(&stdout, &stderr, attached.Reader)
		copied <- err
	}()
	select {
	case err := <-copied:
		if err != nil {
			return nil, fmt.Errorf("exec in container %s: read output: %w", containerID, err)
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	inspected, err := m.api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", containerID, err)
	}
	if inspected.ExitCode != 0 {
		return stdout.Bytes(), &ExecError{Container: containerID, Cmd: cmd, ExitCode: inspected.ExitCode, Stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

// Arch asks the engine for its hardware architecture.
func (m *Moby) Arch(ctx context.Context) (string, error) {
	v, err := m.api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return "", fmt.Errorf("engine version: %w", err)
	}
	return v.Arch, nil
}

// SaveImage streams the image as a `docker save` archive, so a scanner on this machine
// can read an image of any engine (local, tcp, ssh://) without access to its socket.
func (m *Moby) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := m.api.ImageSave(ctx, []string{ref})
	if err != nil {
		return nil, wrapNotFound(err, "save image "+ref)
	}
	return rc, nil
}

// ExecSession starts cmd with stdin and stdout attached; stderr is kept and returned in
// the error of Close when the command failed.
func (m *Moby) ExecSession(ctx context.Context, containerID string, cmd []string) (*Session, error) {
	created, err := m.api.ExecCreate(ctx, containerID, client.ExecCreateOptions{
		Cmd: cmd, AttachStdin: true, AttachStdout: true, AttachStderr: true,
	})
	if err != nil {
		return nil, wrapNotFound(err, "exec in container "+containerID)
	}
	attached, err := m.api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: attach: %w", containerID, err)
	}
	stdout, stdoutW := io.Pipe()
	var stderr bytes.Buffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, err := stdcopy.StdCopy(stdoutW, &stderr, attached.Reader)
		stdoutW.CloseWithError(cmp.Or(err, io.EOF))
	}()
	closeFn := func() error {
		_ = attached.CloseWrite()
		select {
		case <-copied:
		case <-time.After(5 * time.Second):
		}
		attached.Close()
		inspectCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		inspected, err := m.api.ExecInspect(inspectCtx, created.ID, client.ExecInspectOptions{})
		if err == nil && !inspected.Running && inspected.ExitCode != 0 {
			return &ExecError{Container: containerID, Cmd: cmd, ExitCode: inspected.ExitCode, Stderr: stderr.String()}
		}
		return nil
	}
	return NewSession(attached.Conn, stdout, closeFn), nil
}

// NetworkCounters takes one stats sample of the container (one-shot: no one-second
// wait for a previous sample) and sums its interfaces.
func (m *Moby) NetworkCounters(ctx context.Context, containerID string) (NetworkCounters, error) {
	res, err := m.api.ContainerStats(ctx, containerID, client.ContainerStatsOptions{})
	if err != nil {
		return NetworkCounters{}, wrapNotFound(err, "stats of container "+containerID)
	}
	defer res.Body.Close()
	var stats container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&stats); err != nil {
		return NetworkCounters{}, fmt.Errorf("stats of container %s: %w", containerID, err)
	}
	out := NetworkCounters{Time: stats.Read}
	for _, n := range stats.Networks {
		out.RxBytes += n.RxBytes
		out.TxBytes += n.TxBytes
		out.RxPackets += n.RxPackets
		out.TxPackets += n.TxPackets
	}
	return out, nil
}

// StreamStats keeps one stats stream open for the container; the daemon samples every
// second and fills PreCPUStats with the previous sample, as `docker stats` reads it.
func (m *Moby) StreamStats(ctx context.Context, containerID string) (<-chan container.StatsResponse, error) {
	res, err := m.api.ContainerStats(ctx, containerID, client.ContainerStatsOptions{Stream: true})
	if err != nil {
		return nil, wrapNotFound(err, "stats of container "+containerID)
	}
	out := make(chan container.StatsResponse, 1)
	go func() {
		defer close(out)
		defer res.Body.Close()
		dec := json.NewDecoder(res.Body)
		for {
			var s container.StatsResponse
			if err := dec.Decode(&s); err != nil {
				return
			}
			select {
			case out <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// DiskUsage is `docker system df -v` restricted to containers and volumes.
func (m *Moby) DiskUsage(ctx context.Context) (DiskUsage, error) {
	res, err := m.api.DiskUsage(ctx, client.DiskUsageOptions{Containers: true, Volumes: true, Verbose: true})
	if err != nil {
		return DiskUsage{}, fmt.Errorf("engine disk usage: %w", err)
	}
	out := DiskUsage{ContainerSizes: map[string]int64{}, VolumeSizes: map[string]int64{}}
	for _, c := range res.Containers.Items {
		out.ContainerSizes[c.ID] = c.SizeRw
	}
	for _, v := range res.Volumes.Items {
		size := int64(-1)
		if v.UsageData != nil {
			size = v.UsageData.Size
		}
		out.VolumeSizes[v.Name] = size
	}
	return out, nil
}

// ContainerLogs reads the container's logs with timestamps and splits them into lines.
// Containers without a TTY multiplex stdout and stderr; with a TTY the stream is raw.
func (m *Moby) ContainerLogs(ctx context.Context, containerID string, opts LogOptions, emit func(LogLine) error) error {
	inspected, err := m.api.ContainerInspect(ctx, containerID, client.ContainerInspectOptions{})
	if err != nil {
		return wrapNotFound(err, "logs of container "+containerID)
	}
	tty := inspected.Container.Config != nil && inspected.Container.Config.Tty
	query := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow, Tail: "all"}
	if opts.Tail >= 0 {
		query.Tail = fmt.Sprint(opts.Tail)
	}
	if !opts.Since.IsZero() {
		query.Since = fmt.Sprintf("%d.%09d", opts.Since.Unix(), opts.Since.Nanosecond())
	}
	if !opts.Until.IsZero() {
		query.Until = fmt.Sprintf("%d.%09d", opts.Until.Unix(), opts.Until.Nanosecond())
	}
	rc, err := m.api.ContainerLogs(ctx, containerID, query)
	if err != nil {
		return wrapNotFound(err, "logs of container "+containerID)
	}
	defer rc.Close()
	return splitLogStream(ctx, rc, tty, "logs of container "+containerID, emit)
}

func (m *Moby) PauseContainer(ctx context.Context, id string) error {
	_, err := m.api.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	return wrapNotFound(err, "pause container "+id)
}

func (m *Moby) UnpauseContainer(ctx context.Context, id string) error {
	_, err := m.api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
	return wrapNotFound(err, "unpause container "+id)
}

func (m *Moby) CopyFromContainer(ctx context.Context, id, path string) (io.ReadCloser, error) {
	res, err := m.api.CopyFromContainer(ctx, id, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return nil, wrapNotFound(err, "copy "+path+" from container "+id)
	}
	return res.Content, nil
}

// Events subscribes to the engine's container events (see Engine.Events).
func (m *Moby) Events(ctx context.Context, labels map[string]string, actions []string) (<-chan Event, <-chan error) {
	f := labelFilters(labels)
	f.Add("type", "container")
	var networkActions []string
	for _, a := range actions {
		if a == EventConnect || a == EventDisconnect {
			networkActions = append(networkActions, a)
			continue
		}
		f.Add("event", a) // health_status and exec_* match with their detail too
	}
	out := make(chan Event)
	errs := make(chan error, 2)
	ctx, cancel := context.WithCancel(ctx)
	streams := []client.EventsListOptions{{Filters: f}}
	if len(networkActions) > 0 {
		nf := make(client.Filters)
		nf.Add("type", "network")
		for _, a := range networkActions {
			nf.Add("event", a)
		}
		streams = append(streams, client.EventsListOptions{Filters: nf})
	}
	var wg sync.WaitGroup
	for _, opts := range streams {
		res := m.api.Events(ctx, opts)
		wg.Go(func() {
			defer cancel() // one stream ended: both end, the caller reconnects
			for {
				select {
				case msg := <-res.Messages:
					e := toEvent(msg)
					select {
					case out <- e:
					case <-ctx.Done():
						errs <- ctx.Err()
						return
					}
				case err := <-res.Err:
					if err == nil || errors.Is(err, io.EOF) {
						err = errors.New("the engine ended the event stream")
					}
					errs <- fmt.Errorf("event stream: %w", err)
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		close(out)
		close(errs)
	}()
	return out, errs
}

func toEvent(msg events.Message) Event {
	action, detail, _ := strings.Cut(string(msg.Action), ":")
	e := Event{
		Action: action, Detail: strings.TrimSpace(detail),
		ContainerID: msg.Actor.ID, Name: msg.Actor.Attributes["name"], Attributes: msg.Actor.Attributes,
	}
	if msg.Type == events.NetworkEventType {
		// The actor is the network; the container is an attribute.
		e.ContainerID, e.Name, e.Detail = msg.Actor.Attributes["container"], "", msg.Actor.Attributes["name"]
	}
	switch {
	case msg.TimeNano != 0:
		e.Time = time.Unix(0, msg.TimeNano)
	case msg.Time != 0:
		e.Time = time.Unix(msg.Time, 0)
	default:
		e.Time = time.Now()
	}
	return e
}
