package rollout

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
)

// resolveServiceRefs replaces each service:NAME of a container's create options
// (network_mode, ipc, pid, volumes_from, links) with the container of NAME that runs
// now, the newest revision's, as Compose resolves them at create time: the namespaces
// by container:ID, volumes_from and links by name.
func resolveServiceRefs(ctx context.Context, eng engine.Engine, project string, spec *compose.ContainerCreate) error {
	cache := map[string]engine.Container{}
	current := func(service string) (engine.Container, error) {
		if c, ok := cache[service]; ok {
			return c, nil
		}
		cs, err := eng.ListContainers(ctx, map[string]string{compose.LabelProject: project, compose.LabelService: service, compose.LabelRole: compose.RoleApp})
		if err != nil {
			return engine.Container{}, err
		}
		var best engine.Container
		bestRev := -1
		for _, c := range cs {
			rev, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
			if c.State == "running" {
				rev += 1 << 20 // a running container wins over a newer stopped one
			}
			if rev > bestRev {
				best, bestRev = c, rev
			}
		}
		if best.ID == "" {
			return engine.Container{}, fmt.Errorf("container %s refers to service %q, which has no container: deploy it too", spec.Name, service)
		}
		cache[service] = best
		return best, nil
	}
	h := spec.HostConfig
	namespace := func(mode string) (string, error) {
		service, _, ok := compose.ServiceRef(mode)
		if !ok {
			return mode, nil
		}
		c, err := current(service)
		if err != nil {
			return "", err
		}
		return "container:" + c.ID, nil
	}
	var err error
	var mode string
	if mode, err = namespace(string(h.NetworkMode)); err != nil {
		return err
	}
	h.NetworkMode = container.NetworkMode(mode)
	if mode, err = namespace(string(h.IpcMode)); err != nil {
		return err
	}
	h.IpcMode = container.IpcMode(mode)
	if mode, err = namespace(string(h.PidMode)); err != nil {
		return err
	}
	h.PidMode = container.PidMode(mode)
	byName := func(list []string) ([]string, error) {
		if len(list) == 0 {
			return nil, nil
		}
		out := make([]string, 0, len(list))
		for _, v := range list {
			service, rest, ok := compose.ServiceRef(v)
			if !ok {
				out = append(out, v)
				continue
			}
			c, err := current(service)
			if err != nil {
				return nil, err
			}
			out = append(out, strings.TrimPrefix(c.Name, "/")+rest)
		}
		return out, nil
	}
	if h.VolumesFrom, err = byName(h.VolumesFrom); err != nil {
		return err
	}
	if len(h.Links) > 0 {
		// As Compose: the linked container under the alias, its own name and its
		// short name <service>-<number>.
		var links []string
		for _, l := range h.Links {
			service, alias, ok := compose.ServiceRef(l)
			if !ok {
				links = append(links, l)
				continue
			}
			c, err := current(service)
			if err != nil {
				return err
			}
			name := strings.TrimPrefix(c.Name, "/")
			links = append(links, name+alias, name+":"+name, name+":"+service+"-"+c.Labels[compose.LabelContainerNumber])
		}
		h.Links = links
		if spec.Networking != nil {
			for _, ep := range spec.Networking.EndpointsConfig {
				ep.Links = h.Links
			}
		}
	}
	return nil
}

// copyFiles writes the container's files (configs given as content or environment)
// into it before it starts.
func copyFiles(ctx context.Context, eng engine.Engine, id string, files []compose.ContainerFile) error {
	if len(files) == 0 {
		return nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: strings.TrimPrefix(f.Path, "/"), Mode: int64(f.Mode), Uid: f.UID, Gid: f.GID, Size: int64(len(f.Content)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.Content); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return eng.CopyToContainer(ctx, id, "/", &buf)
}

// engineSpec is the engine's part of a container's create options.
func engineSpec(spec compose.ContainerCreate) engine.ContainerSpec {
	return engine.ContainerSpec{Name: spec.Name, Config: spec.Config, HostConfig: spec.HostConfig, Networking: spec.Networking, Platform: spec.Platform}
}
