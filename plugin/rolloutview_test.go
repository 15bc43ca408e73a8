package plugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	dockercli "github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
	"gotest.tools/v3/golden"

	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

var viewStart = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// canaryView is a canary of web at its first step (10 %), with a rolling worker beside it.
func canaryView() rollout.RolloutView {
	return rollout.RolloutView{
		Project: "demo", Time: viewStart.Add(12500 * time.Millisecond), Command: "docker lifecycle deploy",
		Host: "ci-runner-7", PID: 4242, Since: viewStart,
		Services: []rollout.ServiceView{{
			Service: "web", Strategy: "canary", Revision: 2,
			Canary: &rollout.CanaryView{Step: 1, Steps: 2, Weight: 10, LeftMs: 7300},
			Revisions: []rollout.RevisionView{
				{Revision: 1, Routed: true, Weight: 90, Traffic: &rollout.TrafficView{RequestsPerSecond: 121, ErrorRate: 0, P99Ms: 3.14},
					Containers: []rollout.ContainerView{{Name: "demo-web-r1-1", State: "running", Health: "healthy"}, {Name: "demo-web-r1-2", State: "running", Health: "healthy"}}},
				{Revision: 2, New: true, Routed: true, Weight: 10, Traffic: &rollout.TrafficView{RequestsPerSecond: 13.25, ErrorRate: 0.0125, P99Ms: 27.6},
					Containers: []rollout.ContainerView{{Name: "demo-web-r2-1", State: "running", Health: "healthy"}}},
			},
		}, {
			Service: "worker", Strategy: "rolling", Revision: 4,
			Revisions: []rollout.RevisionView{
				{Revision: 3, Containers: []rollout.ContainerView{{Name: "demo-worker-r3-2", State: "running"}}},
				{Revision: 4, New: true, Containers: []rollout.ContainerView{{Name: "demo-worker-r4-1", State: "running", Health: "starting"}}},
			},
		}, {
			Service: "db", Strategy: "recreate", Revision: 3, Revisions: []rollout.RevisionView{},
		}},
	}
}

func TestRenderRolloutViewCanaryStep(t *testing.T) {
	golden.Assert(t, strings.Join(renderRolloutView(canaryView(), 0), "\n")+"\n", "rolloutview-canary-step.golden")
}

func TestRenderRolloutViewPausedWithVerdicts(t *testing.T) {
	v := canaryView()
	v.Services = v.Services[:1]
	web := &v.Services[0]
	web.Canary = &rollout.CanaryView{Step: 2, Steps: 2, Weight: 50, LeftMs: 41000, Paused: true,
		Verdicts: []string{"step 1/2 (10%) passed: revision 2: 132 requests, 0.00% errors, p99 3.1ms"}}
	web.Revisions[0].Weight, web.Revisions[1].Weight = 50, 50
	golden.Assert(t, strings.Join(renderRolloutView(v, 0), "\n")+"\n", "rolloutview-paused.golden")
}

// TestRenderRolloutViewPromoting: the last step passed, the time is up, the router goes
// to 100 %; the old revision gets no request any more.
func TestRenderRolloutViewPromoting(t *testing.T) {
	v := canaryView()
	v.Services = v.Services[:1]
	web := &v.Services[0]
	web.Canary = &rollout.CanaryView{Step: 2, Steps: 2, Weight: 50, Verdicts: []string{
		"step 1/2 (10%) passed: revision 2: 132 requests, 0.00% errors, p99 3.1ms",
		"step 2/2 (50%) passed: revision 2: 612 requests, 0.00% errors, p99 3.3ms"}}
	web.Revisions[0].Weight, web.Revisions[0].Traffic = 0, &rollout.TrafficView{}
	web.Revisions[1].Weight = 100
	golden.Assert(t, strings.Join(renderRolloutView(v, 0), "\n")+"\n", "rolloutview-promoting.golden")
}

func TestRenderRolloutViewRolledBack(t *testing.T) {
	v := canaryView()
	v.Services = v.Services[:1]
	v.Ended, v.Time = true, viewStart.Add(34*time.Second)
	web := &v.Services[0]
	web.Result = rollout.ResultRolledBack
	web.Reason = "canary analysis failed: error rate 19.80% above max-error-rate 5.00%"
	web.Canary.Verdicts = []string{"step 1/2 (10%) failed: error rate 19.80% above max-error-rate 5.00% (revision 2: 101 requests, 19.80% errors, p99 2.0ms)"}
	web.Revisions = web.Revisions[:1]
	web.Revisions[0].Weight, web.Revisions[0].Traffic = 100, nil
	golden.Assert(t, strings.Join(renderRolloutView(v, 0), "\n")+"\n", "rolloutview-rolled-back.golden")
}

// TestRenderRolloutViewRollback: a rollback's target revision is the one it goes back to.
func TestRenderRolloutViewRollback(t *testing.T) {
	v := canaryView()
	v.Command, v.Rollback = "docker lifecycle rollback", true
	v.Services = []rollout.ServiceView{{Service: "api", Strategy: "rolling", Revision: 3, Revisions: []rollout.RevisionView{
		{Revision: 3, New: true, Routed: true, Weight: 67, Traffic: &rollout.TrafficView{RequestsPerSecond: 40, P99Ms: 1.5},
			Containers: []rollout.ContainerView{{Name: "demo-api-r3-1", State: "running", Health: "healthy"}, {Name: "demo-api-r3-2", State: "running", Health: "healthy"}}},
		{Revision: 4, Routed: true, Weight: 33, Traffic: &rollout.TrafficView{RequestsPerSecond: 20, P99Ms: 1.4},
			Containers: []rollout.ContainerView{{Name: "demo-api-r4-2", State: "running", Health: "healthy"}}},
	}}}
	golden.Assert(t, strings.Join(renderRolloutView(v, 0), "\n")+"\n", "rolloutview-rollback.golden")
}

func TestRenderRolloutViewBeforeThePlan(t *testing.T) {
	v := rollout.RolloutView{Project: "demo", Time: viewStart.Add(2 * time.Second), Command: "docker lifecycle rollback", Host: "laptop", PID: 7, Since: viewStart,
		Warnings: []string{"list the containers of project demo: engine busy"}}
	golden.Assert(t, strings.Join(renderRolloutView(v, 0), "\n")+"\n", "rolloutview-waiting.golden")
}

// TestRenderRolloutViewWidth: every line fits the terminal, or the in-place redraw
// would count wrapped rows wrong.
func TestRenderRolloutViewWidth(t *testing.T) {
	for _, width := range []int{20, 60, 200} {
		for _, line := range renderRolloutView(canaryView(), width) {
			assert.Check(t, len([]rune(line)) <= width, "width %d: %q", width, line)
		}
	}
	lines := renderRolloutView(canaryView(), 40)
	assert.Check(t, strings.HasSuffix(lines[0], "…"), lines[0])
}

// TestRolloutViewKey: plain mode prints again when the weights move, not when only the
// rates or the time left do.
func TestRolloutViewKey(t *testing.T) {
	a, b := canaryView(), canaryView()
	b.Time = b.Time.Add(time.Second)
	b.Services[0].Canary.LeftMs = 6300
	b.Services[0].Revisions[0].Traffic.RequestsPerSecond = 99
	assert.Check(t, is.Equal(rolloutViewKey(a), rolloutViewKey(b)))
	b.Services[0].Revisions[0].Weight = 50
	assert.Check(t, rolloutViewKey(a) != rolloutViewKey(b))
	assert.Check(t, is.Equal(a.Services[0].Revisions[0].Traffic.RequestsPerSecond, 121.0), "the key must not change the view")
}

// TestDeployProgressModes: only a terminal (auto on a TTY, or tty) gets the rollout view;
// plain, json and quiet stay what they were.
func TestDeployProgressModes(t *testing.T) {
	var stderr bytes.Buffer
	cli, err := command.NewDockerCli(command.WithErrorStream(&stderr))
	assert.NilError(t, err)
	for mode, wantView := range map[string]bool{"auto": false, "plain": false, "json": false, "quiet": false, "tty": true} {
		events, view, err := newDeployProgress(cli, mode)
		assert.NilError(t, err)
		assert.Check(t, is.Equal(view != nil, wantView), mode)
		if view != nil {
			view(canaryView())
		}
		assert.NilError(t, events.Close())
	}
	assert.Check(t, is.Contains(stderr.String(), "step 1/2 at 10%"), "tty draws the view")
}

// TestWatchScreenPlainAndJSON: plain prints a view again only when it changed beyond its
// rates and time left; json prints every view.
func TestWatchScreenPlainAndJSON(t *testing.T) {
	var stderr bytes.Buffer
	cli, err := command.NewDockerCli(command.WithErrorStream(&stderr))
	assert.NilError(t, err)
	moved := canaryView()
	moved.Services[0].Canary.LeftMs = 100
	weights := canaryView()
	weights.Services[0].Revisions[0].Weight, weights.Services[0].Revisions[1].Weight = 50, 50

	plain := newWatchScreen(cli, "auto") // stderr is no terminal: plain
	for _, v := range []rollout.RolloutView{canaryView(), moved, weights} {
		plain.show(v)
	}
	plain.close()
	assert.Check(t, is.Equal(strings.Count(stderr.String(), "Rollout of demo"), 2), stderr.String())
	assert.Check(t, !strings.Contains(stderr.String(), "\x1b["), "no escape sequence off a terminal")

	stderr.Reset()
	js := newWatchScreen(cli, "json")
	for _, v := range []rollout.RolloutView{canaryView(), moved, weights} {
		js.show(v)
	}
	var got []rollout.RolloutView
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		var v rollout.RolloutView
		assert.NilError(t, json.Unmarshal([]byte(line), &v))
		got = append(got, v)
	}
	assert.Assert(t, is.Len(got, 3))
	assert.Check(t, is.Equal(got[2].Services[0].Revisions[1].Weight, 50))
	assert.Check(t, is.Equal(got[0].Services[0].Canary.LeftMs, int64(7300)))
}

// TestWatchResult: watch exits as the rollout did and says so.
func TestWatchResult(t *testing.T) {
	var stdout bytes.Buffer
	cli, err := command.NewDockerCli(command.WithOutputStream(&stdout))
	assert.NilError(t, err)
	ended := func(results ...string) rollout.RolloutView {
		v := canaryView()
		v.Ended, v.Services = true, v.Services[:len(results)]
		for i, r := range results {
			v.Services[i].Result = r
		}
		return v
	}
	assert.NilError(t, watchResult(cli, ended(rollout.ResultDeployed, rollout.ResultDeployed)))
	assert.Check(t, is.Equal(stdout.String(), "Rollout of demo by docker lifecycle deploy ended: web deployed (revision 2), worker deployed (revision 4)\n"))

	err = watchResult(cli, ended(rollout.ResultRolledBack, rollout.ResultDeployed))
	var status dockercli.StatusError
	assert.Assert(t, errors.As(err, &status), "%v", err)
	assert.Check(t, is.Equal(status.StatusCode, ExitRolledBack))
	assert.Check(t, is.ErrorContains(err, "web rolled-back (revision 2)"))

	err = watchResult(cli, ended(rollout.ResultDeployed, rollout.ResultFailed))
	assert.Check(t, !errors.As(err, &status), "a failure exits 1: %v", err)
	assert.Check(t, is.ErrorContains(err, "docker lifecycle history worker"))
}
