package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

func TestCommandTree(t *testing.T) {
	cli, err := command.NewDockerCli()
	assert.NilError(t, err)
	root := NewRootCommand(cli)
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
		assert.Check(t, c.RunE != nil, "%s has a RunE", c.Name())
		assert.Check(t, c.Short != "", "%s has a short description", c.Name())
	}
	assert.Check(t, is.DeepEqual(names, []string{"abort", "backup", "config", "deploy", "down", "dr", "drill", "guard", "history", "lint", "logs", "monitor", "network", "pause", "plan", "promote", "ps", "restore", "resume", "rollback", "scan", "secrets", "stats", "unlock", "version", "watch"}))
	for _, flag := range []string{"file", "project-name", "profile", "env-file", "project-directory", "progress"} {
		assert.Check(t, root.PersistentFlags().Lookup(flag) != nil, "--%s", flag)
	}
	deploy, _, err := root.Find([]string{"deploy"})
	assert.NilError(t, err)
	for _, flag := range []string{"dry-run", "remove-orphans", "wait-timeout", "format", "scan", "skip-scan"} {
		assert.Check(t, deploy.Flags().Lookup(flag) != nil, "deploy --%s", flag)
	}
	rollback, _, err := root.Find([]string{"rollback"})
	assert.NilError(t, err)
	for _, flag := range []string{"to", "dry-run", "wait-timeout", "format", "with-data"} {
		assert.Check(t, rollback.Flags().Lookup(flag) != nil, "rollback --%s", flag)
	}
	history, _, err := root.Find([]string{"history"})
	assert.NilError(t, err)
	assert.Check(t, history.Flags().Lookup("format") != nil, "history --format")
}

// The rollback command's flag checks run before it touches the project or the engine.
func TestRollbackFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{args: []string{"rollback", "--to", "-1", "web"}, want: "--to must be a revision number"},
		{args: []string{"rollback", "--to", "3"}, want: "--to needs exactly one SERVICE"},
		{args: []string{"rollback", "--to", "3", "web", "api"}, want: "--to needs exactly one SERVICE"},
		{args: []string{"rollback", "--with-data"}, want: "--with-data restores volumes: name the SERVICE(s) explicitly"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cli, err := command.NewDockerCli()
			assert.NilError(t, err)
			root := NewRootCommand(cli)
			root.SetArgs(tc.args)
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			assert.ErrorContains(t, root.Execute(), tc.want)
		})
	}
}

func TestPlanJSONIsStable(t *testing.T) {
	var b bytes.Buffer
	assert.NilError(t, writePlan(&b, strategies.Plan{Project: "demo"}, "json"))
	var doc map[string]any
	assert.NilError(t, json.Unmarshal(b.Bytes(), &doc))
	assert.Check(t, is.DeepEqual(doc, map[string]any{"project": "demo", "steps": []any{}}))

	b.Reset()
	plan := strategies.Plan{Project: "demo", Steps: []strategies.Step{{ID: 1, Action: strategies.Create, Service: "web", Target: "demo-web-1", Number: 1, Revision: 2, Cause: "image changed", After: []int{}}}}
	assert.NilError(t, writePlan(&b, plan, "json"))
	assert.Check(t, is.Contains(b.String(), `"action": "create"`))
	assert.Check(t, is.Contains(b.String(), `"cause": "image changed"`))
}

func TestNetworkCommands(t *testing.T) {
	cli, err := command.NewDockerCli()
	assert.NilError(t, err)
	root := NewRootCommand(cli)
	for _, sub := range []string{"plan", "verify"} {
		c, _, err := root.Find([]string{"network", sub})
		assert.NilError(t, err)
		assert.Check(t, is.Equal(c.Name(), sub))
		assert.Check(t, c.Flags().Lookup("format") != nil, "network %s --format", sub)
	}
	deploy, _, err := root.Find([]string{"deploy"})
	assert.NilError(t, err)
	assert.Check(t, deploy.Flags().Lookup("verify-network") != nil)
}

// Every usage error exits 125 with a message naming what is allowed, before the project
// is loaded (these run in a directory without a compose file) or the engine is called.
func TestUsageErrorsExit125(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{args: []string{"deploy", "--wait-timeout", "-1s"}, want: `use a duration of 0 or more`},
		{args: []string{"deploy", "--wait-timeout", "soon"}, want: `invalid argument "soon" for "--wait-timeout" flag`},
		{args: []string{"rollback", "--wait-timeout", "-1s"}, want: `use a duration of 0 or more`},
		{args: []string{"secrets", "rotate", "--wait-timeout", "-1m", "key"}, want: `use a duration of 0 or more`},
		{args: []string{"network", "top", "--interval", "10ms"}, want: "use a duration from 100ms to 1m0s"},
		{args: []string{"--progress", "fancy", "deploy"}, want: "use auto, tty, plain, json or quiet"},
		{args: []string{"deploy", "--progress", "fancy"}, want: "use auto, tty, plain, json or quiet"},
		{args: []string{"config", "--format", "toml"}, want: "use yaml or json"},
		{args: []string{"plan", "--format", "yaml"}, want: "use table or json"},
		{args: []string{"deploy", "--dry-run", "--format", "yaml"}, want: "use table or json"},
		{args: []string{"network", "verify", "--format", "sarif"}, want: "use table or json"},
		{args: []string{"lint", "--format", "xml"}, want: "use table, json or sarif"},
		{args: []string{"scan", "--format", "xml"}, want: "use table, json or sarif"},
		{args: []string{"scan", "--fail-on", "SEVERE"}, want: "UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL, NONE"},
		{args: []string{"ps", "--format", "{{.Name"}, want: "use table, json or a Go template"},
		{args: []string{"history", "--format", "{{.Name"}, want: "use table, json or a Go template"},
		{args: []string{"deploy", "--scan", "--skip-scan"}, want: "--scan and --skip-scan exclude each other"},
		{args: []string{"deploy", "--dry-run", "--verify-network"}, want: "--dry-run changes nothing"},
		{args: []string{"deploy", "--format", "json"}, want: "add --dry-run"},
		{args: []string{"rollback", "--format", "json"}, want: "add --dry-run"},
		{args: []string{"rollback", "--to", "0", "web"}, want: "--to must be a revision number, 1 or more"},
		{args: []string{"rollback", "--to", "2"}, want: "--to needs exactly one SERVICE"},
		{args: []string{"down", "--timeout", "-5"}, want: "--timeout must be 0 or more seconds"},
		{args: []string{"pause"}, want: "needs exactly one SERVICE"},
		{args: []string{"secrets", "rotate"}, want: "needs exactly one NAME"},
		{args: []string{"unlock", "now"}, want: "accepts no arguments"},
		{args: []string{"deploi"}, want: `unknown command "deploi"`},
		{args: []string{"deploy", "--wait", "1s"}, want: "unknown flag: --wait"},
		{args: []string{"backup", "--keep-last", "-1", "--keep-monthly", "-2", "--consistency", "freeze"},
			want: `--to DIR|s3://BUCKET/PREFIX is required: where the backup is written; --keep-last must not be negative, got -1; --keep-monthly must not be negative, got -2; --consistency must be one of pause, stop, none, got "freeze"`},
		{args: []string{"backup", "--to", "x", "--every", "500ms"}, want: "--every must be at least 1s (e.g. 6h, 24h), got 500ms"},
		{args: []string{"backup", "--to", "x", "--every", "0s"}, want: "--every must be at least 1s (e.g. 6h, 24h), got 0s"},
		{args: []string{"backup", "--to", "x", "--every", "daily"}, want: `invalid argument "daily" for "--every" flag`},
		{args: []string{"backup", "--to", "x", "--drill", "--identity", "k"}, want: "--drill drills each backup of a schedule: use it with --every (after a single backup, run `docker lifecycle drill DIR/latest`)"},
		{args: []string{"backup", "--to", "x", "--every", "1h", "--identity", "k"}, want: "--identity decrypts the backups that --drill drills: use it with --drill"},
		{args: []string{"backup", "--to", "x", "--every", "1h", "--drill", "--encrypt-to", "age1x"}, want: "--drill of encrypted backups needs the identity that decrypts them: add --identity FILE"},
		{args: []string{"backup", "prune", "--keep-last", "-1", "--keep-daily", "-3"},
			want: `--from DIR|s3://BUCKET/PREFIX is required: where the backups are; --keep-last must not be negative, got -1; --keep-daily must not be negative, got -3`},
		{args: []string{"backup", "prune", "--from", "x"}, want: "give at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly"},
		{args: []string{"backup", "prune", "--from", "x", "--keep-last", "1", "--format", "table"}, want: "use text or json"},
		{args: []string{"backup", "list"}, want: "--from DIR|s3://BUCKET/PREFIX is required"},
		{args: []string{"backup", "ls", "--from", "x", "--format", "xml"}, want: "use table or json"},
		{args: []string{"backup", "list", "--from", "x", "extra"}, want: "extra"},
		{args: []string{"guard", "--detach"}, want: "--mount-docker-socket"},
		{args: []string{"monitor", "--detach"}, want: "monitor --detach needs the engine's socket"},
		{args: []string{"monitor", "--mount-docker-socket"}, want: "--mount-docker-socket is for --detach"},
		{args: []string{"monitor", "-d", "--mount-docker-socket", "--listen", ":9464"}, want: "write 127.0.0.1:9464, or 0.0.0.0:9464 if every interface is meant"},
		{args: []string{"monitor", "-d", "--mount-docker-socket", "--listen", "127.0.0.1:0"}, want: "the port must be a number from 1 to 65535"},
		{args: []string{"monitor", "--format", "json"}, want: "--format is for --detach and --status"},
		{args: []string{"monitor", "--status", "--detach", "--mount-docker-socket"}, want: "--detach and --status exclude each other"},
		{args: []string{"drill"}, want: "needs exactly one BACKUP"},
		{args: []string{"drill", "a", "--format", "xml"}, want: "use table or json"},
		{args: []string{"drill", "a", "--identity", "/nonexistent/key"}, want: "--identity: open /nonexistent/key"},
		{args: []string{"dr", "plan"}, want: "--from DIR|s3://BUCKET/PREFIX is required"},
		{args: []string{"dr", "plan", "--from", "x", "--format", "table"}, want: "use text or json"},
		{args: []string{"dr", "apply"}, want: `unknown command "apply"`},
		{args: []string{"guard", "--status", "--last", "0"}, want: "--last must be 1 or more, got 0"},
		{args: []string{"logs", "--archive", "out", "--follow", "--tail", "5"}, want: "--archive writes every line of each container; it does not take --follow, --tail"},
		{args: []string{"logs", "--archive", " "}, want: "--archive needs a directory"},
		{args: []string{"logs", "--archive", "out", "--revision", "-1"}, want: "--revision must be a revision number"},
	}
	t.Chdir(t.TempDir())
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cli, err := command.NewDockerCli()
			assert.NilError(t, err)
			root := NewRootCommand(cli)
			root.SetArgs(tc.args)
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err = root.Execute()
			var status dockercli.StatusError
			assert.Assert(t, errors.As(err, &status), "%v", err)
			assert.Check(t, is.Equal(status.StatusCode, ExitUsage))
			assert.Check(t, is.Contains(status.Status, tc.want))
		})
	}
}

// An interrupt wins over the rollback it caused: 130, with what serves now and no
// "context canceled"; a rollback without an interrupt of the command stays 3.
func TestExitErrorInterruptedRollback(t *testing.T) {
	rolledBack := func(cause error) error {
		return fmt.Errorf("deploy: %w", &rollout.RolledBackError{Services: []string{"web"}, Cause: cause})
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	var status dockercli.StatusError
	err := exitError(cancelled, rolledBack(errors.New("start container: interrupt signal received")))
	assert.Assert(t, errors.As(err, &status))
	assert.Check(t, is.Equal(status.StatusCode, ExitInterrupted))
	assert.Check(t, is.Equal(status.Status, "interrupted: web rolled back: the previous revision serves again and the new containers were removed\nthe next deploy converges from here"))

	err = exitError(context.Background(), fmt.Errorf("wait: %w", context.Canceled))
	assert.Assert(t, errors.As(err, &status))
	assert.Check(t, is.Equal(status.StatusCode, ExitInterrupted))

	err = exitError(context.Background(), rolledBack(fmt.Errorf("probe: %w", context.Canceled)))
	assert.Assert(t, errors.As(err, &status))
	assert.Check(t, is.Equal(status.StatusCode, ExitRolledBack), "an internal cancellation is no interrupt")

	err = exitError(context.Background(), rolledBack(errors.New("web-r2-1 not healthy within 10s")))
	assert.Assert(t, errors.As(err, &status))
	assert.Check(t, is.Equal(status.StatusCode, ExitRolledBack))
	assert.Check(t, is.Contains(status.Status, "the cause: web-r2-1 not healthy within 10s"))
}

// A multi-host run whose switched hosts went back exits 3, or 130 when interrupted,
// saying which hosts went back rather than one host's rollback.
func TestExitErrorHostsRolledBack(t *testing.T) {
	hostErr := &rollout.HostsRolledBackError{Action: "deploy", Failed: []string{"h3"}, RolledBack: []string{"h1", "h2"},
		Cause: fmt.Errorf("host h3: %w", &rollout.RolledBackError{Services: []string{"web"}, Cause: context.Canceled})}
	var status dockercli.StatusError
	err := exitError(context.Background(), hostErr)
	assert.Assert(t, errors.As(err, &status))
	assert.Check(t, is.Equal(status.StatusCode, ExitRolledBack))

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	err = exitError(cancelled, hostErr)
	assert.Assert(t, errors.As(err, &status))
	assert.Check(t, is.Equal(status.StatusCode, ExitInterrupted))
	assert.Check(t, is.Equal(status.Status, "interrupted: deploy failed on host h3; hosts h1, h2 rolled back to the revisions they ran before\nthe next deploy converges from here"))
}

// Every command's flags merge with the root's persistent flags (a shorthand taken
// twice, such as -f, panics only when the command runs).
func TestEveryCommandHelp(t *testing.T) {
	cli, err := command.NewDockerCli()
	assert.NilError(t, err)
	for _, c := range NewRootCommand(cli).Commands() {
		t.Run(c.Name(), func(t *testing.T) {
			root := NewRootCommand(cli)
			root.SetArgs([]string{c.Name(), "--help"})
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			assert.NilError(t, root.Execute())
		})
	}
}
