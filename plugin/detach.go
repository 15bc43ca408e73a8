package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// `guard --detach` and `monitor --detach` run the plugin's own executable in a
// container (rollout/detachedagent.go).

// ownExecutable is the plugin's executable, the detached agents' program.
func ownExecutable() ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return os.ReadFile(exe)
}

// renderDetached reports a detached agent (guard, monitor) started; more says where
// to look at it.
func renderDetached(out, errOut io.Writer, role, project string, res rollout.DetachResult, format, more string) error {
	if res.ImageNew {
		fmt.Fprintf(errOut, "built the detached image %s in %s\n", res.Image, res.BuildTime.Round(time.Millisecond))
	}
	for _, r := range res.Replaced {
		fmt.Fprintf(errOut, "replaced the project's older %s container %s (its configuration is the compose file's as of now)\n", role, r)
	}
	if format == "json" {
		return json.NewEncoder(out).Encode(res)
	}
	_, err := fmt.Fprintf(out, "%s of project %s runs in container %s (restart unless-stopped); %s, `docker lifecycle down` removes it\n", role, project, res.Container, more)
	return err
}
