package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"path"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// ContainerCreate is everything the engine needs to create one service container.
type ContainerCreate struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	// Platform is the service's platform ("os/arch[/variant]"), which picks the image
	// variant the container runs, as `docker compose` passes it.
	Platform string `json:",omitempty"`
	// Files are written into the container after create and before start: the configs
	// given as content or environment, which Compose injects the same way.
	Files []ContainerFile `json:",omitempty"`
}

// ContainerFile is a file copied into a container before it starts.
type ContainerFile struct {
	Path     string
	Mode     uint32
	UID, GID int
	Content  []byte
}

// ServiceRefPrefix marks, in the create options, a reference to another service's
// container (network_mode, ipc and pid service:NAME, volumes_from and links): only the
// runtime knows that container when this one is created (ResolveServiceRefs).
const ServiceRefPrefix = types.ServicePrefix

// NetworkCreate describes a project network to create.
type NetworkCreate struct {
	Name       string
	Driver     string
	Internal   bool
	Attachable bool
	EnableIPv6 bool
	Options    map[string]string
	Labels     map[string]string
	IPAM       *network.IPAM
}

// VolumeCreate describes a project volume to create.
type VolumeCreate struct {
	Name       string
	Driver     string
	DriverOpts map[string]string
	Labels     map[string]string
}

// ContainerName is the engine name of a service replica, as Compose names it.
func ContainerName(project, service string, number int) string {
	return fmt.Sprintf("%s-%s-%d", project, service, number)
}

// ImageRef is the image a service runs: its image key, or the name Compose gives built images.
func ImageRef(p *Project, service string) string {
	svc := p.Project.Services[service]
	if svc.Image != "" {
		return svc.Image
	}
	return p.Name + "-" + service
}

// ConfigHash identifies a service's container configuration: a change means the
// containers must be replaced. Replicas and depends_on are left out, as Compose does,
// because they do not change a container.
func ConfigHash(p *Project, service string) (string, error) {
	svc := p.Project.Services[service]
	svc.Build = nil
	svc.PullPolicy = ""
	svc.Scale = nil
	svc.DependsOn = nil
	svc.Profiles = nil
	if svc.Deploy != nil {
		d := *svc.Deploy
		d.Replicas = nil
		d.UpdateConfig, d.RollbackConfig = nil, nil // how a deploy runs, not the container
		svc.Deploy = &d
		if reflect.ValueOf(d).IsZero() { // deploy: {replicas: n} alone must hash like no deploy
			svc.Deploy = nil
		}
	}
	// x-lifecycle settings (strategy, waits) change how a deploy runs, not the
	// container, so they stay out; policy defaults do change it, through the resources,
	// and so do the log defaults.
	b, err := json.Marshal(struct {
		Service   types.ServiceConfig
		Resources container.Resources
		Segments  []string             `json:",omitempty"` // segment networks; none without x-lifecycle.network
		Logs      *container.LogConfig `json:",omitempty"` // x-lifecycle.logs, for a service without logging:
	}{svc, resources(svc, p.Spec.Policy.Defaults), segmentHash(p, service), defaultLogConfig(p, svc)})
	if err != nil {
		return "", fmt.Errorf("hash service %s: %w", service, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ReplicaLabels are the per-container facts the converter needs besides the service.
type ReplicaLabels struct {
	Number     int
	Revision   int
	ConfigHash string
	ImageID    string
}

// Container converts one replica of a service into engine create options.
func Container(p *Project, service string, r ReplicaLabels) (ContainerCreate, error) {
	svc, ok := p.Project.Services[service]
	if !ok {
		return ContainerCreate{}, fmt.Errorf("service %q is not in project %s", service, p.Name)
	}
	name := ReplicaName(p, service, r.Revision, r.Number)

	exposed, bindings, err := ports(svc)
	if err != nil {
		return ContainerCreate{}, fmt.Errorf("service %s: %w", service, err)
	}
	if p.ServiceSpecs[service].Routed() {
		bindings = network.PortMap{} // the router owns the host ports; it reaches the containers by name
	}
	binds, mounts, err := volumes(p, svc)
	if err != nil {
		return ContainerCreate{}, fmt.Errorf("service %s: %w", service, err)
	}
	configMounts, files, err := configFiles(p, svc)
	if err != nil {
		return ContainerCreate{}, fmt.Errorf("service %s: %w", service, err)
	}
	mounts = append(mounts, configMounts...)
	securityOpts, err := securityOptions(p, svc.SecurityOpt)
	if err != nil {
		return ContainerCreate{}, fmt.Errorf("service %s: %w", service, err)
	}

	cfg := &container.Config{
		Hostname:     svc.Hostname,
		Domainname:   svc.DomainName,
		User:         svc.User,
		ExposedPorts: exposed,
		Tty:          svc.Tty,
		OpenStdin:    svc.StdinOpen,
		AttachStdout: true,
		AttachStderr: true,
		Env:          environment(svc.Environment),
		Cmd:          []string(svc.Command),
		Entrypoint:   []string(svc.Entrypoint),
		Image:        ImageRef(p, service),
		WorkingDir:   svc.WorkingDir,
		Labels:       containerLabels(p, svc, r),
		StopSignal:   svc.StopSignal,
		Healthcheck:  healthcheck(svc.HealthCheck),
	}
	if svc.StopGracePeriod != nil {
		secs := int(time.Duration(*svc.StopGracePeriod).Round(time.Second) / time.Second)
		cfg.StopTimeout = &secs
	}

	host := &container.HostConfig{
		Binds:          binds,
		Mounts:         mounts,
		PortBindings:   bindings,
		RestartPolicy:  restartPolicy(svc),
		CapAdd:         svc.CapAdd,
		CapDrop:        svc.CapDrop,
		SecurityOpt:    securityOpts,
		ReadonlyRootfs: svc.ReadOnly,
		Privileged:     svc.Privileged,
		Init:           svc.Init,
		Sysctls:        svc.Sysctls,
		ShmSize:        int64(svc.ShmSize),
		ExtraHosts:     extraHosts(svc.ExtraHosts),
		DNS:            dnsServers(svc.DNS),
		DNSSearch:      svc.DNSSearch,
		DNSOptions:     svc.DNSOpts,
		GroupAdd:       svc.GroupAdd,
		OomScoreAdj:    int(svc.OomScoreAdj),
		Tmpfs:          tmpfs(svc.Tmpfs),
		Resources:      resources(svc, p.Spec.Policy.Defaults),
		Annotations:    svc.Annotations,
		IpcMode:        container.IpcMode(svc.Ipc),
		PidMode:        container.PidMode(svc.Pid),
		UTSMode:        container.UTSMode(svc.Uts),
		UsernsMode:     container.UsernsMode(svc.UserNSMode),
		CgroupnsMode:   container.CgroupnsMode(svc.Cgroup),
		Isolation:      container.Isolation(svc.Isolation),
		Runtime:        svc.Runtime,
		StorageOpt:     svc.StorageOpt,
		VolumesFrom:    volumesFrom(svc.VolumesFrom),
	}
	if len(host.Annotations) == 0 {
		host.Annotations = nil
	}
	host.LogConfig = logConfig(p, svc)

	netMode, netCfg := networking(p, svc, name)
	if InternalRouted(p, service) {
		withoutServiceAliases(netCfg, name)
	}
	host.NetworkMode = netMode
	if svc.NetworkMode == "" {
		links := links(svc)
		host.Links = links
		if netCfg != nil && len(links) > 0 {
			for _, ep := range netCfg.EndpointsConfig {
				ep.Links = links
			}
		}
		if svc.MacAddress != "" && netCfg != nil {
			if ep := netCfg.EndpointsConfig[string(netMode)]; ep != nil && len(ep.MacAddress) == 0 {
				mac, err := net.ParseMAC(svc.MacAddress)
				if err != nil {
					return ContainerCreate{}, fmt.Errorf("service %s: mac_address %q: %w", service, svc.MacAddress, err)
				}
				ep.MacAddress = network.HardwareAddr(mac)
			}
		}
	}
	return ContainerCreate{Name: name, Config: cfg, HostConfig: host, Networking: netCfg, Platform: svc.Platform, Files: files}, nil
}

// volumesFrom marks services (compose-go keeps "NAME[:ro]" for a service and
// "container:NAME[:ro]" for a container) for ResolveServiceRefs.
func volumesFrom(list []string) []string {
	if len(list) == 0 {
		return nil
	}
	var out []string
	for _, v := range list {
		if name, ok := strings.CutPrefix(v, types.ContainerPrefix); ok {
			out = append(out, name)
			continue
		}
		out = append(out, ServiceRefPrefix+v)
	}
	return out
}

// links lists links as the engine takes them, "CONTAINER:ALIAS": a service's link is
// marked for ResolveServiceRefs, under the alias given, else the service's name (Compose
// adds the container's own name too, which every container answers to on the network
// anyway); external links name containers already.
func links(svc types.ServiceConfig) []string {
	var out []string
	for _, l := range svc.Links {
		name, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = name
		}
		out = append(out, ServiceRefPrefix+name+":"+alias)
	}
	for _, l := range svc.ExternalLinks {
		name, alias, ok := strings.Cut(l, ":")
		if !ok {
			alias = name
		}
		out = append(out, name+":"+alias)
	}
	return out
}

// configFiles delivers configs as Compose does: a file config is a read-only bind mount
// (through Mounts, as Compose: a missing file is an error, not a new directory),
// content and environment configs are written into the container before it starts.
// A relative target is under "/", the default target is /<config name>.
func configFiles(p *Project, svc types.ServiceConfig) ([]mount.Mount, []ContainerFile, error) {
	var binds []mount.Mount
	var files []ContainerFile
	for _, ref := range svc.Configs {
		cfg, ok := p.Configs[ref.Source]
		if !ok {
			return nil, nil, fmt.Errorf("config %q is not defined in the top-level configs", ref.Source)
		}
		target := ref.Target
		if target == "" {
			target = "/" + ref.Source
		} else if !path.IsAbs(target) {
			target = "/" + target
		}
		switch {
		case cfg.Content != "" || cfg.Environment != "":
			content := cfg.Content
			if cfg.Environment != "" {
				content = p.Environment[cfg.Environment]
			}
			f := ContainerFile{Path: target, Mode: 0o444, Content: []byte(content)}
			if ref.Mode != nil {
				f.Mode = uint32(*ref.Mode)
			}
			if ref.UID != "" {
				uid, err := strconv.Atoi(ref.UID)
				if err != nil {
					return nil, nil, fmt.Errorf("config %q: uid %q must be a number", ref.Source, ref.UID)
				}
				f.UID = uid
			}
			if ref.GID != "" {
				gid, err := strconv.Atoi(ref.GID)
				if err != nil {
					return nil, nil, fmt.Errorf("config %q: gid %q must be a number", ref.Source, ref.GID)
				}
				f.GID = gid
			}
			files = append(files, f)
		case cfg.File != "":
			binds = append(binds, mount.Mount{Type: mount.TypeBind, Source: cfg.File, Target: target, ReadOnly: true})
		default:
			return nil, nil, fmt.Errorf("config %q has no source: set file, environment or content", ref.Source)
		}
	}
	return binds, files, nil
}

// ServiceRef reads a reference marked with ServiceRefPrefix: the service it names and
// what follows the name (":ro", ":alias").
func ServiceRef(value string) (service, rest string, ok bool) {
	ref, ok := strings.CutPrefix(value, ServiceRefPrefix)
	if !ok {
		return "", "", false
	}
	service, rest, _ = strings.Cut(ref, ":")
	if rest != "" {
		rest = ":" + rest
	}
	return service, rest, true
}

// SharedNamespaceServices lists the services whose container this service joins:
// network_mode, ipc or pid service:NAME. When their container is replaced, this
// service's must be too, as with Compose, or it keeps a dead namespace.
func SharedNamespaceServices(svc types.ServiceConfig) []string {
	var out []string
	for _, mode := range []string{svc.NetworkMode, svc.Ipc, svc.Pid} {
		if name, ok := strings.CutPrefix(mode, types.ServicePrefix); ok && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func containerLabels(p *Project, svc types.ServiceConfig, r ReplicaLabels) map[string]string {
	labels := map[string]string{}
	for k, v := range svc.Labels {
		labels[k] = v
	}
	for k, v := range svc.CustomLabels {
		labels[k] = v
	}
	deps := make([]string, 0, len(svc.DependsOn))
	for name, d := range svc.DependsOn {
		deps = append(deps, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	sort.Strings(deps)
	for k, v := range map[string]string{
		LabelProject:         p.Name,
		LabelService:         svc.Name,
		LabelContainerNumber: strconv.Itoa(r.Number),
		LabelOneoff:          "False",
		LabelConfigHash:      r.ConfigHash,
		LabelVersion:         ComposeVersionLabelValue,
		LabelWorkingDir:      p.WorkingDir,
		LabelConfigFiles:     strings.Join(p.ComposeFiles, ","),
		LabelImageDigest:     r.ImageID,
		LabelDependsOn:       strings.Join(deps, ","),
		LabelRevision:        strconv.Itoa(r.Revision),
		LabelImageRef:        ImageRef(p, svc.Name),
		LabelRole:            RoleApp,
		LabelStrategy:        p.ServiceSpecs[svc.Name].Strategy,
		LabelManagedBy:       ManagedByValue,
	} {
		labels[k] = v
	}
	return labels
}

// environment keeps compose semantics: a variable listed without a value (and not found
// when the project was loaded) is left unset rather than set to "".
func environment(env types.MappingWithEquals) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		if v != nil {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}

func healthcheck(h *types.HealthCheckConfig) *container.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	hc := &container.HealthConfig{Test: h.Test}
	if h.Interval != nil {
		hc.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		hc.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		hc.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.StartInterval != nil {
		hc.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc
}

func ports(svc types.ServiceConfig) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, e := range svc.Expose {
		proto := "tcp"
		if i := strings.Index(e, "/"); i >= 0 {
			e, proto = e[:i], e[i+1:]
		}
		port, err := network.ParsePort(e + "/" + proto)
		if err != nil {
			return nil, nil, fmt.Errorf("expose %q: %w", e, err)
		}
		exposed[port] = struct{}{}
	}
	for _, p := range svc.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		port, err := network.ParsePort(fmt.Sprintf("%d/%s", p.Target, proto))
		if err != nil {
			return nil, nil, fmt.Errorf("ports: target %d: %w", p.Target, err)
		}
		exposed[port] = struct{}{}
		binding := network.PortBinding{HostPort: p.Published}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(p.HostIP)
			if err != nil {
				return nil, nil, fmt.Errorf("ports: host_ip %q: %w", p.HostIP, err)
			}
			binding.HostIP = ip
		}
		bindings[port] = append(bindings[port], binding)
	}
	if len(exposed) == 0 {
		exposed = nil
	}
	return exposed, bindings, nil
}

// volumes maps compose volumes: binds go through Binds, as Compose does, so a missing
// host directory is created; named, anonymous and tmpfs volumes through Mounts.
func volumes(p *Project, svc types.ServiceConfig) ([]string, []mount.Mount, error) {
	var binds []string
	var mounts []mount.Mount
	for _, v := range svc.Volumes {
		switch v.Type {
		case types.VolumeTypeBind:
			var opts []string
			if v.ReadOnly {
				opts = append(opts, "ro")
			}
			if v.Bind != nil {
				if v.Bind.SELinux != "" {
					opts = append(opts, v.Bind.SELinux)
				}
				if v.Bind.Propagation != "" {
					opts = append(opts, v.Bind.Propagation)
				}
			}
			b := v.Source + ":" + v.Target
			if len(opts) > 0 {
				b += ":" + strings.Join(opts, ",")
			}
			binds = append(binds, b)
		case types.VolumeTypeVolume:
			m := mount.Mount{Type: mount.TypeVolume, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Source != "" {
				vol, ok := p.Volumes[v.Source]
				if !ok {
					return nil, nil, fmt.Errorf("volume %q is not declared under top-level volumes", v.Source)
				}
				m.Source = vol.Name
			}
			if v.Volume != nil {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.Volume.NoCopy, Subpath: v.Volume.Subpath, Labels: v.Volume.Labels}
			}
			mounts = append(mounts, m)
		case types.VolumeTypeImage:
			m := mount.Mount{Type: mount.TypeImage, Source: v.Source, Target: v.Target, ReadOnly: true}
			if _, ok := p.Project.Services[v.Source]; ok {
				m.Source = ImageRef(p, v.Source) // an image built (or named) by a service
			}
			if v.Image != nil && v.Image.SubPath != "" {
				m.ImageOptions = &mount.ImageOptions{Subpath: v.Image.SubPath}
			}
			mounts = append(mounts, m)
		case types.VolumeTypeTmpfs:
			m := mount.Mount{Type: mount.TypeTmpfs, Target: v.Target, ReadOnly: v.ReadOnly}
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
			mounts = append(mounts, m)
		default:
			return nil, nil, fmt.Errorf("volume type %q is %w", v.Type, ErrUnsupported)
		}
	}
	return binds, mounts, nil
}

func tmpfs(list types.StringList) map[string]string {
	if len(list) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, t := range list {
		path, opts, _ := strings.Cut(t, ":")
		out[path] = opts
	}
	return out
}

// extraHosts lists host:ip entries in a stable order (compose-go's AsList ranges over a
// map), keeping each host's addresses in the order the compose file gives them.
func extraHosts(h types.HostsList) []string {
	list := h.AsList(":")
	sort.SliceStable(list, func(i, j int) bool {
		hi, _, _ := strings.Cut(list[i], ":")
		hj, _, _ := strings.Cut(list[j], ":")
		return hi < hj
	})
	return list
}

func dnsServers(list types.StringList) []netip.Addr {
	var out []netip.Addr
	for _, s := range list {
		if ip, err := netip.ParseAddr(s); err == nil {
			out = append(out, ip)
		}
	}
	return out
}

// securityOptions inlines a seccomp profile file as the engine expects its JSON content.
func securityOptions(p *Project, opts []string) ([]string, error) {
	var out []string
	for _, opt := range opts {
		key, value, _ := strings.Cut(opt, "=")
		if key == "seccomp" && value != "unconfined" && value != "builtin" && value != "" {
			raw, err := os.ReadFile(p.RelativePath(value))
			if err != nil {
				return nil, fmt.Errorf("security_opt seccomp profile %s: %w", value, err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, raw); err != nil {
				return nil, fmt.Errorf("security_opt seccomp profile %s is not valid JSON: %w", value, err)
			}
			out = append(out, "seccomp="+compact.String())
			continue
		}
		out = append(out, opt)
	}
	return out, nil
}

func restartPolicy(svc types.ServiceConfig) container.RestartPolicy {
	if svc.Restart != "" {
		name, count, _ := strings.Cut(svc.Restart, ":")
		n, _ := strconv.Atoi(count)
		return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: n}
	}
	if svc.Deploy != nil && svc.Deploy.RestartPolicy != nil {
		rp := svc.Deploy.RestartPolicy
		var policy container.RestartPolicy
		switch rp.Condition {
		case "none":
			policy.Name = container.RestartPolicyDisabled
		case "", "any":
			policy.Name = container.RestartPolicyAlways
		default:
			policy.Name = container.RestartPolicyMode(rp.Condition)
		}
		if rp.MaxAttempts != nil {
			policy.MaximumRetryCount = int(*rp.MaxAttempts)
		}
		return policy
	}
	return container.RestartPolicy{} // the engine's default, "no", as Compose leaves it
}

// resources maps limits from deploy.resources (which win) and the legacy service keys,
// then applies x-lifecycle policy defaults where neither set a limit.
func resources(svc types.ServiceConfig, defaults ResourceDefaults) container.Resources {
	r := container.Resources{
		Memory:             int64(svc.MemLimit),
		MemoryReservation:  int64(svc.MemReservation),
		MemorySwap:         int64(svc.MemSwapLimit),
		NanoCPUs:           nanoCPUs(svc.CPUS),
		CgroupParent:       svc.CgroupParent,
		CPUCount:           svc.CPUCount,
		CPUPercent:         int64(svc.CPUPercent * 100), // as Compose does
		CPUPeriod:          svc.CPUPeriod,
		CPUQuota:           svc.CPUQuota,
		CPURealtimePeriod:  svc.CPURTPeriod,
		CPURealtimeRuntime: svc.CPURTRuntime,
		CPUShares:          svc.CPUShares,
		CpusetCpus:         svc.CPUSet,
		DeviceCgroupRules:  svc.DeviceCgroupRules,
	}
	if svc.MemSwappiness != 0 {
		swappiness := int64(svc.MemSwappiness)
		r.MemorySwappiness = &swappiness
	}
	if svc.OomKillDisable {
		r.OomKillDisable = &svc.OomKillDisable
	}
	blkio(svc.BlkioConfig, &r)
	devices(svc, &r)
	if svc.PidsLimit != 0 {
		pids := svc.PidsLimit
		r.PidsLimit = &pids
	}
	if svc.Deploy != nil {
		if l := svc.Deploy.Resources.Limits; l != nil {
			if l.MemoryBytes != 0 {
				r.Memory = int64(l.MemoryBytes)
			}
			if l.NanoCPUs != 0 {
				r.NanoCPUs = nanoCPUs(float32(l.NanoCPUs))
			}
			if l.Pids > 0 {
				pids := l.Pids
				r.PidsLimit = &pids
			}
		}
		if res := svc.Deploy.Resources.Reservations; res != nil {
			if res.MemoryBytes != 0 {
				r.MemoryReservation = int64(res.MemoryBytes)
			}
			for _, d := range res.Devices {
				r.DeviceRequests = append(r.DeviceRequests, container.DeviceRequest{
					Driver: d.Driver, Count: int(d.Count), DeviceIDs: d.IDs,
					Capabilities: [][]string{d.Capabilities}, Options: d.Options,
				})
			}
		}
	}
	if r.Memory == 0 && defaults.Memory > 0 {
		r.Memory = int64(defaults.Memory)
	}
	if r.NanoCPUs == 0 && defaults.CPUs > 0 {
		r.NanoCPUs = int64(math.Round(float64(defaults.CPUs) * 1e9))
	}
	if r.PidsLimit == nil && defaults.Pids > 0 {
		pids := defaults.Pids
		r.PidsLimit = &pids
	}
	var ulimits []*container.Ulimit
	for name, u := range svc.Ulimits {
		soft, hard := u.Single, u.Single
		if u.Soft != 0 {
			soft = u.Soft
		}
		if u.Hard != 0 {
			hard = u.Hard
		}
		ulimits = append(ulimits, &container.Ulimit{Name: name, Soft: int64(soft), Hard: int64(hard)})
	}
	sort.Slice(ulimits, func(i, j int) bool { return ulimits[i].Name < ulimits[j].Name })
	r.Ulimits = ulimits
	return r
}

// nanoCPUs converts compose-go's float32 CPU count as `docker run --cpus` and Compose do:
// "0.3" gives 300000000, not the 300000011 of float64(float32(0.3))*1e9, by going
// through the shortest decimal form of the float32.
func nanoCPUs(cpus float32) int64 {
	f, err := strconv.ParseFloat(strconv.FormatFloat(float64(cpus), 'g', -1, 32), 64)
	if err != nil {
		f = float64(cpus)
	}
	return int64(math.Round(f * 1e9))
}

// networking attaches the container to its networks with the service name, its
// aliases and the container name as DNS names, as Compose does. The engine package
// connects extra networks after create on engines older than API 1.44.
func networking(p *Project, svc types.ServiceConfig, containerName string) (container.NetworkMode, *network.NetworkingConfig) {
	if svc.NetworkMode != "" {
		// host, none, bridge, container:NAME as written; service:NAME is resolved by
		// the runtime (ResolveServiceRefs), as Compose resolves it to container:ID.
		return container.NetworkMode(svc.NetworkMode), nil
	}
	svc, segmentEndpoints, segmentPrimary := segmentNetworks(p, svc, containerName)
	if len(svc.Networks) == 0 && segmentPrimary == "" {
		return "none", nil
	}
	keys := svc.NetworksByPriority()
	endpoints := map[string]*network.EndpointSettings{}
	for _, key := range keys {
		cfg := svc.Networks[key]
		aliases := []string{containerName, svc.Name}
		ep := &network.EndpointSettings{}
		if cfg != nil {
			aliases = append(aliases, cfg.Aliases...)
			if cfg.Ipv4Address != "" || cfg.Ipv6Address != "" {
				ep.IPAMConfig = &network.EndpointIPAMConfig{}
				if ip, err := netip.ParseAddr(cfg.Ipv4Address); err == nil {
					ep.IPAMConfig.IPv4Address = ip
				}
				if ip, err := netip.ParseAddr(cfg.Ipv6Address); err == nil {
					ep.IPAMConfig.IPv6Address = ip
				}
			}
		}
		ep.Aliases = aliases
		endpoints[p.Networks[key].Name] = ep
	}
	if segmentPrimary != "" {
		maps.Copy(endpoints, segmentEndpoints)
		return container.NetworkMode(segmentPrimary), &network.NetworkingConfig{EndpointsConfig: endpoints}
	}
	return container.NetworkMode(p.Networks[keys[0]].Name), &network.NetworkingConfig{EndpointsConfig: endpoints}
}

// Networks lists the project networks to create (external ones are only checked).
func Networks(p *Project) (create []NetworkCreate, external []string) {
	keys := make([]string, 0, len(p.Networks))
	for k := range p.Networks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := p.Networks[k]
		if skipComposeNetwork(p, k) {
			continue
		}
		if bool(n.External) {
			external = append(external, n.Name)
			continue
		}
		labels := map[string]string{}
		for lk, lv := range n.Labels {
			labels[lk] = lv
		}
		labels[LabelProject] = p.Name
		labels[LabelNetwork] = k
		labels[LabelVersion] = ComposeVersionLabelValue
		labels[LabelManagedBy] = ManagedByValue
		nc := NetworkCreate{Name: n.Name, Driver: n.Driver, Internal: n.Internal, Attachable: n.Attachable, Options: n.DriverOpts, Labels: labels}
		if n.EnableIPv6 != nil {
			nc.EnableIPv6 = *n.EnableIPv6
		}
		if n.Ipam.Driver != "" || len(n.Ipam.Config) > 0 {
			ipam := &network.IPAM{Driver: n.Ipam.Driver}
			for _, c := range n.Ipam.Config {
				cfg := network.IPAMConfig{}
				if pfx, err := netip.ParsePrefix(c.Subnet); err == nil {
					cfg.Subnet = pfx
				}
				if ip, err := netip.ParseAddr(c.Gateway); err == nil {
					cfg.Gateway = ip
				}
				if pfx, err := netip.ParsePrefix(c.IPRange); err == nil {
					cfg.IPRange = pfx
				}
				ipam.Config = append(ipam.Config, cfg)
			}
			nc.IPAM = ipam
		}
		create = append(create, nc)
	}
	create = append(create, segmentNetworkCreates(p)...)
	return create, external
}

// Volumes lists the project's named volumes to create (external ones are only checked).
func Volumes(p *Project) (create []VolumeCreate, external []string) {
	keys := make([]string, 0, len(p.Project.Volumes))
	for k := range p.Project.Volumes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := p.Project.Volumes[k]
		if bool(v.External) {
			external = append(external, v.Name)
			continue
		}
		labels := map[string]string{}
		for lk, lv := range v.Labels {
			labels[lk] = lv
		}
		labels[LabelProject] = p.Name
		labels[LabelVolume] = k
		labels[LabelVersion] = ComposeVersionLabelValue
		labels[LabelManagedBy] = ManagedByValue
		create = append(create, VolumeCreate{Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels})
	}
	return create, external
}

func blkio(b *types.BlkioConfig, r *container.Resources) {
	if b == nil {
		return
	}
	r.BlkioWeight = b.Weight
	for _, d := range b.WeightDevice {
		r.BlkioWeightDevice = append(r.BlkioWeightDevice, &blkiodev.WeightDevice{Path: d.Path, Weight: d.Weight})
	}
	throttle := func(list []types.ThrottleDevice) []*blkiodev.ThrottleDevice {
		var out []*blkiodev.ThrottleDevice
		for _, d := range list {
			out = append(out, &blkiodev.ThrottleDevice{Path: d.Path, Rate: uint64(d.Rate)})
		}
		return out
	}
	r.BlkioDeviceReadBps = throttle(b.DeviceReadBps)
	r.BlkioDeviceReadIOps = throttle(b.DeviceReadIOps)
	r.BlkioDeviceWriteBps = throttle(b.DeviceWriteBps)
	r.BlkioDeviceWriteIOps = throttle(b.DeviceWriteIOps)
}

// devices maps devices (a CDI name such as vendor.com/gpu=all becomes a request to the
// cdi driver, as with Compose) and gpus (a request with the "gpu" capability).
func devices(svc types.ServiceConfig, r *container.Resources) {
	var cdi []string
	for _, d := range svc.Devices {
		if d.Source == d.Target && isCDIName(d.Source) {
			cdi = append(cdi, d.Source)
			continue
		}
		r.Devices = append(r.Devices, container.DeviceMapping{PathOnHost: d.Source, PathInContainer: d.Target, CgroupPermissions: d.Permissions})
	}
	if len(cdi) > 0 {
		r.DeviceRequests = append(r.DeviceRequests, container.DeviceRequest{Driver: "cdi", DeviceIDs: cdi})
	}
	for _, g := range svc.Gpus {
		r.DeviceRequests = append(r.DeviceRequests, container.DeviceRequest{
			Driver: g.Driver, Count: int(g.Count), DeviceIDs: g.IDs,
			Capabilities: [][]string{append(slices.Clone(g.Capabilities), "gpu")}, Options: g.Options,
		})
	}
}

// isCDIName reports whether a device is a fully qualified CDI name, vendor/class=name.
func isCDIName(s string) bool {
	kind, name, ok := strings.Cut(s, "=")
	vendor, class, hasClass := strings.Cut(kind, "/")
	return ok && hasClass && name != "" && vendor != "" && class != "" && !strings.HasPrefix(s, "/")
}
