package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
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
}

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
	// container, so they stay out; policy defaults do change it, through the resources.
	b, err := json.Marshal(struct {
		Service   types.ServiceConfig
		Resources container.Resources
		Segments  []string `json:",omitempty"` // segment networks; none without x-lifecycle.network
	}{svc, resources(svc, p.Spec.Policy.Defaults), segmentHash(p, service)})
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
		bindings = nil // the router owns the host ports; it reaches the containers by name
	}
	binds, mounts, err := volumes(p, svc)
	if err != nil {
		return ContainerCreate{}, fmt.Errorf("service %s: %w", service, err)
	}
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
	}
	if svc.Logging != nil {
		host.LogConfig = container.LogConfig{Type: svc.Logging.Driver, Config: svc.Logging.Options}
	}

	netMode, netCfg := networking(p, svc, name)
	if InternalRouted(p, service) {
		withoutServiceAliases(netCfg, name)
	}
	host.NetworkMode = netMode
	return ContainerCreate{Name: name, Config: cfg, HostConfig: host, Networking: netCfg}, nil
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
	if len(bindings) == 0 {
		bindings = nil
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
	return container.RestartPolicy{Name: container.RestartPolicyDisabled}
}

// resources maps limits from deploy.resources (which win) and the legacy service keys,
// then applies x-lifecycle policy defaults where neither set a limit.
func resources(svc types.ServiceConfig, defaults ResourceDefaults) container.Resources {
	r := container.Resources{
		Memory:            int64(svc.MemLimit),
		MemoryReservation: int64(svc.MemReservation),
		NanoCPUs:          nanoCPUs(svc.CPUS),
	}
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
		if res := svc.Deploy.Resources.Reservations; res != nil && res.MemoryBytes != 0 {
			r.MemoryReservation = int64(res.MemoryBytes)
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
