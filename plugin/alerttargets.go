package plugin

import (
	"fmt"
	"io"

	"github.com/docker-lifecycle/docker-lifecycle/alerting"
	"github.com/docker-lifecycle/docker-lifecycle/compose"
)

// alertTargetsNotifier sends what a foreground command reports (the guard's alerts,
// the failed runs of `backup --every`) to x-lifecycle.alerts.targets too (docs/guard.md,
// docs/backup.md); nil when the project sets none. A stderr target is left out: the
// command says it all on stderr already. who prefixes the delivery errors logged there.
func alertTargetsNotifier(p *compose.Project, stderr io.Writer, who string) (*alerting.Notifier, error) {
	var specs []compose.AlertTarget
	for _, t := range p.Spec.Alerts.Targets {
		if !t.Stderr {
			specs = append(specs, t)
		}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	targets, err := alerting.NewTargets(specs, stderr)
	if err != nil {
		return nil, err
	}
	return alerting.NewNotifier(targets, func(s string) { fmt.Fprintln(stderr, who+": "+s) }), nil
}
