package rollout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// Pull modes of `deploy --pull`, as `docker compose up --pull` names them.
const (
	PullPolicy  = "policy" // each service's pull_policy (the default)
	PullAlways  = "always"
	PullMissing = "missing"
	PullNever   = "never"
)

// PullModes are the values `deploy --pull` accepts.
var PullModes = []string{PullPolicy, PullAlways, PullMissing, PullNever}

// RegistryAuth returns the X-Registry-Auth value (base64 JSON credentials) for an image
// reference's registry, "" when the CLI has none stored for it.
type RegistryAuth func(ref string) (string, error)

// pullParallelism bounds concurrent pulls, as compose does, so many services do not
// open one connection each to the same registry.
const pullParallelism = 4

// Pull pulls, through the engine, the images of the selected services (all when none)
// and their dependencies that need it: with mode policy, as each service's pull_policy
// says (missing by default: when the engine lacks the image), else as mode says for
// all. Services with a build: section are built, not pulled (see Build). Each image is
// pulled once, with the CLI's credentials for its registry; every failure is reported
// at once. images is what InspectImages found on the engine (so an image is inspected
// once per deploy). It reports which services' images it pulled.
func Pull(ctx context.Context, eng engine.Engine, p *compose.Project, images Images, services []string, mode string, auth RegistryAuth, events progress.Writer) ([]string, error) {
	order, err := strategies.DeployOrder(p, services)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	byRef := map[string][]string{} // image → the services that use it
	var refs []string
	var errs []error
	for _, name := range order {
		svc := p.Project.Services[name]
		if svc.Build != nil || svc.Image == "" {
			continue
		}
		img, present := images[svc.Image]
		need, err := pullNeeded(svc, mode, present, img.LastTagTime, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %q: %w", name, err))
			continue
		}
		if !need {
			continue
		}
		if _, seen := byRef[svc.Image]; !seen {
			refs = append(refs, svc.Image)
		}
		byRef[svc.Image] = append(byRef[svc.Image], name)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	results := make([]error, len(refs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, pullParallelism)
	for i, ref := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			results[i] = pullImage(ctx, eng, ref, byRef[ref], auth, events)
		}()
	}
	wg.Wait()
	var pulled []string
	for i, ref := range refs {
		if results[i] != nil {
			errs = append(errs, results[i])
			continue
		}
		pulled = append(pulled, byRef[ref]...)
	}
	return pulled, errors.Join(errs...)
}

// pullNeeded decides whether a service's image is pulled: mode for all services, or
// with mode policy its pull_policy (daily, weekly and every_<duration> pull when the
// engine last tagged the image longer ago than that).
func pullNeeded(svc types.ServiceConfig, mode string, present bool, lastTagged, now time.Time) (bool, error) {
	switch mode {
	case PullAlways:
		return true, nil
	case PullNever:
		return false, nil
	case PullMissing:
		return !present, nil
	}
	policy, every, err := compose.PullPolicyOf(svc)
	if err != nil {
		return false, err
	}
	switch policy {
	case types.PullPolicyAlways:
		return true, nil
	case types.PullPolicyNever, types.PullPolicyBuild:
		return false, nil
	case types.PullPolicyRefresh:
		return !present || now.Sub(lastTagged) >= every, nil
	}
	return !present, nil // missing
}

func pullImage(ctx context.Context, eng engine.Engine, ref string, services []string, auth RegistryAuth, events progress.Writer) error {
	id := "Image " + ref
	who := fmt.Sprintf("service %q", services[0])
	if len(services) > 1 {
		who = fmt.Sprintf("services %q", services)
	}
	credentials := ""
	if auth != nil {
		var err error
		if credentials, err = auth(ref); err != nil {
			progress.Emit(events, id, progress.Error, "Error", err.Error())
			return fmt.Errorf("%s: credentials for %s: %w", who, ref, err)
		}
	}
	progress.Emit(events, id, progress.Working, "Pulling", "")
	err := eng.ImagePull(ctx, ref, credentials, func(line string) {
		progress.Emit(events, id, progress.Working, "Pulling", line)
	})
	if err == nil {
		progress.Emit(events, id, progress.Done, "Pulled", "")
		return nil
	}
	progress.Emit(events, id, progress.Error, "Error", err.Error())
	switch {
	case errors.Is(err, engine.ErrUnauthorized):
		if credentials == "" {
			return fmt.Errorf("%s: %w; log in to its registry (docker login %s) and deploy again", who, err, registryHost(ref))
		}
		return fmt.Errorf("%s: %w; the stored credentials for %s were refused: log in again (docker login %s), or check the image name", who, err, registryHost(ref), registryHost(ref))
	case errors.Is(err, engine.ErrNotFound):
		return fmt.Errorf("%s: %w; check the image name and tag, or push the image first", who, err)
	case errors.Is(err, engine.ErrRegistryUnreachable):
		// The engine pulls, not the CLI: its DNS, proxy and TLS settings are the ones that count.
		return fmt.Errorf("%s: %w; check that the engine reaches %s (its DNS, proxy settings and, for a registry without TLS, insecure-registries in the engine's daemon.json), or deploy with --pull never to use the images the engine has", who, err, registryHost(ref))
	}
	return fmt.Errorf("%s: %w", who, err)
}

// registryHost is the registry part of an image reference, as `docker login` takes it.
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.Domain(named)
}
