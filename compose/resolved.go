package compose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/compose-spec/compose-go/v2/types"
)

// Resolved renders the project the way `docker lifecycle config` prints it: the compose
// model with each x-lifecycle block replaced by its resolved form (defaults applied),
// in "yaml" or "json".
//
// The output is a compose file that loads again, with docker compose and with docker
// lifecycle, and means the same project:
//   - `$` is written `$$`, as `docker compose config` writes it, so a literal dollar is
//     not interpolated on the next load;
//   - the rollout settings that come from compose's deploy.update_config and
//     deploy.rollback_config are written there, with their defaults, not in x-lifecycle;
//   - derived facts (whether the scan gate or segmentation is on, whether a service is
//     isolated) are not written: they follow from the blocks present, so the scan block
//     appears only when the project has one, and a service's network block only when
//     it is isolated.
func Resolved(p *Project, format string) ([]byte, error) {
	resolved := *p.Project
	resolved.Extensions = maps.Clone(p.Project.Extensions)
	if resolved.Extensions == nil {
		resolved.Extensions = types.Extensions{}
	}
	resolved.Extensions[ExtensionKey] = p.Spec
	resolved.Services = make(types.Services, len(p.Project.Services))
	for name, svc := range p.Project.Services {
		spec := p.ServiceSpecs[name]
		if spec.Network != nil && !spec.Network.Isolated {
			spec.Network = nil // an open service has no block: a block isolates
		}
		svc.Extensions = maps.Clone(svc.Extensions)
		if svc.Extensions == nil {
			svc.Extensions = types.Extensions{}
		}
		svc.Extensions[ExtensionKey] = spec
		deploy := types.DeployConfig{}
		if svc.Deploy != nil {
			deploy = *svc.Deploy
		}
		deploy.UpdateConfig = spec.Update.compose()
		deploy.RollbackConfig = spec.Rollback.compose()
		svc.Deploy = &deploy
		resolved.Services[name] = svc
	}
	var out []byte
	var err error
	switch format {
	case "json":
		out, err = resolvedJSON(&resolved)
	case "yaml", "":
		out, err = resolved.MarshalYAML()
	default:
		return nil, fmt.Errorf("unknown format %q (valid: yaml, json)", format)
	}
	if err != nil {
		return nil, fmt.Errorf("render project %s: %w", p.Name, err)
	}
	return bytes.ReplaceAll(out, []byte("$"), []byte("$$")), nil
}

// resolvedJSON is compose-go's JSON with the extensions of services, networks, volumes,
// secrets and configs put back: compose-go leaves them out of its JSON (json:"-"),
// unlike its YAML, and x-lifecycle lives there.
func resolvedJSON(p *types.Project) ([]byte, error) {
	out, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, err
	}
	restore := func(section string, extensions func(name string) types.Extensions) {
		entries, _ := doc[section].(map[string]any)
		for name, entry := range entries {
			if m, ok := entry.(map[string]any); ok {
				maps.Copy(m, extensions(name))
			}
		}
	}
	restore("services", func(n string) types.Extensions { return p.Services[n].Extensions })
	restore("networks", func(n string) types.Extensions { return p.Networks[n].Extensions })
	restore("volumes", func(n string) types.Extensions { return p.Volumes[n].Extensions })
	restore("secrets", func(n string) types.Extensions { return p.Secrets[n].Extensions })
	restore("configs", func(n string) types.Extensions { return p.Configs[n].Extensions })
	out, err = json.MarshalIndent(doc, "", "  ")
	return append(out, '\n'), err
}

// compose is the update config as compose's deploy.update_config writes it; it
// resolves to u again.
func (u UpdateSpec) compose() *types.UpdateConfig {
	parallelism := uint64(u.Parallelism)
	return &types.UpdateConfig{
		Parallelism:     &parallelism,
		Delay:           types.Duration(u.Delay),
		FailureAction:   u.FailureAction,
		Monitor:         types.Duration(u.Monitor),
		MaxFailureRatio: float32(u.MaxFailureRatio),
		Order:           u.Order,
	}
}
