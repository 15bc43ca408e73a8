package compose

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/go-viper/mapstructure/v2"
)

// ExtensionKey is the compose extension that carries docker lifecycle settings, at the
// top level of a compose file (project defaults) and inside a service.
const ExtensionKey = "x-lifecycle"

// ErrInvalidSpec marks every x-lifecycle validation error.
var ErrInvalidSpec = errors.New("invalid x-lifecycle")

// DefaultWaitTimeout bounds how long a deploy waits for a new container to become healthy.
const DefaultWaitTimeout = 2 * time.Minute

// ProjectSpec is the top-level x-lifecycle block.
type ProjectSpec struct {
	// Strategy is the default strategy of every service that sets none.
	Strategy string `mapstructure:"strategy" json:"strategy,omitempty" yaml:"strategy,omitempty"`
	// WaitTimeout is the default health wait for every service (a service or --wait-timeout overrides it).
	WaitTimeout Duration   `mapstructure:"wait-timeout" json:"wait-timeout" yaml:"wait-timeout"`
	Policy      PolicySpec `mapstructure:"policy" json:"policy" yaml:"policy"`
	// Scan is written only when the project has a scan block (which turns the gate on).
	Scan ScanSpec `mapstructure:"scan" json:"scan,omitzero" yaml:"scan,omitempty"`
	// Network is x-lifecycle.network: segmentation defaults and the subnet pool (network.go).
	Network *ProjectNetworkSpec `mapstructure:"network" json:"network,omitempty" yaml:"network,omitempty"`
	// Backup is x-lifecycle.backup: how `docker lifecycle backup` keeps a volume consistent.
	Backup BackupSpec `mapstructure:"backup" json:"backup,omitzero" yaml:"backup,omitempty"`
	// Logs is x-lifecycle.logs: log driver and rotation of services without logging: (logs.go).
	Logs *LogsSpec `mapstructure:"logs" json:"logs,omitempty" yaml:"logs,omitempty"`
	// Guard is x-lifecycle.guard: the guard's policy defaults for every service (guard.go).
	Guard GuardSpec `mapstructure:"guard" json:"guard,omitzero" yaml:"guard,omitempty"`
	// Alerts is x-lifecycle.alerts: the rules `monitor` evaluates and where
	// notifications go (alerts.go).
	Alerts AlertsSpec `mapstructure:"alerts" json:"alerts,omitzero" yaml:"alerts,omitempty"`
	// Hosts is x-lifecycle.hosts: the Docker contexts a deploy goes to, in batches, all
	// or nothing (hosts.go, docs/multihost.md).
	Hosts HostsSpec `mapstructure:"hosts" json:"hosts,omitzero" yaml:"hosts,omitempty"`
}

// Mode is the consistency mode, pause when none is set.
func (b BackupSpec) Mode() string {
	if b.Consistency == "" {
		return ConsistencyPause
	}
	return b.Consistency
}

// Backup consistency modes: what happens to the containers mounting a volume while it is copied.
const (
	ConsistencyPause = "pause" // frozen (docker pause) during the copy, thawed after
	ConsistencyStop  = "stop"  // stopped during the copy, started after
	ConsistencyNone  = "none"  // left running: the copy may catch a write half done
)

// BackupSpec is x-lifecycle.backup.
type BackupSpec struct {
	// Consistency is pause, stop or none; empty means pause (BackupSpec.Mode).
	Consistency string `mapstructure:"consistency" json:"consistency,omitempty" yaml:"consistency,omitempty"`
	// Verify are the checks `docker lifecycle drill` runs in the restored project
	// (backupverify.go). Decoded on its own by DecodeBackupVerify, which needs the
	// services and reports every entry's problems at once; the tag names the key.
	Verify []VerifyCheck `mapstructure:"verify" json:"verify,omitempty" yaml:"verify,omitempty"`
	// Hooks are commands run in the services' containers around a backup, e.g. a
	// database dump (backuphooks.go). Decoded on its own by DecodeBackupHooks, like Verify.
	Hooks []BackupHook `mapstructure:"hooks" json:"hooks,omitempty" yaml:"hooks,omitempty"`
	// BeforeDeploy backs up the named volumes of every service a deploy is about to
	// change, into To, before the rollout's first engine write (rollout/predeploy.go).
	BeforeDeploy bool `mapstructure:"before-deploy" json:"before-deploy,omitempty" yaml:"before-deploy,omitempty"`
	// To is where before-deploy backups go: a directory (relative to the project's
	// directory) or s3://BUCKET/PREFIX. Required with BeforeDeploy.
	To string `mapstructure:"to" json:"to,omitempty" yaml:"to,omitempty"`
}

// PolicySpec holds project-wide policy.
type PolicySpec struct {
	// Require and Deny name lint rules (see `docker lifecycle lint --rules`) whose
	// violations stop a deploy; the policy package checks the names.
	Require []string `mapstructure:"require" json:"require,omitempty" yaml:"require,omitempty"`
	Deny    []string `mapstructure:"deny" json:"deny,omitempty" yaml:"deny,omitempty"`
	// Defaults are resource limits applied to services that set none.
	Defaults ResourceDefaults `mapstructure:"defaults" json:"defaults" yaml:"defaults"`
}

// PolicyException lets one service break one rule, for a stated reason.
type PolicyException struct {
	Rule   string `mapstructure:"rule" json:"rule" yaml:"rule"`
	Reason string `mapstructure:"reason" json:"reason" yaml:"reason"`
}

// ResourceDefaults are limits given to a service container that sets no limit of its own.
type ResourceDefaults struct {
	Memory Bytes `mapstructure:"memory" json:"memory,omitempty" yaml:"memory,omitempty"`
	CPUs   CPUs  `mapstructure:"cpus" json:"cpus,omitempty" yaml:"cpus,omitempty"`
	Pids   int64 `mapstructure:"pids" json:"pids,omitempty" yaml:"pids,omitempty"`
}

// ServiceSpec is the x-lifecycle block of one service, with defaults applied.
type ServiceSpec struct {
	// Strategy is rolling (the default), blue-green, canary or recreate (the default
	// for services that cannot run twice, e.g. with a read-write named volume).
	Strategy string `mapstructure:"strategy" json:"strategy" yaml:"strategy"`
	// StrategyReason says why the service got its strategy, for plan.
	StrategyReason string   `mapstructure:"-" json:"-" yaml:"-"`
	WaitTimeout    Duration `mapstructure:"wait-timeout" json:"wait-timeout" yaml:"wait-timeout"`
	// Allow lists the policy rules this service may break, each with its reason.
	Allow []PolicyException `mapstructure:"allow" json:"allow,omitempty" yaml:"allow,omitempty"`
	// History is how many previous revisions are kept as stopped containers for rollback.
	History *int `mapstructure:"history" json:"history" yaml:"history"`
	// Drain bounds how long a container leaving the router may finish in-flight
	// requests (default: stop_grace_period, else 10s).
	Drain Duration `mapstructure:"drain" json:"drain" yaml:"drain"`
	// Protocol is how the router carries the service's published ports: "auto" (the
	// default: HTTP when a connection starts with an HTTP/1.x request line, bytes
	// otherwise), "http" (per request, with retries and counters) or "tcp" (per
	// connection).
	Protocol string `mapstructure:"protocol" json:"protocol" yaml:"protocol"`
	// SniffWindow is how long the router waits, with protocol auto, for a client's
	// first bytes before it lets the server speak first (MySQL, SMTP greet first).
	SniffWindow Duration `mapstructure:"sniff-window" json:"sniff-window,omitempty" yaml:"sniff-window,omitempty"`
	// ActiveCheck makes the router probe every backend of the service over HTTP, so a
	// backend that stops answering leaves the rotation between two deploys (the
	// health gate only judges a container before it is routed).
	ActiveCheck *ActiveCheckSpec `mapstructure:"active-check" json:"active-check,omitempty" yaml:"active-check,omitempty"`
	BlueGreen   BlueGreenSpec    `mapstructure:"blue-green" json:"blue-green" yaml:"blue-green"`
	Canary      CanarySpec       `mapstructure:"canary" json:"canary" yaml:"canary"`
	// Update and Rollback come from compose's deploy.update_config and
	// deploy.rollback_config, with defaults applied.
	// They are written where they come from (compose.Resolved), not in x-lifecycle.
	Update   UpdateSpec `mapstructure:"-" json:"-" yaml:"-"`
	Rollback UpdateSpec `mapstructure:"-" json:"-" yaml:"-"`
	// Network is the service's communication rules (talks-to, ingress, egress; network.go).
	Network *ServiceNetworkSpec `mapstructure:"network" json:"network,omitempty" yaml:"network,omitempty"`
	// Guard is how `docker lifecycle guard` heals the service's containers, the
	// project's x-lifecycle.guard overlaid and defaults applied (guard.go).
	Guard GuardSpec `mapstructure:"guard" json:"guard,omitzero" yaml:"guard,omitempty"`
	// Alerts are the alert rules of the service: the project's, replaced by name by
	// the service's own (alerts.go).
	Alerts ServiceAlertsSpec `mapstructure:"alerts" json:"alerts,omitzero" yaml:"alerts,omitempty"`
}

// ActiveCheckSpec is the router's active check of a service's backends: GET Path every
// Interval (default 2s); 2xx/3xx is healthy, two failures in a row take a backend out
// of rotation, one success brings it back.
type ActiveCheckSpec struct {
	Path     string   `mapstructure:"path" json:"path" yaml:"path"`
	Interval Duration `mapstructure:"interval" json:"interval,omitempty" yaml:"interval,omitempty"`
}

// Duration is a time.Duration written as "30s" in compose files and in output.
type Duration time.Duration

func (d Duration) String() string               { return time.Duration(d).String() }
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Bytes is a size written as "512M" in compose files.
type Bytes int64

// MarshalText writes b as "512MiB" when that reads back exactly, else as a byte count.
func (b Bytes) MarshalText() ([]byte, error) {
	s := units.BytesSize(float64(b))
	if n, err := units.RAMInBytes(s); err == nil && n == int64(b) {
		return []byte(s), nil
	}
	return []byte(strconv.FormatInt(int64(b), 10)), nil
}

// CPUs is a fractional number of CPUs, written as 0.5 or "0.5".
type CPUs float64

func (c CPUs) MarshalText() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(c), 'f', -1, 64)), nil
}

// decodeStrict decodes an x-lifecycle mapping into out and reports every unknown key
// with its dotted path, so a typo never passes silently.
func decodeStrict(input any, out any) error {
	if input == nil {
		return nil
	}
	input, err := stringKeys(input)
	if err != nil {
		return err
	}
	if _, ok := input.(map[string]any); !ok {
		return fmt.Errorf("must be a mapping, got %s", describe(input))
	}
	var md mapstructure.Metadata
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Metadata:   &md,
		Result:     out,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(durationHook, daysHook, bytesHook, cpusHook, thresholdHook),
		ErrorUnset: false,
		// Keys are case-sensitive, as in compose files: "Strategy" is an unknown key.
		MatchName: func(key, field string) bool { return key == field },
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(input); err != nil {
		return errors.New(cleanMapstructureError(err))
	}
	if len(md.Unused) > 0 {
		sort.Strings(md.Unused)
		return fmt.Errorf("unknown key %q (valid keys: %s)", md.Unused[0], strings.Join(validKeys(out, md.Unused[0]), ", "))
	}
	return nil
}

// stringKeys returns v with every mapping keyed by strings, as mapstructure requires
// (it panics on other keys); YAML allows keys such as 1 or null, which are errors here.
func stringKeys(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			var err error
			if out[k], err = stringKeys(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("key %v must be a string, got %s", k, describe(k))
			}
			var err error
			if out[ks], err = stringKeys(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			var err error
			if out[i], err = stringKeys(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "a list"
	case map[string]any, map[any]any:
		return "a mapping"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, uint64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// validKeys lists the keys accepted next to the unknown dotted key, for the error message.
func validKeys(out any, unknown string) []string {
	t := reflect.TypeOf(out).Elem()
	parts := strings.Split(unknown, ".")
	for _, p := range parts[:len(parts)-1] {
		f, ok := fieldByTag(t, p)
		if ok && f.Type.Kind() == reflect.Pointer {
			f.Type = f.Type.Elem()
		}
		if !ok || f.Type.Kind() != reflect.Struct {
			break // a key with a dot of its own, such as "wait-timeout.x": list this level's keys
		}
		t = f.Type
	}
	var keys []string
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("mapstructure"); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("mapstructure") == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// cleanMapstructureError turns "decoding failed due to the following error(s):\n\n'a' expected…"
// into a single line.
func cleanMapstructureError(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l == "" || strings.HasPrefix(l, "decoding failed") || strings.HasSuffix(l, "error(s) decoding:") {
			continue
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "; ")
}

var (
	durationType = reflect.TypeOf(Duration(0))
	bytesType    = reflect.TypeOf(Bytes(0))
	cpusType     = reflect.TypeOf(CPUs(0))
)

func durationHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("want a duration such as \"30s\" or \"2m\", got %s", describe(data))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("want a duration such as \"30s\" or \"2m\", got %q", s)
	}
	if d < 0 {
		return nil, fmt.Errorf("duration %q must not be negative", s)
	}
	return Duration(d), nil
}

func bytesHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != bytesType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		n, err := units.RAMInBytes(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("want a size such as \"512M\" or \"1G\", got %q", v)
		}
		return Bytes(n), nil
	case int:
		if v <= 0 {
			return nil, fmt.Errorf("size must be positive, got %d", v)
		}
		return Bytes(v), nil
	}
	return nil, fmt.Errorf("want a size such as \"512M\", got %s", describe(data))
}

func cpusHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != cpusType {
		return data, nil
	}
	var f float64
	switch v := data.(type) {
	case string:
		var err error
		if f, err = strconv.ParseFloat(v, 64); err != nil {
			return nil, fmt.Errorf("want a number of CPUs such as \"0.5\", got %q", v)
		}
	case int:
		f = float64(v)
	case float64:
		f = v
	default:
		return nil, fmt.Errorf("want a number of CPUs such as 0.5, got %s", describe(data))
	}
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("cpus must be a positive number, got %v", f)
	}
	return CPUs(f), nil
}

// takeKey returns raw (an x-lifecycle mapping) without the key at path, and that key's
// value (nil when absent). The mappings on the path are copied, raw is left as it is.
// Blocks that report every problem at once (alerts, backup.verify) are taken out this
// way and decoded on their own; decodeStrict would stop at their first problem.
func takeKey(raw any, path ...string) (rest any, value any) {
	rest, value, _ = takeKeyFound(raw, path)
	return rest, value
}

func takeKeyFound(raw any, path []string) (rest any, value any, found bool) {
	m, ok := raw.(map[string]any)
	if !ok || len(path) == 0 {
		return raw, nil, false
	}
	v, present := m[path[0]]
	if !present {
		return raw, nil, false
	}
	out := maps.Clone(m)
	if len(path) == 1 {
		delete(out, path[0])
		return out, v, true
	}
	inner, value, found := takeKeyFound(v, path[1:])
	if !found {
		return raw, nil, false
	}
	out[path[0]] = inner
	return out, value, true
}

// DecodeProjectSpec decodes and validates the top-level x-lifecycle value.
// backup.verify and backup.hooks are left out: fromTypes decodes them with the
// services (DecodeBackupVerify, DecodeBackupHooks).
func DecodeProjectSpec(raw any) (ProjectSpec, error) {
	var spec ProjectSpec
	raw, _ = takeKey(raw, "backup", "verify")
	raw, _ = takeKey(raw, "backup", "hooks")
	raw, rawAlerts := takeKey(raw, "alerts")
	alerts, problems := decodeAlerts(rawAlerts, false)
	raw, rawHosts := takeKey(raw, "hosts")
	hosts, hostProblems := decodeHosts(rawHosts)
	if err := decodeStrict(raw, &spec); err != nil {
		return spec, errors.Join(err, alertsError(problems), hostsError(hostProblems))
	}
	if err := errors.Join(alertsError(problems), hostsError(hostProblems)); err != nil {
		return spec, err
	}
	spec.Alerts = alerts
	spec.Hosts = hosts
	if spec.Backup.To == "" && slices.ContainsFunc(alerts.Rules, func(r AlertRule) bool { return r.Metric == AlertDrillAge }) {
		return spec, fmt.Errorf("alerts.rules: metric drill-age reads the drills of the project's backups in x-lifecycle.backup.to, which is not set: set backup.to (a directory or s3://BUCKET/PREFIX) or remove the rule")
	}
	if spec.Strategy != "" && !slices.Contains(strategies, spec.Strategy) {
		return spec, fmt.Errorf("key \"strategy\": unknown strategy %q (valid: %s)", spec.Strategy, strings.Join(strategies, ", "))
	}
	if spec.Policy.Defaults.Pids < 0 {
		return spec, fmt.Errorf("'policy.defaults.pids' must not be negative, got %d", spec.Policy.Defaults.Pids)
	}
	if spec.WaitTimeout == 0 {
		spec.WaitTimeout = Duration(DefaultWaitTimeout)
	}
	if err := resolveScan(raw, &spec.Scan); err != nil {
		return spec, err
	}
	if err := validateProjectNetwork(spec.Network); err != nil {
		return spec, err
	}
	if err := validateLogs(spec.Logs); err != nil {
		return spec, err
	}
	switch spec.Backup.Consistency {
	case "", ConsistencyPause, ConsistencyStop, ConsistencyNone:
	default:
		return spec, fmt.Errorf("key \"backup.consistency\": unknown mode %q (valid: %s, %s, %s)",
			spec.Backup.Consistency, ConsistencyPause, ConsistencyStop, ConsistencyNone)
	}
	if spec.Backup.BeforeDeploy && strings.TrimSpace(spec.Backup.To) == "" {
		return spec, fmt.Errorf("key \"backup.to\": required with backup.before-deploy: true: a directory (relative to the project's directory) or s3://BUCKET/PREFIX")
	}
	if err := checkGuard(spec.Guard); err != nil {
		return spec, err
	}
	return spec, nil
}

// DecodeServiceSpec decodes and validates a service's x-lifecycle value, with the
// project's defaults applied.
func DecodeServiceSpec(raw any, project ProjectSpec) (ServiceSpec, error) {
	var spec ServiceSpec
	raw, rawAlerts := takeKey(raw, "alerts")
	alerts, problems := decodeAlerts(rawAlerts, true)
	if err := decodeStrict(raw, &spec); err != nil {
		return spec, errors.Join(err, alertsError(problems))
	}
	if err := alertsError(problems); err != nil {
		return spec, err
	}
	spec.Alerts = ServiceAlertsSpec{Rules: alerts.Rules}
	if spec.Strategy != "" && !slices.Contains(strategies, spec.Strategy) {
		return spec, fmt.Errorf("key \"strategy\": unknown strategy %q (valid: %s)", spec.Strategy, strings.Join(strategies, ", "))
	}
	if spec.WaitTimeout == 0 {
		spec.WaitTimeout = project.WaitTimeout
	}
	if err := checkGuard(spec.Guard); err != nil {
		return spec, err
	}
	return spec, nil
}
