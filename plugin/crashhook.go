//go:build crashhook

// The crash hook is compiled only into the e2e suite's plugin (go build -tags crashhook):
// the shipped binary has no way to kill itself on an environment variable.

package plugin

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// crashCheckpointEnv names a step ("ACTION", "ACTION:TARGET" or "ACTION@N" for the Nth
// step of that action, e.g. "start", "create:demo-web-1" or "route@2") before which the
// plugin SIGKILLs itself. Crash-safety tests use it to stop a deploy at a known point.
const crashCheckpointEnv = "LIFECYCLE_TEST_CRASH_BEFORE"

func crashCheckpoint() func(strategies.Step) {
	want := os.Getenv(crashCheckpointEnv)
	if want == "" {
		return nil
	}
	var mu sync.Mutex
	seen := map[strategies.Action]int{}
	return func(s strategies.Step) {
		mu.Lock()
		seen[s.Action]++
		nth := fmt.Sprintf("%s@%d", s.Action, seen[s.Action])
		mu.Unlock()
		if want == string(s.Action) || want == fmt.Sprintf("%s:%s", s.Action, s.Target) || want == nth {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
