package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/internal/testimage"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/rollout"
)

// buildDockerfile builds the test app FROM scratch; V becomes its VERSION, and the
// whole context is copied to /ctx so a test can see what .dockerignore kept out.
const buildDockerfile = `FROM scratch
ARG V=none
COPY testapp /testapp
COPY . /ctx/
ENV VERSION=$V
USER 65534:65534
ENTRYPOINT ["/testapp"]
`

// writeBuildContext writes a build context with the test app binary into dir.
func writeBuildContext(t *testing.T, s *suite, dir string) {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(s.configDir, "testapp-"+testimage.GOARCH()))
	assert.NilError(t, err)
	assert.NilError(t, os.MkdirAll(dir, 0o755))
	for name, content := range map[string][]byte{
		"testapp": bin, "build.Dockerfile": []byte(buildDockerfile),
		".dockerignore": []byte("secret.env\nlogs/\n"), "secret.env": []byte("TOKEN=leak"), "logs/app.log": []byte("x"), "kept.txt": []byte("kept"),
	} {
		assert.NilError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		assert.NilError(t, os.WriteFile(filepath.Join(dir, name), content, 0o755))
	}
}

// TestDeployBuildsImages: a service with build: and no image is built on the engine
// through the Engine API (no docker build, no BuildKit), named <project>-<service> as
// Compose v2 names it, with its args, dockerfile and .dockerignore honoured; deploy
// --build rebuilds it and rolls the service.
func TestDeployBuildsImages(t *testing.T) {
	s := setup(t)
	var name string
	t.Cleanup(func() { // after the project's cleanup: the images its containers used
		_ = s.plainDocker("image", "prune", "-f", "--filter", "label=com.docker.compose.project="+name)
		_ = s.plainDocker("image", "rm", "-f", name+"-web")
	})
	port := freePort(t)
	doc := func(version string) string {
		return fmt.Sprintf(`
services:
  web:
    build:
      context: ./app
      dockerfile: build.Dockerfile
      args: {V: %s}
      labels: {%s: e2e}
    ports: ["127.0.0.1:%d:8080"]
    healthcheck: {test: ["CMD", "/testapp", "healthcheck"], interval: 300ms, retries: 100}
`, version, testLabel, port)
	}
	p := s.newProject(t, doc("built-v1"))
	name = p.name
	writeBuildContext(t, s, filepath.Join(p.dir, "app"))

	r := p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "Service web"), r.stderr)
	assert.Check(t, is.Contains(r.stderr, "Built"), r.stderr)
	waitAnswers(t, port, "built-v1", 30*time.Second)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	assert.Check(t, is.Equal(get(t, base+"/file?path=/ctx/kept.txt"), "kept"))
	for _, ignored := range []string{"/ctx/secret.env", "/ctx/logs/app.log"} {
		resp := getStatus(t, base+"/stat?path="+ignored)
		assert.Check(t, is.Equal(resp, 404), ".dockerignore keeps %s out of the context", ignored)
	}
	assert.Check(t, is.Equal(p.inspect(`{{index .Config.Labels "com.docker.compose.service"}}`, p.name+"-web"), "web"), "the image Compose would name")

	// Present now: a deploy without --build does not rebuild; with it, it does and rolls.
	p.write(doc("built-v2"))
	r = p.mustLifecycle("deploy")
	assert.Check(t, !strings.Contains(r.stderr, "Building"), r.stderr)
	load := startRateLoad(t, port, "/", loadRate, time.Minute)
	p.mustLifecycle("deploy", "--build")
	rep := load.stop()
	assert.Check(t, is.Equal(rep.Failed, 0), rep.String())
	assert.Check(t, is.Equal(get(t, base+"/"), "built-v2"))
}

// TestBenchBuild measures a build through the Engine API (what deploy --build runs:
// the context tar and the build endpoint) against `docker build` with the classic
// builder (DOCKER_BUILDKIT=0) of the same context, alternating, each build with a
// changed file so both run their COPY steps. LIFECYCLE_BENCH_BUILD=ROUNDS runs it.
func TestBenchBuild(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("LIFECYCLE_BENCH_BUILD"))
	if rounds <= 0 {
		t.Skip("set LIFECYCLE_BENCH_BUILD=ROUNDS to run the build benchmark")
	}
	s := setup(t)
	p := s.newProject(t, fmt.Sprintf("services:\n  web:\n    build: {context: ./app, dockerfile: build.Dockerfile, labels: {%s: e2e}}\n", testLabel))
	dir := filepath.Join(p.dir, "app")
	writeBuildContext(t, s, dir)
	api, cli := p.name+"-web", p.name+"-cli"
	t.Cleanup(func() {
		_ = s.plainDocker("image", "rm", "-f", api, cli)
		_ = s.plainDocker("image", "prune", "-f", "--filter", "label="+testLabel)
	})
	proj, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(p.dir, "compose.yaml")}, ProjectName: p.name})
	assert.NilError(t, err)
	var apiTimes, cliTimes []time.Duration
	for i := range rounds {
		// A file of its own per build: neither build can reuse the other's COPY layer
		// (the engine's classic cache is shared), so each runs its COPY steps.
		changed := func(by string) {
			assert.NilError(t, os.WriteFile(filepath.Join(dir, "kept.txt"), []byte(fmt.Sprint("round ", i, " ", by)), 0o644))
		}
		viaAPI := func() {
			changed("api")
			start := time.Now()
			_, err := rollout.Build(context.Background(), s.engine, proj, rollout.Images{}, nil, true, progress.Nop)
			assert.NilError(t, err)
			apiTimes = append(apiTimes, time.Since(start))
		}
		viaCLI := func() {
			changed("cli")
			start := time.Now()
			cmd := exec.Command("docker", "build", "-q", "-f", filepath.Join(dir, "build.Dockerfile"), "--label", testLabel+"=e2e", "-t", cli, dir)
			cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
			out, err := cmd.CombinedOutput()
			assert.NilError(t, err, string(out))
			cliTimes = append(cliTimes, time.Since(start))
		}
		if i%2 == 0 {
			viaAPI()
			viaCLI()
		} else {
			viaCLI()
			viaAPI()
		}
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	a, c := median(apiTimes), median(cliTimes)
	t.Logf("build of a %s context, %d rounds: Engine API (deploy --build) median %s, docker build (DOCKER_BUILDKIT=0) median %s, ratio %.2f",
		"test app", rounds, a.Round(time.Millisecond), c.Round(time.Millisecond), float64(a)/float64(c))
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	assert.NilError(t, err)
	resp.Body.Close()
	return resp.StatusCode
}
