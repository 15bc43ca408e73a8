package compose

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// Strategies.
const (
	StrategyRolling   = "rolling"
	StrategyBlueGreen = "blue-green"
	StrategyCanary    = "canary"
	StrategyRecreate  = "recreate"
)

var strategies = []string{StrategyRolling, StrategyBlueGreen, StrategyCanary, StrategyRecreate}

// Update orders and failure actions of compose's deploy.update_config.
const (
	OrderStartFirst = "start-first"
	OrderStopFirst  = "stop-first"

	FailureRollback = "rollback"
	FailurePause    = "pause"
	FailureContinue = "continue"
)

// Blue-green promotion modes.
const (
	PromoteAuto   = "auto"
	PromoteManual = "manual"
)

// DefaultHistory is how many previous revisions are kept as stopped containers.
const DefaultHistory = 5

// How the router carries a service's published ports (x-lifecycle.protocol).
const (
	ProtocolAuto = "auto"
	ProtocolHTTP = "http"
	ProtocolTCP  = "tcp"
)

// DefaultSniffWindow is how long the router waits for a client's first bytes with
// protocol auto; it equals the router's own default (a rollout test checks). A
// client-first client's bytes arrive with the handshake, so the window only delays the
// greeting of server-first protocols; long enough that a client descheduled for a few
// scheduler periods or a GC pause still speaks inside it, short enough that a person
// does not notice it before a MySQL or SMTP greeting. maxSniffWindow bounds the key.
const (
	DefaultSniffWindow = 200 * time.Millisecond
	maxSniffWindow     = 10 * time.Second
)

// defaultDrain is the drain bound when neither x-lifecycle.drain nor stop_grace_period is
// set: the engine's own default stop timeout.
const defaultDrain = 10 * time.Second

// BlueGreenSpec configures the blue-green strategy.
type BlueGreenSpec struct {
	// Promote is "auto" (switch as soon as the new colour is healthy) or "manual"
	// (`docker lifecycle promote`).
	Promote string `mapstructure:"promote" json:"promote,omitempty" yaml:"promote,omitempty"`
	// ScaleDownDelay keeps the old colour running after the switch, for a fast way back.
	ScaleDownDelay Duration `mapstructure:"scale-down-delay" json:"scale-down-delay,omitempty" yaml:"scale-down-delay,omitempty"`
	// PreviewPort publishes the newest colour (from the moment it is healthy, before
	// promotion) on "[HOST:]PORT", through the router, for its first published port.
	PreviewPort string `mapstructure:"preview-port" json:"preview-port,omitempty" yaml:"preview-port,omitempty"`
}

// CanarySpec configures the canary strategy.
type CanarySpec struct {
	Steps    []CanaryStep `mapstructure:"steps" json:"steps,omitempty" yaml:"steps,omitempty"`
	Analysis AnalysisSpec `mapstructure:"analysis" json:"analysis" yaml:"analysis"`
}

// CanaryStep sends Weight percent of new requests to the new revision for Pause.
type CanaryStep struct {
	Weight int      `mapstructure:"weight" json:"weight" yaml:"weight"`
	Pause  Duration `mapstructure:"pause" json:"pause" yaml:"pause"`
}

// AnalysisSpec judges the new revision on the router's counters after each canary step.
type AnalysisSpec struct {
	// MaxErrorRate is the largest share of 5xx answers and failed requests (0..1); 0 means
	// none at all, absent means the default.
	MaxErrorRate *float64 `mapstructure:"max-error-rate" json:"max-error-rate" yaml:"max-error-rate"`
	// MaxP99 bounds the 99th percentile latency (0: not checked).
	MaxP99 Duration `mapstructure:"max-p99" json:"max-p99,omitempty" yaml:"max-p99,omitempty"`
	// MinRequests is how many requests the step must see for a verdict; with fewer,
	// the analysis fails, because no evidence is not good evidence.
	MinRequests int `mapstructure:"min-requests" json:"min-requests" yaml:"min-requests"`
}

// Default canary settings.
const (
	defaultCanaryPause  = 30 * time.Second
	defaultMaxErrorRate = 0.01
)

var defaultCanarySteps = []int{10, 50}

// UpdateSpec is compose's deploy.update_config (or rollback_config) with defaults applied.
type UpdateSpec struct {
	Parallelism     int      `json:"parallelism" yaml:"parallelism"`
	Delay           Duration `json:"delay" yaml:"delay"`
	Order           string   `json:"order" yaml:"order"`
	Monitor         Duration `json:"monitor" yaml:"monitor"`
	FailureAction   string   `json:"failure_action" yaml:"failure_action"`
	MaxFailureRatio float64  `json:"max_failure_ratio" yaml:"max_failure_ratio"`
}

// Routed reports whether the strategy runs old and new containers side by side behind
// the router.
func (s ServiceSpec) Routed() bool { return s.Strategy != StrategyRecreate }

// resolveRollout fills the rollout settings that depend on the compose service: the
// default strategy, the update and rollback configs, and the drain bound.
//
// A service that sets no strategy gets the project's, else rolling; but recreate when it
// cannot run twice, or when it is a one-shot job that other services wait to complete.
func resolveRollout(svc types.ServiceConfig, spec *ServiceSpec, projectDefault string, oneShot bool) error {
	reason, risk := cannotRunTwice(svc), shouldNotRunTwice(svc)
	switch {
	case spec.Strategy == "" && reason != "":
		spec.Strategy, spec.StrategyReason = StrategyRecreate, reason
	case spec.Strategy == "" && risk != "":
		spec.Strategy, spec.StrategyReason = StrategyRecreate, risk+"; set x-lifecycle.strategy if two copies are safe"
	case spec.Strategy == "" && oneShot:
		spec.Strategy, spec.StrategyReason = StrategyRecreate, "it is a one-shot job that other services wait to complete"
	case spec.Strategy == "" && projectDefault != "":
		spec.Strategy, spec.StrategyReason = projectDefault, "the project's x-lifecycle.strategy"
	case spec.Strategy == "":
		spec.Strategy, spec.StrategyReason = StrategyRolling, "the default"
	case spec.Strategy != StrategyRecreate && reason != "":
		return fmt.Errorf("key \"strategy\": %q runs old and new containers side by side, but %s; use %q", spec.Strategy, reason, StrategyRecreate)
	default:
		spec.StrategyReason = "set in the service's x-lifecycle"
	}
	if spec.Strategy == StrategyRecreate && svc.GetScale() > 1 {
		for _, p := range svc.Ports {
			if p.Published != "" {
				return fmt.Errorf("publishes host port %s and has %d replicas with the recreate strategy: only one container can own a host port; use the rolling strategy (its router owns the port), remove the host port, or use 1 replica", p.Published, svc.GetScale())
			}
		}
	}
	if spec.History == nil {
		spec.History = new(DefaultHistory)
	}
	if *spec.History < 0 {
		return fmt.Errorf("key \"history\" must not be negative, got %d", *spec.History)
	}
	if spec.Drain == 0 {
		spec.Drain = Duration(defaultDrain)
		if svc.StopGracePeriod != nil {
			spec.Drain = Duration(*svc.StopGracePeriod)
		}
	}
	var update, rollback *types.UpdateConfig
	if svc.Deploy != nil {
		update, rollback = svc.Deploy.UpdateConfig, svc.Deploy.RollbackConfig
	}
	var err error
	if spec.Update, err = updateSpec(update, "deploy.update_config"); err != nil {
		return err
	}
	if spec.Rollback, err = updateSpec(rollback, "deploy.rollback_config"); err != nil {
		return err
	}
	switch spec.Protocol {
	case "":
		spec.Protocol = ProtocolAuto
	case ProtocolAuto, ProtocolHTTP, ProtocolTCP:
	default:
		return fmt.Errorf("key \"protocol\": want \"auto\", \"http\" or \"tcp\", got %q", spec.Protocol)
	}
	switch {
	case spec.SniffWindow != 0 && spec.Protocol != ProtocolAuto:
		return fmt.Errorf("key \"sniff-window\" needs protocol %q, not %q (only auto waits for the client's first bytes)", ProtocolAuto, spec.Protocol)
	case spec.SniffWindow < 0 || time.Duration(spec.SniffWindow) > maxSniffWindow:
		return fmt.Errorf("key \"sniff-window\" must be between 0 and %s, got %s", maxSniffWindow, spec.SniffWindow)
	case spec.SniffWindow == 0 && spec.Protocol == ProtocolAuto:
		spec.SniffWindow = Duration(DefaultSniffWindow)
	}
	if c := spec.ActiveCheck; c != nil {
		switch {
		case !strings.HasPrefix(c.Path, "/"):
			return fmt.Errorf("key \"active-check.path\" must be an HTTP path starting with /, got %q", c.Path)
		case spec.Protocol == ProtocolTCP:
			return fmt.Errorf("key \"active-check\": the router checks backends over HTTP, but the service's protocol is %q; remove active-check or use protocol http or auto", spec.Protocol)
		}
	}
	switch spec.BlueGreen.Promote {
	case "":
		spec.BlueGreen.Promote = PromoteAuto
	case PromoteAuto, PromoteManual:
	default:
		return fmt.Errorf("key \"blue-green.promote\": want %q or %q, got %q", PromoteAuto, PromoteManual, spec.BlueGreen.Promote)
	}
	if spec.BlueGreen.PreviewPort != "" {
		if _, _, err := SplitHostPort(spec.BlueGreen.PreviewPort); err != nil {
			return fmt.Errorf("key \"blue-green.preview-port\": %w", err)
		}
		if spec.Strategy != StrategyBlueGreen {
			return fmt.Errorf("key \"blue-green.preview-port\" needs strategy %q, not %q", StrategyBlueGreen, spec.Strategy)
		}
		if !slices.ContainsFunc(svc.Ports, func(p types.ServicePortConfig) bool { return p.Published != "" }) {
			return fmt.Errorf("key \"blue-green.preview-port\": the service publishes no port to preview")
		}
	}
	return resolveCanary(&spec.Canary)
}

func resolveCanary(c *CanarySpec) error {
	if len(c.Steps) == 0 {
		for _, w := range defaultCanarySteps {
			c.Steps = append(c.Steps, CanaryStep{Weight: w})
		}
	}
	prev := 0
	for i := range c.Steps {
		s := &c.Steps[i]
		if s.Weight <= prev || s.Weight > 100 {
			return fmt.Errorf("key \"canary.steps[%d].weight\": weights must rise from 1 to 100, got %d after %d", i, s.Weight, prev)
		}
		prev = s.Weight
		if s.Pause == 0 {
			s.Pause = Duration(defaultCanaryPause)
		}
	}
	if c.Analysis.MaxErrorRate == nil {
		c.Analysis.MaxErrorRate = new(defaultMaxErrorRate)
	}
	if r := *c.Analysis.MaxErrorRate; !(r >= 0 && r <= 1) { // NaN fails too
		return fmt.Errorf("key \"canary.analysis.max-error-rate\" must be between 0 and 1, got %v", r)
	}
	if c.Analysis.MinRequests < 0 {
		return fmt.Errorf("key \"canary.analysis.min-requests\" must not be negative, got %d", c.Analysis.MinRequests)
	}
	return nil
}

// updateSpec applies our defaults to compose's update_config: one container at a time,
// start-first (the new container is healthy before the old one leaves, which is what
// zero downtime needs; Swarm defaults to stop-first), and rollback on failure.
func updateSpec(u *types.UpdateConfig, key string) (UpdateSpec, error) {
	out := UpdateSpec{Parallelism: 1, Order: OrderStartFirst, FailureAction: FailureRollback}
	if u == nil {
		return out, nil
	}
	if u.Parallelism != nil {
		if *u.Parallelism == 0 {
			return out, fmt.Errorf("key %q: parallelism 0 (all at once) is what the blue-green strategy does; use it, or a parallelism of 1 or more", key+".parallelism")
		}
		out.Parallelism = int(*u.Parallelism)
	}
	out.Delay = Duration(u.Delay)
	out.Monitor = Duration(u.Monitor)
	if u.Order != "" {
		if u.Order != OrderStartFirst && u.Order != OrderStopFirst {
			return out, fmt.Errorf("key %q: want %q or %q, got %q", key+".order", OrderStartFirst, OrderStopFirst, u.Order)
		}
		out.Order = u.Order
	}
	switch u.FailureAction {
	case "":
	case FailureRollback, FailurePause, FailureContinue:
		out.FailureAction = u.FailureAction
	default:
		return out, fmt.Errorf("key %q: want rollback, pause or continue, got %q", key+".failure_action", u.FailureAction)
	}
	// compose-go keeps it as a float32: read back its shortest form, so 0.2 is 0.2.
	out.MaxFailureRatio, _ = strconv.ParseFloat(strconv.FormatFloat(float64(u.MaxFailureRatio), 'g', -1, 32), 64)
	if !(out.MaxFailureRatio >= 0 && out.MaxFailureRatio <= 1) {
		return out, fmt.Errorf("key %q must be between 0 and 1, got %v", key+".max_failure_ratio", out.MaxFailureRatio)
	}
	return out, nil
}

// shouldNotRunTwice says why two containers of the service would likely hurt, or "":
// a read-write bind mount (a game world, a data directory), a read-write anonymous
// volume (only a stop-first replacement takes it over, rollout/anonymousvolumes.go;
// side by side the new container would start empty) or a device. Unlike
// cannotRunTwice's reasons, an explicit strategy wins: the directory may be meant to be
// shared (a socket, a spool), the device may be shareable.
func shouldNotRunTwice(svc types.ServiceConfig) string {
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeBind && !v.ReadOnly {
			return fmt.Sprintf("it bind-mounts %s read-write (two writers could corrupt it)", v.Source)
		}
	}
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source == "" && !v.ReadOnly {
			return fmt.Sprintf("it mounts an anonymous volume at %s read-write (recreate hands it to the new container; side by side the new one would start empty)", v.Target)
		}
	}
	if len(svc.Devices) > 0 {
		return fmt.Sprintf("it uses device %s (two copies would share it)", svc.Devices[0].Source)
	}
	return ""
}

// cannotRunTwice says why two containers of the service must not run at once, or "".
// A fixed container name is one of these: the engine names one container so, and a
// rename after the switch would leave the name on the old container while both run
// (docs/compose-keys.md).
func cannotRunTwice(svc types.ServiceConfig) string {
	if svc.ContainerName != "" {
		return fmt.Sprintf("container_name %q is fixed (the engine gives a name to one container)", svc.ContainerName)
	}
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source != "" && !v.ReadOnly {
			return fmt.Sprintf("it mounts volume %q read-write (two writers could corrupt it)", v.Source)
		}
	}
	switch mode := svc.NetworkMode; {
	case mode == "host":
		return "network_mode is host (two copies would bind the same host ports)"
	case strings.HasPrefix(mode, types.ServicePrefix), strings.HasPrefix(mode, types.ContainerPrefix):
		return fmt.Sprintf("network_mode is %s (two copies would share one network stack and its ports)", mode)
	}

	for name, n := range svc.Networks {
		if n != nil && (n.Ipv4Address != "" || n.Ipv6Address != "") {
			return fmt.Sprintf("it has a static address on network %q (two containers cannot share it)", name)
		}
	}
	for _, p := range svc.Ports {
		if p.Published == "" {
			continue // not published: the router is not involved
		}
		if p.Protocol == "udp" {
			return fmt.Sprintf("it publishes UDP port %s, which the router does not carry", p.Published)
		}
		if strings.Contains(p.Published, "-") {
			return fmt.Sprintf("it publishes the port range %s, which the router does not carry", p.Published)
		}
	}
	return ""
}
