package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// anonymousVolumesProject: cache declares an anonymous volume (so it is recreated by
// default), store's image declares VOLUME /data (recreate set explicitly), fresh has the
// same image and the default rolling strategy (start-first: fresh volumes, a warning).
const anonymousVolumesProject = `
services:
  cache:
    image: {{image:v1}}
    environment: {V: "%[1]s"}
    volumes: ["/cache"]
  store:
    image: %[2]s
    environment: {V: "%[1]s"}
    x-lifecycle: {strategy: recreate}
  fresh:
    image: %[2]s
    environment: {V: "%[1]s"}
`

// volumeAt is the name of the volume a container mounts at path.
func volumeAt(t *testing.T, p *project, container, path string) string {
	t.Helper()
	return p.inspect(`{{range .Mounts}}{{if eq .Destination "`+path+`"}}{{.Name}}{{end}}{{end}}`, container)
}

// TestAnonymousVolumesSurviveARecreate: as `docker compose up` recreating a container,
// a recreate replacement takes over the old container's anonymous volumes (declared in
// the compose file or by the image's VOLUME), so a file written before the deploy is
// there after it; a rollback runs on the same volume; a start-first service gets fresh
// ones and the deploy warns; `down` leaves no anonymous volume behind.
func TestAnonymousVolumesSurviveARecreate(t *testing.T) {
	t.Parallel() // no load and no timing (e2e/doc.go)
	s := setup(t)
	start := time.Now()
	defer func() { t.Logf("took %s after the suite's setup", time.Since(start).Round(100*time.Millisecond)) }()
	var image string
	yaml := func(version string) string { return fmt.Sprintf(anonymousVolumesProject, version, image) }
	p := s.newProject(t, yaml("v1"))
	// The test image with a VOLUME, built once for both services (classic builder).
	image = p.name + "-volume:1"
	t.Cleanup(func() { _ = s.plainDocker("image", "rm", "-f", image) }) // after the project's cleanup
	dir := filepath.Join(p.dir, "volume")
	assert.NilError(t, os.MkdirAll(dir, 0o755))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+imageRef("v1")+"\nVOLUME /data\n"), 0o644))
	b := s.docker(t, dir, []string{"DOCKER_BUILDKIT=0"}, "build", "-q", "-t", image, "--label", testLabel+"=e2e", "--label", "com.docker.compose.project="+p.name, ".")
	assert.Assert(t, b.code == 0, b.String())
	p.write(yaml("v1"))

	p.mustLifecycle("deploy")
	cache, store := p.name+"-cache-1", p.name+"-store-1"
	v1 := containerID(t, p, cache)
	fresh := p.containers("label=com.docker.compose.service=fresh")
	assert.Assert(t, is.Len(fresh, 1))
	cacheVol, storeVol, freshVol := volumeAt(t, p, cache, "/cache"), volumeAt(t, p, store, "/data"), volumeAt(t, p, fresh[0], "/data")
	// Removed on failure too: the project's cleanup removes the containers first.
	t.Cleanup(func() { _ = s.plainDocker("volume", "rm", "-f", cacheVol, storeVol, freshVol) })
	writeFiles(t, p, cacheVol, map[string]string{"state": "cache-v1"})
	writeFiles(t, p, storeVol, map[string]string{"state": "store-v1"})
	writeFiles(t, p, freshVol, map[string]string{"state": "fresh-v1"})

	p.write(yaml("v2"))
	r := p.mustLifecycle("deploy", "--dry-run")
	assert.Check(t, is.Contains(r.stdout, "strategy: cache recreate: it mounts an anonymous volume at /cache read-write"), r.stdout)
	assert.Check(t, is.Regexp(`create\s+`+cache+`\s+2\s+configuration changed; keeps the anonymous volume at /cache of `+cache, r.stdout))
	r = p.mustLifecycle("deploy")
	assert.Check(t, is.Contains(r.stderr, "keeps the anonymous volume at /cache of "+cache), r.stderr)
	assert.Check(t, is.Contains(r.stderr, "keeps the anonymous volume at /data of "+store), r.stderr)
	assert.Check(t, is.Contains(r.stderr, "/data is an anonymous volume: its data is not carried to the new container"), r.stderr)
	assert.Check(t, is.Contains(r.stderr, "mount a named volume at /data"), r.stderr)
	assert.Check(t, is.Equal(readFile(t, s, cache, "/cache/state"), "cache-v1"), "the declared anonymous volume is kept")
	assert.Check(t, is.Equal(readFile(t, s, store, "/data/state"), "store-v1"), "the image's VOLUME is kept")
	assert.Check(t, is.Equal(volumeAt(t, p, cache, "/cache"), cacheVol))
	fresh2 := p.containers("label=com.docker.compose.service=fresh", "status=running")
	assert.Assert(t, is.Len(fresh2, 1))
	assert.Check(t, volumeAt(t, p, fresh2[0], "/data") != freshVol, "start-first: a fresh volume")

	// The kept revision shares the volume: a rollback runs on it as it is now.
	writeFiles(t, p, cacheVol, map[string]string{"state": "cache-v2"})
	p.mustLifecycle("rollback", "cache")
	assert.Check(t, is.Equal(containerID(t, p, cache), v1), "revision 1's own container runs again")
	assert.Check(t, is.Equal(readFile(t, s, cache, "/cache/state"), "cache-v2"), "the rollback runs on the shared volume")

	var all []string
	for _, c := range p.containers() {
		for _, v := range strings.Fields(p.inspect(`{{range .Mounts}}{{.Name}} {{end}}`, c)) {
			all = append(all, v)
		}
	}
	assert.Check(t, len(all) >= 5, "%v", all)
	p.mustLifecycle("down")
	for _, v := range all {
		r := p.s.docker(t, p.dir, nil, "volume", "inspect", "--format", "{{.Name}}", v)
		assert.Check(t, r.code != 0, "down leaves no anonymous volume: %s is left", v)
	}
}
