package plugin

import (
	"fmt"
	"os"
	"syscall"

	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// crashCheckpointEnv names a step ("ACTION" or "ACTION:TARGET", e.g. "start" or
// "create:demo-web-1") before which the plugin SIGKILLs itself. Crash-safety tests use
// it to stop a deploy at a known point; it is never set in normal use.
const crashCheckpointEnv = "LIFECYCLE_TEST_CRASH_BEFORE"

func crashCheckpoint() func(strategies.Step) {
	want := os.Getenv(crashCheckpointEnv)
	if want == "" {
		return nil
	}
	return func(s strategies.Step) {
		if want == string(s.Action) || want == fmt.Sprintf("%s:%s", s.Action, s.Target) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
