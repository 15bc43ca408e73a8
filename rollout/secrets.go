package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/docker-lifecycle/docker-lifecycle/agent/agentimage"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/secrets"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// Secrets reach a container as files on a tmpfs, never through its environment,
// labels or a host file: each container that uses secrets gets a tmpfs volume and a
// tiny holder container (the agent, `hold`, no network, no capability but to chown)
// that keeps the tmpfs mounted and into which the plugin writes the files over a
// `docker exec` stdin. The service container mounts the tmpfs read-only at
// /run/secrets. The engine keeps only the holder's and the volume's settings; the
// values live in memory.

// secretFileJSON is one file as `agent secrets-write` reads it.
type secretFileJSON struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
	Mode  uint32 `json:"mode"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
}

// secretValue reads a secret's value once per deploy.
func (x *executor) secretValue(ctx context.Context, name string) ([]byte, error) {
	x.mu.Lock()
	v, ok := x.secretValues[name]
	x.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := secrets.Read(ctx, x.project, name)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	x.secretValues[name] = v
	x.mu.Unlock()
	return v, nil
}

// prepareSecrets delivers the service's secrets for the container about to be created
// and adds the read-only tmpfs mount to its spec.
func (x *executor) prepareSecrets(ctx context.Context, service, containerName string, spec *compose.ContainerCreate) error {
	files, err := compose.ServiceSecrets(x.project, service, x.opts.Images[compose.ImageRef(x.project, service)].User)
	if err != nil || len(files) == 0 {
		return err
	}
	var payload []secretFileJSON
	for _, f := range files {
		v, err := x.secretValue(ctx, f.Secret)
		if err != nil {
			return err
		}
		payload = append(payload, secretFileJSON{Name: f.Name, Value: v, Mode: f.Mode, UID: f.UID, GID: f.GID})
	}
	arch, err := x.eng.Arch(ctx)
	if err != nil {
		return err
	}
	image, err := agentimage.Ensure(ctx, x.eng, arch)
	if err != nil {
		return err
	}
	labels := map[string]string{
		compose.LabelProject: x.project.Name, compose.LabelManagedBy: compose.ManagedByValue,
		compose.LabelRole: compose.RoleSecrets, compose.LabelService: service,
		// A one-off to Compose and to our observation: not a replica of the service.
		compose.LabelOneoff: "True",
	}
	volume := compose.SecretsVolume(containerName)
	// Removed first: a killed deploy may have left one of this name.
	x.removeSecretsOf(ctx, containerName)
	if _, err := x.eng.CreateVolume(ctx, engine.VolumeSpec{Name: volume, Driver: "local", Labels: labels,
		DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=4m,mode=0755"}}); err != nil {
		return fmt.Errorf("secrets of %s: %w", containerName, err)
	}
	pids := int64(16)
	holder := engine.ContainerSpec{
		Name:   compose.SecretsHolderName(containerName),
		Config: &container.Config{Image: image, Cmd: []string{"hold"}, User: "0:0", Labels: labels},
		HostConfig: &container.HostConfig{
			NetworkMode:    "none",
			RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
			CapDrop:        []string{"ALL"},
			CapAdd:         []string{"CHOWN", "FOWNER"},
			SecurityOpt:    []string{"no-new-privileges:true"},
			ReadonlyRootfs: true,
			Mounts:         []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: compose.SecretsDir}},
			Resources:      container.Resources{Memory: 16 << 20, PidsLimit: &pids},
		},
	}
	id, err := x.eng.CreateContainer(ctx, holder)
	if err != nil {
		return fmt.Errorf("secrets holder of %s: %w", containerName, err)
	}
	if err := x.eng.StartContainer(ctx, id); err != nil {
		return fmt.Errorf("secrets holder of %s: %w", containerName, err)
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	if _, err := x.eng.Exec(ctx, id, []string{"/agent", "secrets-write", compose.SecretsDir}, body); err != nil {
		return fmt.Errorf("write the secrets of %s: %w", containerName, err)
	}
	spec.HostConfig.Mounts = append(spec.HostConfig.Mounts, mount.Mount{Type: mount.TypeVolume, Source: volume, Target: compose.SecretsDir, ReadOnly: true})
	return nil
}

// removeSecretsOf removes a container's secrets holder and tmpfs, if it has them.
func (x *executor) removeSecretsOf(ctx context.Context, containerName string) {
	err := x.eng.RemoveContainer(ctx, compose.SecretsHolderName(containerName), true)
	if err == nil || errors.Is(err, engine.ErrNotFound) {
		_ = x.eng.RemoveVolume(ctx, compose.SecretsVolume(containerName))
	}
}

// readSecrets reads every secret the selected services (all when none) and their
// dependencies use.
func readSecrets(ctx context.Context, p *compose.Project, services []string) (map[string][]byte, error) {
	order, err := strategies.DeployOrder(p, services)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range order {
		for _, ref := range p.Project.Services[name].Secrets {
			if _, done := out[ref.Source]; done {
				continue
			}
			v, err := secrets.Read(ctx, p, ref.Source)
			if err != nil {
				return nil, err
			}
			out[ref.Source] = v
		}
	}
	return out, nil
}
