package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// `guard --detach` and `monitor --detach` run the plugin's own executable in a
// container (rollout/detachedagent.go).

// detachFlags are the flags the agents that can run detached (guard, monitor) share.
type detachFlags struct {
	// detach runs the agent as a container; mountSocket is its explicit opt-in.
	detach, mountSocket bool
	status              bool
	// target is the resolved project (JSON), given to the detached agent in its
	// container, where there is no compose file.
	target string
}

// declare adds the flags of the agent role; statusHelp says what --status shows.
func (d *detachFlags) declare(flags *pflag.FlagSet, role, statusHelp string) {
	flags.BoolVarP(&d.detach, "detach", "d", false, fmt.Sprintf("Run the %s as a container on the engine (<project>-%s, restart unless-stopped); needs --mount-docker-socket", role, role))
	flags.BoolVar(&d.mountSocket, "mount-docker-socket", false, fmt.Sprintf("With --detach: mount the engine's socket into the %s container, which makes it root on the engine's host", role))
	flags.BoolVar(&d.status, "status", false, statusHelp)
	flags.StringVar(&d.target, "target", "", fmt.Sprintf("The resolved project as JSON (the detached %s's own argument)", role))
	_ = flags.MarkHidden("target")
}

// problems are the misuses of the shared flags, each a sentence for usageError.
func (d detachFlags) problems(role string) []string {
	switch {
	case d.detach && d.status:
		return []string{fmt.Sprintf("--detach and --status exclude each other: start the %s, then ask for its status", role)}
	case d.detach && !d.mountSocket:
		return []string{rollout.SocketOptInError(role).Error()}
	case d.mountSocket && !d.detach:
		return []string{fmt.Sprintf("--mount-docker-socket is for --detach: the foreground %s uses the docker CLI's connection", role)}
	}
	return nil
}

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

// renderDetachedStatus is the end of `guard --status` and `monitor --status`: the
// report as JSON or as the agent's table, then an error (exit 1) when the agent's
// container c does not run, naming the command that starts a new one.
func renderDetachedStatus[R any](out io.Writer, role, project string, report R, c rollout.DetachedContainerStatus, running bool,
	format string, table func(io.Writer, R, time.Time) error, startAgain string) error {
	var err error
	if format == "json" {
		err = json.NewEncoder(out).Encode(report)
	} else {
		err = table(out, report, time.Now())
	}
	if err == nil && !running {
		err = fmt.Errorf("the %s container %s of project %s is %s (exit code %d), not running: `docker logs %s` says why; `%s` starts a new one",
			role, c.Name, project, c.State, c.ExitCode, c.Name, startAgain)
	}
	return err
}

// detachedSince is the SINCE row of a detached agent's status table.
func detachedSince(c rollout.DetachedContainerStatus, now time.Time) string {
	if c.Since.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", c.Since.UTC().Format(time.RFC3339), now.Sub(c.Since).Round(time.Second))
}
