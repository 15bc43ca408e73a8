package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// swarmTwoNodeProject is swarmProject with 2 web replicas: Swarm spreads a new service's
// tasks over the nodes, one on each.
func swarmTwoNodeProject(version string) string {
	return strings.Replace(swarmProject(version, ""), "replicas: 3", "replicas: 2", 1)
}

// swarmTask is a running task of a service as the manager sees it: its node and its
// address on the project's overlay network.
type swarmTask struct{ Node, Addr string }

func swarmRunningTasks(t *testing.T, c *swarmCluster, p *project, service string) []swarmTask {
	t.Helper()
	ids := strings.Fields(c.Nodes[0].mustDocker("service", "ps", "-q", "--filter", "desired-state=running", p.name+"_"+service))
	var out []swarmTask
	for _, id := range ids {
		f := strings.Fields(c.Nodes[0].mustDocker("inspect", "--type", "task", "--format",
			`{{.Status.State}} {{.NodeID}} {{range .NetworksAttachments}}{{if eq .Network.Spec.Name "`+p.name+`_default"}}{{index .Addresses 0}}{{end}}{{end}}`, id))
		if len(f) == 3 && f[0] == "running" {
			out = append(out, swarmTask{Node: f[1], Addr: strings.Split(f[2], "/")[0]})
		}
	}
	return out
}

// TestSwarmRollingAcrossTwoNodes runs a swarm of two nodes (startSwarmCluster): a rolling
// service of 2 replicas, one on each node, is updated v1 → v2 while a client on the
// overlay network, on one of the nodes, sends a bounded load through the service name
// (so across the VXLAN between the nodes too): no request fails. Then an image present
// on the manager only: deploy warns that the other node has it only if it was loaded
// there, the task placed on the worker fails, Swarm rolls back and deploy exits 3.
// Once the cluster is stopped, nothing of it is left: roots, mounts, processes, the
// bridge's namespace.
func TestSwarmRollingAcrossTwoNodes(t *testing.T) {
	t.Parallel() // as TestSwarmBlueGreen: every packet stays in this test's namespaces
	s := setup(t)
	var c *swarmCluster
	t.Run("cluster", func(t *testing.T) {
		c = startSwarmCluster(t, s, 2)
		rollingAcrossTwoNodes(t, s, c)
	})
	if c == nil {
		return // the cluster did not start: the subtest said why
	}
	stopped := time.Now()
	for _, d := range c.Nodes {
		_, err := os.Stat(d.dir)
		assert.Assert(t, os.IsNotExist(err), "a node's root %s is still there", d.dir)
		assert.Equal(t, len(mountsUnder(d.dir)), 0)
		assert.Equal(t, len(processesUnder(d.dir)), 0)
	}
	_, err := os.Stat("/run/netns/" + c.netns)
	assert.Assert(t, os.IsNotExist(err), "the bridge's namespace %s is still there", c.netns)
	t.Logf("checked the cleanup in %s", time.Since(stopped).Round(time.Millisecond))
}

func rollingAcrossTwoNodes(t *testing.T, s *suite, c *swarmCluster) {
	begin := time.Now()
	c.copyImage(imageRef("v1"))
	c.copyImage(imageRef("v2"))
	mgr := c.Nodes[0]
	nodes := c.nodeIDs(t)
	p := swarmProjectOn(t, s, mgr, swarmTwoNodeProject("v1"))

	r := p.mustLifecycle("deploy")
	t.Logf("first deploy done at %s", time.Since(begin).Round(time.Millisecond))
	// Loaded, not pulled: no registry digest, so the manager cannot vouch for the worker.
	noRegistry := fmt.Sprintf(`service "web": image %s was built or loaded here and is in no registry: the other node has it only if it was loaded there too`, imageRef("v1"))
	assert.Assert(t, strings.Contains(r.stderr, noRegistry), r.String())

	web := swarmRunningTasks(t, c, p, "web")
	assert.Equal(t, len(web), 2, "%+v", web)
	assert.Assert(t, web[0].Node != web[1].Node, "both web tasks on one node: %+v", web)
	clients := swarmRunningTasks(t, c, p, "client")
	assert.Equal(t, len(clients), 1, "%+v", clients)
	clientNode := c.Nodes[nodes[clients[0].Node]]
	client := swarmTaskContainer(t, clientNode, p.name+"_client")
	// Each web task answers the client at its overlay address: one of them on the other
	// node, through the VXLAN between the two namespaces.
	for _, task := range web {
		clientNode.mustDocker("exec", client, "/testapp", "healthcheck", "http://"+task.Addr+":8080/healthz")
	}
	t.Logf("client on node %d (%s); web tasks %+v; nodes %v", nodes[clients[0].Node], c.Addrs[nodes[clients[0].Node]], web, nodes)

	p.write(swarmTwoNodeProject("v2"))
	// Bounded: at most 20 × 25 = 500 requests; long enough to outlast the rollout of 2
	// replicas on a loaded machine (11–13 s at a load average of 13–17), so both
	// versions answer.
	wait := swarmLoad(t, clientNode, client, "http://web:8080/", "20", "25s")
	time.Sleep(time.Second) // v1 answers first
	rolled := time.Now()
	r = p.mustLifecycle("deploy")
	t.Logf("rolling deploy of 2 replicas over 2 nodes took %s", time.Since(rolled).Round(time.Millisecond))
	rep := wait()
	t.Logf("load during the rollout: %+v", rep)
	t.Log(mgr.mustDocker("service", "ps", p.name+"_web", "--format", "{{.Name}} {{.Node}} {{.Image}} {{.CurrentState}} {{.DesiredState}}"))
	assert.Equal(t, rep.Failed, 0, "failed requests: %v", rep.Errors)
	assert.Assert(t, rep.Sent >= 375, "sent %d", rep.Sent)
	assert.Assert(t, rep.Bodies["v1"] > 0 && rep.Bodies["v2"] > 0, "bodies %v", rep.Bodies)
	assert.Equal(t, strings.TrimSpace(mgr.mustDocker("service", "inspect", p.name+"_web", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}")), imageRef("v2")+" completed")

	// An image on the manager only. stop-first: whichever node a task is stopped on, the
	// spread puts a new task on the worker once the worker has none, where it fails.
	managerOnly := imageRepo + ":" + p.name + "-manager-only"
	mgr.mustDocker("tag", imageRef("v2"), managerOnly)
	p.write(strings.Replace(strings.Replace(swarmTwoNodeProject("v2"), "{{image:v2}}", managerOnly, 1),
		"rollback_config:", "update_config: {order: stop-first}, rollback_config:", 1))
	failing := time.Now()
	r = p.lifecycle("deploy")
	t.Logf("deploy of an image on the manager only exited %d after %s", r.code, time.Since(failing).Round(time.Millisecond))
	assert.Equal(t, r.code, 3, r.String())
	assert.Assert(t, strings.Contains(r.stderr, fmt.Sprintf(`service "web": image %s was built or loaded here and is in no registry: the other node has it only if it was loaded there too`, managerOnly)), r.String())
	assert.Assert(t, strings.Contains(r.stderr, "web rolled back by Swarm"), r.String())
	assert.Equal(t, strings.TrimSpace(mgr.mustDocker("service", "inspect", p.name+"_web", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{.UpdateStatus.State}}")), imageRef("v2")+" rollback_completed")
	// The failed task ran on the worker, for want of the image.
	workerID := ""
	for id, i := range nodes {
		if i == 1 {
			workerID = id
		}
	}
	failed := mgr.mustDocker("service", "ps", "--no-trunc", "--filter", "node="+workerID, "--format", "{{.Image}} {{.CurrentState}} {{.Error}}", p.name+"_web")
	t.Logf("web tasks on the worker:\n%s", failed)
	assert.Assert(t, strings.Contains(failed, managerOnly), failed)
	assert.Assert(t, strings.Contains(failed, "No such image"), failed)
	// Swarm's rollback_completed (which deploy waits for) is not yet settled: tasks of
	// the rollback may still be starting while others shut down (3/2 and 4/2 seen).
	settling := time.Now()
	var replicas string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if replicas = strings.TrimSpace(mgr.mustDocker("service", "ls", "--filter", "name="+p.name+"_web", "--format", "{{.Replicas}}")); replicas == "2/2" {
			break
		}
	}
	assert.Equal(t, replicas, "2/2", "web 15 s after deploy exited 3")
	t.Logf("web 2/2 %s after deploy exited 3", time.Since(settling).Round(time.Millisecond))
	t.Logf("test body done in %s", time.Since(begin).Round(time.Millisecond))
}
