package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"gotest.tools/v3/assert"
)

// swarmDaemon is a second dockerd, started by a test in a network namespace of its own
// (startDockerd) and, for the Swarm tests, made a single-node Swarm manager (docs/swarm.md,
// "The test harness"). Its socket
// is a file, so the host reaches it through the filesystem; every packet of its
// containers stays inside its namespace. It is stopped, unmounted and removed when the
// test ends, pass or fail.
type swarmDaemon struct {
	t    *testing.T
	s    *suite
	dir  string // data root, exec root, config, pidfile, socket and log live under it
	host string // unix://<dir>/s
	cmd  *exec.Cmd
	// Started is how long the daemon took to answer (and become a Swarm manager).
	Started time.Duration
}

// startSwarm starts the daemon (startDockerd), runs `swarm init` and registers the
// cleanup.
func startSwarm(t *testing.T, s *suite) *swarmDaemon {
	t.Helper()
	begin := time.Now()
	d := startDockerd(t, s)
	d.mustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	d.Started = time.Since(begin)
	t.Logf("swarm daemon %s up and a manager in %s", d.host, d.Started.Round(time.Millisecond))
	return d
}

// startDockerd starts a second dockerd in a network namespace of its own, waits for
// its socket and registers the cleanup; the multi-host tests use it as it is, the
// Swarm tests make it a manager. The root is a short directory under /tmp: the
// daemon's containerd socket lives in the exec root, and unix socket paths are
// limited to 107 bytes.
func startDockerd(t *testing.T, s *suite) *swarmDaemon {
	t.Helper()
	if os.Geteuid() != 0 {
		skipFor(t, "root", "run the Swarm e2e tests as root (they start a dockerd in a network namespace of their own)", fmt.Errorf("uid %d", os.Geteuid()))
	}
	for _, tool := range []string{"dockerd", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipFor(t, tool, "install "+tool+" (the Swarm tests start a second dockerd with it)", err)
		}
	}
	begin := time.Now()
	dir, err := os.MkdirTemp("", "lsw")
	assert.NilError(t, err)
	d := &swarmDaemon{t: t, s: s, dir: dir, host: "unix://" + filepath.Join(dir, "s")}
	// An empty configuration: the machine's /etc/docker/daemon.json may set data-root
	// (and more), which conflicts with the flags below.
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "c.json"), []byte("{}\n"), 0o600))
	ns := filepath.Base(dir)
	script := strings.Join([]string{
		"hostname " + ns,
		"ip link set lo up",
		"exec dockerd --config-file " + filepath.Join(dir, "c.json") +
			" --data-root " + filepath.Join(dir, "d") +
			" --exec-root " + filepath.Join(dir, "e") +
			" --pidfile " + filepath.Join(dir, "p") +
			" --host " + d.host +
			" --iptables=false --ip-masq=false" +
			" --containerd-namespace " + ns + " --containerd-plugins-namespace " + ns + "p",
	}, "; ")
	logFile, err := os.Create(filepath.Join(dir, "log"))
	assert.NilError(t, err)
	// unshare --net: a network namespace of its own (never the host's: a second daemon
	// there rewrites the main engine's docker0 and iptables). --uts: a hostname of its
	// own, the root's name, so the nodes of a test swarm (startSwarmCluster) are told
	// apart in `docker node ls` and `service ps`. --kill-child: if unshare
	// dies, dockerd dies with it; Pdeathsig: if the test process dies, unshare does.
	d.cmd = exec.Command("unshare", "--net", "--uts", "--fork", "--kill-child=SIGTERM", "sh", "-c", script)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		_ = logFile.Close()
		_ = os.RemoveAll(dir)
		t.Fatalf("start dockerd in a network namespace: %v", err)
	}
	_ = logFile.Close()
	t.Cleanup(d.stop)

	api, err := client.New(client.WithHost(d.host))
	assert.NilError(t, err)
	defer api.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := api.Ping(ctx, client.PingOptions{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			t.Fatalf("the second dockerd did not answer on %s within 30s: %v\n%s", d.host, err, d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.Started = time.Since(begin)
	t.Logf("dockerd %s up in %s", d.host, d.Started.Round(time.Millisecond))
	return d
}

// docker runs the docker CLI (the suite's config, so the plugin) against the daemon.
func (d *swarmDaemon) docker(args ...string) result {
	d.t.Helper()
	return d.s.docker(d.t, "", []string{"DOCKER_HOST=" + d.host}, args...)
}

func (d *swarmDaemon) mustDocker(args ...string) string {
	d.t.Helper()
	r := d.docker(args...)
	assert.Equal(d.t, r.code, 0, "docker %s\n%s\n%s", strings.Join(args, " "), r, d.logTail())
	return r.stdout
}

// copyImage copies an image of the main engine into the daemon: docker save | docker load.
func (d *swarmDaemon) copyImage(ref string) {
	d.t.Helper()
	begin := time.Now()
	cmd := exec.Command("sh", "-c", `docker save "$1" | docker -H "$2" load -q`, "sh", ref, d.host)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.s.configDir)
	out, err := cmd.CombinedOutput()
	assert.NilError(d.t, err, "copy image %s into the swarm daemon: %s", ref, out)
	d.t.Logf("copied %s into the swarm daemon in %s", ref, time.Since(begin).Round(time.Millisecond))
}

func (d *swarmDaemon) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "log"))
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return "dockerd log (tail):\n" + string(b)
}

// stop ends the daemon and removes every trace: SIGTERM to dockerd (by its pidfile; it
// stops its containers and its containerd), SIGKILL after 20 s, then any process still
// naming the root (shims), the mounts under the root (lazily, deepest first) and the
// root itself.
func (d *swarmDaemon) stop() {
	begin := time.Now()
	if b, err := os.ReadFile(filepath.Join(d.dir, "p")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	exited := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill() // --kill-child takes dockerd with it
		<-exited
	}
	for _, pid := range processesUnder(d.dir) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if keep := os.Getenv("LIFECYCLE_SWARM_KEEP_LOG"); keep != "" && d.t.Failed() {
		if b, err := os.ReadFile(filepath.Join(d.dir, "log")); err == nil {
			_ = os.WriteFile(keep, b, 0o644)
		}
	}
	for _, m := range mountsUnder(d.dir) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			d.t.Logf("unmount %s: %v", m, err)
		}
	}
	if err := os.RemoveAll(d.dir); err != nil {
		d.t.Logf("remove the swarm daemon's root %s: %v", d.dir, err)
	}
	d.t.Logf("swarm daemon stopped and removed in %s", time.Since(begin).Round(time.Millisecond))
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// processesUnder lists processes whose command line names dir: the daemon's
// containerd and shims, should any outlive it.
func processesUnder(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(dir+"/")) {
			out = append(out, pid)
		}
	}
	return out
}
