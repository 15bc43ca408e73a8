package rollout

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

const hooksCompose = `
name: demo
x-lifecycle: {strategy: recreate}
services:
  web:
    image: app
    environment: {V: "%s"}
    post_start: [{command: [warm, up], user: root, privileged: true, working_dir: /srv, environment: {A: "1"}}]
    pre_stop: [{command: [drain]}]
`

// TestHooks: post_start runs in the new container right after its start (a failure
// fails the step), pre_stop in the old one right before its stop (a failure is only
// reported: the old container still goes), each with the hook's exec settings.
func TestHooks(t *testing.T) {
	w := newWorld()
	var hooks []string
	fail := ""
	withHooks := func() *engine.Fake {
		f := w.fake()
		f.RunHookFn = func(_ context.Context, id string, h engine.Hook) error {
			w.mu.Lock()
			defer w.mu.Unlock()
			c := w.containers[id]
			w.record("hook %s %s", strings.Join(h.Cmd, " "), c.Name)
			hooks = append(hooks, fmt.Sprintf("%s %v user=%s privileged=%t dir=%s env=%v state=%s", c.Name, h.Cmd, h.User, h.Privileged, h.WorkingDir, h.Env, c.State))
			if h.Cmd[0] == fail {
				return &engine.ExecError{Container: c.Name, Cmd: h.Cmd, ExitCode: 1, Stderr: "no"}
			}
			return nil
		}
		return f
	}
	run := func(v string) error {
		_, err := Deploy(context.Background(), withHooks(), loadProject(t, fmt.Sprintf(hooksCompose, v)), progress.Nop, DeployOptions{WaitTimeout: 2e9})
		return err
	}
	assert.NilError(t, run("1"))
	assert.DeepEqual(t, hooks, []string{"demo-web-1 [warm up] user=root privileged=true dir=/srv env=[A=1] state=running"})
	assert.Check(t, w.index("start demo-web-1") < w.index("hook warm up demo-web-1"))

	hooks, fail = nil, "drain"
	assert.NilError(t, run("2"), "a failing pre_stop does not stop the deploy")
	assert.Check(t, is.Len(hooks, 2))
	assert.Check(t, is.Contains(hooks[0], "demo-web-1 [drain]"))
	assert.Check(t, is.Contains(hooks[0], "state=running"), "pre_stop runs before the stop")

	hooks, fail = nil, "warm"
	err := run("3")
	assert.ErrorContains(t, err, `service "web": post_start[0] in container demo-web-1`)
}
