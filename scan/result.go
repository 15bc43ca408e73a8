// Package scan is the image scan gate: it runs trivy (invoked as a program, never
// linked) on an image archive, reads trivy's JSON report, and judges its findings
// against a severity threshold. Parsing and judging are pure; Trivy.Scan is the
// only part that runs a process.
package scan

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrBlocked marks a scan whose findings stop a deploy.
var ErrBlocked = errors.New("the image scan gate stops the deploy")

// Severities, lowest first, as trivy names them.
var Severities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// FailOnNone as a threshold reports findings and never blocks.
const FailOnNone = "NONE"

// ParseSeverity returns the upper-case severity name, or an error naming the valid ones.
func ParseSeverity(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == FailOnNone || slices.Contains(Severities, u) {
		return u, nil
	}
	return "", fmt.Errorf("unknown severity %q (valid: %s, %s)", s, strings.Join(Severities, ", "), FailOnNone)
}

// rank orders severities; an unknown name ranks as UNKNOWN, and NONE above everything.
func rank(severity string) int {
	if severity == FailOnNone {
		return len(Severities)
	}
	return max(slices.Index(Severities, strings.ToUpper(severity)), 0)
}

// Blocks reports whether a finding of severity reaches the failOn threshold.
func Blocks(severity, failOn string) bool {
	return failOn != FailOnNone && rank(severity) >= rank(failOn)
}

// Finding kinds.
const (
	KindVulnerability = "vulnerability"
	KindSecret        = "secret"
)

// Finding is one vulnerability or secret, in our terms, with trivy's own object inside.
type Finding struct {
	Kind     string `json:"kind"`
	ID       string `json:"id"` // vulnerability ID (CVE-…, GHSA-…) or secret rule ID
	Severity string `json:"severity"`
	Title    string `json:"title,omitempty"`
	// Target is where trivy found it: an OS, a binary such as "app", or a file.
	Target    string `json:"target"`
	Package   string `json:"package,omitempty"`
	Installed string `json:"installed,omitempty"`
	Fixed     string `json:"fixed,omitempty"`
	Line      int    `json:"line,omitempty"` // secrets: first line of the match
	URL       string `json:"url,omitempty"`
	Blocking  bool   `json:"blocking"`
	// Trivy is trivy's finding object as trivy wrote it (secrets come redacted by trivy).
	Trivy json.RawMessage `json:"trivy"`
}

// ImageResult is the judged scan of one image, shared by the services that run it.
type ImageResult struct {
	Image    string   `json:"image"`
	ImageID  string   `json:"image_id,omitempty"`
	Services []string `json:"services"`
	// Vulnerabilities counts vulnerabilities by severity; Secrets counts secrets.
	Vulnerabilities map[string]int `json:"vulnerabilities"`
	Secrets         int            `json:"secrets"`
	Blocking        int            `json:"blocking"`
	Passed          bool           `json:"passed"`
	Seconds         float64        `json:"seconds"`
	Findings        []Finding      `json:"findings"`
}

// Scanner names the trivy that ran.
type Scanner struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Path    string `json:"path"`
}

// Result is the whole scan: the documented `scan --format json` document.
type Result struct {
	Project       string        `json:"project"`
	Scanner       Scanner       `json:"scanner"`
	FailOn        string        `json:"fail_on"`
	IgnoreUnfixed bool          `json:"ignore_unfixed"`
	Images        []ImageResult `json:"images"`
	Blocking      int           `json:"blocking"`
	Passed        bool          `json:"passed"`
}

// Judge turns a trivy report into an ImageResult: every vulnerability and secret,
// each marked blocking when its severity reaches failOn.
func Judge(r *Report, failOn string) ImageResult {
	out := ImageResult{Image: r.ArtifactName, ImageID: r.Metadata.ImageID, Vulnerabilities: map[string]int{}, Findings: []Finding{}}
	for _, s := range Severities {
		out.Vulnerabilities[s] = 0
	}
	for _, res := range r.Results {
		for _, raw := range res.Vulnerabilities {
			var v trivyVulnerability
			_ = json.Unmarshal(raw, &v) // checked by ParseReport
			sev := normalSeverity(v.Severity)
			out.Vulnerabilities[sev]++
			out.Findings = append(out.Findings, Finding{
				Kind: KindVulnerability, ID: v.VulnerabilityID, Severity: sev, Title: v.Title,
				Target: res.Target, Package: v.PkgName, Installed: v.InstalledVersion, Fixed: v.FixedVersion,
				URL: v.PrimaryURL, Blocking: Blocks(sev, failOn), Trivy: raw,
			})
		}
		for _, raw := range res.Secrets {
			var s trivySecret
			_ = json.Unmarshal(raw, &s)
			sev := normalSeverity(s.Severity)
			out.Secrets++
			out.Findings = append(out.Findings, Finding{
				Kind: KindSecret, ID: s.RuleID, Severity: sev, Title: s.Title,
				Target: res.Target, Line: s.StartLine, Blocking: Blocks(sev, failOn), Trivy: raw,
			})
		}
	}
	// Most severe first; stable, so trivy's order holds within a severity.
	slices.SortStableFunc(out.Findings, func(a, b Finding) int { return rank(b.Severity) - rank(a.Severity) })
	for _, f := range out.Findings {
		if f.Blocking {
			out.Blocking++
		}
	}
	out.Passed = out.Blocking == 0
	return out
}

func normalSeverity(s string) string {
	u := strings.ToUpper(s)
	if slices.Contains(Severities, u) {
		return u
	}
	return "UNKNOWN"
}

// Summarize totals the images into r.
func (r *Result) Summarize() {
	r.Blocking = 0
	for _, img := range r.Images {
		r.Blocking += img.Blocking
	}
	r.Passed = r.Blocking == 0
}

// BlockedError lists every blocking finding at once, so one run shows all there is to
// fix; it wraps ErrBlocked.
func (r *Result) BlockedError() error {
	if r.Passed {
		return nil
	}
	var b strings.Builder
	for _, img := range r.Images {
		for _, f := range img.Findings {
			if f.Blocking {
				fmt.Fprintf(&b, "\n  %s (%s): %s", strings.Join(img.Services, ", "), img.Image, f.Describe())
			}
		}
	}
	return fmt.Errorf("%w: %d findings at or above %s:%s\nfix the images, list accepted findings in x-lifecycle.scan.ignore-file, raise x-lifecycle.scan.fail-on, or deploy with --skip-scan",
		ErrBlocked, r.Blocking, r.FailOn, b.String())
}

// Describe is one line for people: what, how severe, where, and the fix when known.
func (f Finding) Describe() string {
	switch f.Kind {
	case KindSecret:
		return fmt.Sprintf("%s secret %s (%s) in %s line %d", f.Severity, f.ID, f.Title, f.Target, f.Line)
	}
	fix := "no fix yet"
	if f.Fixed != "" {
		fix = "fixed in " + f.Fixed
	}
	return fmt.Sprintf("%s %s in %s %s (%s; %s)", f.Severity, f.ID, f.Package, f.Installed, f.Target, fix)
}
