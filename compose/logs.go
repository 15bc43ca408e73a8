package compose

import (
	"fmt"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
)

// Log drivers x-lifecycle.logs may choose: both keep logs on the engine's disk, readable
// by `docker logs` and `docker lifecycle logs`, and both rotate by size.
const (
	LogDriverLocal    = "local"
	LogDriverJSONFile = "json-file"
)

// Defaults of x-lifecycle.logs, when the block is present but leaves a key out.
const (
	DefaultLogMaxSize = Bytes(10 << 20)
	DefaultLogMaxFile = 3
)

// LogsSpec is x-lifecycle.logs: the log driver and rotation of every service that sets
// no logging: of its own, so a chatty service cannot fill the engine's disk.
type LogsSpec struct {
	// Driver is local (the default: compressed, rotated) or json-file.
	Driver string `mapstructure:"driver" json:"driver,omitempty" yaml:"driver,omitempty"`
	// MaxSize is the size of one log file before it rotates (default 10MiB).
	MaxSize Bytes `mapstructure:"max-size" json:"max-size,omitempty" yaml:"max-size,omitempty"`
	// MaxFile is how many files are kept (default 3).
	MaxFile int `mapstructure:"max-file" json:"max-file,omitempty" yaml:"max-file,omitempty"`
}

// validateLogs checks x-lifecycle.logs and fills in its defaults.
func validateLogs(l *LogsSpec) error {
	if l == nil {
		return nil
	}
	switch l.Driver {
	case "":
		l.Driver = LogDriverLocal
	case LogDriverLocal, LogDriverJSONFile:
	default:
		return fmt.Errorf("key \"logs.driver\": %q is not a driver that rotates logs on the engine (valid: %s, %s); for another driver, set logging: on the services", l.Driver, LogDriverLocal, LogDriverJSONFile)
	}
	if l.MaxSize < 0 {
		return fmt.Errorf("key \"logs.max-size\" must be positive, got %d", l.MaxSize)
	}
	if l.MaxSize == 0 {
		l.MaxSize = DefaultLogMaxSize
	}
	if l.MaxFile < 0 {
		return fmt.Errorf("key \"logs.max-file\" must be at least 1, got %d", l.MaxFile)
	}
	if l.MaxFile == 0 {
		l.MaxFile = DefaultLogMaxFile
	}
	return nil
}

// logConfig is the log configuration of a service's containers: its own logging:,
// else x-lifecycle.logs, else none (the engine's default driver).
func logConfig(p *Project, svc types.ServiceConfig) container.LogConfig {
	if svc.Logging != nil {
		return container.LogConfig{Type: svc.Logging.Driver, Config: svc.Logging.Options}
	}
	if d := defaultLogConfig(p, svc); d != nil {
		return *d
	}
	return container.LogConfig{}
}

// defaultLogConfig is what x-lifecycle.logs gives a service without logging:, nil
// when it gives nothing.
func defaultLogConfig(p *Project, svc types.ServiceConfig) *container.LogConfig {
	l := p.Spec.Logs
	if svc.Logging != nil || l == nil {
		return nil
	}
	return &container.LogConfig{Type: l.Driver, Config: map[string]string{
		"max-size": strconv.FormatInt(int64(l.MaxSize), 10),
		"max-file": strconv.Itoa(l.MaxFile),
	}}
}
