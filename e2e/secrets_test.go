package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/internal/testimage"
)

// TestSecretsAreFilesOnATmpfsAndNowhereElse: secrets from a file, an environment
// variable and a command reach the container as files under /run/secrets (mode 0400,
// owned by the service's user, on a tmpfs) and appear nowhere else: not in docker
// inspect of any project container, not in logs, not in the plugin's output in any
// format, not in engine-side labels. `secrets rotate` rolls the service with the new
// value.
func TestSecretsAreFilesOnATmpfsAndNowhereElse(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	port := freePort(t)
	const fromFile, fromEnv, fromExec = "canary-file-7Qz1", "canary-env-9Kd2", "canary-exec-3Xv8"
	project := fmt.Sprintf(`
services:
  web:
    image: {{image:v1}}
    user: "1000:1000"
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    secrets:
      - db_pass
      - {source: api_token, target: token}
      - signing_key
secrets:
  db_pass:
    file: ./db_pass.txt
  api_token:
    environment: E2E_API_TOKEN
  signing_key:
    environment: UNUSED_BY_LIFECYCLE
    x-lifecycle: {exec: "cat ./key.txt"}
`, port)
	p := s.newProject(t, project)
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "db_pass.txt"), []byte(fromFile), 0o600))
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "key.txt"), []byte(fromExec+"\n"), 0o600))
	p.env = []string{"E2E_API_TOKEN=" + fromEnv}

	var outputs []string
	for _, args := range [][]string{
		{"config"}, {"config", "--format", "json"}, {"plan"}, {"plan", "--format", "json"},
		{"deploy", "--dry-run"}, {"deploy"}, {"--progress", "json", "deploy"}, {"ps", "--format", "json"}, {"history", "--format", "json"},
	} {
		r := p.mustLifecycle(args...)
		outputs = append(outputs, r.stdout, r.stderr)
	}
	waitAnswers(t, port, "v1", 30*time.Second)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for file, want := range map[string]string{"db_pass": fromFile, "token": fromEnv, "signing_key": fromExec} {
		assert.Check(t, is.Equal(get(t, base+"/file?path=/run/secrets/"+file), want), file)
		assert.Check(t, is.Equal(get(t, base+"/stat?path=/run/secrets/"+file), "mode=0400 uid=1000 gid=1000"), file)
	}
	web := p.name + "-web-r1-1"
	ps := p.mustLifecycle("ps", "--format", "{{.Name}}")
	assert.Check(t, is.Equal(ps.stdout, p.router()+"\n"+web+"\n"), "ps lists no secrets holder (a one-off, as compose ps does)")
	mounts := p.inspect(`{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}`, web)
	assert.Check(t, is.Equal(mounts, "volume /run/secrets false;"), "read-only, and no bind mount of a host file")
	vol := p.inspect(`{{index .Options "type"}}`, web+"_secrets")
	assert.Check(t, is.Equal(vol, "tmpfs"))

	// Nowhere else: inspect of every project container and volume, logs, plugin output.
	var everything []string
	for _, kind := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}} {
		r := p.s.docker(t, p.dir, nil, append(kind, "--filter", "label=com.docker.compose.project="+p.name)...)
		for _, id := range lines(r.stdout) {
			everything = append(everything, p.s.docker(t, p.dir, nil, "inspect", id).stdout)
			if kind[0] == "ps" {
				l := p.s.docker(t, p.dir, nil, "logs", id)
				everything = append(everything, l.stdout, l.stderr)
			}
		}
	}
	everything = append(everything, outputs...)
	for _, canary := range []string{fromFile, fromEnv, fromExec} {
		for _, text := range everything {
			assert.Check(t, !strings.Contains(text, canary), "secret %s leaked into: %.300s", canary, text)
		}
	}

	// Rotation: a new value, the service rolls (a new revision), the file has it.
	const rotated = "canary-exec-rotated-5Wm4"
	assert.NilError(t, os.WriteFile(filepath.Join(p.dir, "key.txt"), []byte(rotated+"\n"), 0o600))
	load := startRateLoad(t, port, "/", loadRate, time.Minute)
	r := p.mustLifecycle("secrets", "rotate", "signing_key")
	assert.Check(t, is.Contains(r.stdout, "Rotated secret signing_key: rolled web"), r.String())
	assert.Check(t, !strings.Contains(r.stdout+r.stderr, rotated))
	rep := load.stop()
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.Equal(get(t, base+"/file?path=/run/secrets/signing_key"), rotated))
	assert.Check(t, is.Equal(p.inspect("{{index .Config.Labels \"io.lifecycle.revision\"}}", p.name+"-web-r2-1"), "2"))

	// A source that fails is a clear error that changes nothing.
	assert.NilError(t, os.Remove(filepath.Join(p.dir, "key.txt")))
	before := p.containers()
	r = p.lifecycle("secrets", "rotate", "signing_key")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stderr, `secret "signing_key": exec "cat ./key.txt" failed`), r.String())
	assert.Check(t, is.DeepEqual(p.containers(), before, sortedCmp()))

	// down removes the holders and the tmpfs volumes too.
	p.mustLifecycle("down")
	assert.Check(t, is.Len(p.objects(), 0), "%v", p.objects())
}

// TestSecretSourceFailuresChangeNothing: a missing file, an unset variable, a command
// that fails or prints nothing: each a clear error before any engine write.
func TestSecretSourceFailuresChangeNothing(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	for _, tc := range []struct{ name, source, want string }{
		{"missing file", "file: ./nope.txt", `secret "key": read file`},
		{"unset variable", "environment: E2E_SURELY_UNSET_VAR", `secret "key": environment variable E2E_SURELY_UNSET_VAR is not set`},
		{"failing command", "environment: X\n    x-lifecycle: {exec: \"exit 3\"}", `secret "key": exec "exit 3" failed`},
		{"silent command", "environment: X\n    x-lifecycle: {exec: \"true\"}", `secret "key": exec "true" printed nothing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := s.newProject(t, "services:\n  web:\n    image: {{image:v1}}\n    secrets: [key]\nsecrets:\n  key:\n    "+tc.source+"\n")
			r := p.lifecycle("deploy")
			assert.Check(t, r.code != 0)
			assert.Check(t, is.Contains(r.stderr, tc.want), r.String())
			assert.Check(t, is.Len(p.objects(), 0), "nothing created: %v", p.objects())
			assert.Check(t, !p.lockExists())
		})
	}
}

// TestSecretsForANamedUser: a service whose user is a name (`user: postgres`, or the
// image's USER) gets its secret files owned by that user's ids, read from the image's
// /etc/passwd and /etc/group at deploy time; ids on the secret reference win. A name the
// image does not know fails the deploy with advice that works, never config or lint.
func TestSecretsForANamedUser(t *testing.T) {
	t.Parallel() // no load and no timing: runs beside the other parallel tests (e2e/doc.go)
	s := setup(t)
	ctx := context.Background()
	image := fmt.Sprintf("%s-accounts-%04d:v1", imageRepo, rand.IntN(10000))
	t.Cleanup(func() { _ = s.plainDocker("image", "rm", "-f", image) })
	bin, err := os.ReadFile(filepath.Join(s.configDir, "testapp-"+testimage.GOARCH()))
	assert.NilError(t, err)
	assert.NilError(t, testimage.BuildFiles(ctx, s.engine, image, []testimage.File{
		{Path: "/testapp", Mode: 0o755, Data: bin},
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\npostgres:x:70:71:PostgreSQL:/var/lib/postgresql:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\npostgres:x:71:\nssl:x:101:postgres\n")},
	}, []string{"ENV VERSION=v1", "USER postgres", `ENTRYPOINT ["/testapp"]`}, map[string]string{testLabel: "e2e"}))

	imagePort, namedPort := freePort(t), freePort(t)
	doc := recreate(fmt.Sprintf(`
services:
  byimage:
    image: %[1]s
    ports: ["127.0.0.1:%[2]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    secrets: [pw, {source: pw, target: pw-ids, uid: "7", gid: "8"}]
  named:
    image: %[1]s
    user: "postgres:ssl"
    ports: ["127.0.0.1:%[3]d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
    secrets: [pw]
secrets:
  pw:
    environment: E2E_PW
`, image, imagePort, namedPort))
	p := s.newProject(t, doc)
	p.env = []string{"E2E_PW=named-user-secret"}
	p.mustLifecycle("deploy")
	stat := func(port int, file string) string {
		return get(t, fmt.Sprintf("http://127.0.0.1:%d/stat?path=/run/secrets/%s", port, file))
	}
	assert.Check(t, is.Equal(stat(imagePort, "pw"), "mode=0400 uid=70 gid=71"), "the image's USER postgres, its primary group")
	assert.Check(t, is.Equal(stat(imagePort, "pw-ids"), "mode=0400 uid=7 gid=8"), "the reference's ids win")
	assert.Check(t, is.Equal(stat(namedPort, "pw"), "mode=0400 uid=70 gid=101"), "user postgres, group ssl")
	r := p.s.docker(t, p.dir, nil, "ps", "-aq", "--filter", "label=com.docker.compose.project="+p.name, "--filter", "label=io.lifecycle.role=accounts")
	assert.Check(t, is.Len(lines(r.stdout), 0), "the container that read the image's users is removed")

	// A user the image does not have: config and lint load the project; deploy fails
	// with advice before any change.
	p.write(strings.Replace(doc, `user: "postgres:ssl"`, "user: mysql", 1))
	p.mustLifecycle("config")
	r = p.lifecycle("lint")
	assert.Check(t, !strings.Contains(r.stdout+r.stderr, "mysql"), "lint does not fail on the user: %s", r)
	assert.Check(t, is.Contains(r.stdout, "read-only"), "lint linted the project: %s", r)
	r = p.lifecycle("deploy")
	assert.Check(t, r.code != 0)
	assert.Check(t, is.Contains(r.stderr, `service "named": secret "pw": user "mysql" is not in the image's /etc/passwd: set uid and gid on each secret reference`), r.String())
	assert.Check(t, is.Equal(stat(namedPort, "pw"), "mode=0400 uid=70 gid=101"), "the old container still serves")
}
