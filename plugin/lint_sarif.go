package plugin

import (
	"encoding/json"
	"io"
	"path/filepath"

	"github.com/docker-lifecycle/docker-lifecycle/plugin/meta"
	"github.com/docker-lifecycle/docker-lifecycle/policy"
)

// SARIF 2.1.0, the subset code-scanning tools read: one run, the rules as the tool's
// driver rules, one result per finding, allowed findings as suppressed results.
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

func writeSARIF(w io.Writer, composeFiles []string, findings []policy.Finding) error {
	driver := sarifDriver{Name: "docker-lifecycle", Version: meta.Version, InformationURI: meta.Metadata().URL}
	for _, r := range policy.Rules() {
		rule := sarifRule{ID: r.ID, ShortDescription: sarifText{r.Title}, Help: sarifText{r.Remediation}}
		if r.CIS != "" {
			rule.Properties = map[string]any{"cis-docker-benchmark": r.CIS}
		}
		driver.Rules = append(driver.Rules, rule)
	}
	uri := "compose.yaml"
	if len(composeFiles) > 0 {
		uri = filepath.Base(composeFiles[0])
	}
	results := []sarifResult{}
	for _, f := range findings {
		res := sarifResult{RuleID: f.Rule, Level: string(f.Level), Message: sarifText{f.Service + ": " + f.Message}}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = uri
		loc.LogicalLocations = []sarifLogical{{Name: "services." + f.Service, Kind: "object"}}
		res.Locations = []sarifLocation{loc}
		if f.Allowed != "" {
			res.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.Allowed}}
		}
		results = append(results, res)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs:    []sarifRun{{Tool: sarifTool{Driver: driver}, Results: results}},
	})
}
