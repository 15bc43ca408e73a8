package policy

import (
	"fmt"
	"strings"
)

// Rules judge compose services; a few also judge the containers that run on the engine
// without being a service of the compose file (docker-socket here): the detached guard,
// the agent containers, a container someone started with the project's labels.

// Labels and name of the project's detached guard (as compose.RoleGuard and
// compose.GuardContainerName write them; policy does not import compose).
const (
	guardRoleLabel = "io.lifecycle.role"
	guardRole      = "guard"
	managedByLabel = "io.lifecycle.managed-by"
	managedBy      = "docker-lifecycle"
	projectLabel   = "com.docker.compose.project"
)

// RuntimeContainer is a container on the engine, as much of it as the rules read.
type RuntimeContainer struct {
	Name   string
	Labels map[string]string
	Mounts []RuntimeMount
}

// RuntimeMount is one mount of a container: bind, volume, npipe, tmpfs.
type RuntimeMount struct{ Type, Source, Target string }

// IsProjectGuard reports whether c is project's own detached guard (`guard --detach`):
// its name, and the guard's labels for that project. The engine keeps names unique, so
// while the guard runs no other container passes as it.
func IsProjectGuard(project string, c RuntimeContainer) bool {
	return strings.TrimPrefix(c.Name, "/") == project+"-guard" &&
		c.Labels[guardRoleLabel] == guardRole && c.Labels[managedByLabel] == managedBy && c.Labels[projectLabel] == project
}

// CheckRuntimeSocket judges containers of project that are not services of its compose
// file with the docker-socket rule: every one mounting the engine's socket is a finding
// (a warning: deploy does not judge running containers), except the project's own
// guard, which holds the socket by the user's explicit choice (--mount-docker-socket).
func CheckRuntimeSocket(project string, cs []RuntimeContainer) []Finding {
	var out []Finding
	for _, c := range cs {
		if IsProjectGuard(project, c) {
			continue
		}
		for _, m := range c.Mounts {
			if why := socketMount(m.Type, m.Source); why != "" {
				out = append(out, Finding{Rule: "docker-socket", CIS: "5.32", Level: Warning, Service: strings.TrimPrefix(c.Name, "/"),
					Message: fmt.Sprintf("running container, not a service of the compose file: %q %s", m.Source+":"+m.Target, why)})
			}
		}
	}
	return out
}
