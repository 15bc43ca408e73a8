package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// tmuxServer is a tmux server on a socket of the test's own (tmux -S, in the test's
// temporary directory, so the socket file goes with it), killed when the test ends,
// pass or fail.
type tmuxServer struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T) *tmuxServer {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		skipFor(t, "tmux", "install tmux (apt-get install tmux)", err)
	}
	tm := &tmuxServer{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock")}
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", tm.socket, "kill-server").Run() })
	return tm
}

func (tm *tmuxServer) tmux(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", tm.socket}, args...)...).CombinedOutput()
	assert.NilError(tm.t, err, "tmux %s: %s", strings.Join(args, " "), out)
	return string(out)
}

// capture is what the pane shows now.
func (tm *tmuxServer) capture(target string) string {
	tm.t.Helper()
	return tm.tmux("capture-pane", "-p", "-t", target)
}

// waitScreen captures the pane until ok accepts its screen, and returns that screen.
func (tm *tmuxServer) waitScreen(target, what string, timeout time.Duration, ok func(string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		if last = tm.capture(target); ok(last) {
			return last
		}
		time.Sleep(200 * time.Millisecond)
	}
	tm.t.Fatalf("pane %s never showed %s within %s; last screen:\n%s", target, what, timeout, last)
	return ""
}

// viewWeights reads the web service's revision weights off a rollout view on screen:
// "r1=90 r2=10", or "" when the screen shows no weight.
func viewWeights(screen string) string {
	var parts []string
	for _, m := range viewWeightRow.FindAllStringSubmatch(screen, -1) {
		parts = append(parts, fmt.Sprintf("r%s=%s", m[1], m[2]))
	}
	return strings.Join(parts, " ")
}

var (
	viewWeightRow = regexp.MustCompile(`(?m)^\s+r(\d+)(?: \(new\))?\s+(\d+)%`)
	viewPID       = regexp.MustCompile(`docker lifecycle deploy \(pid (\d+) on `)
)

// TestRolloutViewInTerminal: a canary deploy in a real terminal (tmux) draws the rollout
// view below its progress, and the weights it shows move: 90/10 at the first step, 50/50
// at the second; `watch` in a second pane shows the same rollout (the same deploy's pid
// and weights) and ends with its result; so do watches without a terminal (plain, json),
// and `rollback` draws the view of its way back.
func TestRolloutViewInTerminal(t *testing.T) {
	s := setup(t)
	started := time.Now()
	port := freePort(t)
	canary := func(version string) string {
		return rolloutYAML(version, port, `    x-lifecycle:
      strategy: canary
      canary:
        steps: [{weight: 10, pause: 4s}, {weight: 50, pause: 4s}]`)
	}
	p := s.newProject(t, canary("v1"))
	p.mustLifecycle("deploy")
	waitAnswers(t, port, "v1", 30*time.Second)
	load := startRateLoad(t, port, "/", 20, time.Minute)
	defer load.stop()
	p.write(canary("v2"))
	t.Logf("v1 deployed in %s", time.Since(started).Round(100*time.Millisecond))

	tm := newTmux(t)
	lifecycle := func(args string) string {
		// The pane stays after the command so its last screen can be read.
		return fmt.Sprintf("cd %s && env DOCKER_CONFIG=%s docker lifecycle -p %s %s; echo EXIT=$?; sleep 60", p.dir, s.configDir, p.name, args)
	}
	tm.tmux("new-session", "-d", "-x", "200", "-y", "50", "-s", "view", "-n", "watch", lifecycle("watch --wait"))
	// Without a terminal: the view printed when it changes, and as JSON.
	plain := p.startTimedLifecycle("watch", "--wait")
	asJSON := p.startTimedLifecycle("watch", "--wait", "--progress", "json")
	watchStarted := time.Now()
	tm.tmux("new-window", "-d", "-t", "view", "-n", "deploy", lifecycle("deploy"))

	first := tm.waitScreen("view:deploy", "the first canary step", time.Minute, func(s string) bool {
		return strings.Contains(s, "step 1/2 at 10%") && viewWeights(s) == "r1=90 r2=10"
	})
	t.Logf("deploy, first step:\n%s", first)
	m := viewPID.FindStringSubmatch(first)
	assert.Assert(t, m != nil, "the view names the deploy: %s", first)
	pid := m[1]
	second := tm.waitScreen("view:deploy", "the second canary step", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "step 2/2 at 50%") && viewWeights(s) == "r1=50 r2=50"
	})
	t.Logf("deploy, second step:\n%s", second)
	assert.Check(t, is.Contains(second, "✔ step 1/2 (10%) passed"))
	assert.Check(t, regexp.MustCompile(`r2 \(new\)\s+50%\s+\d+\.\d`).MatchString(second), "the router's rate of the new revision is shown")

	watched := tm.waitScreen("view:watch", "the same rollout", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "step 2/2 at 50%") && viewWeights(s) == "r1=50 r2=50" || strings.Contains(s, "ended")
	})
	t.Logf("watch:\n%s", watched)
	assert.Check(t, is.Contains(watched, "docker lifecycle deploy (pid "+pid+" on "), "watch shows the deploy of the first pane")

	end := tm.waitScreen("view:deploy", "the deploy's end", time.Minute, func(s string) bool { return strings.Contains(s, "EXIT=") })
	t.Logf("deploy, end:\n%s", end)
	assert.Check(t, is.Contains(end, "EXIT=0"))
	assert.Check(t, is.Contains(end, "✔ deployed"))
	assert.Check(t, regexp.MustCompile(`r2 \(new\)\s+100%`).MatchString(end), "the last view shows where the traffic went")
	assert.Check(t, is.Contains(end, "✔ step 2/2 (50%) passed"))
	watchEnd := tm.waitScreen("view:watch", "watch's end", 30*time.Second, func(s string) bool { return strings.Contains(s, "EXIT=") })
	t.Logf("watch, end:\n%s", watchEnd)
	assert.Check(t, is.Contains(watchEnd, "EXIT=0"))
	assert.Check(t, is.Contains(watchEnd, "ended after"))
	assert.Check(t, is.Contains(watchEnd, "✔ deployed"))
	assert.Check(t, is.Contains(watchEnd, "✔ step 2/2 (50%) passed"))
	assert.Check(t, is.Contains(watchEnd, "web deployed (revision 2)"))

	code, out := plain.wait()
	t.Logf("watch --progress plain:\n%s", out)
	assert.Check(t, is.Equal(code, 0), out)
	for _, want := range []string{"step 1/2 at 10%", "step 2/2 at 50%", "✔ step 2/2 (50%) passed", "ended after"} {
		assert.Check(t, is.Contains(out, want), "watch --progress plain")
	}
	assert.Check(t, !strings.Contains(out, "\x1b["), "no cursor movement without a terminal")
	code, out = asJSON.wait()
	assert.Check(t, is.Equal(code, 0), out)
	// What following a rollout costs (docs/benchmarks.md): the docker CLI and the plugin.
	ps := asJSON.cmd.ProcessState
	t.Logf("watch --progress json: %s of CPU over %s", (ps.UserTime() + ps.SystemTime()).Round(time.Millisecond), time.Since(watchStarted).Round(100*time.Millisecond))
	var splits []string
	for _, line := range lines(out) {
		var v struct {
			Ended    bool `json:"ended"`
			Services []struct {
				Result    string `json:"result"`
				Revisions []struct {
					Revision int `json:"revision"`
					Weight   int `json:"weight"`
				} `json:"revisions"`
			} `json:"services"`
		}
		assert.NilError(t, json.Unmarshal([]byte(line), &v), line)
		if len(v.Services) == 1 && len(v.Services[0].Revisions) == 2 {
			r := v.Services[0].Revisions
			split := fmt.Sprintf("r%d=%d r%d=%d", r[0].Revision, r[0].Weight, r[1].Revision, r[1].Weight)
			if !slices.Contains(splits, split) {
				splits = append(splits, split)
			}
		}
		if v.Ended {
			assert.Check(t, is.Equal(v.Services[0].Result, "deployed"), line)
		}
	}
	assert.Check(t, is.Contains(splits, "r1=90 r2=10"), "watch --progress json: %v", splits)
	assert.Check(t, is.Contains(splits, "r1=50 r2=50"), "watch --progress json: %v", splits)

	// rollback draws the same view: back to revision 1, its result at the end.
	tm.tmux("new-window", "-d", "-t", "view", "-n", "rollback", lifecycle("rollback web"))
	back := tm.waitScreen("view:rollback", "the rollback's end", time.Minute, func(s string) bool { return strings.Contains(s, "EXIT=") })
	t.Logf("rollback, end:\n%s", back)
	assert.Check(t, is.Contains(back, "EXIT=0"))
	assert.Check(t, is.Contains(back, "docker lifecycle rollback (pid "))
	assert.Check(t, is.Contains(back, "back to revision 1 · ✔ rollback"))
	assert.Check(t, regexp.MustCompile(`r1 \(back\)\s+100%`).MatchString(back), "the traffic went back to revision 1")

	// With no rollout running, watch says so and exits 0.
	r := p.mustLifecycle("watch")
	assert.Check(t, is.Contains(r.stdout, "No rollout of project "+p.name+" is running"))
	t.Logf("the test took %s after the suite's setup", time.Since(started).Round(100*time.Millisecond))
	rep := load.stop()
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
}
