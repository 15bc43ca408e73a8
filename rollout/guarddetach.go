package rollout

import (
	"context"
	"errors"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// `guard --detach` runs the guard as a detached agent (detachedagent.go): the
// container <project>-guard runs `docker-lifecycle lifecycle guard --target JSON`, the
// project resolved on the user's side (GuardTarget). The agent image stays small: it
// does not carry the engine client and the compose loader for the guard's sake.

// ErrNoGuard: no detached guard container exists for the project.
var ErrNoGuard = errors.New("no detached guard")

// Resource limits of the guard container: the guard is an event loop; a leak or a
// runaway is stopped by the engine before it hurts the host.
const (
	guardMemory = 64 << 20
	guardPids   = 64
)

// GuardAgent is the detached guard of target t: no network (the socket is a file; the
// router is driven through the engine's exec API).
func GuardAgent(t GuardTarget) DetachedAgent {
	return DetachedAgent{Role: compose.RoleGuard, Project: t.Project, Args: []string{"--format", "json", "--target", t.Encode()}, Memory: guardMemory, Pids: guardPids}
}

// GuardContainerSpec is the detached guard's container (DetachedContainerSpec).
func GuardContainerSpec(t GuardTarget, image string) engine.ContainerSpec {
	return DetachedContainerSpec(GuardAgent(t), image)
}

// DetachGuard starts project t's guard as a container, replacing an older guard of
// the project.
func DetachGuard(ctx context.Context, eng engine.Engine, t GuardTarget, opts DetachOptions) (DetachResult, error) {
	return Detach(ctx, eng, GuardAgent(t), opts)
}

// guardContainers are the project's detached guard containers: normally one.
func guardContainers(ctx context.Context, eng engine.Engine, project string) ([]engine.Container, error) {
	return detachedContainers(ctx, eng, project, compose.RoleGuard)
}
