package plugin

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/docker/cli/cli/command"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

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
	assert.Check(t, is.DeepEqual(names, []string{"abort", "config", "deploy", "down", "history", "lint", "network", "pause", "plan", "promote", "ps", "resume", "rollback", "scan", "secrets", "unlock", "version"}))
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
	for _, flag := range []string{"to", "dry-run", "wait-timeout", "format"} {
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
