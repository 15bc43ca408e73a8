package policy

import (
	"fmt"
	"strings"
)

// Rules judge compose services; a few also judge the containers that run on the engine
// without being a service of the compose file (docker-socket here): the detached guard and monitor,
// the agent containers, a container someone started with the project's labels.

// RuntimeContainer is a container on the engine, as much of it as the rules read.
type RuntimeContainer struct {
	Name   string
	Mounts []RuntimeMount
	// DetachedAgent: the container is the project's own detached guard or monitor
	// (compose.IsDetachedAgent tells; policy does not read labels), which holds the
	// socket by the user's choice.
	DetachedAgent bool
}

// RuntimeMount is one mount of a container: bind, volume, npipe, tmpfs.
type RuntimeMount struct{ Type, Source, Target string }

// CheckRuntimeSocket judges containers of project that are not services of its compose
// file with the docker-socket rule: every one mounting the engine's socket is a finding
// (a warning: deploy does not judge running containers), except the project's own
// detached guard and monitor, which hold the socket by the user's explicit choice (--mount-docker-socket).
func CheckRuntimeSocket(cs []RuntimeContainer) []Finding {
	var out []Finding
	for _, c := range cs {
		if c.DetachedAgent {
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
