package policy

import (
	"cmp"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// input is what every check may look at besides the service.
type input struct {
	project  string
	images   map[string]ImageFacts
	defaults Defaults
}

// imageRef is the image a service runs: its image key, or the name Compose gives the
// image it builds (<project>-<service>), as the facts are keyed.
func (in *input) imageRef(svc *types.ServiceConfig) string {
	if svc.Image != "" {
		return svc.Image
	}
	return in.project + "-" + svc.Name
}

// imageName names the service's image in a message: a build-only service's image is
// the one built for it.
func (in *input) imageName(svc *types.ServiceConfig) string {
	if svc.Image == "" {
		return fmt.Sprintf("the image built for service %q", svc.Name)
	}
	return fmt.Sprintf("image %q", svc.Image)
}

// rule is a Rule with its check: it appends one violation per problem to dst.
type rule struct {
	Rule
	check func(dst []violation, svc *types.ServiceConfig, in *input) []violation
}

// violation is one problem a check found; CIS, when set, is the benchmark id of this
// problem where the rule covers several (limits: memory 5.11, CPU 5.12, PIDs 5.29).
type violation struct {
	CIS     string
	Message string
}

var ruleTable = []rule{
	{Rule{"privileged", "5.5", "Containers do not run privileged",
		"remove `privileged: true`; add only the capabilities the service needs with cap_add"}, checkPrivileged},
	{Rule{"cap-add", "5.4", "Containers add no Linux capabilities",
		"remove cap_add, or keep only the capabilities the service needs (never ALL) and allow the rule with a reason"}, checkCapAdd},
	{Rule{"docker-socket", "5.32", "The Docker socket is not mounted into containers",
		"remove the docker.sock volume (and use_api_socket); a container with the socket controls the host"}, checkDockerSocket},
	{Rule{"host-network", "5.10", "Containers do not share the host's network namespace",
		"remove `network_mode: host` and publish the needed ports"}, checkHostNetwork},
	{Rule{"host-pid", "5.16", "Containers do not share the host's process namespace",
		"remove `pid: host`"}, hostNamespace("pid", "process", func(s *types.ServiceConfig) string { return s.Pid })},
	{Rule{"host-ipc", "5.17", "Containers do not share the host's IPC namespace",
		"remove `ipc: host`"}, hostNamespace("ipc", "IPC", func(s *types.ServiceConfig) string { return s.Ipc })},
	{Rule{"host-uts", "5.21", "Containers do not share the host's UTS namespace",
		"remove `uts: host`; set hostname: if the service needs a particular one"}, hostNamespace("uts", "UTS (hostname)", func(s *types.ServiceConfig) string { return s.Uts })},
	{Rule{"non-root", "4.1", "Containers run as a non-root user",
		"set `user:` to a non-root uid (e.g. \"1000\" or \"1000:1000\"), or use an image whose USER is not root"}, checkNonRoot},
	{Rule{"host-dirs", "5.6", "Sensitive host directories are not mounted into containers",
		"remove the bind mount of the host directory, or mount only the file or subdirectory the service needs, read-only"}, checkHostDirs},
	{Rule{"limits", "5.11, 5.12, 5.29", "Containers have memory (CIS 5.11), CPU (5.12) and PIDs (5.29) limits",
		"set deploy.resources.limits (memory, cpus, pids), or x-lifecycle.policy.defaults for every service"}, checkLimits},
	{Rule{"healthcheck", "5.27, 4.6", "Containers have a health check: compose's healthcheck (CIS 5.27) or the image's HEALTHCHECK (4.6)",
		"add a healthcheck: with a test that proves the service works, or use an image with a HEALTHCHECK"}, checkHealthcheck},
	{Rule{"read-only", "5.13", "Containers' root filesystems are read-only",
		"set `read_only: true` and mount writable paths as tmpfs: or volumes:"}, checkReadOnly},
	{Rule{"no-new-privileges", "5.26", "Containers cannot gain new privileges",
		"add `no-new-privileges:true` to security_opt"}, checkNoNewPrivileges},
	{Rule{"secrets-in-env", "", "No secrets in environment variables or labels",
		"keep the value out of the compose file: declare it under secrets: (file, environment or x-lifecycle exec; delivered as a file on a tmpfs under /run/secrets) and point a *_FILE variable at it"}, checkSecretsInEnv},
	{Rule{"log-rotation", "", "Container logs are rotated, so a chatty service cannot fill the engine's disk",
		"set x-lifecycle.logs (driver local or json-file with max-size and max-file) for every service, or logging: {driver: local} (or json-file with options max-size) on the service"}, checkLogRotation},
	{Rule{"latest-tag", "", "Images are pinned to a version tag or digest",
		"use an explicit version tag (image: name:1.2.3) or a digest (image: name@sha256:...)"}, checkLatestTag},
	{Rule{"public-ports", "5.14", "Published ports are bound to a specific host interface",
		"set host_ip (e.g. \"127.0.0.1:8080:80\"), or allow the rule with a reason for a service that is public on purpose"}, checkPublicPorts},
}

// ruleIndex maps a rule id to its position in ruleTable.
var ruleIndex = func() map[string]int {
	m := make(map[string]int, len(ruleTable))
	for i, r := range ruleTable {
		m[r.ID] = i
	}
	return m
}()

func checkPrivileged(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	if svc.Privileged {
		dst = append(dst, violation{Message: "privileged: true gives the container every capability and all host devices"})
	}
	return dst
}

func checkCapAdd(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	if len(svc.CapAdd) == 0 {
		return dst
	}
	for _, c := range svc.CapAdd {
		if strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_") == "ALL" {
			return append(dst, violation{Message: fmt.Sprintf("cap_add: [%s] includes ALL, which gives every Linux capability", strings.Join(svc.CapAdd, ", "))})
		}
	}
	return append(dst, violation{Message: fmt.Sprintf("cap_add: [%s] adds Linux capabilities", strings.Join(svc.CapAdd, ", "))})
}

// socketMount says why a mount (compose's volume types; "" is a bind) exposes the
// engine, or "" when it does not.
func socketMount(typ, source string) string {
	switch typ {
	case types.VolumeTypeBind, "":
		src := path.Clean(source)
		switch {
		case source == "":
		case strings.HasSuffix(src, "docker.sock"):
			return "mounts the Docker socket, which gives control of the host"
		case src == "/" || src == "/run" || src == "/var/run":
			return "mounts the host's " + src + ", which holds the Docker socket"
		}
	case types.VolumeTypeNamedPipe:
		if strings.Contains(strings.ToLower(source), "docker_engine") {
			return "mounts the Docker engine pipe, which gives control of the host"
		}
	}
	return ""
}

func checkDockerSocket(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	for _, v := range svc.Volumes {
		if why := socketMount(v.Type, v.Source); why != "" {
			dst = append(dst, violation{Message: fmt.Sprintf("volumes: %q %s", v.Source+":"+v.Target, why)})
		}
	}
	if svc.UseAPISocket {
		dst = append(dst, violation{Message: "use_api_socket: true mounts the Docker socket, which gives control of the host"})
	}
	return dst
}

func checkHostNetwork(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	switch {
	case svc.NetworkMode == "host":
		dst = append(dst, violation{Message: "network_mode: host shares the host's network namespace"})
	case svc.Net == "host":
		dst = append(dst, violation{Message: "net: host shares the host's network namespace"})
	}
	return dst
}

// hostNamespace builds the check of one `key: host` setting.
func hostNamespace(key, namespace string, get func(*types.ServiceConfig) string) func([]violation, *types.ServiceConfig, *input) []violation {
	return func(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
		if get(svc) == "host" {
			dst = append(dst, violation{Message: fmt.Sprintf("%s: host shares the host's %s namespace", key, namespace)})
		}
		return dst
	}
}

// isRootUser reports whether a user spec ("name", "uid", "uid:gid") names root.
// An empty user is root: it is what Docker runs as when nothing sets a user.
func isRootUser(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	if u == "" || u == "root" {
		return true
	}
	n, err := strconv.ParseUint(u, 10, 32)
	return err == nil && n == 0
}

// checkNonRoot judges `user:` first: a non-root user passes whatever the image
// says. Without one, the image's USER decides when the engine found the image;
// when the image is unknown (no entry, or not found) the container may run as
// root, which is reported: a required non-root rule must be provable.
func checkNonRoot(dst []violation, svc *types.ServiceConfig, in *input) []violation {
	if svc.User != "" {
		if isRootUser(svc.User) {
			dst = append(dst, violation{Message: fmt.Sprintf("user: %q runs the container as root", svc.User)})
		}
		return dst
	}
	facts, ok := in.images[in.imageRef(svc)]
	switch {
	case !ok || !facts.Found:
		dst = append(dst, violation{Message: fmt.Sprintf("no user: set; runs as the default user of %s, which could not be checked", in.imageName(svc))})
	case facts.User == "":
		dst = append(dst, violation{Message: fmt.Sprintf("no user: set and %s sets no USER, so the container runs as root", in.imageName(svc))})
	case isRootUser(facts.User):
		dst = append(dst, violation{Message: fmt.Sprintf("no user: set and %s has USER %q, so the container runs as root", in.imageName(svc), facts.User)})
	}
	return dst
}

// checkLimits judges the limits the engine will get: deploy.resources.limits win over
// the legacy keys, and a policy default fills only a limit that neither sets, as
// compose's conversion does. An explicit unlimited (pids_limit: -1) is no limit: the
// default does not replace it and the engine runs the container unlimited.
func checkLimits(dst []violation, svc *types.ServiceConfig, in *input) []violation {
	var l types.Resource
	if svc.Deploy != nil && svc.Deploy.Resources.Limits != nil {
		l = *svc.Deploy.Resources.Limits
	}
	memory, cpus, pids := int64(svc.MemLimit), float64(svc.CPUS), svc.PidsLimit
	if l.MemoryBytes != 0 {
		memory = int64(l.MemoryBytes)
	}
	if l.NanoCPUs != 0 {
		cpus = float64(l.NanoCPUs)
	}
	if l.Pids > 0 {
		pids = l.Pids
	}
	var missing, ids []string
	for _, l := range []struct {
		name, cis string
		lacks     bool
	}{
		{"memory", "5.11", memory < 0 || (memory == 0 && !in.defaults.Memory)},
		{"cpus", "5.12", cpus < 0 || (cpus == 0 && !in.defaults.CPUs)},
		{"pids", "5.29", pids < 0 || (pids == 0 && !in.defaults.Pids)},
	} {
		if l.lacks {
			missing = append(missing, fmt.Sprintf("%s (CIS %s)", l.name, l.cis))
			ids = append(ids, l.cis)
		}
	}
	if len(missing) > 0 {
		dst = append(dst, violation{CIS: strings.Join(ids, ", "), Message: fmt.Sprintf("deploy.resources.limits lacks %s; x-lifecycle.policy.defaults provides none",
			strings.Join(missing, ", "))})
	}
	return dst
}

// checkHealthcheck: compose's healthcheck is CIS 5.27 (health checked at run time), the
// image's HEALTHCHECK 4.6; either passes. Turning the check off in compose is 5.27
// alone: it overrides the image's.
func checkHealthcheck(dst []violation, svc *types.ServiceConfig, in *input) []violation {
	hc := svc.HealthCheck
	switch {
	case hc != nil && hc.Disable:
		dst = append(dst, violation{CIS: "5.27", Message: "healthcheck: disable: true turns the health check off"})
	case hc != nil && len(hc.Test) > 0 && hc.Test[0] == "NONE":
		dst = append(dst, violation{CIS: "5.27", Message: `healthcheck: test: ["NONE"] turns the health check off`})
	case hc != nil && len(hc.Test) > 0:
	case in.images[in.imageRef(svc)].Healthcheck:
	case hc != nil:
		dst = append(dst, violation{Message: fmt.Sprintf("healthcheck: sets no test (CIS 5.27) and %s defines no HEALTHCHECK (CIS 4.6) known to the engine", in.imageName(svc))})
	default:
		dst = append(dst, violation{Message: fmt.Sprintf("no healthcheck: set (CIS 5.27) and %s defines no HEALTHCHECK (CIS 4.6) known to the engine", in.imageName(svc))})
	}
	return dst
}

// sensitiveHostDirs are the host directories CIS 5.6 keeps out of containers.
var sensitiveHostDirs = []string{"/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr"}

// checkHostDirs reports a bind mount of a sensitive host directory (read-only too: it
// exposes the host's configuration and state), or of a path below one read-write.
func checkHostDirs(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	for _, v := range svc.Volumes {
		if (v.Type != types.VolumeTypeBind && v.Type != "") || !strings.HasPrefix(v.Source, "/") {
			continue
		}
		src := path.Clean(v.Source)
		spec := v.Source + ":" + v.Target
		if v.ReadOnly {
			spec += ":ro"
		}
		for _, dir := range sensitiveHostDirs {
			switch {
			case src == dir:
				how := "read-write"
				if v.ReadOnly {
					how = "read-only"
				}
				dst = append(dst, violation{Message: fmt.Sprintf("volumes: %q mounts the host's %s (%s)", spec, dir, how)})
			case dir != "/" && strings.HasPrefix(src, dir+"/") && !v.ReadOnly:
				dst = append(dst, violation{Message: fmt.Sprintf("volumes: %q mounts %s, under the host's %s, read-write", spec, src, dir)})
			default:
				continue
			}
			break
		}
	}
	return dst
}

// checkLogRotation: json-file, the engine's usual default, keeps every line unless
// max-size is set; local rotates by default; other drivers ship logs off the engine.
func checkLogRotation(dst []violation, svc *types.ServiceConfig, in *input) []violation {
	if svc.Logging == nil {
		if !in.defaults.LogRotation {
			dst = append(dst, violation{Message: "no logging: and no x-lifecycle.logs: the engine's default driver (json-file, unless the daemon is configured otherwise) keeps logs without a size limit"})
		}
		return dst
	}
	switch svc.Logging.Driver {
	case "", "json-file":
		if svc.Logging.Options["max-size"] == "" {
			driver := cmp.Or(svc.Logging.Driver, "the engine's default driver")
			dst = append(dst, violation{Message: fmt.Sprintf("logging: %s without options.max-size keeps logs without a size limit", driver)})
		}
	}
	return dst
}

func checkReadOnly(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	if !svc.ReadOnly {
		dst = append(dst, violation{Message: "read_only is not true: the container's root filesystem is writable"})
	}
	return dst
}

// checkNoNewPrivileges judges the last no-new-privileges entry: the engine applies
// security_opt in order, so a later "no-new-privileges:false" undoes an earlier true.
func checkNoNewPrivileges(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	last, value, set := "", "", false
	for _, opt := range svc.SecurityOpt {
		k, v, hasValue := strings.Cut(opt, ":")
		if !hasValue {
			k, v, hasValue = strings.Cut(opt, "=")
		}
		if strings.TrimSpace(k) != "no-new-privileges" {
			continue
		}
		last, value, set = opt, "true", true
		if hasValue {
			value = strings.TrimSpace(v)
		}
	}
	switch {
	case !set:
		return append(dst, violation{Message: "security_opt lacks no-new-privileges:true: processes can gain privileges (setuid binaries)"})
	case !strings.EqualFold(value, "true"):
		return append(dst, violation{Message: fmt.Sprintf("security_opt: %q lets processes gain privileges (setuid binaries); the engine applies the last no-new-privileges entry", last)})
	}
	return dst
}

// checkLatestTag leaves out images the project builds (build:): their tag names the
// project's own build, not a registry's moving target.
func checkLatestTag(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	img := svc.Image
	if img == "" || svc.Build != nil || strings.Contains(img, "@") {
		return dst
	}
	name := img[strings.LastIndex(img, "/")+1:]
	_, tag, hasTag := strings.Cut(name, ":")
	switch {
	case !hasTag:
		dst = append(dst, violation{Message: fmt.Sprintf("image: %q has no tag, so it means :latest", img)})
	case tag == "latest":
		dst = append(dst, violation{Message: fmt.Sprintf("image: %q uses the mutable :latest tag", img)})
	}
	return dst
}

func checkPublicPorts(dst []violation, svc *types.ServiceConfig, _ *input) []violation {
	for _, p := range svc.Ports {
		switch p.HostIP {
		case "", "0.0.0.0", "::", "[::]":
		default:
			continue
		}
		spec := strconv.FormatUint(uint64(p.Target), 10)
		if p.Published != "" {
			spec = p.Published + ":" + spec
		}
		if p.HostIP != "" {
			spec = p.HostIP + ":" + spec
		}
		if p.Protocol != "" && p.Protocol != "tcp" {
			spec += "/" + p.Protocol
		}
		what := "binds 0.0.0.0 (every host interface)"
		if p.HostIP != "" {
			what = "binds every host interface"
		}
		dst = append(dst, violation{Message: fmt.Sprintf("ports: %q %s", spec, what)})
	}
	return dst
}
