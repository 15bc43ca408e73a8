package rollout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/strategies"
)

// projectFilter selects a project's objects by the label Compose uses, so containers
// that `docker compose up` created are seen (and converged) too.
func projectFilter(project string) map[string]string {
	return map[string]string{compose.LabelProject: project}
}

var exitCodeInStatus = regexp.MustCompile(`^Exited \((-?\d+)\)`)

// Images maps each image reference of a project to the engine's image; a missing image
// has no entry.
type Images map[string]engine.Image

// InspectImages inspects each distinct image of the project once; the policy gate,
// planning and the enforcement check all use the result.
func InspectImages(ctx context.Context, eng engine.Engine, p *compose.Project) (Images, error) {
	images := Images{}
	seen := map[string]bool{}
	for _, name := range p.ServiceNames() {
		ref := compose.ImageRef(p, name)
		if seen[ref] {
			continue
		}
		seen[ref] = true
		img, err := eng.InspectImage(ctx, ref)
		switch {
		case errors.Is(err, engine.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			images[ref] = img
		}
	}
	return images, nil
}

// Refresh inspects again the images of the given services (those just pulled or built).
func (images Images) Refresh(ctx context.Context, eng engine.Engine, p *compose.Project, services []string) error {
	for _, name := range services {
		ref := compose.ImageRef(p, name)
		img, err := eng.InspectImage(ctx, ref)
		switch {
		case errors.Is(err, engine.ErrNotFound):
			delete(images, ref)
		case err != nil:
			return err
		default:
			images[ref] = img
		}
	}
	return nil
}

// Observe reads the project's state from the engine; images come from InspectImages.
func Observe(ctx context.Context, eng engine.Engine, p *compose.Project, images Images) (strategies.Observed, error) {
	obs := strategies.Observed{Networks: map[string]bool{}, Volumes: map[string]bool{}, ImageIDs: map[string]string{},
		ServiceRouters: map[string]*strategies.ObservedContainer{}, Routes: map[string][]strategies.RouteBackend{}}

	all, err := eng.ListContainers(ctx, nil)
	if err != nil {
		return obs, err
	}
	for _, c := range all {
		for _, port := range c.Ports {
			if port.HostPort != 0 {
				obs.PortOwners = append(obs.PortOwners, strategies.PortOwner{Container: c.Name, HostIP: port.HostIP, HostPort: port.HostPort, Protocol: port.Protocol})
			}
		}
		if c.Labels[compose.LabelProject] != p.Name || c.Labels[compose.LabelOneoff] == "True" {
			continue
		}
		if c.Labels[compose.LabelRole] == compose.RoleRouter {
			r := observedContainer(c)
			r.ConfigHash = c.Labels[compose.LabelRouterHash]
			if service := c.Labels[compose.LabelRouterService]; service != "" {
				obs.ServiceRouters[service] = &r
				continue
			}
			obs.Router, obs.RouterHash = &r, c.Labels[compose.LabelRouterHash]
			continue
		}
		obs.Containers = append(obs.Containers, observedContainer(c))
	}
	routers := slices.Collect(maps.Values(obs.ServiceRouters))
	if obs.Router != nil {
		routers = append(routers, obs.Router)
	}
	for _, r := range routers {
		if r.Running() {
			if err := readRoutes(ctx, eng, *r, obs.Routes); err != nil {
				return obs, err
			}
		}
	}
	if obs.Revisions, err = highestRevisions(ctx, eng, p.Name); err != nil {
		return obs, err
	}

	networks, err := eng.ListNetworks(ctx, nil)
	if err != nil {
		return obs, err
	}
	for _, n := range networks {
		obs.Networks[n.Name] = true
	}
	volumes, err := eng.ListVolumes(ctx, projectFilter(p.Name))
	if err != nil {
		return obs, err
	}
	for _, v := range volumes {
		obs.Volumes[v.Name] = true
	}
	// External volumes and volumes created outside the project carry no project label.
	creates, externals := compose.Volumes(p)
	for _, v := range creates {
		if !obs.Volumes[v.Name] {
			if _, err := eng.InspectVolume(ctx, v.Name); err == nil {
				obs.Volumes[v.Name] = true
			}
		}
	}
	for _, name := range externals {
		if _, err := eng.InspectVolume(ctx, name); err != nil {
			return obs, fmt.Errorf("external volume %s: %w; create it first (docker volume create %s)", name, err, name)
		}
	}
	_, externalNets := compose.Networks(p)
	for _, name := range externalNets {
		if !obs.Networks[name] {
			return obs, fmt.Errorf("external network %s not found; create it first (docker network create %s)", name, name)
		}
	}

	for _, name := range p.ServiceNames() {
		ref := compose.ImageRef(p, name)
		obs.ImageIDs[ref] = images[ref].ID // "" when missing
	}
	return obs, nil
}

func observedContainer(c engine.Container) strategies.ObservedContainer {
	number, _ := strconv.Atoi(c.Labels[compose.LabelContainerNumber])
	revision, _ := strconv.Atoi(c.Labels[compose.LabelRevision])
	oc := strategies.ObservedContainer{
		ID: c.ID, Name: c.Name, Service: c.Labels[compose.LabelService], Number: number, Revision: revision,
		ConfigHash: c.Labels[compose.LabelConfigHash], Image: c.Image, ImageID: c.ImageID,
		State: c.State, Health: c.Health,
	}
	if ref := c.Labels[compose.LabelImageRef]; ref != "" {
		oc.Image = ref
	}
	if f := c.Labels[compose.LabelAgentFeatures]; f != "" {
		oc.AgentFeatures = strings.Split(f, ",")
	}
	for _, port := range c.Ports {
		oc.PublishesPorts = oc.PublishesPorts || port.HostPort != 0
	}
	if m := exitCodeInStatus.FindStringSubmatch(c.Status); m != nil {
		oc.ExitCode, _ = strconv.Atoi(m[1])
	}
	return oc
}
