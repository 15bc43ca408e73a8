package plugin

import (
	"encoding/json"
	"io"
	"path/filepath"

	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
	"github.com/docker-lifecycle/docker-lifecycle/scan"
)

// SARIF 2.1.0, the subset code-scanning tools read: one run, the rules as the tool's
// driver rules, one result per finding located at its service in the compose file,
// allowed findings as suppressed results. `lint` and `scan` both write it through
// writeSARIF.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version"`
	InformationURI string      `json:"informationUri"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID               string         `json:"id"`
	ShortDescription sarifText      `json:"shortDescription"`
	Help             sarifText      `json:"help"`
	Properties       map[string]any `json:"properties,omitempty"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifResult struct {
	RuleID       string             `json:"ruleId"`
	Level        string             `json:"level"`
	Message      sarifText          `json:"message"`
	Locations    []sarifLocation    `json:"locations"`
	Suppressions []sarifSuppression `json:"suppressions,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
	} `json:"physicalLocation"`
	LogicalLocations []sarifLogical `json:"logicalLocations"`
}

type sarifLogical struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification"`
}

// sarifFinding is one result before it is located: the rule, the level, the service
// it concerns, the message, and the reason it is allowed (suppressed) if it is.
type sarifFinding struct {
	rule, level, service, message, allowed string
}

// writeSARIF writes one SARIF run of the tool named driver with its rules and findings,
// each located at its service in the first compose file.
func writeSARIF(w io.Writer, driver string, composeFiles []string, rules []sarifRule, findings []sarifFinding) error {
	uri := "compose.yaml"
	if len(composeFiles) > 0 {
		uri = filepath.Base(composeFiles[0])
	}
	results := []sarifResult{}
	for _, f := range findings {
		res := sarifResult{RuleID: f.rule, Level: f.level, Message: sarifText{f.message}}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = uri
		loc.LogicalLocations = []sarifLogical{{Name: "services." + f.service, Kind: "object"}}
		res.Locations = []sarifLocation{loc}
		if f.allowed != "" {
			res.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.allowed}}
		}
		results = append(results, res)
	}
	if rules == nil {
		rules = []sarifRule{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{Tool: sarifTool{Driver: sarifDriver{Name: driver, Version: meta.Version, InformationURI: meta.Metadata().URL, Rules: rules}},
			Results: results}},
	})
}

// writeLintSARIF: every policy rule is a driver rule; a finding is a result.
func writeLintSARIF(w io.Writer, composeFiles []string, findings []policy.Finding) error {
	var rules []sarifRule
	for _, r := range policy.Rules() {
		rule := sarifRule{ID: r.ID, ShortDescription: sarifText{r.Title}, Help: sarifText{r.Remediation}}
		if r.CIS != "" {
			rule.Properties = map[string]any{"cis-docker-benchmark": r.CIS}
		}
		rules = append(rules, rule)
	}
	var out []sarifFinding
	for _, f := range findings {
		out = append(out, sarifFinding{rule: f.Rule, level: string(f.Level), service: f.Service, message: f.Service + ": " + f.Message, allowed: f.Allowed})
	}
	return writeSARIF(w, "docker-lifecycle", composeFiles, rules, out)
}

// writeScanSARIF: one rule per vulnerability or secret rule found, one result per
// finding and service running the image (SARIF has no notion of an image layer).
func writeScanSARIF(w io.Writer, composeFiles []string, res *scan.Result) error {
	var rules []sarifRule
	var out []sarifFinding
	seen := map[string]bool{}
	for _, img := range res.Images {
		for _, f := range img.Findings {
			if !seen[f.ID] {
				seen[f.ID] = true
				help := f.URL
				if help == "" {
					help = "see trivy's documentation for rule " + f.ID
				}
				rules = append(rules, sarifRule{ID: f.ID, ShortDescription: sarifText{dash(f.Title)}, Help: sarifText{help},
					Properties: map[string]any{"kind": f.Kind, "severity": f.Severity, "security-severity": securitySeverity(f.Severity)}})
			}
			level := "warning"
			if f.Blocking {
				level = "error"
			}
			for _, svc := range img.Services {
				out = append(out, sarifFinding{rule: f.ID, level: level, service: svc, message: svc + " (" + img.Image + "): " + f.Describe()})
			}
		}
	}
	return writeSARIF(w, "docker-lifecycle scan (trivy "+res.Scanner.Version+")", composeFiles, rules, out)
}

// securitySeverity is the CVSS-like score code-scanning tools sort SARIF results by.
func securitySeverity(severity string) string {
	switch severity {
	case "CRITICAL":
		return "9.5"
	case "HIGH":
		return "8.0"
	case "MEDIUM":
		return "5.5"
	case "LOW":
		return "2.0"
	}
	return "0.0"
}
