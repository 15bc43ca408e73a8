package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/compose-spec/compose-go/v2/types"

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
// that honours .dockerignore. images is what InspectImages found on the engine. It
// reports which services it built.
func Build(ctx context.Context, eng engine.Engine, p *compose.Project, images Images, services []string, force bool, events progress.Writer) ([]string, error) {
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
			if _, present := images[ref]; present {
				continue
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
	if err := compose.ClassicBuildable(b); err != nil {
		progress.Emit(events, id, progress.Error, "Error", err.Error())
		return fmt.Errorf("service %q: build: %w", name, err)
	}
	progress.Emit(events, id, progress.Working, "Building", ref)
	buildCtx, dockerfile, err := compose.BuildContext(p.WorkingDir, b)
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
