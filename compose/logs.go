package compose

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

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
	// Archive, when set, makes every deploy and rollback write the logs of the
	// containers it removes to files before removing them (rollout/logarchive.go).
	Archive *LogArchiveSpec `mapstructure:"archive" json:"archive,omitempty" yaml:"archive,omitempty"`
}

// DefaultLogArchiveRetention is how long archived log files are kept when
// x-lifecycle.logs.archive gives no retention.
const DefaultLogArchiveRetention = Days(14 * 24 * time.Hour)

// LogArchiveSpec is x-lifecycle.logs.archive: where removed containers' logs are
// written and how long they are kept.
type LogArchiveSpec struct {
	// Dir is the archive's directory, relative to the project's directory.
	Dir string `mapstructure:"dir" json:"dir" yaml:"dir"`
	// Retention is how long a file is kept (default 14d); older files of the
	// project are removed after each deploy that archives.
	Retention Days `mapstructure:"retention" json:"retention,omitempty" yaml:"retention,omitempty"`
}

// Days is a duration written in days ("14d") or as a Go duration ("36h").
type Days time.Duration

func (d Days) String() string {
	if v := time.Duration(d); v%(24*time.Hour) == 0 && v > 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return time.Duration(d).String()
}
func (d Days) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
func (d *Days) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return fmt.Errorf("%q is not a number of days such as 14d", s)
		}
		*d = Days(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a number of days (14d) or a duration (36h)", s)
	}
	*d = Days(v)
	return nil
}

// validateLogs checks x-lifecycle.logs and fills in its defaults; it reports every
// problem at once.
func validateLogs(l *LogsSpec) error {
	if l == nil {
		return nil
	}
	var errs []error
	switch l.Driver {
	case "":
		l.Driver = LogDriverLocal
	case LogDriverLocal, LogDriverJSONFile:
	default:
		errs = append(errs, fmt.Errorf("key \"logs.driver\": %q is not a driver that rotates logs on the engine (valid: %s, %s); for another driver, set logging: on the services", l.Driver, LogDriverLocal, LogDriverJSONFile))
	}
	if l.MaxSize < 0 {
		errs = append(errs, fmt.Errorf("key \"logs.max-size\" must be positive, got %d", l.MaxSize))
	}
	if l.MaxSize == 0 {
		l.MaxSize = DefaultLogMaxSize
	}
	if l.MaxFile < 0 {
		errs = append(errs, fmt.Errorf("key \"logs.max-file\" must be at least 1, got %d", l.MaxFile))
	}
	if l.MaxFile == 0 {
		l.MaxFile = DefaultLogMaxFile
	}
	if a := l.Archive; a != nil {
		if strings.TrimSpace(a.Dir) == "" {
			errs = append(errs, errors.New("key \"logs.archive.dir\": required: the directory (relative to the project's directory) where removed containers' logs are written"))
		}
		if a.Retention < 0 {
			errs = append(errs, fmt.Errorf("key \"logs.archive.retention\" must be positive (14d, 36h), got %s", a.Retention))
		}
		if a.Retention == 0 {
			a.Retention = DefaultLogArchiveRetention
		}
	}
	return errors.Join(errs...)
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

var daysType = reflect.TypeOf(Days(0))

// daysHook decodes a Days from the compose file's string ("14d", "36h").
func daysHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != daysType {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("want a number of days such as \"14d\", got %s", describe(data))
	}
	var d Days
	if err := d.UnmarshalText([]byte(s)); err != nil {
		return nil, err
	}
	return d, nil
}
