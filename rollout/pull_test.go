package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
)

// When a service's image is pulled, for each mode of deploy --pull and each pull_policy.
func TestPullNeeded(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	hoursAgo := func(h int) time.Time { return now.Add(-time.Duration(h) * time.Hour) }
	rows := []struct {
		policy, refreshAfter, mode string
		present                    bool
		tagged                     time.Time
		want                       bool
	}{
		{policy: "", mode: PullPolicy, present: false, want: true},
		{policy: "", mode: PullPolicy, present: true, want: false},
		{policy: "missing", mode: PullPolicy, present: true, want: false},
		{policy: "if_not_present", mode: PullPolicy, present: false, want: true},
		{policy: "always", mode: PullPolicy, present: true, want: true},
		{policy: "never", mode: PullPolicy, present: false, want: false},
		{policy: "build", mode: PullPolicy, present: false, want: false},
		{policy: "daily", mode: PullPolicy, present: true, tagged: hoursAgo(23), want: false},
		{policy: "daily", mode: PullPolicy, present: true, tagged: hoursAgo(25), want: true},
		{policy: "weekly", mode: PullPolicy, present: true, tagged: hoursAgo(24 * 6), want: false},
		{policy: "weekly", mode: PullPolicy, present: true, tagged: hoursAgo(24 * 8), want: true},
		{policy: "every_2h", mode: PullPolicy, present: true, tagged: hoursAgo(1), want: false},
		{policy: "every_2h", mode: PullPolicy, present: true, tagged: hoursAgo(3), want: true},
		{policy: "every_2h", mode: PullPolicy, present: true, want: true}, // never tagged
		{policy: "every_2h", mode: PullPolicy, present: false, want: true},
		{policy: "refresh", refreshAfter: "2d", mode: PullPolicy, present: true, tagged: hoursAgo(47), want: false},
		{policy: "refresh", refreshAfter: "2d", mode: PullPolicy, present: true, tagged: hoursAgo(49), want: true},
		// --pull wins over every policy
		{policy: "never", mode: PullAlways, present: true, want: true},
		{policy: "always", mode: PullNever, present: true, want: false},
		{policy: "always", mode: PullMissing, present: true, want: false},
		{policy: "never", mode: PullMissing, present: false, want: true},
	}
	for _, r := range rows {
		name := fmt.Sprintf("%s%s/%s/present=%v/tagged=%s", r.policy, r.refreshAfter, r.mode, r.present, now.Sub(r.tagged))
		t.Run(name, func(t *testing.T) {
			svc := types.ServiceConfig{Name: "web"}
			svc.Image, svc.PullPolicy, svc.PullRefreshAfter = "acme/web:1", r.policy, r.refreshAfter
			got, err := pullNeeded(svc, r.mode, r.present, r.tagged, now)
			assert.NilError(t, err)
			assert.Check(t, is.Equal(got, r.want))
		})
	}
}

// Pull pulls each image once, with the credentials of its registry, skips build:
// services and present images, and reports every failure at once with advice.
func TestPullReportsEveryFailureWithAdvice(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644))
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`
name: shop
services:
  web:
    image: registry.example:5000/acme/web:2
    depends_on: [api]
  api:
    image: registry.example:5000/acme/web:2
  present:
    image: redis:7
  built:
    image: acme/built:1
    build: .
  private:
    image: private.example/team/app:1
  gone:
    image: registry.example:5000/acme/gone:1
  broken:
    image: registry.example:5000/acme/broken:1
`), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)

	var mu sync.Mutex
	var pulls []string
	fake := &engine.Fake{
		InspectImageFn: func(_ context.Context, ref string) (engine.Image, error) {
			if ref == "redis:7" {
				return engine.Image{ID: "sha256:1"}, nil
			}
			return engine.Image{}, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
		},
		ImagePullFn: func(_ context.Context, ref, auth string, output func(string)) error {
			mu.Lock()
			pulls = append(pulls, ref+" auth="+auth)
			mu.Unlock()
			output("a1b2: Downloading 1/2 kB")
			switch ref {
			case "private.example/team/app:1":
				return fmt.Errorf("pull %s: %w: unauthorized: authentication required", ref, engine.ErrUnauthorized)
			case "registry.example:5000/acme/gone:1":
				return fmt.Errorf("pull %s: %w in its registry: manifest unknown", ref, engine.ErrNotFound)
			case "registry.example:5000/acme/broken:1":
				return fmt.Errorf("pull %s: %w: dial tcp: connection refused", ref, engine.ErrRegistryUnreachable)
			}
			return nil
		},
	}
	auth := func(ref string) (string, error) {
		if registryHost(ref) == "registry.example:5000" {
			return "token-for-" + registryHost(ref), nil
		}
		return "", nil
	}
	pulled, err := Pull(context.Background(), fake, p, inspected(t, fake, p), nil, PullPolicy, auth, progress.Nop)
	sort.Strings(pulls)
	assert.Check(t, is.DeepEqual(pulls, []string{
		"private.example/team/app:1 auth=",
		"registry.example:5000/acme/broken:1 auth=token-for-registry.example:5000",
		"registry.example:5000/acme/gone:1 auth=token-for-registry.example:5000",
		"registry.example:5000/acme/web:2 auth=token-for-registry.example:5000",
	}))
	slices.Sort(pulled)
	assert.Check(t, is.DeepEqual(pulled, []string{"api", "web"}))
	assert.Assert(t, err != nil)
	assert.Check(t, errors.Is(err, engine.ErrUnauthorized))
	assert.Check(t, errors.Is(err, engine.ErrNotFound))
	for _, want := range []string{
		`service "private": pull private.example/team/app:1: registry refused the pull: unauthorized: authentication required; log in to its registry (docker login private.example) and deploy again`,
		`service "gone": pull registry.example:5000/acme/gone:1: not found in its registry: manifest unknown; check the image name and tag, or push the image first`,
		`service "broken": pull registry.example:5000/acme/broken:1: the engine could not reach the registry: dial tcp: connection refused; check that the engine reaches registry.example:5000 (its DNS, proxy settings and, for a registry without TLS, insecure-registries in the engine's daemon.json), or deploy with --pull never to use the images the engine has`,
	} {
		assert.Check(t, is.Contains(err.Error(), want))
	}

	// Credentials that the registry refuses get other advice; --pull never pulls nothing.
	pulls = nil
	_, err = Pull(context.Background(), fake, p, inspected(t, fake, p), []string{"private"}, PullAlways, func(string) (string, error) { return "stale", nil }, progress.Nop)
	assert.Check(t, is.ErrorContains(err, "the stored credentials for private.example were refused: log in again (docker login private.example)"))
	_, err = Pull(context.Background(), fake, p, inspected(t, fake, p), nil, PullNever, auth, progress.Nop)
	assert.NilError(t, err)
	assert.Check(t, is.Len(pulls, 1))
}

// inspected is what Deploy hands Pull and Build: the project's images as the engine has them.
func inspected(t *testing.T, eng engine.Engine, p *compose.Project) Images {
	t.Helper()
	images, err := InspectImages(context.Background(), eng, p)
	assert.NilError(t, err)
	return images
}

// Deploy inspects each image once; after a pull only the pulled services' images are
// inspected again, and one that vanished leaves the map.
func TestImagesRefreshInspectsOnlyWhatChanged(t *testing.T) {
	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(`
services:
  web:
    image: acme/web:1
  db:
    image: postgres:16
  gone:
    image: acme/gone:1
`), 0o644))
	p, err := compose.Load(context.Background(), compose.LoadOptions{ConfigFiles: []string{filepath.Join(dir, "compose.yaml")}})
	assert.NilError(t, err)
	inspects := map[string]int{}
	ids := map[string]string{"acme/web:1": "sha256:old", "postgres:16": "sha256:db", "acme/gone:1": "sha256:gone"}
	fake := &engine.Fake{InspectImageFn: func(_ context.Context, ref string) (engine.Image, error) {
		inspects[ref]++
		if id, ok := ids[ref]; ok {
			return engine.Image{ID: id}, nil
		}
		return engine.Image{}, fmt.Errorf("image %s: %w", ref, engine.ErrNotFound)
	}}
	images := inspected(t, fake, p)
	ids["acme/web:1"] = "sha256:new"
	delete(ids, "acme/gone:1")
	assert.NilError(t, images.Refresh(context.Background(), fake, p, []string{"web", "gone"}))
	assert.Check(t, is.Equal(images["acme/web:1"].ID, "sha256:new"))
	assert.Check(t, is.Equal(images["postgres:16"].ID, "sha256:db"))
	_, stillThere := images["acme/gone:1"]
	assert.Check(t, !stillThere)
	assert.Check(t, is.DeepEqual(inspects, map[string]int{"acme/web:1": 2, "postgres:16": 1, "acme/gone:1": 2}))
}
