// Package policy lints a compose project against security and resource rules,
// most of them mapped to the CIS Docker Benchmark (v1.6.0 numbering).
//
// The package is pure: the project, what the engine knows about its images and
// the project's policy all come in as data, and Evaluate returns findings.
// Whether a finding blocks a deploy is decided by the policy (Require, Deny,
// DefaultDeny) and per-service allow exceptions; see Evaluate and Blocking.
package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// Level of a finding.
type Level string

const (
	Error   Level = "error"   // blocks a deploy (rule denied/required by policy, or denied by default)
	Warning Level = "warning" // reported by lint, does not block
)

// Rule describes one check.
type Rule struct {
	ID          string // stable kebab-case id, e.g. "privileged"
	CIS         string // CIS Docker Benchmark id, e.g. "5.5"; "" when none
	Title       string // one line
	Remediation string // what to change in the compose file
}

// Finding is one violation of one rule by one service.
type Finding struct {
	Rule    string `json:"rule"`
	CIS     string `json:"cis,omitempty"`
	Level   Level  `json:"level"`
	Service string `json:"service"`
	Message string `json:"message"`           // specific: names the key and value, e.g. `ports: "8080:80" binds 0.0.0.0`
	Allowed string `json:"allowed,omitempty"` // the reason from an allow exception; an allowed finding never blocks
}

// Config is the project's policy (from x-lifecycle.policy) plus per-service exceptions.
type Config struct {
	Require []string               // rule ids that must hold (their findings are errors)
	Deny    []string               // rule ids whose violations are errors
	Allow   map[string][]Exception // service → exceptions
	// Defaults says which limits x-lifecycle.policy.defaults provides to services
	// that set none; the limits rule counts them as set.
	Defaults Defaults
}

// Exception lets one service break one rule; Reason is mandatory.
type Exception struct{ Rule, Reason string }

// Defaults records which resource limits x-lifecycle.policy.defaults provides, and
// whether x-lifecycle.logs gives services without logging: a rotated driver.
type Defaults struct{ Memory, CPUs, Pids, LogRotation bool }

// ImageFacts are what the engine knows about an image (from image inspect), by image ref.
type ImageFacts struct {
	User  string // Config.User of the image; "" or "0" or "root" means root
	Found bool
	// Healthcheck is true when the image defines a HEALTHCHECK (a test other
	// than NONE); the healthcheck rule then passes without a healthcheck: key.
	Healthcheck bool
}

var (
	// ErrUnknownRule is wrapped by Evaluate's error for a rule id that does not exist.
	ErrUnknownRule = errors.New("unknown policy rule")
	// ErrNoReason is wrapped by Evaluate's error for an allow exception without a reason.
	ErrNoReason = errors.New("allow exceptions need a reason")
)

// DefaultDeny returns the rules denied when the policy does not name them in
// Require/Deny ("safe by default"). Only an allow exception lifts them.
func DefaultDeny() []string {
	return []string{"privileged", "docker-socket", "host-network", "host-pid", "host-ipc", "host-uts"}
}

// Rules returns every rule, in a stable order (for docs, `lint --rules`, SARIF rule metadata).
func Rules() []Rule {
	out := make([]Rule, len(ruleTable))
	for i, r := range ruleTable {
		out[i] = r.Rule
	}
	return out
}

// Evaluate checks every service of the project (project.Services; disabled
// services and jobs are not checked). images maps image refs (service.Image)
// to facts; a missing entry means unknown.
//
// A finding is an Error when its rule is in cfg.Require, cfg.Deny or
// DefaultDeny(), otherwise a Warning. An allow exception for (service, rule)
// keeps the finding and sets Allowed to its reason. Findings are sorted by
// service, then rule id; findings of one rule keep the order of the compose
// keys they report. Unknown rule ids in cfg and exceptions without a reason are
// an error (wrapping ErrUnknownRule / ErrNoReason); exceptions for services
// that are not in the project are ignored (they may be disabled by a profile).
func Evaluate(project *types.Project, images map[string]ImageFacts, cfg Config) ([]Finding, error) {
	if project == nil {
		return nil, errors.New("policy: no project to evaluate")
	}
	if err := validate(cfg); err != nil {
		return nil, err
	}
	levels := make(map[string]Level, len(ruleTable))
	for _, id := range slices.Concat(DefaultDeny(), cfg.Require, cfg.Deny) {
		levels[id] = Error
	}
	in := &input{project: project.Name, images: images, defaults: cfg.Defaults}
	var findings []Finding
	var msgs []violation
	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		allowed := cfg.Allow[name]
		for i := range ruleTable {
			r := &ruleTable[i]
			msgs = r.check(msgs[:0], &svc, in)
			if len(msgs) == 0 {
				continue
			}
			level := levels[r.ID]
			if level == "" {
				level = Warning
			}
			reason := allowReason(allowed, r.ID)
			for _, m := range msgs {
				findings = append(findings, Finding{
					Rule: r.ID, CIS: cmp.Or(m.CIS, r.CIS), Level: level, Service: name, Message: m.Message, Allowed: reason,
				})
			}
		}
	}
	slices.SortStableFunc(findings, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.Rule, b.Rule))
	})
	return findings, nil
}

// Blocking returns the findings that stop a deploy: Level Error and not Allowed.
func Blocking(findings []Finding) []Finding {
	var out []Finding
	for _, f := range findings {
		if f.Level == Error && f.Allowed == "" {
			out = append(out, f)
		}
	}
	return out
}

func allowReason(exceptions []Exception, rule string) string {
	for _, e := range exceptions {
		if e.Rule == rule {
			return strings.TrimSpace(e.Reason)
		}
	}
	return ""
}

// validate reports every unknown rule id and every exception without a reason, in a stable order.
func validate(cfg Config) error {
	var errs []error
	unknown := func(where, id string) {
		if _, ok := ruleIndex[id]; !ok {
			errs = append(errs, fmt.Errorf("%s: %w %q (valid rules: %s)", where, ErrUnknownRule, id, validIDs()))
		}
	}
	for _, id := range cfg.Require {
		unknown("policy.require", id)
	}
	for _, id := range cfg.Deny {
		unknown("policy.deny", id)
	}
	services := make([]string, 0, len(cfg.Allow))
	for s := range cfg.Allow {
		services = append(services, s)
	}
	slices.Sort(services)
	for _, s := range services {
		for _, e := range cfg.Allow[s] {
			where := fmt.Sprintf("service %q: allow", s)
			unknown(where, e.Rule)
			if strings.TrimSpace(e.Reason) == "" {
				errs = append(errs, fmt.Errorf("%s %q: %w", where, e.Rule, ErrNoReason))
			}
		}
	}
	return errors.Join(errs...)
}

func validIDs() string {
	ids := make([]string, len(ruleTable))
	for i, r := range ruleTable {
		ids[i] = r.ID
	}
	return strings.Join(ids, ", ")
}
