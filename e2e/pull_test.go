package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// The CNCF distribution registry, for the pull tests (no registry is reachable here).
var registryTool = builtTool{env: "LIFECYCLE_REGISTRY_BIN", script: "build-registry.sh", checkArgs: []string{"--version"}}

// registry is one registry process of a test, on 127.0.0.1.
type registry struct {
	host string // 127.0.0.1:PORT, as image references and docker login name it
}

// startRegistry runs a registry on a free port of 127.0.0.1 with its storage in a
// temporary directory; with user set it asks for that user and password (htpasswd).
// It is stopped when the test ends.
func startRegistry(t *testing.T, s *suite, user, password string) registry {
	t.Helper()
	registryBin, err := registryTool.get(s)
	if err != nil {
		skipFor(t, "a registry", "set LIFECYCLE_REGISTRY_BIN=/path/to/registry (distribution v3.1.2 is tested), or let scripts/build-registry.sh build it (needs the Go module proxy)", err)
	}
	dir := t.TempDir()
	r := registry{host: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	config := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), r.host)
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		assert.NilError(t, err)
		assert.NilError(t, os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600))
		config += fmt.Sprintf("auth:\n  htpasswd: {realm: e2e, path: %s}\n", filepath.Join(dir, "htpasswd"))
	}
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o600))
	cmd := exec.Command(registryBin, "serve", filepath.Join(dir, "config.yml"))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	assert.NilError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("registry %s log:\n%s", r.host, logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", r.host, time.Second)
		if err == nil {
			conn.Close()
			return r
		}
		select {
		case <-done:
			t.Fatalf("registry exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry not listening on %s after 15s: %v\n%s", r.host, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// push puts a suite image into the registry as ref (with the CLI config configDir),
// and removes ref from the engine again: the engine then has to pull it.
func (r registry) push(t *testing.T, s *suite, configDir, version, ref string) {
	t.Helper()
	env := []string{"DOCKER_CONFIG=" + configDir}
	for _, args := range [][]string{{"tag", imageRef(version), ref}, {"push", "--quiet", ref}, {"image", "rm", ref}} {
		res := s.docker(t, "", env, args...)
		assert.Assert(t, res.code == 0, "docker %v: %s", args, res)
	}
}

// TestDeployPulls: deploy pulls a missing image from a real registry on 127.0.0.1
// (pull_policy missing, the default), --pull never refuses instead, pull_policy always
// pulls a newer image under the same tag and rolls the service; a private registry
// refuses the pull until `docker login`, and deploy says to log in.
func TestDeployPulls(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	open := startRegistry(t, s, "", "")
	ref := open.host + "/lifecycle-e2e/app:stable"
	t.Cleanup(func() { _ = s.plainDocker("image", "rm", "-f", ref) })
	open.push(t, s, s.configDir, "v1", ref)

	port := freePort(t)
	doc := func(policy string) string {
		return fmt.Sprintf(`
services:
  web:
    image: %s
    pull_policy: %s
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
`, ref, policy, port)
	}
	p := s.newProject(t, doc("missing"))
	r := p.quiet("deploy", "--pull", "never")
	assertOneMessage(t, r, 1, `service "web"`, "image not found on the engine", "docker pull "+ref)
	assert.Check(t, is.Len(p.containers(), 0), "nothing created")

	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Pulled"), r.stderr)
	waitAnswers(t, port, "v1", 30*time.Second)

	// A new image under the same tag: missing keeps the engine's copy, always pulls it.
	open.push(t, s, s.configDir, "v2", ref)
	assert.Check(t, s.docker(t, "", nil, "tag", imageRef("v1"), ref).code == 0)
	r = p.mustLifecycle("deploy")
	assert.Check(t, !strings.Contains(r.stderr, "Pulling"), r.stderr)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v1"))
	p.write(doc("always"))
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Pulled"), r.stderr)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"))

	// A private registry: refused without credentials, with advice; pulled after login.
	private := startRegistry(t, s, "e2e", "secret-e2e")
	privateRef := private.host + "/lifecycle-e2e/app:private"
	t.Cleanup(func() { _ = s.plainDocker("image", "rm", "-f", privateRef) })
	loggedIn := t.TempDir()
	assert.NilError(t, os.Symlink(filepath.Join(s.configDir, "cli-plugins"), filepath.Join(loggedIn, "cli-plugins")))
	login := exec.Command("docker", "login", private.host, "--username", "e2e", "--password-stdin")
	login.Env = append(os.Environ(), "DOCKER_CONFIG="+loggedIn)
	login.Stdin = strings.NewReader("secret-e2e")
	out, err := login.CombinedOutput()
	assert.NilError(t, err, "docker login: %s", out)
	private.push(t, s, loggedIn, "v3", privateRef)

	p.write(strings.Replace(doc("missing"), ref, privateRef, 1))
	r = p.quiet("deploy")
	t.Logf("deploy from the private registry without login:\n%s", r.stderr)
	assertOneMessage(t, r, 1, `service "web"`, "pull "+privateRef, "registry refused the pull", "docker login "+private.host)
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v2"), "still serving")
	p.env = append(p.env, "DOCKER_CONFIG="+loggedIn)
	p.mustLifecycle("deploy")
	assert.Check(t, is.Equal(get(t, fmt.Sprintf("http://127.0.0.1:%d/", port)), "v3"))
}
