package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// TestSwarmHarness starts the second dockerd, runs a service on an overlay network in
// it, and checks that stopping it leaves no directory, mount or process behind.
func TestSwarmHarness(t *testing.T) {
	t.Parallel()
	s := setup(t)
	var dir string
	t.Run("daemon", func(t *testing.T) {
		d := startSwarm(t, s)
		dir = d.dir
		d.copyImage(imageRef("v1"))
		d.mustDocker("network", "create", "-d", "overlay", "h_net")
		begin := time.Now()
		d.mustDocker("service", "create", "-q", "--name", "h_web", "--network", "h_net", "--replicas", "2", imageRef("v1"))
		t.Logf("service create converged in %s", time.Since(begin).Round(time.Millisecond))
		out := d.mustDocker("service", "ls", "--format", "{{.Name}} {{.Replicas}}")
		assert.Equal(t, strings.TrimSpace(out), "h_web 2/2")
	})
	_, err := os.Stat(dir)
	assert.Assert(t, os.IsNotExist(err), "the swarm daemon's root %s is still there", dir)
	assert.Equal(t, len(mountsUnder(dir)), 0)
	assert.Equal(t, len(processesUnder(dir)), 0)
}

// swarmWeb is a project of 3 web replicas (health-checked every second) and a client
// service that only sleeps: the load runs inside its container, on the project's
// overlay network, so every request stays inside the swarm daemon's namespace. The
// healthcheck tolerates a slow exec on a loaded machine (timeout 3 s, 3 retries: a
// healthy task failing its checks makes Swarm roll back). The rollback's monitor is the
// healthcheck's 3 s rather than Swarm's 5 s: a rollback completes only once its monitor
// passed.
const swarmWeb = `
services:
  web:
    image: {{image:VERSION}}
    environment: {QUIET: "1"ENV}
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 1s, timeout: 3s, retries: 3}
    stop_grace_period: 5s
    deploy: {replicas: 3, endpoint_mode: MODE, rollback_config: {monitor: 3s}}
  client:
    image: {{image:v1}}
    command: ["sleep", "10m"]
`

func swarmProject(version, env string) string {
	return strings.NewReplacer("VERSION", version, "ENV", env, "MODE", swarmEndpointMode()).Replace(swarmWeb)
}

// swarmEndpointMode is vip (Swarm's default: a virtual IP balanced by IPVS) where the
// kernel has IPVS, else dnsrr (the name resolves to every task): without IPVS a VIP
// routes nothing ("no route to host"), as on kernels built without CONFIG_IP_VS.
func swarmEndpointMode() string {
	if _, err := os.Stat("/proc/sys/net/ipv4/vs"); err == nil {
		return "vip"
	}
	return "dnsrr"
}

// swarmProjectOn is a project of the test whose docker lifecycle commands go to d.
func swarmProjectOn(t *testing.T, s *suite, d *swarmDaemon, compose string) *project {
	p := s.newProject(t, compose)
	p.env = append(p.env, "DOCKER_HOST="+d.host)
	return p
}

// TestSwarmRollingUnderLoad deploys 3 replicas as Swarm services, then a new version
// while a client on the overlay network sends a bounded load: no request fails, and
// docker stack sees the project.
func TestSwarmRollingUnderLoad(t *testing.T) {
	s := setup(t)
	begin := time.Now()
	d := startSwarm(t, s)
	d.copyImage(imageRef("v1"))
	d.copyImage(imageRef("v2"))
	p := swarmProjectOn(t, s, d, swarmProject("v1", ""))

	r := p.mustLifecycle("deploy")
	assert.Assert(t, strings.Contains(r.stdout, "to Swarm"), r.String())
	t.Logf("first deploy done at %s", time.Since(begin).Round(time.Millisecond))
	services := d.mustDocker("stack", "services", p.name, "--format", "{{.Name}} {{.Replicas}}")
	assert.Equal(t, strings.TrimSpace(services), p.name+"_client 1/1\n"+p.name+"_web 3/3")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("network", "ls", "--filter", "label=com.docker.stack.namespace="+p.name, "--format", "{{.Name}} {{.Driver}}")), p.name+"_default overlay")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "inspect", p.name+"_web", "--format", "{{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}}")), "start-first rollback")

	again := p.mustLifecycle("deploy")
	assert.Assert(t, strings.Contains(again.stdout, "up to date"), again.String())

	p.write(swarmProject("v2", ""))
	dry := p.mustLifecycle("deploy", "--dry-run")
	assert.Assert(t, strings.Contains(dry.stdout, "update-service  "+p.name+"_web: image "+imageRef("v1")+" → "+imageRef("v2")), dry.String())
	assert.Assert(t, strings.Contains(dry.stdout, "up-to-date      "+p.name+"_client"), dry.String())
	assert.Equal(t, p.mustLifecycle("plan").stdout, dry.stdout)

	client := strings.TrimSpace(d.mustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+p.name+"_client"))
	assert.Assert(t, client != "" && !strings.Contains(client, "\n"), "client containers: %q", client)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	// Bounded: at most 20 × 35 = 700 requests, 35 s; long enough to outlast the rollout
	// on a loaded machine, so both versions answer.
	load := exec.CommandContext(ctx, "docker", "-H", d.host, "exec", client, "/testapp", "load", "http://web:8080/", "20", "35s")
	var out strings.Builder
	load.Stdout = &out
	assert.NilError(t, load.Start())
	time.Sleep(time.Second) // v1 answers first

	rolled := time.Now()
	r = p.mustLifecycle("deploy")
	t.Logf("rolling deploy of 3 replicas took %s\n%s", time.Since(rolled).Round(time.Millisecond), r.stderr)
	t.Log(d.mustDocker("service", "ps", p.name+"_web", "--format", "{{.Name}} {{.Image}} {{.CurrentState}} {{.DesiredState}}"))
	assert.NilError(t, load.Wait(), out.String())
	var rep struct {
		Sent, Failed int
		Bodies       map[string]int
		Errors       map[string]int
	}
	assert.NilError(t, json.Unmarshal([]byte(lastLine(out.String())), &rep), out.String())
	t.Logf("load during the rollout: %+v", rep)
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Assert(t, rep.Sent >= 550, "sent %d", rep.Sent)
	assert.Assert(t, rep.Bodies["v1"] > 0 && rep.Bodies["v2"] > 0, "bodies %v", rep.Bodies)
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "inspect", p.name+"_web", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}")), imageRef("v2")+" completed")
	assert.Assert(t, strings.Contains(d.mustDocker("stack", "ps", p.name, "--format", "{{.Name}} {{.Image}}"), p.name+"_web.1 "+imageRef("v2")))
	d.mustDocker("stack", "rm", p.name)
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), "")
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}

// swarmSecrets gives the client service a secret, a file of the project, readable by
// the image's user (65534) only, and a config (0444 by default, owned by root).
const swarmSecrets = `    secrets: [{source: token, target: token, uid: "65534", gid: "65534", mode: 0400}]
    configs: [{source: motd, target: /etc/motd}]
secrets:
  token: {file: ./token.txt}
configs:
  motd: {content: "hello from a config"}
`

func swarmProjectWithSecrets(version, env string) string {
	return swarmProject(version, env) + swarmSecrets
}

// swarmTaskContainer is the one running container of a Swarm service, waiting up to
// 10 s for a replaced task's container to be gone.
func swarmTaskContainer(t *testing.T, d *swarmDaemon, service string) string {
	t.Helper()
	var ids []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if ids = strings.Fields(d.mustDocker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+service)); len(ids) == 1 {
			return ids[0]
		}
	}
	t.Fatalf("service %s: %d running containers, want 1", service, len(ids))
	return ""
}

// TestSwarmRollbackExits3 deploys a version that never becomes healthy: Swarm rolls
// it back by itself (failure_action rollback) and deploy exits 3 within monitor + 10 s.
// Its client service reads a secret and a config: a changed secret value is a new
// version that rolls the client only, and the old version is removed.
func TestSwarmRollbackExits3(t *testing.T) {
	s := setup(t)
	begin := time.Now()
	d := startSwarm(t, s)
	d.copyImage(imageRef("v1"))
	// v2 is not on the swarm's only node yet: refused before anything is created.
	p := swarmProjectOn(t, s, d, swarmProjectWithSecrets("v2", ""))
	const firstToken, secondToken = "token-FIRST-value\n", "token-SECOND-value\n"
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "token.txt"), []byte(firstToken), 0o600))
	r := p.lifecycle("deploy")
	assert.Equal(t, r.code, 1, r.String())
	assert.Assert(t, strings.Contains(r.stderr, "the swarm's only node, lacks image "+imageRef("v2")), r.String())
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), "")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("network", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), "")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("secret", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), "")
	d.copyImage(imageRef("v2"))
	p.write(swarmProjectWithSecrets("v1", ""))
	p.mustLifecycle("deploy")
	// ps on the manager lists the project's tasks (docs/swarm.md): 3 web, 1 client.
	psBegin := time.Now()
	tasks := swarmPs(t, p)
	assert.Equal(t, len(tasks), 4, "%+v", tasks)
	for i, task := range tasks {
		want := map[bool]string{true: "client", false: "web"}[i == 0]
		assert.Equal(t, task.Service, want, "%+v", tasks)
		assert.Equal(t, task.Name, fmt.Sprintf("%s_%s.%d", p.name, want, task.Number), "%+v", task)
		assert.Assert(t, task.State == "running" && task.DesiredState == "running" && task.Image == imageRef("v1") && task.Node != "" && task.Project == p.name, "%+v", task)
	}
	t.Logf("ps on Swarm took %s", time.Since(psBegin).Round(time.Millisecond))
	client := swarmTaskContainer(t, d, p.name+"_client")
	assert.Equal(t, d.mustDocker("exec", client, "/testapp", "cat", "/run/secrets/token"), firstToken)
	assert.Equal(t, d.mustDocker("exec", client, "/testapp", "cat", "/etc/motd"), "hello from a config")

	p.write(swarmProjectWithSecrets("v2", `, NEVER_HEALTHY: "1"`))
	monitor, err := time.ParseDuration(strings.TrimSpace(d.mustDocker("service", "inspect", p.name+"_web", "--format", "{{.Spec.UpdateConfig.Monitor}}")))
	assert.NilError(t, err)
	deployed := time.Now()
	r = p.lifecycle("deploy")
	took := time.Since(deployed)
	t.Logf("deploy of a never-healthy version exited %d after %s (monitor %s)", r.code, took.Round(time.Millisecond), monitor)
	exited := time.Now()
	assert.Equal(t, r.code, 3, r.String())
	assert.Assert(t, strings.Contains(r.stderr, "web rolled back by Swarm"), r.String())
	// The bound counts from the start of the first new task: before it, the time goes to
	// the engine creating a container, which on a loaded machine alone takes 3–10 s.
	ids := strings.Fields(d.mustDocker("ps", "-aq", "--filter", "label=com.docker.swarm.service.name="+p.name+"_web", "--filter", "ancestor="+imageRef("v2")))
	assert.Assert(t, len(ids) > 0, "no task of the new version ran")
	var first time.Time
	for _, id := range ids {
		started, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(d.mustDocker("inspect", "--format", "{{.State.StartedAt}}", id)))
		assert.NilError(t, err)
		if first.IsZero() || started.Before(first) {
			first = started
		}
	}
	t.Logf("first new task started %s after the deploy began; deploy exited %s after that", first.Sub(deployed).Round(time.Millisecond), exited.Sub(first).Round(time.Millisecond))
	assert.Assert(t, exited.Sub(first) <= monitor+10*time.Second, "exit 3 came %s after the new task started, monitor %s", exited.Sub(first), monitor)
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "inspect", p.name+"_web", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}")), imageRef("v1")+" rollback_completed")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "ls", "--filter", "name="+p.name+"_web", "--format", "{{.Replicas}}")), "3/3")
	// ps -a shows the history too: the rolled-back v2 tasks, shut down.
	var v2 int
	for _, task := range swarmPs(t, p, "-a", "web") {
		if task.Image == imageRef("v2") {
			v2++
			assert.Equal(t, task.DesiredState, "shutdown", "%+v", task)
		}
	}
	assert.Assert(t, v2 > 0, "ps -a shows no task of the rolled-back version")

	// A new value of the client's secret: a new version, the client rolls, web (rolled
	// back to v1, as the file says again) stays; the old version is removed.
	secretsBegin := time.Now()
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "token.txt"), []byte(secondToken), 0o600))
	p.write(swarmProjectWithSecrets("v1", ""))
	oldSecret := strings.TrimSpace(d.mustDocker("secret", "ls", "--format", "{{.Name}}", "--filter", "label=com.docker.stack.namespace="+p.name))
	newSecret := p.name + "_token_" + sha8(secondToken)
	assert.Equal(t, oldSecret, p.name+"_token_"+sha8(firstToken))
	plan := p.mustLifecycle("plan")
	assert.Assert(t, strings.Contains(plan.stdout, "create-secret   "+newSecret+": secret token changed, used by client"), plan.String())
	assert.Assert(t, strings.Contains(plan.stdout, "update-service  "+p.name+"_client: secret token changed"), plan.String())
	assert.Assert(t, strings.Contains(plan.stdout, "remove-secret   "+oldSecret), plan.String())
	assert.Assert(t, strings.Contains(plan.stdout, "up-to-date      "+p.name+"_web"), plan.String())
	r = p.mustLifecycle("deploy")
	assert.Assert(t, !strings.Contains(r.String(), "SECOND") && !strings.Contains(plan.String(), "SECOND"), "a secret value in the output:\n%s\n%s", plan, r)
	rolled := swarmTaskContainer(t, d, p.name+"_client")
	assert.Assert(t, rolled != client, "the client did not roll")
	assert.Equal(t, d.mustDocker("exec", rolled, "/testapp", "cat", "/run/secrets/token"), secondToken)
	assert.Equal(t, strings.TrimSpace(d.mustDocker("secret", "ls", "--format", "{{.Name}}", "--filter", "label=com.docker.stack.namespace="+p.name)), newSecret)
	assert.Equal(t, strings.TrimSpace(d.mustDocker("config", "ls", "--format", "{{.Name}}", "--filter", "label=com.docker.stack.namespace="+p.name)), p.name+"_motd_"+sha8("hello from a config"))
	assert.Assert(t, strings.Contains(p.mustLifecycle("deploy").stdout, "up to date"))
	t.Logf("secret change: plan, deploy (client rolled) and checks took %s", time.Since(secretsBegin).Round(time.Millisecond))

	// history on Swarm: web rolled back by Swarm (no previous spec kept), the client
	// updated for its secret (same image before and after).
	hist := map[string]struct{ Image, PreviousImage, UpdateState string }{}
	for _, l := range lines(p.mustLifecycle("history", "--format", "json").stdout) {
		var row struct{ Service, Image, PreviousImage, UpdateState string }
		assert.NilError(t, json.Unmarshal([]byte(l), &row), l)
		hist[row.Service] = struct{ Image, PreviousImage, UpdateState string }{row.Image, row.PreviousImage, row.UpdateState}
	}
	t.Logf("history on Swarm: %+v", hist)
	assert.Equal(t, hist["web"].Image, imageRef("v1"))
	assert.Equal(t, hist["web"].UpdateState, "rollback_completed")
	assert.Equal(t, hist["client"].Image, imageRef("v1"))
	assert.Equal(t, hist["client"].PreviousImage, imageRef("v1"))
	assert.Equal(t, hist["client"].UpdateState, "completed")

	// logs on Swarm: the tasks' lines through the manager, prefixed service-slot.
	logsBegin := time.Now()
	r = p.mustLifecycle("logs", "--tail", "50", "web")
	t.Logf("logs on Swarm took %s", time.Since(logsBegin).Round(time.Millisecond))
	assert.Assert(t, regexp.MustCompile(`(?m)^web-[123] +\| .*version v1 listening on `).MatchString(r.stdout), r.String())
	assert.Assert(t, !strings.Contains(r.stdout, "client-"), r.String())

	// stats on Swarm (one node): a row per task container, grouped by service.
	statsBegin := time.Now()
	r = p.mustLifecycle("stats", "--no-stream", "--format", "json")
	t.Logf("stats --no-stream on Swarm took %s", time.Since(statsBegin).Round(time.Millisecond))
	var report struct {
		Services []struct {
			Service   string
			Revisions []struct{ Containers []struct{ Name string } }
		}
	}
	assert.NilError(t, json.Unmarshal([]byte(lastLine(r.stdout)), &report), r.String())
	perService := map[string]int{}
	for _, svc := range report.Services {
		for _, rev := range svc.Revisions {
			perService[svc.Service] += len(rev.Containers)
		}
	}
	assert.DeepEqual(t, perService, map[string]int{"web": 3, "client": 1})

	// rollback on Swarm: web keeps no previous spec (Swarm rolled it back by itself):
	// refused, nothing changed. The client updated to v2 goes back to v1.
	rollbackBegin := time.Now()
	r = p.lifecycle("rollback", "web")
	assert.Equal(t, r.code, 1, r.String())
	assert.Assert(t, strings.Contains(r.stderr, "Swarm keeps no previous spec for web of project "+p.name), r.String())
	p.write(strings.Replace(swarmProjectWithSecrets("v1", ""), "image: {{image:v1}}\n    command", "image: {{image:v2}}\n    command", 1))
	p.mustLifecycle("deploy")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("service", "inspect", p.name+"_client", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}")), imageRef("v2"))
	updated := time.Now()
	r = p.mustLifecycle("rollback", "client")
	t.Logf("rollback on Swarm of the client took %s (its update to v2 %s)", time.Since(updated).Round(time.Millisecond), updated.Sub(rollbackBegin).Round(time.Millisecond))
	assert.Assert(t, strings.Contains(r.stdout, "Rolled back client on Swarm"), r.String())
	back := swarmTaskContainer(t, d, p.name+"_client")
	assert.Equal(t, strings.TrimSpace(d.mustDocker("inspect", "--format", "{{.Config.Image}}", back)), imageRef("v1"))
	histLines := lines(p.mustLifecycle("history", "--format", "json", "client").stdout)
	assert.Equal(t, len(histLines), 1, "%q", histLines)
	for _, l := range histLines {
		var row struct{ Service, Image, PreviousImage, UpdateState string }
		assert.NilError(t, json.Unmarshal([]byte(l), &row), l)
		assert.DeepEqual(t, row, struct{ Service, Image, PreviousImage, UpdateState string }{"client", imageRef("v1"), imageRef("v2"), "rollback_completed"})
	}

	// down removes the services, then (their tasks gone) the network, the secret and the
	// config: nothing with the namespace label is left on the manager.
	downBegin := time.Now()
	r = p.mustLifecycle("down")
	t.Logf("down on Swarm took %s", time.Since(downBegin).Round(time.Millisecond))
	assert.Assert(t, strings.Contains(r.stdout, "Removed project "+p.name+" from Swarm"), r.String())
	for _, kind := range []string{"service", "network", "secret", "config"} {
		assert.Equal(t, strings.TrimSpace(d.mustDocker(kind, "ls", "-q", "--filter", "label=com.docker.stack.namespace="+p.name)), "", "%ss left after down", kind)
	}
	// Down waited for the tasks to be gone; the node removes their containers right after.
	var left string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if left = strings.TrimSpace(d.mustDocker("ps", "-a", "--format", "{{.Names}} {{.Status}}", "--filter", "label=com.docker.stack.namespace="+p.name)); left == "" {
			break
		}
	}
	assert.Equal(t, left, "", "containers left 10 s after down")
	t.Logf("down on Swarm: containers gone %s after it began", time.Since(downBegin).Round(time.Millisecond))
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}

// swarmTaskRow is a line of `ps --format json` on Swarm (docs/swarm.md).
type swarmTaskRow struct {
	ID, Name, Project, Service, SwarmService, Revision, Role, Node, DesiredState, State, Image, Error, Ports string
	Number                                                                                                   int
}

func swarmPs(t *testing.T, p *project, args ...string) []swarmTaskRow {
	t.Helper()
	r := p.mustLifecycle(append([]string{"ps", "--format", "json"}, args...)...)
	var out []swarmTaskRow
	for _, l := range lines(r.stdout) {
		var row swarmTaskRow
		assert.NilError(t, json.Unmarshal([]byte(l), &row), r.String())
		out = append(out, row)
	}
	return out
}

func sha8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func lastLine(s string) string {
	l := lines(s)
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1]
}
