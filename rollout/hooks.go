package rollout

import (
	"context"
	"fmt"
	"sort"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// runHooks runs a service's post_start or pre_stop hooks in its container, in order, as
// docker compose does: each as an exec with the hook's user, privileges, directory and
// environment.
func (x *executor) runHooks(ctx context.Context, s strategies.Step, id, key string, hooks []types.ServiceHook) error {
	for i, h := range hooks {
		progress.Emit(x.events, containerID(s.Target), progress.Working, "Hook", fmt.Sprintf("%s[%d]: %v", key, i, []string(h.Command)))
		err := x.eng.RunHook(ctx, id, engine.Hook{
			Cmd: h.Command, User: h.User, Privileged: h.Privileged, WorkingDir: h.WorkingDir, Env: hookEnv(h.Environment),
		})
		if err != nil {
			return fmt.Errorf("service %q: %s[%d] in container %s: %w", s.Service, key, i, s.Target, err)
		}
	}
	return nil
}

// hookEnv lists a hook's environment; a name without a value is left unset.
func hookEnv(env types.MappingWithEquals) []string {
	var out []string
	for k, v := range env {
		if v != nil {
			out = append(out, k+"="+*v)
		}
	}
	sort.Strings(out)
	return out
}
