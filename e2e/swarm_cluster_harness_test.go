package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
)

// swarmClusterSubnet is the underlay of a test swarm: its nodes' addresses, assigned
// inside the namespaces the test created and nowhere else (the host has no route into
// it, nor needs one). Far from Swarm's overlay pool (10.0.0.0/8 is carved in /24s from
// 10.0.0.0 upwards) and from the daemons' bridges (172.17–31, 192.168).
const swarmClusterSubnet = "10.213.77"

// swarmCluster is a swarm of n second dockerds on this machine (docs/swarm.md, "The test
// harness"): each daemon in a network namespace of its own (startDockerd; two daemons in
// one namespace would collide on the gossip port 7946 and the VXLAN port 4789), every
// one joined by a veth pair to a bridge in one more namespace the test created. Nodes[0]
// is the manager, the others workers. Nothing is added to the host's namespace: no link,
// address or route; overlay traffic (VXLAN between the nodes' addresses) crosses the
// bridge and never leaves these namespaces.
type swarmCluster struct {
	Nodes []*swarmDaemon
	Addrs []string // Addrs[i] is Nodes[i]'s address on the bridge
	netns string   // the bridge's namespace
	// Started is how long the cluster took to be up, wired and joined.
	Started time.Duration
}

// startSwarmCluster starts n daemons, wires them to the bridge, makes the first a
// manager and joins the others as workers, and registers the cleanup (daemons, then the
// bridge's namespace), also on failure.
func startSwarmCluster(t *testing.T, s *suite, n int) *swarmCluster {
	t.Helper()
	for _, tool := range []string{"nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipFor(t, tool, "install "+tool+" (the multi-node Swarm tests wire the daemons' namespaces with it)", err)
		}
	}
	begin := time.Now()
	c := &swarmCluster{netns: fmt.Sprintf("lifecycle-e2e-%d-swarm%04d", os.Getpid(), rand.IntN(10000))}
	// Registered before the daemons' cleanups, so it runs after them: a node's end of
	// its veth pair goes with the node's namespace, the bridge's end with this one.
	c.ip(t, "netns", "add", c.netns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", c.netns).CombinedOutput(); err != nil {
			t.Logf("delete the bridge's network namespace %s: %v: %s", c.netns, err, out)
		}
	})
	c.ip(t, "-n", c.netns, "link", "set", "lo", "up")
	c.ip(t, "-n", c.netns, "link", "add", "br0", "type", "bridge")
	c.ip(t, "-n", c.netns, "link", "set", "br0", "up")
	for i := range n {
		d := startDockerd(t, s)
		addr := fmt.Sprintf("%s.%d", swarmClusterSubnet, i+1)
		// The daemon's own PID (its pidfile, written once it answers) names its network
		// namespace; the pair is made in the bridge's namespace and one end moved over.
		b, err := os.ReadFile(d.dir + "/p")
		assert.NilError(t, err, "the dockerd's pidfile")
		pid := strings.TrimSpace(string(b))
		_, err = strconv.Atoi(pid)
		assert.NilError(t, err, "the dockerd's pidfile")
		bridgeEnd, nodeEnd := fmt.Sprintf("vb%d", i), fmt.Sprintf("vn%d", i)
		c.ip(t, "-n", c.netns, "link", "add", bridgeEnd, "type", "veth", "peer", "name", nodeEnd)
		c.ip(t, "-n", c.netns, "link", "set", bridgeEnd, "master", "br0", "up")
		c.ip(t, "-n", c.netns, "link", "set", nodeEnd, "netns", pid)
		inNode := []string{"--net=/proc/" + pid + "/ns/net", "ip"}
		c.nsenter(t, append(inNode, "addr", "add", addr+"/24", "dev", nodeEnd)...)
		c.nsenter(t, append(inNode, "link", "set", nodeEnd, "up")...)
		c.Nodes, c.Addrs = append(c.Nodes, d), append(c.Addrs, addr)
	}
	c.Nodes[0].mustDocker("swarm", "init", "--advertise-addr", c.Addrs[0])
	token := strings.TrimSpace(c.Nodes[0].mustDocker("swarm", "join-token", "-q", "worker"))
	for i, d := range c.Nodes[1:] {
		d.mustDocker("swarm", "join", "--token", token, "--advertise-addr", c.Addrs[i+1], c.Addrs[0]+":2377")
	}
	// Joined is not yet Ready on the manager: a service created before would place
	// every task on the nodes already Ready.
	var ready string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ready = c.Nodes[0].mustDocker("node", "ls", "--format", "{{.Status}} {{.Availability}}")
		if strings.Count(ready, "Ready Active") == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d nodes Ready within 30 s:\n%s", strings.Count(ready, "Ready Active"), n, ready)
		}
	}
	c.Started = time.Since(begin)
	t.Logf("swarm of %d nodes (%s) up in %s", n, strings.Join(c.Addrs, ", "), c.Started.Round(time.Millisecond))
	return c
}

// copyImage copies an image of the main engine into every node.
func (c *swarmCluster) copyImage(ref string) {
	for _, d := range c.Nodes {
		d.copyImage(ref)
	}
}

// nodeIDs maps the nodes' Swarm IDs (a task's NodeID) to their index in Nodes.
func (c *swarmCluster) nodeIDs(t *testing.T) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for i, d := range c.Nodes {
		ids[strings.TrimSpace(d.mustDocker("info", "--format", "{{.Swarm.NodeID}}"))] = i
	}
	return ids
}

func (c *swarmCluster) ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	assert.NilError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

func (c *swarmCluster) nsenter(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("nsenter", args...).CombinedOutput()
	assert.NilError(t, err, "nsenter %s: %s", strings.Join(args, " "), out)
}
