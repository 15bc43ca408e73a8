package compose

import (
	"slices"
	"strings"
)

// RoleMonitor marks the detached monitor's container (`monitor --detach`).
const RoleMonitor = "monitor"

// DetachedRoles are the commands that run detached (`--detach --mount-docker-socket`):
// one container per project and role, named DetachedAgentName, holding the engine's
// socket on purpose.
var DetachedRoles = []string{RoleGuard, RoleMonitor}

// DetachedAgentName is the name of project's detached container of role: <project>-<role>.
func DetachedAgentName(project, role string) string { return project + "-" + role }

// IsDetachedAgent reports whether a container (its name as the engine gives it, with or
// without the leading slash, and its labels) is one of project's own detached agents
// (guard, monitor): the name of its role and the agent's labels for that project. The
// engine keeps names unique, so while the agent runs no other container passes as it.
func IsDetachedAgent(project, name string, labels map[string]string) bool {
	role := labels[LabelRole]
	return slices.Contains(DetachedRoles, role) && strings.TrimPrefix(name, "/") == DetachedAgentName(project, role) &&
		labels[LabelManagedBy] == ManagedByValue && labels[LabelProject] == project
}
