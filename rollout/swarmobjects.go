package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/api/types/swarm"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/progress"
	"github.com/docker-lifecycle/docker-lifecycle/secrets"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// swarmValues holds the values of the secret and config versions a deploy creates, by
// kind and Swarm name. It is never printed: the plan, the progress and the errors name
// the versions only.
type swarmValues map[string][]byte

func objectKey(kind, swarmName string) string { return kind + "/" + swarmName }

// swarmObjects reads the value of every secret and config the services reference (a
// secret from its file, environment or x-lifecycle exec; a config from its file,
// environment or content) and names its version after the value's hash: a changed value
// is a new version, so the services that reference it change and Swarm rolls them.
func swarmObjects(ctx context.Context, p *compose.Project, services []string) ([]compose.SwarmObject, compose.SwarmVersions, swarmValues, error) {
	keys, users := compose.SwarmObjectRefs(p, services)
	var objects []compose.SwarmObject
	versions := compose.SwarmVersions{}
	values := swarmValues{}
	var errs []error
	for _, k := range keys {
		var value []byte
		var err error
		if k.Kind == compose.SwarmSecret {
			value, err = secrets.Read(ctx, p, k.Name)
		} else {
			value, err = compose.ConfigValue(p, k.Name)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o, err := compose.NewSwarmObject(p, k, value, users[k])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objects = append(objects, o)
		versions[k] = o.SwarmName
		values[objectKey(k.Kind, o.SwarmName)] = value
	}
	if len(errs) > 0 {
		return nil, nil, nil, fmt.Errorf("nothing deployed: %w", errors.Join(errs...))
	}
	return objects, versions, values, nil
}

// observeSwarmObjects lists the project's secrets and configs (namespace label).
func observeSwarmObjects(ctx context.Context, eng engine.Engine, project string) ([]strategies.ObservedSwarmObject, error) {
	var out []strategies.ObservedSwarmObject
	for _, kind := range []string{engine.SwarmSecret, engine.SwarmConfig} {
		objs, err := eng.ListSwarmObjects(ctx, kind, map[string]string{compose.LabelStackNamespace: project})
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			out = append(out, strategies.ObservedSwarmObject{Kind: kind, Name: o.Name, ID: o.ID, Logical: o.Labels[compose.LabelSwarmObject]})
		}
	}
	return out, nil
}

// createSwarmObject creates the version of a create-secret or create-config step and
// records its ID.
func createSwarmObject(ctx context.Context, eng engine.Engine, s strategies.SwarmStep, values swarmValues, ids map[string]string, events progress.Writer) error {
	key := objectKey(s.Kind(), s.Name)
	value, ok := values[key]
	if !ok {
		return fmt.Errorf("create Swarm %s %s: its value was not read", s.Kind(), s.Name)
	}
	progress.Emit(events, "Swarm "+s.Name, progress.Working, "Creating "+s.Kind(), s.Cause)
	id, err := eng.CreateSwarmObject(ctx, s.Kind(), s.Name, s.Object.Labels, value)
	if err != nil {
		return err
	}
	ids[key] = id
	progress.Emit(events, "Swarm "+s.Name, progress.Done, "Created", "")
	return nil
}

// withObjectIDs returns the spec with the IDs of the versions it references filled in:
// Swarm resolves references by ID, which exist only once the versions do.
func withObjectIDs(spec swarm.ServiceSpec, ids map[string]string) (swarm.ServiceSpec, error) {
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil || len(cs.Secrets)+len(cs.Configs) == 0 {
		return spec, nil
	}
	c := *cs
	c.Secrets, c.Configs = nil, nil
	for _, r := range cs.Secrets {
		id, ok := ids[objectKey(engine.SwarmSecret, r.SecretName)]
		if !ok {
			return spec, fmt.Errorf("service %s: Swarm secret %s is missing (removed meanwhile?): deploy again", spec.Name, r.SecretName)
		}
		ref := *r
		ref.SecretID = id
		c.Secrets = append(c.Secrets, &ref)
	}
	for _, r := range cs.Configs {
		id, ok := ids[objectKey(engine.SwarmConfig, r.ConfigName)]
		if !ok {
			return spec, fmt.Errorf("service %s: Swarm config %s is missing (removed meanwhile?): deploy again", spec.Name, r.ConfigName)
		}
		ref := *r
		ref.ConfigID = id
		c.Configs = append(c.Configs, &ref)
	}
	spec.TaskTemplate.ContainerSpec = &c
	return spec, nil
}

// removeUnusedObjects removes the versions no service references any more, once the
// services converged. Swarm refuses while a service still uses one (a concurrent deploy,
// a service changed by hand): it stays for the next deploy. Nothing here fails a deploy.
func removeUnusedObjects(ctx context.Context, eng engine.Engine, plan strategies.SwarmPlan, events progress.Writer) {
	for _, s := range plan.Steps {
		if !s.Removal() {
			continue
		}
		id := "Swarm " + s.Name
		err := eng.RemoveSwarmObject(ctx, s.Kind(), s.ObjectID)
		switch {
		case err == nil, errors.Is(err, engine.ErrNotFound):
			progress.Emit(events, id, progress.Done, "Removed", "old version of "+s.Kind())
		case errors.Is(err, engine.ErrInUse):
			progress.Emit(events, id, progress.Done, "Kept", "still used by a service; the next deploy removes it")
		default:
			progress.Emit(events, id, progress.Warning, "Not removed", err.Error())
		}
	}
}
