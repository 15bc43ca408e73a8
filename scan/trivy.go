package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Report is the part of trivy's JSON report (`--format json`, schema version 2) that
// the gate reads. Findings stay raw, so our output carries them exactly as trivy wrote them.
type Report struct {
	SchemaVersion int
	// Trivy names the trivy that wrote the report (trivy 0.57 and newer).
	Trivy struct {
		Version string
	}
	ArtifactName string
	ArtifactType string
	Metadata     struct {
		ImageID string `json:"ImageID"`
	}
	Results []struct {
		Target          string
		Class           string
		Type            string
		Vulnerabilities []json.RawMessage
		Secrets         []json.RawMessage
	}
}

// The fields of a trivy finding the gate judges by.
type trivyVulnerability struct {
	VulnerabilityID  string
	PkgName          string
	InstalledVersion string
	FixedVersion     string
	Severity         string
	Title            string
	PrimaryURL       string
}

type trivySecret struct {
	RuleID    string
	Severity  string
	Title     string
	StartLine int
}

// ParseReport reads trivy's JSON report, refusing anything that is not one: a scanner
// that prints garbage must fail the gate, never pass it.
func ParseReport(data []byte) (*Report, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("trivy printed no report")
	}
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("trivy's output is not a JSON report (%v): %s", err, excerpt(data))
	}
	if dec.More() {
		return nil, fmt.Errorf("trivy's output has data after its JSON report: %s", excerpt(data))
	}
	if r.SchemaVersion != 2 {
		return nil, fmt.Errorf("trivy's report has schema version %d, docker lifecycle reads version 2: use trivy %s or newer", r.SchemaVersion, MinVersion)
	}
	for _, res := range r.Results {
		for _, raw := range res.Vulnerabilities {
			var v trivyVulnerability
			if err := json.Unmarshal(raw, &v); err != nil || v.VulnerabilityID == "" {
				return nil, fmt.Errorf("trivy's report has an unreadable vulnerability in %s: %s", res.Target, excerpt(raw))
			}
		}
		for _, raw := range res.Secrets {
			var s trivySecret
			if err := json.Unmarshal(raw, &s); err != nil || s.RuleID == "" {
				// Never quote a secret finding: even redacted, it is not ours to print.
				return nil, fmt.Errorf("trivy's report has an unreadable secret finding in %s", res.Target)
			}
		}
	}
	return &r, nil
}

func excerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}
