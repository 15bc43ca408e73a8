package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker-lifecycle/docker-lifecycle/compose"
	"github.com/docker-lifecycle/docker-lifecycle/engine"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
)

// ErrPolicy marks a deploy refused by the project's security and resource policy.
var ErrPolicy = errors.New("policy violations stop the deploy")

// PolicyConfig turns the project's x-lifecycle policy into the policy package's terms.
func PolicyConfig(p *compose.Project) policy.Config {
	cfg := policy.Config{
		Require: p.Spec.Policy.Require,
		Deny:    p.Spec.Policy.Deny,
		Allow:   map[string][]policy.Exception{},
		Defaults: policy.Defaults{
			Memory: p.Spec.Policy.Defaults.Memory > 0,
			CPUs:   p.Spec.Policy.Defaults.CPUs > 0,
			Pids:   p.Spec.Policy.Defaults.Pids > 0,
		},
	}
	for name, spec := range p.ServiceSpecs {
		for _, e := range spec.Allow {
			cfg.Allow[name] = append(cfg.Allow[name], policy.Exception{Rule: e.Rule, Reason: e.Reason})
		}
	}
	return cfg
}

// ValidatePolicy checks the policy's rule names and exceptions without the engine, so a
// typo fails before any engine call.
func ValidatePolicy(p *compose.Project) error {
	if _, err := policy.Evaluate(p.Project, nil, PolicyConfig(p)); err != nil {
		return fmt.Errorf("x-lifecycle policy: %w", err)
	}
	return nil
}

// CheckPolicy evaluates every service, with image facts read from the engine (eng may be
// nil: the image-dependent checks then judge by the compose file alone).
func CheckPolicy(ctx context.Context, eng engine.Engine, p *compose.Project) ([]policy.Finding, error) {
	images := map[string]policy.ImageFacts{}
	if eng != nil {
		for _, name := range p.ServiceNames() {
			ref := compose.ImageRef(p, name)
			if _, seen := images[ref]; seen {
				continue
			}
			img, err := eng.InspectImage(ctx, ref)
			switch {
			case errors.Is(err, engine.ErrNotFound):
				images[ref] = policy.ImageFacts{}
			case err != nil:
				return nil, err
			default:
				images[ref] = policy.ImageFacts{Found: true, User: img.User, Healthcheck: img.Healthcheck}
			}
		}
	}
	findings, err := policy.Evaluate(p.Project, images, PolicyConfig(p))
	if err != nil {
		return nil, fmt.Errorf("x-lifecycle policy: %w", err)
	}
	return findings, nil
}

// policyError lists every blocking finding at once, so one run shows all there is to fix.
func policyError(blocking []policy.Finding) error {
	var b strings.Builder
	for _, f := range blocking {
		cis := ""
		if f.CIS != "" {
			cis = " (CIS " + f.CIS + ")"
		}
		fmt.Fprintf(&b, "\n  service %q: %s%s: %s", f.Service, f.Rule, cis, f.Message)
	}
	return fmt.Errorf("%w: %d found; fix them, or add an exception with its reason under the service's x-lifecycle.allow:%s", ErrPolicy, len(blocking), b.String())
}
