package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/cli/command/image/build"
	"github.com/moby/go-archive"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// Build builds, on the engine, the images of the selected services (all when none) and
// their dependencies that have a build: section and need it: every one with force
// (`deploy --build`), else those with `pull_policy: build` and those whose image is not
// on the engine, as `docker compose up` does. The image is named as Compose v2 names it
// (the service's image:, else <project>-<service>) plus build.tags. Builds go through
// the Engine API's build endpoint (the classic builder), the context streamed as a tar
// that honours .dockerignore. It reports which services it built.
func Build(ctx context.Context, eng engine.Engine, p *compose.Project, services []string, force bool, events progress.Writer) ([]string, error) {
	order, err := strategies.DeployOrder(p, services)
	if err != nil {
		return nil, err
	}
	var built []string
	var errs []error
	for _, name := range order {
		svc := p.Project.Services[name]
		if svc.Build == nil {
			continue
		}
		ref := compose.ImageRef(p, name)
		if !force && svc.PullPolicy != types.PullPolicyBuild {
			if _, err := eng.InspectImage(ctx, ref); err == nil {
				continue
			} else if !errors.Is(err, engine.ErrNotFound) {
				return built, err
			}
		}
		if err := buildService(ctx, eng, p, name, ref, events); err != nil {
			errs = append(errs, err)
			continue
		}
		built = append(built, name)
	}
	return built, errors.Join(errs...)
}

func buildService(ctx context.Context, eng engine.Engine, p *compose.Project, name, ref string, events progress.Writer) error {
	id := "Service " + name
	svc := p.Project.Services[name]
	b := svc.Build
	if err := classicBuilderCan(b); err != nil {
		progress.Emit(events, id, progress.Error, "Error", err.Error())
		return fmt.Errorf("service %q: build: %w", name, err)
	}
	progress.Emit(events, id, progress.Working, "Building", ref)
	buildCtx, dockerfile, err := buildContext(p.WorkingDir, b)
	if err != nil {
		progress.Emit(events, id, progress.Error, "Error", err.Error())
		return fmt.Errorf("service %q: build context: %w", name, err)
	}
	defer buildCtx.Close()
	args := types.MappingWithEquals{}
	for k, v := range b.Args {
		if v == nil { // `args: [NAME]`: the value comes from the environment, as in compose
			if e, ok := p.Environment[k]; ok {
				v = &e
			}
		}
		args[k] = v
	}
	labels := map[string]string{compose.LabelProject: p.Name, compose.LabelService: name}
	for k, v := range b.Labels {
		labels[k] = v
	}
	spec := engine.BuildSpec{
		Context: buildCtx, Dockerfile: dockerfile, Tags: append([]string{ref}, b.Tags...),
		Args: args, Target: b.Target, Labels: labels, Network: b.Network,
		ExtraHosts: b.ExtraHosts.AsList(":"), ShmSize: int64(b.ShmSize),
	}
	err = eng.ImageBuild(ctx, spec, func(line string) {
		progress.Emit(events, id, progress.Working, "Building", line)
	})
	if err != nil {
		progress.Emit(events, id, progress.Error, "Error", err.Error())
		return fmt.Errorf("service %q: %w", name, err)
	}
	progress.Emit(events, id, progress.Done, "Built", ref)
	return nil
}

// classicBuilderCan refuses the build keys only BuildKit implements, naming them.
func classicBuilderCan(b *types.BuildConfig) error {
	var keys []string
	for key, set := range map[string]bool{
		"additional_contexts": len(b.AdditionalContexts) > 0, "ssh": len(b.SSH) > 0,
		"secrets": len(b.Secrets) > 0, "cache_to": len(b.CacheTo) > 0, "platforms": len(b.Platforms) > 1,
		"entitlements": len(b.Entitlements) > 0, "privileged": b.Privileged,
	} {
		if set {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return fmt.Errorf("build keys %s need BuildKit, which the engine's classic build endpoint lacks: build with `docker compose build` (or docker buildx), then deploy without --build", strings.Join(slices.Sorted(slices.Values(keys)), ", "))
}

// buildContext streams the build context as `docker build` does: the directory as a
// tar without what .dockerignore excludes, and a Dockerfile given inline or from
// outside the context added under a generated name. It returns the Dockerfile's path
// in the context.
func buildContext(workingDir string, b *types.BuildConfig) (io.ReadCloser, string, error) {
	dir := b.Context
	if dir == "" {
		dir = "."
	}
	if strings.Contains(dir, "://") || strings.HasPrefix(dir, "git@") {
		return nil, "", fmt.Errorf("the remote context %s is not supported: clone it and point build.context at the directory", dir)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(workingDir, dir)
	}
	dockerfile := "-" // inline: no file in the context
	if b.DockerfileInline == "" {
		dockerfile = b.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(dir, dockerfile) // compose: relative to the context
		}
	}
	contextDir, relDockerfile, err := build.GetContextFromLocalDir(dir, dockerfile)
	if err != nil {
		return nil, "", err
	}
	excludes, err := build.ReadDockerignore(contextDir)
	if err != nil {
		return nil, "", err
	}
	if err := build.ValidateContextDirectory(contextDir, excludes); err != nil {
		return nil, "", err
	}
	outside := strings.HasPrefix(relDockerfile, ".."+string(filepath.Separator))
	relDockerfile = filepath.ToSlash(relDockerfile)
	excludes = build.TrimBuildFilesFromExcludes(excludes, relDockerfile, b.DockerfileInline != "")
	tar, err := archive.TarWithOptions(contextDir, &archive.TarOptions{ExcludePatterns: excludes, ChownOpts: &archive.ChownOpts{UID: 0, GID: 0}})
	if err != nil {
		return nil, "", err
	}
	var content io.ReadCloser
	switch {
	case b.DockerfileInline != "":
		content = io.NopCloser(strings.NewReader(b.DockerfileInline))
	case outside:
		f, err := os.Open(dockerfile)
		if err != nil {
			tar.Close()
			return nil, "", err
		}
		content = f
	default:
		return tar, relDockerfile, nil
	}
	return build.AddDockerfileToBuildContext(content, tar)
}
