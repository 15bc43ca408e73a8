package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

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
	image := x.opts.Images[compose.ImageRef(x.project, service)]
	files, err := compose.ServiceSecrets(x.project, service, image.User, nil)
	if errors.Is(err, compose.ErrNamedUser) {
		// `user: postgres`: the ids are the image's, in its /etc/passwd and /etc/group,
		// read before the deploy began (resolveSecretOwners) or now.
		x.mu.Lock()
		accounts, ok := x.accounts[image.ID]
		x.mu.Unlock()
		if !ok {
			if accounts, err = imageAccounts(ctx, x.eng, x.project, service, image); err != nil {
				return err
			}
			x.mu.Lock()
			x.accounts[image.ID] = accounts
			x.mu.Unlock()
		}
		files, err = compose.ServiceSecrets(x.project, service, image.User, accounts)
	}
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
	agent, err := agentimage.Ensure(ctx, x.eng, arch)
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
		Config: &container.Config{Image: agent, Cmd: []string{"hold"}, User: "0:0", Labels: labels},
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

// accountsFileLimit bounds what is read of an image's /etc/passwd or /etc/group.
const accountsFileLimit = 1 << 20

// imageAccounts reads the users and groups of a service's image from its /etc/passwd
// and /etc/group: through a container created from the image and never started (the
// engine's archive API reads a created container's filesystem), removed right after.
// An image without the files has no accounts.
func imageAccounts(ctx context.Context, eng engine.Engine, p *compose.Project, service string, image engine.Image) (*compose.Accounts, error) {
	ref := compose.ImageRef(p, service)
	if image.ID == "" {
		return nil, fmt.Errorf("image %s of service %s is not on the engine", ref, service)
	}
	id, err := eng.CreateContainer(ctx, engine.ContainerSpec{
		Config: &container.Config{
			Image: image.ID,
			// Never run: an entrypoint only so that images without CMD can be created.
			Entrypoint: []string{"/lifecycle-never-started"},
			Cmd:        []string{},
			Labels: map[string]string{
				compose.LabelProject: p.Name, compose.LabelManagedBy: compose.ManagedByValue,
				compose.LabelService: service, compose.LabelOneoff: "True", compose.LabelRole: roleAccounts,
			},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if id != "" {
		defer func() {
			rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = eng.RemoveContainer(rmCtx, id, true)
		}()
	}
	if err != nil {
		return nil, fmt.Errorf("read the users of image %s: %w", ref, err)
	}
	files := map[string][]byte{}
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		b, err := eng.ReadFile(ctx, id, f, accountsFileLimit)
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return nil, fmt.Errorf("read the users of image %s: %w", ref, err)
		}
		files[f] = b
	}
	return compose.ParseAccounts(files["/etc/passwd"], files["/etc/group"]), nil
}

// resolveSecretOwners resolves, before any change, the owner of every secret file of
// the selected services (all when none) and their dependencies: a user name is looked up
// in the image's accounts, read once per image. Every service's problem is reported.
// It returns the accounts read, by image ID, for the executor.
func resolveSecretOwners(ctx context.Context, eng engine.Engine, p *compose.Project, images Images, services []string) (map[string]*compose.Accounts, error) {
	order, err := strategies.DeployOrder(p, services)
	if err != nil {
		return nil, err
	}
	accounts := map[string]*compose.Accounts{}
	var errs []error
	for _, name := range order {
		if len(p.Project.Services[name].Secrets) == 0 {
			continue
		}
		image, ok := images[compose.ImageRef(p, name)]
		if !ok {
			continue // a missing image is reported where images are checked
		}
		_, err := compose.ServiceSecrets(p, name, image.User, nil)
		if !errors.Is(err, compose.ErrNamedUser) {
			continue // numeric ids, or an error load already reported
		}
		a, ok := accounts[image.ID]
		if !ok {
			if a, err = imageAccounts(ctx, eng, p, name, image); err != nil {
				errs = append(errs, err)
				continue
			}
			accounts[image.ID] = a
		}
		if _, err := compose.ServiceSecrets(p, name, image.User, a); err != nil {
			errs = append(errs, err)
		}
	}
	return accounts, errors.Join(errs...)
}

// roleAccounts marks the never-started container that reads an image's users.
const roleAccounts = "accounts"

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
