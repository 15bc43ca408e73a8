package compose

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Scan severities, lowest first, as trivy names them; "NONE" as fail-on reports
// findings without ever blocking.
var scanSeverities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

const (
	// DefaultScanFailOn is the lowest severity that blocks a deploy when fail-on is unset.
	DefaultScanFailOn = "CRITICAL"
	// ScanFailOnNone reports findings and never blocks.
	ScanFailOnNone = "NONE"
	// DefaultScanTimeout bounds one trivy run (one image), as trivy's own default does.
	DefaultScanTimeout = 5 * time.Minute
)

// ScanSpec is x-lifecycle.scan: the image scan gate that `deploy` runs first and that
// `docker lifecycle scan` runs alone.
type ScanSpec struct {
	// Enabled is true when the project has an x-lifecycle.scan block (even an empty
	// one): deploy then runs the gate unless --skip-scan.
	// It is not written: the block's presence says it.
	Enabled bool `mapstructure:"-" json:"-" yaml:"-"`
	// FailOn is the lowest severity (UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL) of a
	// vulnerability or secret that blocks, or NONE to report only.
	FailOn string `mapstructure:"fail-on" json:"fail-on,omitempty" yaml:"fail-on,omitempty"`
	// IgnoreUnfixed leaves out vulnerabilities that have no fixed version yet.
	IgnoreUnfixed bool `mapstructure:"ignore-unfixed" json:"ignore-unfixed" yaml:"ignore-unfixed"`
	// IgnoreFile is a trivy ignore file (.trivyignore or .trivyignore.yaml format),
	// relative to the project directory. Unset: the project's .trivyignore if present.
	IgnoreFile string `mapstructure:"ignore-file" json:"ignore-file,omitempty" yaml:"ignore-file,omitempty"`
	// Timeout bounds the scan of one image.
	Timeout Duration `mapstructure:"timeout" json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// resolveScan validates x-lifecycle.scan and applies its defaults; raw is the whole
// top-level x-lifecycle value, where the presence of the scan key turns the gate on.
func resolveScan(raw any, s *ScanSpec) error {
	switch m := raw.(type) {
	case map[string]any:
		_, s.Enabled = m["scan"]
	case map[any]any:
		_, s.Enabled = m["scan"]
	}
	s.FailOn = strings.ToUpper(strings.TrimSpace(s.FailOn))
	switch {
	case s.FailOn == "", s.FailOn == ScanFailOnNone, slices.Contains(scanSeverities, s.FailOn):
	default:
		return fmt.Errorf("key \"scan.fail-on\": unknown severity %q (valid: %s, %s)", s.FailOn, strings.Join(scanSeverities, ", "), ScanFailOnNone)
	}
	if strings.ContainsRune(s.IgnoreFile, 0) {
		return fmt.Errorf("key \"scan.ignore-file\": not a valid path")
	}
	if s.Enabled {
		*s = s.WithDefaults()
	}
	return nil
}

// WithDefaults fills what the block leaves unset. Without an x-lifecycle.scan block the
// spec stays empty (config shows the gate off); `docker lifecycle scan` applies these
// defaults itself.
func (s ScanSpec) WithDefaults() ScanSpec {
	if s.FailOn == "" {
		s.FailOn = DefaultScanFailOn
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultScanTimeout)
	}
	return s
}
